"""Benchmark results: verdicts, the JSON files, the generated table and the exit status.

The benchmarks themselves run in tests/test_benchmarks_smoke.py; here their plumbing runs
on results built by hand and on stand-in benchmarks that meet, miss or fail on purpose.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
from benchmarks import summary
from benchmarks.results import (
    RESULTS,
    Record,
    Reference,
    Result,
    Target,
    Verdict,
    load,
    load_all,
    to_json,
    write,
)
from benchmarks.runner import main, run_alone
from benchmarks.timing import machine

PEER = Result(
    name="bench_peer",
    title="hot path vs a peer library",
    unit="ns/call",
    digits=1,
    target=Target(1.0, on="ratio"),
    figure=693.118,
    quick=False,
    reference=Reference("peer observe", 801.7705, floor=False),
    ratio=0.8644842882,
)
FLOOR = Result(
    name="bench_floor",
    title="fan-out at 1,000",
    unit="ms",
    digits=2,
    target=Target(25.0),
    figure=69.641,
    quick=False,
    reference=Reference("bare writes", 57.927, floor=True),
    ratio=69.641 / 57.927,
    detail="worse case: none",
)
FPS = Result(
    name="bench_fps",
    title="frames | per second",
    unit="fps",
    digits=0,
    target=Target(30, at_least=True),
    figure=28.0,
    quick=False,
)


def record(result: Result, machine: str = "2 CPUs (test)") -> Record:
    return Record(
        result,
        commit="abc1234",
        machine=machine,
        date="2026-01-02T03:04:05Z",
        command="python -m benchmarks",
    )


# --- verdicts ----------------------------------------------------------------------------------


def test_a_figure_within_its_target_is_met_and_one_beyond_is_missed():
    assert PEER.verdict is Verdict.MET  # judged on the ratio, 0.86 <= 1.0, not on 693 ns
    assert replace(PEER, ratio=1.01).verdict is Verdict.MISSED
    assert replace(FLOOR, figure=25.0).verdict is Verdict.MET  # the limit itself meets it
    assert FPS.verdict is Verdict.MISSED  # at least 30 fps: 28 is short
    assert replace(FPS, figure=30.0).verdict is Verdict.MET
    assert [PEER.met, FPS.met] == [True, False]


def test_a_miss_is_floor_bound_only_when_the_floor_measured_beside_it_misses_too():
    assert FLOOR.verdict is Verdict.FLOOR_BOUND
    assert not FLOOR.verdict.fails
    assert not FLOOR.met
    below = replace(FLOOR, reference=Reference("bare writes", 20.0, floor=True))
    assert below.verdict is Verdict.MISSED
    assert below.verdict.fails
    # A peer library slower than the target is no floor: peerscope's miss is its own.
    peer = replace(FLOOR, reference=Reference("a library", 80.0, floor=False))
    assert peer.verdict is Verdict.MISSED


def test_a_quick_run_or_an_unmeasured_figure_is_not_judged():
    assert replace(PEER, quick=True).verdict is Verdict.NOT_JUDGED
    assert replace(FLOOR, quick=True, figure=99.0).verdict is Verdict.NOT_JUDGED
    unmeasured = replace(FLOOR, figure=None, reference=None, ratio=None)
    assert unmeasured.verdict is Verdict.NOT_JUDGED
    assert unmeasured.figure_text() == "not measured"
    assert not Verdict.NOT_JUDGED.fails


def test_figures_are_shown_rounded_against_peerscope():
    assert PEER.figure_text() == "693.2 ns/call"  # a cost, up
    assert PEER.ratio_text() == "0.865× peer observe (801.7 ns/call)"  # the peer's, down
    assert FLOOR.ratio_text() == "1.203× the floor, bare writes (57.92 ms)"
    assert replace(FPS, figure=29.9).figure_text() == "29 fps"  # a rate to reach, down
    assert FPS.ratio_text() == ""
    assert [PEER.target.text("x"), FPS.target.text("fps")] == ["≤ 1×", "≥ 30 fps"]


# --- the JSON files ----------------------------------------------------------------------------


def test_a_results_file_holds_every_field_and_reads_back_the_same(tmp_path: Path):
    path = write(record(FLOOR), tmp_path)
    assert path == tmp_path / "bench_floor.json"
    data = json.loads(path.read_text())
    assert data == {
        "name": "bench_floor",
        "title": "fan-out at 1,000",
        "figure": 69.641,
        "unit": "ms",
        "digits": 2,
        "target": {"limit": 25.0, "on": "figure", "at_least": False},
        "reference": {"name": "bare writes", "figure": 57.927, "floor": True},
        "ratio": 69.641 / 57.927,
        "verdict": "floor-bound",
        "met": False,
        "detail": "worse case: none",
        "quick": False,
        "commit": "abc1234",
        "machine": "2 CPUs (test)",
        "date": "2026-01-02T03:04:05Z",
        "command": "python -m benchmarks",
    }
    assert load(path) == record(FLOOR)
    write(record(PEER), tmp_path)
    assert load_all(tmp_path) == [record(FLOOR), record(PEER)]  # by name
    assert load_all(tmp_path / "absent") == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda data: data.pop("commit"), "commit: missing"),
        (lambda data: data.update(figure="fast"), "figure: must be a finite number, got 'fast'"),
        (lambda data: data.update(figure=True), "figure: must be a finite number, got True"),
        (
            lambda data: data["target"].update(on="mean"),
            "target.on: must be 'figure' or 'ratio', got 'mean'",
        ),
        (lambda data: data["reference"].pop("floor"), "reference.floor: missing"),
        (lambda data: data.update(digits=-1), "digits: must be an integer >= 0, got -1"),
        (
            lambda data: data.update(verdict="met", met=True),
            "verdict: the file says 'met', its figures give 'floor-bound'",
        ),
        (
            lambda data: data.update(figure=20.0),
            "verdict: the file says 'floor-bound', its figures give 'met'",
        ),
        (
            lambda data: data.update(name="bench_other"),
            "name: must be the file's name 'bench_floor', got 'bench_other'",
        ),
    ],
)
def test_a_results_file_that_does_not_hold_together_is_refused_naming_the_field(
    tmp_path: Path, change, error
):
    data = to_json(record(FLOOR))
    change(data)
    path = tmp_path / "bench_floor.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(f"{path}: {error}")):
        load(path)


def test_a_results_file_that_is_not_json_is_refused_naming_the_file(tmp_path: Path):
    path = tmp_path / "bench_x.json"
    path.write_text("{figure: 1")
    with pytest.raises(ValueError, match=re.escape(f"{path}: Expecting property name")):
        load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=re.escape(f"{path}: file: must be a JSON object")):
        load(path)


# --- the generated table -----------------------------------------------------------------------


def test_the_table_has_one_row_per_result_and_says_where_they_were_taken():
    assert summary.table([record(PEER), record(FLOOR), record(FPS)]).splitlines() == [
        "| Benchmark | Figure | Target | Against | Verdict | Commit, date |",
        "|---|---|---|---|---|---|",
        "| `bench_peer`: hot path vs a peer library | 693.2 ns/call | ≤ 1× | "
        "0.865× peer observe (801.7 ns/call) | met | `abc1234`, 2026-01-02 |",
        "| `bench_floor`: fan-out at 1,000 | 69.65 ms (worse case: none) | ≤ 25 ms | "
        "1.203× the floor, bare writes (57.92 ms) | **floor-bound** | `abc1234`, 2026-01-02 |",
        "| `bench_fps`: frames \\| per second | 28 fps | ≥ 30 fps |  | **missed** | "
        "`abc1234`, 2026-01-02 |",
        "",
        "Machine: 2 CPUs (test).",
    ]
    two = summary.table(
        [record(PEER, "machine A"), record(FLOOR, "machine B"), record(FPS, "machine A")]
    )
    assert two.splitlines()[-3:] == [
        "Machines:",
        "- machine A: bench_peer, bench_fps",
        "- machine B: bench_floor",
    ]


def test_no_results_give_a_placeholder_and_quick_results_are_refused():
    assert summary.table([]) == summary.NO_RESULTS
    with pytest.raises(ValueError, match="quick: bench_peer come from a --quick run"):
        summary.table([record(FLOOR), record(replace(PEER, quick=True))])


def test_the_block_between_the_markers_is_rewritten_and_nothing_else(tmp_path: Path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# Title\n\nbefore\n{summary.START}\nold table\n{summary.END}\nafter\n")
    results = tmp_path / "results"
    assert summary.regenerate(results, doc)
    assert doc.read_text() == (
        f"# Title\n\nbefore\n{summary.START}\n{summary.NO_RESULTS}\n{summary.END}\nafter\n"
    )
    write(record(PEER), results)
    assert summary.regenerate(results, doc)
    assert doc.read_text() == (
        f"# Title\n\nbefore\n{summary.START}\n"
        f"{summary.table([record(PEER)])}\n{summary.END}\nafter\n"
    )
    assert not summary.regenerate(results, doc)  # already current


@pytest.mark.parametrize(
    "text", ["no markers", f"{summary.END}\nx\n{summary.START}\n", f"{summary.START}\nno end"]
)
def test_a_document_without_both_markers_in_order_is_refused(tmp_path: Path, text: str):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(text)
    with pytest.raises(ValueError, match="markers: the document needs"):
        summary.regenerate(tmp_path, doc)
    assert doc.read_text() == text


def test_the_committed_table_is_the_one_the_committed_results_files_give():
    text, generated = summary.current()
    assert summary.START in text
    assert generated == text, "run python -m benchmarks.summary"


# --- the runner and its exit status ------------------------------------------------------------

ran: list[str] = []


def met_run(quick: bool = False) -> list[Result]:
    ran.append("met")
    return [replace(PEER, name="stand_in_met", quick=quick)]


def missed_run(quick: bool = False) -> list[Result]:
    ran.append("missed")
    return [replace(FPS, name="stand_in_missed", quick=quick)]


def floor_run(quick: bool = False) -> list[Result]:
    ran.append("floor")
    return [replace(FLOOR, name="stand_in_floor", quick=quick)]


def broken_run(quick: bool = False) -> list[Result]:
    ran.append("broken")
    raise RuntimeError("the stand-in broke")


@pytest.fixture(autouse=True)
def _forget_runs():
    ran.clear()


def committed_results() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in RESULTS.glob("*.json")}


def test_a_run_goes_on_after_a_miss_and_an_error_then_exits_1(tmp_path: Path, capsys):
    status = main(
        [missed_run, broken_run, met_run], "python -m benchmarks", ["--results", str(tmp_path)]
    )
    assert status == 1
    assert ran == ["missed", "broken", "met"]
    out, err = capsys.readouterr()
    assert "RuntimeError: the stand-in broke" in err
    assert f"{__name__}: failed with an error" in out
    assert re.search(r"stand_in_missed +missed +28 fps \(target ≥ 30 fps\)", out)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "stand_in_met.json",
        "stand_in_missed.json",
    ]
    written = load(tmp_path / "stand_in_missed.json")
    assert written.result == replace(FPS, name="stand_in_missed")
    assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?", written.commit)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", written.date)
    assert written.machine == machine()
    assert written.command == shlex.join(["python", "-m", "benchmarks", "--results", str(tmp_path)])


def test_met_and_floor_bound_verdicts_exit_0(tmp_path: Path):
    assert main([met_run, floor_run], "python -m benchmarks", ["--results", str(tmp_path)]) == 0
    assert load(tmp_path / "stand_in_floor.json").result.verdict is Verdict.FLOOR_BOUND


def test_a_quick_run_judges_nothing_and_writes_no_results_files(capsys):
    before = committed_results()
    assert main([missed_run], "python -m benchmarks", ["--quick"]) == 0
    assert ran == ["missed"]
    assert committed_results() == before
    assert "not written: --quick without --results" in capsys.readouterr().out


def test_a_quick_run_may_not_write_into_the_committed_results(capsys):
    before = committed_results()
    with pytest.raises(SystemExit) as exited:
        main([met_run], "python -m benchmarks", ["--quick", "--results", str(RESULTS)])
    assert exited.value.code == 2
    assert ran == []
    assert committed_results() == before
    assert "--results: " in capsys.readouterr().err


def test_one_benchmark_alone_exits_1_when_its_target_is_missed(tmp_path: Path):
    with pytest.raises(SystemExit) as exited:
        run_alone(missed_run, ["--results", str(tmp_path)])
    assert exited.value.code == 1
    command = load(tmp_path / "stand_in_missed.json").command
    assert command == shlex.join(["python", "-m", __name__, "--results", str(tmp_path)])
    with pytest.raises(SystemExit) as exited:
        run_alone(met_run, ["--results", str(tmp_path)])
    assert exited.value.code == 0
