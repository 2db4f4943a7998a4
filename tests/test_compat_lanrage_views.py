"""The collector's attributes LANrage's code reads (peer_metrics, system_metrics,
game_sessions, active_session) as views of the Monitor, and the status semantics of the
collector's own Monitor against a wrapped one's."""

from __future__ import annotations

import dataclasses
import math
from collections import deque

import pytest

from peerscope import Settings
from peerscope.compat.lanrage.metrics import (
    GameSession,
    MetricPoint,
    MetricsCollector,
    PeerMetrics,
    lanrage_settings,
)
from peerscope.config import SettingsError
from tests.lanrage_support import make, make_lanrage, score


@pytest.fixture
def metrics() -> MetricsCollector:
    """As LANrage's suite builds it: a collector on its own Monitor."""
    return MetricsCollector(object())


@pytest.fixture
def timed(clock) -> MetricsCollector:
    """The same settings on a Monitor whose clock the test moves."""
    return make_lanrage(clock)


# --- the attributes at the start --------------------------------------------------------------


def test_metrics_initialization(metrics):
    assert metrics.peer_metrics == {}
    assert len(metrics.peer_metrics) == 0
    assert isinstance(metrics.system_metrics.cpu_percent, deque)
    assert list(metrics.system_metrics.cpu_percent) == []  # nothing sampled before start()
    assert isinstance(metrics.game_sessions, deque)
    assert list(metrics.game_sessions) == []
    assert metrics.active_session is None
    assert metrics.collection_interval == metrics.monitor.settings.metrics_interval == 1.0


# --- peer_metrics -----------------------------------------------------------------------------


async def test_peer_metrics_show_the_monitor_when_read(timed, clock):
    timed.add_peer("peer1", "Peer 1")
    peer = timed.peer_metrics["peer1"]  # held: later reads show later figures
    assert (peer.peer_id, peer.peer_name) == ("peer1", "Peer 1")
    assert list(peer.latency) == []
    assert peer.quality_score is None
    start = clock.now
    for value in (20.0, 30.0):
        await timed.record_latency("peer1", value)
        clock.advance(1.0)
    await timed.record_bandwidth("peer1", 1024, 512)
    assert list(peer.latency) == [MetricPoint(start, 20.0), MetricPoint(start + 1, 30.0)]
    assert peer.latency.maxlen == 360
    assert (peer.bytes_sent, peer.bytes_received) == (1024, 512)
    assert (peer.packets_sent, peer.packets_received) == (0, 0)
    assert peer.connection_uptime == 2.0
    assert peer.last_seen == clock.now  # the received bytes
    assert peer.status == "connected"
    assert peer.jitter_ms == 10.0 / 16  # RFC 3550 over 20, 30
    assert peer.quality_score == pytest.approx(score(30.0, 0.0, 10.0 / 16))  # the latest
    assert peer.quality_trend == "stable"
    await timed.record_packet_loss("peer1", 2.0)
    assert peer.packet_loss_percent == 2.0
    # Recorded through the Monitor, not the collector: the view shows it all the same.
    timed.monitor.record_latency("peer1", 40.0)
    assert [p.value for p in peer.latency] == [20.0, 30.0, 40.0]
    assert peer.quality_score == pytest.approx(score(40.0, 2.0, 10.0 / 16 + (10 - 10 / 16) / 16))


async def test_peer_metrics_mapping_follows_the_monitor(timed):
    timed.add_peer("peer1", "Peer 1")
    timed.monitor.add_peer("peer2", name="Peer 2")  # added beside the collector
    assert list(timed.peer_metrics) == ["peer1", "peer2"]
    assert len(timed.peer_metrics) == 2
    assert "peer2" in timed.peer_metrics
    assert "ghost" not in timed.peer_metrics
    assert ["x"] not in timed.peer_metrics  # unhashable: simply no peer id
    assert timed.peer_metrics.get("ghost") is None
    assert timed.peer_metrics["peer2"] == timed.peer_metrics["peer2"]  # views of one peer
    assert timed.peer_metrics["peer1"] != timed.peer_metrics["peer2"]
    assert timed.peer_metrics == timed.peer_metrics
    assert {peer.peer_name for peer in timed.peer_metrics.values()} == {"Peer 1", "Peer 2"}
    assert repr(timed.peer_metrics["peer1"]) == "PeerMetrics(peer_id='peer1')"


async def test_a_removed_peer_leaves_peer_metrics(timed):
    timed.add_peer("peer1", "Peer 1")
    held = timed.peer_metrics["peer1"]
    timed.remove_peer("peer1")
    assert timed.peer_metrics == {}
    with pytest.raises(KeyError):
        timed.peer_metrics["peer1"]
    with pytest.raises(KeyError, match="peer1"):
        held.status  # noqa: B018 - the read is what is tested


async def test_writing_to_the_views_is_refused_or_changes_nothing(timed):
    timed.add_peer("peer1", "Peer 1")
    await timed.record_latency("peer1", 20.0)
    peer = timed.peer_metrics["peer1"]
    with pytest.raises(AttributeError):
        peer.status = "disconnected"
    with pytest.raises(TypeError):
        timed.peer_metrics["peer2"] = PeerMetrics(timed.monitor, "peer2")
    with pytest.raises(AttributeError):
        timed.peer_metrics = {}
    with pytest.raises(AttributeError):
        timed.active_session = None
    # LANrage's tests aged a sample by editing it; the points are frozen (move a clock).
    with pytest.raises(dataclasses.FrozenInstanceError):
        peer.latency[0].timestamp = 0.0
    peer.latency.append(MetricPoint(0.0, 999.0))  # the deque is a copy: nothing changes
    timed.game_sessions.append(GameSession("g", "Game", 0.0))
    assert [p.value for p in peer.latency] == [20.0]
    assert list(timed.game_sessions) == []
    assert timed.get_latency_history("peer1") != []


# --- system_metrics ---------------------------------------------------------------------------


def test_system_metrics_are_the_monitors_samples(clock):
    collector = make_lanrage(clock, system=True)
    start = clock.now
    for _ in range(3):
        collector.monitor.sample_system()
        clock.advance(10.0)
    system = collector.system_metrics
    for name, series in (
        ("cpu_percent", system.cpu_percent),
        ("memory_percent", system.memory_percent),
        ("network_sent_rate", system.network_sent),
        ("network_recv_rate", system.network_received),
    ):
        kept = collector.monitor.system_history(name, math.inf)
        assert list(series) == [MetricPoint(t, v) for t, v in kept]
        assert [p.timestamp for p in series] == [start, start + 10, start + 20]
        assert series.maxlen == collector.monitor.settings.system_history_samples
    assert all(0 < p.value <= 100 for p in system.memory_percent)
    collector.monitor.sample_system()  # a fourth sample shows at the next read
    assert len(system.cpu_percent) == 4


# --- game_sessions and active_session ---------------------------------------------------------


async def test_game_sessions_view(timed, clock):
    for index in range(3):
        await timed.start_game_session(f"g{index}", f"Game {index}", ["alice"])
        clock.advance(10.0 * (index + 1))
    assert timed.active_session.game_id == "g2"
    await timed.end_game_session()
    # Ended through the Monitor, beside the collector: shown too.
    timed.monitor.start_session("Match", ["bob"], session_id="m1")
    clock.advance(5.0)
    timed.monitor.end_session("m1")
    sessions = timed.game_sessions
    assert [(s.game_id, s.duration) for s in sessions] == [
        ("g0", 10.0),
        ("g1", 20.0),
        ("g2", 30.0),
        ("m1", 5.0),
    ]
    assert all(isinstance(s, GameSession) and s.ended_at is not None for s in sessions)
    assert sessions.maxlen == 100
    assert timed.active_session is None


async def test_game_sessions_keep_what_the_monitor_keeps(clock):
    collector = make(clock, session_history=3)
    for index in range(5):
        await collector.start_game_session(f"g{index}", "Game", [])
        await collector.end_game_session()
    assert [s.game_id for s in collector.game_sessions] == ["g2", "g3", "g4"]
    assert collector.game_sessions.maxlen == 3


# --- status: LANrage's on the collector's own Monitor, peerscope's on a wrapped one ------------


async def test_record_peer_status(metrics):
    """LANrage's own test: one 250 ms sample after a good one reads degraded."""
    metrics.add_peer("peer1", "Peer 1")
    await metrics.record_latency("peer1", 25.0)
    assert (await metrics.get_peer_summary("peer1"))["status"] == "connected"
    await metrics.record_latency("peer1", 250.0)
    assert (await metrics.get_peer_summary("peer1"))["status"] == "degraded"
    assert metrics.peer_metrics["peer1"].status == "degraded"
    await metrics.record_latency("peer1", 25.0)  # and one good sample brings it back
    assert metrics.peer_metrics["peer1"].status == "connected"


async def test_own_monitor_scores_the_latest_sample(timed):
    timed.add_peer("peer1", "Peer 1")
    await timed.record_latency("peer1", 25.0)
    await timed.record_latency("peer1", 250.0)
    quality = timed.get_peer_connection_quality("peer1")
    jitter = 225.0 / 16
    assert quality["quality_score"] == pytest.approx(score(250.0, 0.0, jitter))  # 26.3
    assert quality["status"] == "degraded"


async def test_one_failed_measurement_degrades_on_the_own_monitor(timed):
    timed.add_peer("peer1", "Peer 1")
    await timed.record_latency("peer1", 25.0)
    await timed.record_latency("peer1", None)
    peer = timed.peer_metrics["peer1"]
    assert (peer.status, peer.quality_score, peer.jitter_ms) == ("degraded", 0.0, None)


async def test_a_wrapped_monitor_keeps_its_smoothed_status(clock):
    collector = make(clock)
    assert collector.monitor.settings.quality.latency_smoothing == 0.125
    assert collector.monitor.settings.status.recover_margin == 5.0
    collector.add_peer("peer1", "Peer 1")
    await collector.record_latency("peer1", 25.0)
    await collector.record_latency("peer1", 250.0)
    smoothed = 25.0 + (250.0 - 25.0) / 8
    peer = collector.peer_metrics["peer1"]
    assert peer.quality_score == pytest.approx(score(smoothed, 0.0, 225.0 / 16))  # 74.1
    assert peer.status == "connected"
    await collector.record_latency("peer1", None)  # unanswered only after two in a row
    assert peer.jitter_ms == pytest.approx(225.0 / 16)


def test_own_monitor_settings(monkeypatch):
    monkeypatch.setenv("PEERSCOPE_QUALITY__LATENCY_WEIGHT", "0.5")
    settings = MetricsCollector(None).monitor.settings
    assert settings.unknown_peer == "raise"
    assert settings.quality.latency_smoothing == 1.0
    assert settings.quality.latency_weight == 0.5  # the environment still counts
    assert settings.status.recover_margin == 0.0
    assert settings.status.no_reply_after_failures == 1
    assert settings.status.degraded_after_failures == 1
    assert Settings().quality.latency_smoothing == 0.125  # peerscope's default stays smoothed


def test_lanrage_settings_merge_overrides():
    settings = lanrage_settings(status={"degraded_below_score": 50.0}, unknown_peer="register")
    assert settings.status.degraded_below_score == 50.0
    assert settings.status.recover_margin == 0.0
    assert settings.unknown_peer == "register"
    with pytest.raises(SettingsError, match="latency_smoothing"):
        lanrage_settings(quality={"latency_smoothing": 2.0})
    with pytest.raises(SettingsError, match="metrics_interval"):
        lanrage_settings(metrics_interval=-1)
