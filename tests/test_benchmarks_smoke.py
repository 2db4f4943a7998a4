"""The benchmarks still run and hand back their results (figures and targets are judged by
`make bench`, not here: a --quick run judges nothing)."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.results import RESULTS, Verdict, load

ROOT = Path(__file__).resolve().parent.parent
# The results a whole run hands back: measured in a quick run, or not measured there at all
# (the target's size is beyond --quick's counts).
MEASURED = {
    "bench_record",
    "bench_metrics_render",
    "bench_idle",
    "bench_probe",
    "bench_probe_icmp",
    "bench_dashboard_fps",
    "bench_dashboard_heap",
    "bench_profiler_disabled",
    "bench_profiler_enabled",
}
UNMEASURED = {
    "bench_snapshot",
    "bench_memory",
    "bench_loop_block",
    "bench_fanout",
    "bench_alerts_changing",
    "bench_alerts_steady",
    "bench_store_bytes",
    "bench_store_ingest",
    "bench_store_tick",
    "bench_store_raw_hour",
    "bench_store_30d",
    "bench_store_host_7d",
}
FIELDS = {
    "name",
    "title",
    "figure",
    "unit",
    "digits",
    "target",
    "reference",
    "ratio",
    "verdict",
    "met",
    "detail",
    "quick",
    "commit",
    "machine",
    "date",
    "command",
}


@pytest.mark.slow
def test_quick_benchmarks_run_print_their_figures_and_write_their_results(tmp_path: Path):
    committed = {path.name: path.read_bytes() for path in RESULTS.glob("*.json")}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ratio peerscope / prometheus cached child (median):" in out
    assert "bench_snapshot:" in out
    assert "x fping (target <= 1x: not judged (--quick))" in out
    assert "tracemalloc, after one tick:" in out
    assert "bench_loop_block:" in out
    assert "bench_alerts: 7 default rules, 1000 clients" in out
    assert "for reference, one tick with every peer changed" in out
    assert "bench_store: 180 s at 50 peers x 1 Hz" in out
    assert "naive table (the same samples, " in out
    assert "fps (requestAnimationFrame in the page): mean" in out
    assert "enabled overhead / cProfile's overhead: median" in out
    assert f"verdicts (written to {tmp_path})" in out

    assert {path.stem for path in tmp_path.iterdir()} == MEASURED | UNMEASURED
    for path in tmp_path.iterdir():
        assert set(json.loads(path.read_text())) == FIELDS, path.name
        record = load(path)  # every field checked, the verdict recomputed
        found = record.result
        assert found.quick
        assert found.verdict is Verdict.NOT_JUDGED
        assert record.command == shlex.join(
            ["python", "-m", "benchmarks", "--quick", "--results", str(tmp_path)]
        )
        if found.name in MEASURED:
            assert math.isfinite(found.figure or math.nan), found.name
        else:
            assert (found.figure, found.ratio, found.reference) == (None, None, None), found.name
    # The ratios against a peer library or a floor measured beside the figure:
    by_name = {path.stem: load(path).result for path in tmp_path.iterdir()}
    for name, floor in (
        ("bench_record", False),
        ("bench_metrics_render", False),
        ("bench_probe", True),
        ("bench_probe_icmp", False),
        ("bench_profiler_disabled", True),
        ("bench_profiler_enabled", True),
    ):
        reference = by_name[name].reference
        assert reference is not None, name
        assert reference.floor is floor, name
        assert (by_name[name].ratio or 0.0) > 0, name
    assert by_name["bench_dashboard_fps"].target.at_least
    assert (by_name["bench_dashboard_fps"].figure or 0.0) > 0
    # A quick run never touches the real figures.
    assert {path.name: path.read_bytes() for path in RESULTS.glob("*.json")} == committed
