"""The Monitor with a hand-moved clock: exact figures for every recording path."""

from __future__ import annotations

import itertools
import math
import threading
import time

import pytest

from peerscope import (
    Monitor,
    PeerAdded,
    PeerRemoved,
    PeerStatusChanged,
    SessionEnded,
    SessionStarted,
    Settings,
    UnknownPeerError,
)
from peerscope.core.quality import QualityConfig, StatusRules
from tests.server_support import CLIENT_KEYS, MESSAGE_KEYS, SERVER_KEYS, SYSTEM_KEYS


def make_monitor(clock, **overrides) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False, **overrides), clock=clock)


def test_record_latency_updates_ring_jitter_and_smoothed_latency(clock):
    monitor = make_monitor(clock)
    for value in (20.0, 30.0, 25.0):
        monitor.record_latency("p1", value)
        clock.advance(1)
    peer = monitor.peer("p1")
    assert peer["latency_ms"] == 25.0
    assert peer["average_latency_ms"] == 25.0
    # RFC 3550: J1 = 0 + (10 - 0)/16 = 0.625; J2 = 0.625 + (5 - 0.625)/16 = 0.8984375
    assert peer["jitter_ms"] == pytest.approx(0.8984375)
    # EWMA with gain 1/8: 20 -> 21.25 -> 21.71875
    assert peer["smoothed_latency_ms"] == pytest.approx(21.71875)
    assert peer["packet_loss_percent"] == 0.0
    assert monitor.latency_stats("p1", 60)["count"] == 3
    assert monitor.latency_stats("p1", 60)["p95"] == 30.0


def test_failed_measurements_count_as_loss_and_failures(clock):
    monitor = make_monitor(clock)
    monitor.record_latency("p1", 10.0)
    monitor.record_latency("p1", None)
    monitor.record_latency("p1", 10.0)
    monitor.record_latency("p1", None)
    peer = monitor.peer("p1")
    assert peer["packet_loss_percent"] == 50.0
    assert peer["latency_ms"] == 10.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -0.001, "12", [1]])
def test_bad_latency_raises_and_changes_nothing(clock, bad):
    monitor = make_monitor(clock)
    monitor.record_latency("p1", 10.0)
    before = monitor.peer("p1")
    with pytest.raises(ValueError, match="latency_ms"):
        monitor.record_latency("p1", bad)
    assert monitor.peer("p1") == before


@pytest.mark.parametrize("bad_id", ["", "x" * 129, "tab\there", "new\nline", 42, None])
def test_bad_peer_id_raises_and_registers_nothing(clock, bad_id):
    monitor = make_monitor(clock)
    with pytest.raises(ValueError, match="peer_id"):
        monitor.record_latency(bad_id, 1.0)
    with pytest.raises(ValueError, match="peer_id"):
        monitor.add_peer(bad_id)
    assert monitor.peer_ids == []
    assert monitor.server_stats().total_connections == 0


def test_id_limits_are_inclusive(clock):
    monitor = make_monitor(clock)
    monitor.record_latency("x" * 128, 1.0)
    monitor.record_latency("y", 1.0)
    assert sorted(monitor.peer_ids) == ["x" * 128, "y"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bytes_sent", -1),
        ("bytes_received", 1.5),
        ("packets_sent", True),
        ("packets_received", math.nan),
        ("messages_sent", -5),
        ("messages_received", "3"),
    ],
)
def test_bad_traffic_raises_naming_the_field_and_keeps_counters(clock, field, value):
    monitor = make_monitor(clock)
    monitor.record_traffic("p1", bytes_sent=100, packets_sent=2)
    with pytest.raises(ValueError, match=field):
        monitor.record_traffic("p1", **{field: value})
    peer = monitor.peer("p1")
    assert (peer["bytes_sent"], peer["packets_sent"], peer["bytes_received"]) == (100, 2, 0)


def test_bad_message_arguments(clock):
    monitor = make_monitor(clock)
    with pytest.raises(ValueError, match="size"):
        monitor.record_message("p1", size=-1)
    with pytest.raises(ValueError, match="direction"):
        monitor.record_message("p1", direction="sideways")  # type: ignore[arg-type]
    assert monitor.server_stats().total_messages == 0
    assert monitor.peer_ids == []


def test_record_loss_report_replaces_measured_loss(clock):
    monitor = make_monitor(clock)
    monitor.record_latency("p1", 10.0)
    monitor.record_loss("p1", 12.5)
    assert monitor.peer("p1")["packet_loss_percent"] == 12.5
    for bad in (-1, 100.1, math.nan, "5"):
        with pytest.raises(ValueError, match="loss_percent"):
            monitor.record_loss("p1", bad)
    assert monitor.peer("p1")["packet_loss_percent"] == 12.5


def test_unknown_peer_policy_raise(clock):
    monitor = make_monitor(clock, unknown_peer="raise")
    with pytest.raises(UnknownPeerError, match="unknown peer_id 'ghost'"):
        monitor.record_latency("ghost", 1.0)
    with pytest.raises(UnknownPeerError):
        monitor.record_traffic("ghost", bytes_sent=1)
    with pytest.raises(UnknownPeerError):
        monitor.record_message("ghost")
    assert monitor.server_stats().total_messages == 0
    monitor.add_peer("ghost")
    monitor.record_latency("ghost", 1.0)
    assert monitor.peer("ghost")["latency_ms"] == 1.0


def test_max_peers_bounds_registration(clock):
    monitor = make_monitor(clock, max_peers=2)
    monitor.add_peer("a")
    monitor.add_peer("b")
    with pytest.raises(ValueError, match="max_peers"):
        monitor.record_latency("c", 1.0)
    assert sorted(monitor.peer_ids) == ["a", "b"]


def test_messages_per_second_is_a_true_sliding_window(clock):
    monitor = make_monitor(clock)
    for _ in range(5):
        monitor.record_message("p1", size=10, direction="in")
    clock.advance(0.5)
    for _ in range(3):
        monitor.record_message("p1", size=10, direction="out")
    stats = monitor.server_stats()
    assert (stats.messages_in_per_second, stats.messages_out_per_second) == (5.0, 3.0)
    assert stats.messages_per_second == 8.0
    clock.advance(0.6)  # the first five are now 1.1 s old
    stats = monitor.server_stats()
    assert (stats.messages_in_per_second, stats.messages_out_per_second) == (0.0, 3.0)
    clock.advance(0.5)
    assert monitor.server_stats().messages_per_second == 0.0
    assert monitor.server_stats().total_messages == 8


def test_totals_survive_a_client_leaving(clock):
    monitor = make_monitor(clock)
    monitor.add_peer("c1", kind="client")
    monitor.add_peer("c2", kind="client")
    for _ in range(4):
        monitor.record_message("c1")
    monitor.record_message(None)  # a server-level message with no peer
    assert monitor.remove_peer("c1") is True
    assert monitor.remove_peer("c1") is False
    monitor.add_peer("c1", kind="client")  # reconnects: a new connection
    stats = monitor.server_stats()
    assert stats.total_messages == 5
    assert stats.active_connections == 2
    assert stats.total_connections == 3
    assert monitor.peer("c1")["message_count"] == 0


def test_uptime_versus_idle(clock):
    monitor = make_monitor(clock)
    monitor.add_peer("c1", kind="client")
    clock.advance(10)
    monitor.record_message("c1", size=5)
    clock.advance(4)
    peer = monitor.peer("c1")
    assert peer["connection_duration"] == 14.0
    assert peer["idle_seconds"] == 4.0
    assert peer["last_message_time"] == clock.now - 4
    assert monitor.server_stats().uptime_seconds == 14.0


def test_outgoing_messages_do_not_count_as_hearing_from_the_peer(clock):
    monitor = make_monitor(clock)
    monitor.add_peer("c1")
    clock.advance(5)
    monitor.record_message("c1", size=100, direction="out")
    peer = monitor.peer("c1")
    assert peer["idle_seconds"] == 5.0
    assert (peer["messages_sent"], peer["bytes_sent"]) == (1, 100)


def test_session_statistics_use_only_samples_inside_the_session(clock):
    monitor = make_monitor(clock)
    monitor.record_latency("a", 500.0)  # before the session: must not count
    sid = monitor.start_session("Match 1", ["a", "b"])
    monitor.record_latency("a", 10.0)
    monitor.record_latency("b", 30.0)  # b registers after the session started
    monitor.record_latency("c", 999.0)  # not in the session
    clock.advance(60)
    session = monitor.end_session(sid)
    monitor.record_latency("a", 700.0)  # after the end: must not count
    assert session.duration(clock.now) == 60.0
    assert session.latency_stats() == {
        "avg_latency": 20.0,
        "min_latency": 10.0,
        "max_latency": 30.0,
        "p95_latency": 30.0,
    }
    assert [s.session_id for s in monitor.sessions()] == [sid]
    with pytest.raises(KeyError):
        monitor.end_session(sid)


def test_session_validation(clock):
    monitor = make_monitor(clock)
    with pytest.raises(ValueError, match="name"):
        monitor.start_session("", ["a"])
    with pytest.raises(ValueError, match="peer_id"):
        monitor.start_session("ok", [""])
    sid = monitor.start_session("ok", ["a"], session_id="s1")
    with pytest.raises(ValueError, match="already active"):
        monitor.start_session("again", ["a"], session_id=sid)


def test_status_degrades_then_disconnects_then_prunes(clock):
    rules = StatusRules(
        degraded_after_failures=2,
        disconnected_after_failures=4,
        degraded_after_idle_s=5,
        disconnected_after_idle_s=20,
    )
    monitor = make_monitor(clock, status=rules, peer_ttl_s=30, quality=QualityConfig(loss_window=5))
    events = []
    monitor.subscribe(events.append)
    monitor.record_latency("p1", 10.0)
    monitor.tick()
    monitor.record_latency("p1", None)
    monitor.record_latency("p1", None)
    monitor.tick()
    assert monitor.peer("p1")["status"] == "degraded"
    monitor.record_latency("p1", None)
    monitor.record_latency("p1", None)
    monitor.tick()
    assert monitor.peer("p1")["status"] == "disconnected"
    monitor.record_latency("p1", 10.0)  # answers again, but 3 of the last 5 were lost
    monitor.tick()
    assert monitor.peer("p1")["status"] == "degraded"
    for _ in range(4):
        monitor.record_latency("p1", 10.0)
    monitor.tick()
    assert monitor.peer("p1")["status"] == "connected"
    clock.advance(6)  # idle: nothing recorded
    monitor.tick()
    assert monitor.peer("p1")["status"] == "degraded"
    clock.advance(15)
    message = monitor.tick().message()
    assert message["network"]["peers_by_status"] == {
        "connected": 0,
        "degraded": 0,
        "disconnected": 1,
    }
    clock.advance(31)
    message = monitor.tick().message()
    assert monitor.peer_ids == []
    assert message["clients_total"] == 0
    changes = [(e.previous, e.status) for e in events if isinstance(e, PeerStatusChanged)]
    assert changes == [
        ("connected", "degraded"),
        ("degraded", "disconnected"),
        ("disconnected", "degraded"),
        ("degraded", "connected"),
        ("connected", "degraded"),
        ("degraded", "disconnected"),
    ]
    removed = [e for e in events if isinstance(e, PeerRemoved)]
    assert [(e.peer_id, e.reason) for e in removed] == [("p1", "pruned")]


def test_snapshot_lists_worst_first_and_caps_clients(clock):
    monitor = make_monitor(clock, max_clients_in_message=3)
    for i, latency in enumerate((5.0, 200.0, 50.0, 20.0, 120.0)):
        monitor.record_latency(f"p{i}", latency)
    monitor.add_peer("quiet")  # never measured: no score, listed after scored peers
    message = monitor.snapshot()
    assert message["type"] == "metrics"
    assert message["clients_total"] == 6
    assert [c["client_id"] for c in message["clients"]] == ["p1", "p4", "p2"]
    assert set(message) == MESSAGE_KEYS
    assert message["clients"][0].keys() >= CLIENT_KEYS
    assert message["system"].keys() >= SYSTEM_KEYS
    assert message["server"].keys() >= SERVER_KEYS
    assert message["server"]["average_latency_ms"] == pytest.approx(79.0)


def test_network_score_blends_peers_and_cpu(clock):
    monitor = make_monitor(clock)
    monitor.record_latency("p1", 15.0)  # score 0.4*90 + 35 + 25 = 96
    message = monitor.snapshot()
    # system metrics are off, so CPU reads 0: 0.9*96 + 0.1*100 = 96.4
    assert message["network"]["score"] == pytest.approx(96.4)
    assert message["network"]["grade"] == "A"


def test_events_for_peers_and_sessions_are_delivered_on_tick(clock):
    monitor = make_monitor(clock)
    events = []
    unsubscribe = monitor.subscribe(events.append)
    monitor.add_peer("a")
    sid = monitor.start_session("s", ["a"])
    monitor.end_session(sid)
    monitor.remove_peer("a")
    assert events == []  # delivered by the tick, on the loop's side
    monitor.tick()
    kinds = [type(e) for e in events]
    assert kinds[:4] == [PeerAdded, SessionStarted, SessionEnded, PeerRemoved]
    unsubscribe()
    events.clear()
    monitor.tick()
    assert events == []


def test_a_failing_handler_does_not_stop_others(clock, caplog):
    monitor = make_monitor(clock)
    seen = []

    def broken(event):
        raise RuntimeError("boom")

    monitor.subscribe(broken)
    monitor.subscribe(seen.append)
    monitor.tick()
    assert len(seen) == 1
    assert "boom" in caplog.text


def test_recording_from_many_threads_loses_nothing():
    monitor = Monitor(Settings(enable_system_metrics=False))
    threads_n, calls = 4, 5000
    barrier = threading.Barrier(threads_n)

    def work(worker: int) -> None:
        barrier.wait()
        for i in range(calls):
            peer_id = f"p{i % 8}"
            monitor.record_latency(peer_id, float(worker + 1))
            monitor.record_message(peer_id, size=3)
            monitor.record_traffic(peer_id, packets_sent=1)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(threads_n)]
    for thread in threads:
        thread.start()
    snapshots = 0
    while any(t.is_alive() for t in threads):
        monitor.snapshot()  # concurrent reader
        snapshots += 1
        # A reader that never lets go starves the writers (lock and GIL go back to it at
        # once): 20-30 s for this test run alone. A tick reads far less often than this.
        time.sleep(0.0005)
    for thread in threads:
        thread.join()
    peers = monitor.peers()
    assert len(peers) == 8
    assert sum(p["messages_received"] for p in peers) == threads_n * calls
    assert sum(p["bytes_received"] for p in peers) == 3 * threads_n * calls
    assert sum(p["packets_sent"] for p in peers) == threads_n * calls
    assert monitor.server_stats().total_messages == threads_n * calls
    assert monitor.server_stats().total_connections == 8
    assert snapshots > 0


def test_hot_path_jitter_and_smoothing_match_the_core_formulas(clock):
    """record_latency inlines these steps for speed; hold it to peerscope.core.quality."""
    from peerscope.core import quality

    monitor = make_monitor(clock)
    samples = [12.0, 40.5, 3.25, 3.25, 99.0, 0.0, 17.75]
    jitter, smoothed = 0.0, None
    alpha = QualityConfig().latency_smoothing
    for previous, value in zip([None, *samples], samples, strict=False):
        monitor.record_latency("p", value)
        if previous is not None:
            jitter = quality.rfc3550_jitter(jitter, previous, value)
        smoothed = quality.ewma(smoothed, value, alpha)
        peer = monitor.peer("p")
        assert peer["jitter_ms"] == jitter
        assert peer["smoothed_latency_ms"] == smoothed


def test_session_lookup_and_clock(clock):
    monitor = make_monitor(clock)
    assert monitor.now() == clock.now
    sid = monitor.start_session("Match", ["a"], session_id="m1")
    assert monitor.session(sid).active
    monitor.end_session(sid)
    assert monitor.session("m1").ended_at == clock.now
    with pytest.raises(KeyError, match="no session 'nope'"):
        monitor.session("nope")


def test_system_stats_over_real_samples():
    monitor = Monitor(Settings())
    for _ in range(3):
        monitor.sample_system()
    stats = monitor.system_stats("memory_percent", 60)
    assert stats["count"] == 3
    assert 0.0 < stats["min"] <= stats["avg"] <= stats["max"] <= 100.0
    with pytest.raises(ValueError, match="name: must be one of"):
        monitor.system_stats("disk", 60)


def test_samples_recorded_between_refreshes_are_folded_in_order(clock):
    from peerscope.core import quality

    batched, stepped = make_monitor(clock), make_monitor(clock)
    samples = [12.0, 40.5, 3.25, 3.25, 99.0, 0.0, 17.75]  # exact in float32, as the ring keeps
    for value in samples:
        batched.record_latency("p", value)
        stepped.record_latency("p", value)
        stepped.peer("p")  # refresh after every sample: the one-sample path
    jitter, smoothed = 0.0, None
    for previous, value in itertools.pairwise(samples):
        jitter = quality.rfc3550_jitter(jitter, previous, value)
    for value in samples:
        smoothed = quality.ewma(smoothed, value, QualityConfig().latency_smoothing)
    for monitor in (batched, stepped):
        peer = monitor.peer("p")
        assert peer["jitter_ms"] == jitter
        assert peer["smoothed_latency_ms"] == smoothed
        assert peer["latency_ms"] == 17.75


def test_mark_alive_resets_idle_time_and_counts_nothing(clock):
    monitor = make_monitor(clock)
    monitor.add_peer("c1", kind="client")
    clock.advance(20)
    assert monitor.peer("c1")["status"] == "degraded"  # 20 s idle
    monitor.mark_alive("c1")
    peer = monitor.peer("c1")
    assert peer["idle_seconds"] == 0.0
    assert peer["status"] == "connected"
    assert (peer["message_count"], peer["bytes_received"], peer["latency_ms"]) == (0, 0, None)
    assert peer["packet_loss_percent"] == 0.0


def test_a_peer_gone_idle_recovers_when_it_is_heard_from_again(clock):
    rules = StatusRules(degraded_after_idle_s=5, disconnected_after_idle_s=10)
    monitor = make_monitor(clock, status=rules)
    for peer_id in ("by-message", "by-traffic"):
        monitor.add_peer(peer_id)
    clock.advance(11)
    monitor.tick()
    assert {p["status"] for p in monitor.peers()} == {"disconnected"}
    monitor.record_message("by-message", size=10, direction="in")
    monitor.record_traffic("by-traffic", bytes_received=10)
    monitor.tick()
    assert {p["client_id"]: p["status"] for p in monitor.peers()} == {
        "by-message": "connected",
        "by-traffic": "connected",
    }
