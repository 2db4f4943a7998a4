"""docs/QUALITY.md and peerscope.core.quality must agree: the worked examples and the defaults."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from peerscope import Monitor, Settings
from peerscope.core import quality
from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.testing import ManualClock

DOC = Path(__file__).resolve().parents[1] / "docs" / "QUALITY.md"
EXAMPLES_HEADER = [
    "latency ms",
    "jitter ms",
    "loss %",
    "score",
    "seed",
    "band",
    "grade",
    "R",
    "MOS",
]
PEERS_HEADER = [
    "peer",
    "measurements",
    "score",
    "seed",
    "band",
    "grade",
    "latency",
    "status",
    "reason",
]


def cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_after(lines, header):
    """Rows (as lists of cells) of the markdown table whose header row is ``header``."""
    for index, line in enumerate(lines):
        if line.lstrip().startswith("|") and cells(line) == header:
            rows = []
            for row in lines[index + 2 :]:  # skip the |---| separator
                if not row.lstrip().startswith("|"):
                    break
                rows.append(cells(row))
            return rows
    raise AssertionError(f"no table with header {header} in {DOC}")


def config_table(heading):
    """The field | default | meaning table under ``heading``, as {field: default}."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    rows = table_after(lines[start:], ["field", "default", "meaning"])
    return {row[0].strip("`"): ast.literal_eval(row[1].strip("`")) for row in rows}


def rows_of(header):
    lines = DOC.read_text(encoding="utf-8").splitlines()
    rows = table_after(lines, header)
    for row in rows:
        assert len(row) == len(header), row
    return rows


def example_rows():
    return rows_of(EXAMPLES_HEADER)


def effective_latency(row):
    return float(row[0]) + 2 * float(row[1]) + 10


ROWS = example_rows()


def test_the_table_has_at_least_ten_examples():
    assert len(ROWS) >= 10


@pytest.mark.parametrize("row", ROWS, ids=[" ".join(row[:3]) for row in ROWS])
def test_example_row_matches_the_code(row):
    latency, jitter, loss = (float(cell) for cell in row[:3])
    score_cell, seed_cell, band_cell, grade_cell, r_cell, mos_cell = row[3:]
    score = quality.quality_score(latency, loss, jitter)
    assert round(score, 2) == float(score_cell)
    assert score_cell == f"{round(score, 2):.2f}"  # written with exactly 2 decimals
    assert seed_cell == f"{round(quality.seed_score(latency, loss, jitter), 2):.2f}"
    assert quality.quality_band(score) == band_cell
    assert quality.grade(score) == grade_cell
    assert round(quality.r_factor(latency, jitter, loss), 2) == float(r_cell)
    assert round(quality.mos(latency, jitter, loss), 2) == float(mos_cell)


def test_examples_cover_both_e_model_branches():
    assert any(effective_latency(row) < 160 for row in ROWS)
    assert any(effective_latency(row) == 160 for row in ROWS)  # the boundary itself
    assert any(effective_latency(row) > 160 for row in ROWS)


def test_examples_cover_clamping():
    def raw_r(row):
        leff = effective_latency(row)
        r = 93.2 - leff / 40 if leff < 160 else 93.2 - (leff - 120) / 10
        return r - 2.5 * float(row[2])

    def raw_mos(r):
        return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)

    assert any(raw_r(row) < 0 and float(row[7]) == 0 for row in ROWS)  # R clamped to 0
    assert any(
        raw_r(row) > 0 and raw_mos(raw_r(row)) < 1 and float(row[8]) == 1 for row in ROWS
    )  # the cubic's dip clamped to MOS 1


def test_examples_cover_zero_parts_and_every_band_and_grade():
    assert any(float(row[0]) >= 150 for row in ROWS)  # latency part 0
    assert any(float(row[1]) >= 50 for row in ROWS)  # jitter part 0
    assert any(float(row[2]) >= 5 for row in ROWS)  # loss part 0
    assert any(float(row[0]) == float(row[1]) == float(row[2]) == 0 for row in ROWS)
    assert {row[5] for row in ROWS} == {"excellent", "good", "fair", "poor", "bad"}
    assert {row[6] for row in ROWS} == {"A", "B", "C", "D", "F"}
    # where the formulas part: past a limit the impairment score is below the seed's
    assert any(float(row[3]) < float(row[4]) for row in ROWS)
    assert any(float(row[2]) == 100 for row in ROWS)


def test_documented_quality_defaults_match_quality_config():
    documented = config_table("### `quality.*` (`QualityConfig`)")
    actual = {f.name: f.default for f in dataclasses.fields(QualityConfig)}
    assert documented == actual


def test_documented_status_defaults_match_status_rules():
    documented = config_table("### `status.*` (`StatusRules`)")
    actual = {f.name: f.default for f in dataclasses.fields(StatusRules)}
    assert documented == actual


def test_doc_names_the_settings_paths():
    text = DOC.read_text(encoding="utf-8")
    for needle in (
        "PEERSCOPE_QUALITY__LATENCY_WEIGHT",
        "[quality]",
        "[status]",
        "latency_smoothing",
        "loss_window",
        "recover_margin",
    ):
        assert needle in text


# --- the peers table: runs of measurements replayed through a Monitor -------------------------

PEER_ROWS = rows_of(PEERS_HEADER)
_STEP = re.compile(r"(\d+)×\(([^)]*)\)|(\d+)×([\d.]+) ms|(\d+)×lost|(\d+) s silent")


def measurements(spec):
    """``"3×(18×20 ms, 2×lost), 3×20 ms"`` as one step a second: a latency, None (lost) or
    "silent"."""
    steps = []
    position = 0
    spec = spec.strip()
    while position < len(spec):
        match = _STEP.match(spec, position)
        assert match is not None, f"cannot read {spec[position:]!r}"
        group, inner, count, value, lost, silent = match.groups()
        if group:
            steps += int(group) * measurements(inner)
        elif count:
            steps += int(count) * [float(value)]
        elif lost:
            steps += int(lost) * [None]
        else:
            steps += int(silent) * ["silent"]
        position = match.end()
        if spec.startswith(", ", position):
            position += 2
    return steps


def replay(steps, method):
    clock = ManualClock()
    settings = Settings(
        enable_system_metrics=False,
        metrics_interval=3600,
        quality=QualityConfig(score_method=method),
    )
    monitor = Monitor(settings, clock=clock)
    monitor.add_peer("p")
    for step in steps:
        clock.advance(1.0)
        if step != "silent":
            monitor.record_latency("p", step)
    return monitor.peer("p")


def test_the_peers_table_covers_healthy_lossy_flapping_half_dead_and_dead():
    names = {row[0] for row in PEER_ROWS}
    assert {"healthy LAN", "flapping", "half-dead", "dead"} <= names


@pytest.mark.parametrize("row", PEER_ROWS, ids=[row[0] for row in PEER_ROWS])
def test_peer_row_matches_a_monitor_fed_those_measurements(row):
    _, spec, score, seed, band, grade, latency, status, reason = row
    steps = measurements(spec)
    peer = replay(steps, "impairment")
    assert f"{peer['quality_score']:.2f}" == score
    assert f"{replay(steps, 'seed')['quality_score']:.2f}" == seed
    assert (peer["band"], peer["grade"], peer["status"]) == (band, grade, status)
    assert f"`{peer['status_reason']['kind']}`" == reason
    shown = peer["smoothed_latency_ms"]
    assert latency == ("–" if shown is None else f"{shown:g}")
    if shown is None:
        assert peer["jitter_ms"] is None
        assert peer["mos"] is None
        assert peer["latency_ms"] is None
        assert peer["last_measured_at"] is not None
