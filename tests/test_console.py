"""The terminal table of ``peerscope demo``: which peer is in trouble and why, with no stale
figure, and simulated peers marked, from a real Monitor's message."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from peerscope import Monitor, Settings
from peerscope.console import render
from peerscope.testing import ManualClock


def quiet_monitor(clock: ManualClock) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False), clock=clock)


def columns(message: Any) -> dict[str, dict[str, str]]:
    """The rendered table as {peer cell: {column header: cell text}}."""
    table = render(message).renderables[1]
    assert isinstance(table, Table)
    cells = {str(column.header): [str(cell) for cell in column.cells] for column in table.columns}
    return {
        peer: {header: values[row] for header, values in cells.items()}
        for row, peer in enumerate(cells["peer"])
    }


def shown(message: Any) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(render(message))
    return console.export_text()


def test_a_peer_that_stopped_answering_shows_dashes_and_why(clock: ManualClock) -> None:
    monitor = quiet_monitor(clock)
    monitor.record_latency("steady", 12.0)
    monitor.record_latency("dead", 40.0)
    for _ in range(4):
        clock.advance(1.0)
        monitor.record_latency("steady", 12.0)
        monitor.record_latency("dead", None)
    rows = columns(monitor.snapshot())
    dead, steady = rows["dead"], rows["steady"]
    # Nothing came back: no latency, jitter or MOS, not the 40 ms it last had; score 0.
    for header in ("latency", "avg", "jitter", "MOS"):
        assert dead[header] == "–", (header, dead)
    assert dead["quality"] == "0 F bad"
    assert dead["why"] == "no reply to the last 4 measurements; last reply 4 s ago"
    assert dead["loss"] == "80.0 %"
    assert steady["latency"] == "12.0 ms"
    assert steady["why"] == "healthy"
    assert steady["quality"].endswith("A excellent")
    text = shown(monitor.snapshot())
    dead_line = next(line for line in text.splitlines() if "dead" in line)
    assert "no reply to the last 4" in dead_line
    assert "40.0" not in dead_line


def test_a_peer_never_measured_shows_dashes_and_says_so(clock: ManualClock) -> None:
    monitor = quiet_monitor(clock)
    monitor.add_peer("new", name="Newcomer")
    row = columns(monitor.snapshot())["Newcomer"]
    assert [row[h] for h in ("latency", "avg", "jitter", "MOS", "quality")] == ["–"] * 5
    assert row["why"] == "not measured yet"


def test_simulated_peers_are_marked_sim_and_their_label_is_not_repeated(
    clock: ManualClock,
) -> None:
    monitor = quiet_monitor(clock)
    monitor.add_peer("sim-eu", name="Frankfurt", labels={"simulated": "true", "region": "eu"})
    monitor.add_peer("real", name="Real box", labels={"simulated": "false"})
    monitor.record_latency("sim-eu", 28.0)
    monitor.record_latency("real", 5.0)
    table = render(monitor.snapshot()).renderables[1]
    assert isinstance(table, Table)
    names = list(table.columns[0].cells)
    marked = {str(name): isinstance(name, Text) and name.plain.endswith(" sim") for name in names}
    assert marked == {"Frankfurt sim": True, "Real box": False}
    rows = columns(monitor.snapshot())
    assert rows["Frankfurt sim"]["labels"] == "region=eu"
    assert rows["Real box"]["labels"] == "simulated=false"
    assert "Frankfurt sim" in shown(monitor.snapshot())
