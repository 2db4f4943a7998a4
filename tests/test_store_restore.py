"""After a restart the Monitor picks up from the history store: the host's recent samples,
the peers seen within the TTL with their latency, and the alert history."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerscope.alerting.records import AlertEvent
from peerscope.alerting.service import Alerting
from peerscope.config import Settings
from peerscope.core.alerts import AlertRule
from peerscope.core.model import SystemSample
from peerscope.monitor import Monitor
from peerscope.store import HistoryStore
from peerscope.store.restore import restore
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock

SETTINGS = Settings(enable_system_metrics=False, peer_ttl_s=300.0)


def _run(path: Path, clock: ManualClock, seconds: int, *, anonymize: bool = False) -> None:
    """A first run: three peers answering for ``seconds``, then p2 silent for the last 20."""
    monitor = Monitor(SETTINGS, clock=clock)
    store = HistoryStore(StoreSettings(db=str(path), queue_size=100_000, anonymize_ids=anonymize))
    store.attach(monitor)
    for i in range(3):
        monitor.add_peer(f"p{i}", name=f"peer {i}", address=f"10.0.0.{i}", labels={"zone": "a"})
    for second in range(seconds):
        clock.advance(1)
        for i in range(3):
            if not (i == 2 and second >= seconds - 20):
                monitor.record_latency(f"p{i}", 10.0 * (i + 1) + second % 3)
        monitor.tick()
    store.close()


def test_peers_seen_come_back_with_their_samples_and_read_as_not_live(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    _run(path, clock, 120)
    clock.advance(60)  # the agent was down for a minute
    monitor = Monitor(SETTINGS, clock=clock)
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        restored = restore(store.reader, monitor)
    finally:
        store.close()
    assert (restored.peers, restored.peer_samples) == (3, 120 + 120 + 100)
    monitor.tick()
    entry = monitor.peer("p1")
    assert entry["name"] == "peer 1"
    assert (entry["address"], entry["labels"]) == ("10.0.0.1", {"zone": "a"})
    # Its samples are back at their own times: the last one 60 s ago...
    history = monitor.latency_history("p1", 3600)
    assert len(history) == 120
    assert history[-1] == (clock.now - 60, 20.0 + 119 % 3)
    # ...so it is judged by them: not heard from for a minute, not a live peer.
    assert entry["status"] != "connected"
    assert entry["latency_ms"] is None
    assert monitor.latency_history("p2", 3600)[-1][0] == clock.now - 80


def test_peers_past_the_ttl_stay_in_the_store_only(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    _run(path, clock, 90)
    clock.advance(SETTINGS.peer_ttl_s + 10)
    monitor = Monitor(SETTINGS, clock=clock)
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        assert restore(store.reader, monitor).peers == 0
        found = store.reader.samples("peer", "p0", clock.now - 3600, clock.now, ["latency_ms"])
    finally:
        store.close()
    assert "p0" not in monitor
    assert found is not None
    assert len(found["latency_ms"]) == 90


def test_a_peer_already_registered_is_left_as_it_is(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    _run(path, clock, 30)
    monitor = Monitor(SETTINGS, clock=clock)
    monitor.add_peer("p0", name="renamed")
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        assert restore(store.reader, monitor).peers == 2
    finally:
        store.close()
    assert monitor.peer("p0")["name"] == "renamed"
    assert monitor.latency_history("p0", 3600) == []


def test_anonymized_ids_bring_back_no_peers(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    _run(path, clock, 30, anonymize=True)
    monitor = Monitor(SETTINGS, clock=clock)
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        assert restore(store.reader, monitor).peers == 0
    finally:
        store.close()
    assert monitor.peers() == []


def test_the_host_history_comes_back(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    monitor = Monitor(Settings(enable_system_metrics=True), clock=clock)
    store = HistoryStore(StoreSettings(db=str(path), queue_size=10_000))
    store.attach(monitor)
    for _ in range(30):
        clock.advance(1)
        monitor.tick()
    kept = monitor.system_history("cpu_percent", 3600)
    store.close()
    clock.advance(5)
    fresh = Monitor(Settings(enable_system_metrics=False), clock=clock)
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        assert restore(store.reader, fresh).host_samples == 30
    finally:
        store.close()
    back = fresh.system_history("cpu_percent", 3600)
    assert [t for t, _ in back] == [t for t, _ in kept]
    assert [v for _, v in back] == pytest.approx([v for _, v in kept], abs=0.006)


def test_sample_type_is_the_monitors(tmp_path: Path) -> None:
    """restore_system takes the Monitor's own SystemSample: a sample put back reads as one."""
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    monitor.restore_system([SystemSample(timestamp=clock.now - 1, cpu_percent=42.0)])
    assert monitor.system_history("cpu_percent", 60) == [(clock.now - 1, 42.0)]


def _stored_alert_events(path: Path) -> list[AlertEvent]:
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        return [row["data"] for row in reversed(store.reader.events(types=["alert"]))]
    finally:
        store.close()


def _first_run(path: Path, clock: ManualClock) -> None:
    """p fires 'slow' (and is still slow when the run stops); q fired and resolved."""
    monitor = Monitor(SETTINGS, clock=clock)
    store = HistoryStore(StoreSettings(db=str(path)))
    store.attach(monitor)
    alerting = Alerting(monitor, [SLOW])
    alerting.listen(store.record_alert)
    # The rule reads the smoothed latency: q takes a few samples to come back under it.
    for value_p, value_q in [(500.0, 500.0)] + [(500.0, 10.0)] * 20:
        monitor.record_latency("p", value_p)
        monitor.record_latency("q", value_q)
        monitor.tick()
        clock.advance(1)
    store.close()


SLOW = AlertRule("slow", "latency_ms", ">", 100.0)


def test_an_alert_firing_before_a_restart_fires_on_without_a_second_firing(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    _first_run(path, clock)
    events = _stored_alert_events(path)
    assert [(e["peer_id"], e["state"]) for e in events] == [
        ("p", "firing"),
        ("q", "firing"),
        ("q", "resolved"),
    ]
    monitor = Monitor(SETTINGS, clock=clock)
    alerting = Alerting(monitor, [SLOW])
    assert alerting.restore(events, clock.now) == 1
    assert [(a["peer_id"], a["state"]) for a in alerting.active()] == [("p", "firing")]
    monitor.record_latency("p", 450.0)  # still slow: nothing new to tell
    monitor.tick()
    assert len(alerting.history()) == 3
    for _ in range(20):  # recovered: the resolve is told
        clock.advance(1)
        monitor.record_latency("p", 20.0)
        monitor.tick()
    history = alerting.history()
    assert [(e["id"], e["peer_id"], e["state"]) for e in history] == [
        (1, "p", "firing"),
        (2, "q", "firing"),
        (3, "q", "resolved"),
        (4, "p", "resolved"),
    ]
    assert history[-1]["started_at"] == events[0]["started_at"]
    assert alerting.active() == []


def test_a_restored_alert_of_a_rule_no_longer_run_is_dropped(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    _first_run(path, clock)
    monitor = Monitor(SETTINGS, clock=clock)
    alerting = Alerting(monitor, [AlertRule("lossy", "loss_percent", ">", 5.0)])
    assert alerting.restore(_stored_alert_events(path), clock.now) == 0
    assert alerting.active() == []
    assert len(alerting.history()) == 3


def test_restore_brings_back_the_alerts_with_the_rest(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    _first_run(path, clock)
    monitor = Monitor(SETTINGS, clock=clock)
    alerting = Alerting(monitor, [SLOW])
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        restored = restore(store.reader, monitor, alerting)
    finally:
        store.close()
    assert (restored.peers, restored.alerts_firing) == (2, 1)
    assert [e["state"] for e in alerting.history()] == ["firing", "firing", "resolved"]


def test_anonymized_alert_and_session_events_hold_no_peer_id(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    secret = "secret-peer-7"
    monitor = Monitor(SETTINGS, clock=clock)
    store = HistoryStore(StoreSettings(db=str(path), anonymize_ids=True))
    store.attach(monitor)
    alerting = Alerting(monitor, [SLOW])
    alerting.listen(store.record_alert)
    session_id = monitor.start_session("match", peer_ids=[secret])
    monitor.record_latency(secret, 900.0)
    monitor.tick()
    monitor.end_session(session_id)
    monitor.tick()
    store.close()
    events = _stored_alert_events(path)
    assert [e["state"] for e in events] == ["firing"]
    # Its log comes back; the alert does not fire on for a hash no peer will have.
    again = Monitor(SETTINGS, clock=clock)
    fresh = Alerting(again, [SLOW])
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        assert restore(store.reader, again, fresh).alerts_firing == 0
    finally:
        store.close()
    assert (len(fresh.history()), fresh.active()) == (1, [])
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw
    assert events[0]["peer_id"] != secret
    assert events[0]["labels"]["peer_id"] == events[0]["peer_id"]


def test_ended_sessions_come_back_with_their_statistics(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "history.db"
    monitor = Monitor(SETTINGS, clock=clock)
    store = HistoryStore(StoreSettings(db=str(path)))
    store.attach(monitor)
    session_id = monitor.start_session("match", peer_ids=["a"], labels={"map": "dust"})
    for value in (10.0, 30.0, 20.0, 90.0):
        clock.advance(1)
        monitor.record_latency("a", value)
        monitor.tick()
    monitor.end_session(session_id)
    monitor.tick()
    before = monitor.sessions(5, include_active=False)[0]
    store.close()
    fresh = Monitor(SETTINGS, clock=clock)
    store = HistoryStore(StoreSettings(db=str(path)))
    try:
        assert restore(store.reader, fresh).sessions == 1
    finally:
        store.close()
    (after,) = fresh.sessions(5, include_active=False)
    assert (after.session_id, after.name, after.peer_ids) == (session_id, "match", ["a"])
    assert (after.started_at, after.ended_at, dict(after.labels)) == (
        before.started_at,
        before.ended_at,
        {"map": "dust"},
    )
    assert after.latency_stats() == before.latency_stats()
    # A session ending from now on comes after the restored one.
    later = fresh.start_session("next", peer_ids=["a"])
    fresh.end_session(later)
    assert [s.name for s in fresh.sessions(5, include_active=False)] == ["next", "match"]
