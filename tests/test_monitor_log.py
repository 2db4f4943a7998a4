"""What an operator reads in the log: a Monitor on a ManualClock driven through status
changes and sessions (peerscope.monitor_log), alerts told once, and the agent's own lines
(start-up, a history store it cannot use, shutdown) as the handler writes them."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from peerscope import Monitor, Settings
from peerscope.agent import Agent
from peerscope.alerting.notifiers import LogNotifier
from peerscope.core.alerts import AlertRule
from peerscope.logs import configure_logging
from peerscope.monitor_log import MonitorLog
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock
from tests.notifier_support import alerting_with, settled


def logged(level: str = "DEBUG") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, "json", stream)
    return stream


def records(stream: io.StringIO, logger: str | None = None) -> list[dict[str, Any]]:
    found = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    return [entry for entry in found if logger is None or entry["logger"] == logger]


def watched(clock: ManualClock, **settings: Any) -> Monitor:
    monitor = Monitor(Settings(enable_system_metrics=False, **settings), clock=clock)
    MonitorLog(monitor).attach()
    return monitor


def status_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [e for e in records(stream, "peerscope.monitor_log") if "status" in e]


def test_each_status_change_is_one_line_with_the_peer_and_its_reason(clock: ManualClock):
    stream = logged()
    monitor = watched(clock, quality={"loss_window": 10})  # so that it recovers soon
    monitor.add_peer("eu-1")
    said: list[tuple[str, str, str]] = []  # what the API gave right after each tick
    status = "connected"
    for outcome in [12.0] * 5 + [None] * 10 + [12.0] * 15:
        clock.advance(1)
        monitor.record_latency("eu-1", outcome)
        monitor.tick()
        entry = monitor.peer("eu-1")
        if entry["status"] != status:
            said.append((entry["status"], entry["status_reason"]["kind"], entry["status_text"]))
            status = entry["status"]
    lines = status_lines(stream)
    # connected -> degraded -> disconnected while nothing comes back, and back once it does.
    assert [(e["previous"], e["status"]) for e in lines] == [
        ("connected", "degraded"),
        ("degraded", "disconnected"),
        ("disconnected", "degraded"),
        ("degraded", "connected"),
    ]
    assert [(e["status"], e["status_reason"], e["status_text"]) for e in lines] == said
    assert {e["peer_id"] for e in lines} == {"eu-1"}
    assert {e["level"] for e in lines} == {"INFO"}
    disconnected = lines[1]
    assert disconnected["status_reason"] == "no_reply"
    assert disconnected["message"] == (
        f"peer eu-1: degraded -> disconnected ({disconnected['status_text']})"
    )


def test_a_session_start_and_end_are_one_line_each_with_the_session_id(clock: ManualClock):
    stream = logged()
    monitor = watched(clock)
    monitor.add_peer("eu-1")
    monitor.add_peer("us-1")
    monitor.start_session("Match 7", ["eu-1", "us-1"], session_id="match-7")
    for latency in (20.0, 30.0, 40.0):
        clock.advance(10)
        monitor.record_latency("eu-1", latency)
    clock.advance(5)
    monitor.end_session("match-7")
    monitor.tick()
    started, ended = [e for e in records(stream) if "session_id" in e]
    assert started["message"] == "session started: Match 7 with 2 peers"
    assert ended["message"] == "session ended: Match 7 after 35 s, 3 latency samples"
    assert (started["session_id"], ended["session_id"]) == ("match-7", "match-7")
    assert (started["level"], ended["level"]) == ("INFO", "INFO")
    assert started["peers"] == 2
    assert (ended["duration_s"], ended["samples"]) == (35.0, 3)


def test_peers_added_and_removed_are_told_at_debug_only(clock: ManualClock):
    stream = logged("DEBUG")
    monitor = watched(clock)
    monitor.add_peer("ws-1")
    monitor.remove_peer("ws-1")
    monitor.tick()
    assert [(e["level"], e["message"], e["peer_id"]) for e in records(stream)] == [
        ("DEBUG", "peer added: ws-1", "ws-1"),
        ("DEBUG", "peer removed: ws-1 (removed)", "ws-1"),
    ]
    quiet = logged("INFO")
    monitor.add_peer("ws-2")
    monitor.tick()
    assert quiet.getvalue() == ""


def test_nothing_is_written_per_sample(clock: ManualClock):
    stream = logged("DEBUG")
    monitor = watched(clock)
    monitor.add_peer("eu-1")
    monitor.tick()
    written = len(records(stream))
    for _ in range(200):
        clock.advance(0.1)
        monitor.record_latency("eu-1", 12.0)
        monitor.record_traffic("eu-1", bytes_sent=100)
        monitor.record_message("eu-1", size=50)
        monitor.tick()
    assert len(records(stream)) == written


def test_an_outage_of_many_peers_is_a_few_lines_and_a_count(clock: ManualClock):
    stream = logged()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    MonitorLog(monitor, status_lines_per_tick=3).attach()
    peers = [f"p{i}" for i in range(10)]
    for peer_id in peers:
        monitor.record_latency(peer_id, 12.0)
    monitor.tick()
    clock.advance(30)  # silent past degraded_after_idle_s (15 s), short of disconnected (60 s)
    monitor.tick()
    told = status_lines(stream)
    assert len(told) == 3
    assert all(e["status"] == "degraded" for e in told)
    (summary,) = [e for e in records(stream) if "changes" in e]
    assert summary["message"] == "... and 7 more peers changed status (degraded: 7)"
    assert summary["changes"] == {"degraded": 7}
    # The next tick has its own three lines again.
    clock.advance(40)
    monitor.tick()
    assert len(status_lines(stream)) == 6


def test_with_info_off_status_changes_are_not_looked_up(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
):
    stream = logged("WARNING")
    monitor = watched(clock)
    monitor.record_latency("eu-1", 12.0)
    monitor.tick()
    looked_up: list[str] = []
    peer = monitor.peer
    monkeypatch.setattr(monitor, "peer", lambda peer_id: looked_up.append(peer_id) or peer(peer_id))
    clock.advance(30)
    monitor.tick()
    assert peer("eu-1")["status"] == "degraded"
    assert looked_up == []
    assert stream.getvalue() == ""


async def test_an_alert_about_a_peer_is_one_line_with_its_peer_id(clock: ManualClock):
    """Told by the alerting's log notifier only: the Monitor's log says nothing of it."""
    stream = logged("INFO")
    monitor = watched(clock)
    rule = AlertRule("slow", "latency_ms", ">", 100.0)
    async with alerting_with(monitor, [rule], [LogNotifier()]) as alerting:
        monitor.record_latency("eu-1", 250.0)
        monitor.tick()
        await settled(alerting, sent=1)
    alert_lines = [e for e in records(stream) if "slow" in e["message"]]
    (line,) = alert_lines
    assert line["logger"] == "peerscope.alerts"
    assert line["level"] == "WARNING"
    assert line["message"].startswith("alert firing: slow: ")
    assert line["peer_id"] == "eu-1"
    assert line["alert_event"]["rule"] == "slow"


# --- the agent's own lines ----------------------------------------------------------------


def test_a_history_store_that_cannot_be_used_is_told_in_the_format_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    db = not_a_dir / "history.db"
    settings = Settings(
        enable_system_metrics=False,
        log_format="json",
        store=StoreSettings(enabled=True, db=str(db)),
    )
    agent = Agent.from_settings(settings)
    assert agent.store is None
    (entry,) = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (entry["level"], entry["logger"]) == ("ERROR", "peerscope.store")
    assert entry["message"] == agent.store_error


async def test_the_agent_logs_where_it_listens_and_when_it_stops(tmp_path: Path):
    stream = logged("INFO")
    db = tmp_path / "history.db"
    settings = Settings(
        enable_system_metrics=False,
        metrics_interval=3600.0,
        store=StoreSettings(enabled=True, db=str(db)),
        peers=["127.0.0.1:9", "127.0.0.1:10"],
        probe_interval=3600.0,
    )
    agent = Agent(Monitor(settings), port=0)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(agent.run(on_ready=ready.set_result))
    url = await asyncio.wait_for(ready, 10)
    assert agent.reflector is not None
    (start,) = records(stream, "peerscope.agent")
    assert start["url"] == url
    assert start["metrics_path"] == "/metrics"
    assert start["reflector_port"] == agent.reflector.port
    assert (start["peers"], start["history"]) == (2, str(db))
    assert start["message"] == (
        f"serving {url} (metrics at {url}/metrics; reflector on UDP "
        f"127.0.0.1:{agent.reflector.port}; 2 peers configured; history in {db})"
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e["message"] for e in records(stream, "peerscope.agent")][1:] == [
        "shutting down",
        "stopped",
    ]
