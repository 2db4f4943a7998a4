"""LANrage's MetricsCollector over the Monitor: the original tests' usage and exact figures."""

from __future__ import annotations

import asyncio
import math

import pytest

from peerscope import Monitor, Settings
from peerscope.compat.lanrage import (
    GameSession,
    MetricPoint,
    MetricsCollector,
    aggregate_metrics_by_window,
    predict_connection_quality,
)
from tests.lanrage_support import lanrage_advanced, make, score

# --- module functions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latency", "loss", "jitter", "status"),
    [
        (0.0, 0.0, 0.0, "excellent"),
        (20.0, 0.0, 0.0, "excellent"),
        (30.0, 1.0, 5.0, "good"),  # 82.5
        (75.0, 1.0, 10.0, "fair"),  # 68
        (100.0, 2.0, 20.0, "poor"),  # 49.3
        (200.0, 5.0, 50.0, "bad"),  # 0
    ],
)
def test_predict_connection_quality(latency, loss, jitter, status):
    value, band = predict_connection_quality(latency, loss, jitter)
    assert value == pytest.approx(score(latency, loss, jitter))
    assert band == status


def test_predict_connection_quality_defaults():
    assert predict_connection_quality(30.0) == (pytest.approx(92.0), "excellent")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((-1.0,), "latency_ms"),
        ((math.nan,), "latency_ms"),
        ((10.0, 101.0), "packet_loss_percent"),
        ((10.0, 0.0, math.inf), "jitter_ms"),
        (("10",), "latency_ms"),
    ],
)
def test_predict_connection_quality_rejects_bad_input(args, named):
    with pytest.raises(ValueError, match=named):
        predict_connection_quality(*args)


def test_aggregate_metrics_by_window():
    now = 1000.0
    points = [MetricPoint(now - 100, 99.0)] + [
        MetricPoint(now - 19 + i, float(i + 1)) for i in range(20)
    ]
    result = aggregate_metrics_by_window(points, window_seconds=60.0, current_time=now)
    assert result["count"] == 20
    assert (result["min"], result["max"]) == (1.0, 20.0)
    assert result["avg"] == 10.5
    assert result["sum"] == 210.0
    assert result["p95"] == 20.0  # nearest rank: sorted[int(0.95 * 20)] is the largest
    hundred = [MetricPoint(now, float(v)) for v in range(1, 101)]
    assert aggregate_metrics_by_window(hundred, 1.0, now)["p95"] == 96.0


def test_aggregate_metrics_by_window_empty_and_default_time():
    empty = {"count": 0, "min": None, "max": None, "avg": None, "p95": None, "sum": 0}
    result = aggregate_metrics_by_window([])
    assert {key: result[key] for key in empty} == empty
    old = [MetricPoint(5.0, 1.0)]
    assert aggregate_metrics_by_window(old, 60.0)["count"] == 0  # now = time.time()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"window_seconds": -1.0}, "window_seconds"),
        ({"window_seconds": math.inf}, "window_seconds"),
        ({"current_time": math.nan}, "current_time"),
    ],
)
def test_aggregate_metrics_by_window_rejects_bad_input(kwargs, named):
    with pytest.raises(ValueError, match=named):
        aggregate_metrics_by_window([MetricPoint(1.0, 1.0)], **kwargs)


# --- the original tests' usage ----------------------------------------------------------------


async def test_original_usage_with_a_default_collector():
    collector = MetricsCollector(None)
    assert collector.monitor.peer_ids == []
    collector.add_peer("peer1", "Peer 1")
    await collector.record_latency("peer1", 25.5)
    summary = await collector.get_peer_summary("peer1")
    assert summary is not None
    assert summary["peer_id"] == "peer1"
    assert summary["peer_name"] == "Peer 1"
    assert summary["latency"] == {"current": 25.5, "average": 25.5, "min": 25.5, "max": 25.5}
    await asyncio.sleep(0.2)
    summary = await collector.get_peer_summary("peer1")
    assert summary is not None
    assert 0.15 <= summary["uptime"] < 1.0  # asyncio may wake a hair early
    assert await collector.get_peer_summary("nope") is None
    assert collector.get_latency_history("nope") == []
    system = collector.get_system_summary()
    assert set(system) == {"cpu", "memory", "network"}
    assert system["cpu"] == {"current": 0.0, "average": 0.0, "max": 0.0}  # never sampled
    assert set(collector.get_system_history(duration=10)) == {
        "cpu",
        "memory",
        "network_sent",
        "network_received",
    }


async def test_latency_average_min_max_and_bandwidth(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    for value in (20.0, 30.0, 25.0):
        await collector.record_latency("peer1", value)
        clock.advance(1.0)
    await collector.record_bandwidth("peer1", 1024, 512)
    await collector.record_bandwidth("peer1", bytes_sent=1, bytes_received=2)
    summary = await collector.get_peer_summary("peer1")
    assert summary == {
        "peer_id": "peer1",
        "peer_name": "Peer 1",
        "status": "connected",
        "latency": {"current": 25.0, "average": 25.0, "min": 20.0, "max": 30.0},
        "bandwidth": {"sent": 1025, "received": 514},
        "packets": {"sent": 0, "received": 0},
        "uptime": 3.0,
        "last_seen": clock.now,  # received bytes count as hearing from the peer
    }


async def test_status_connected_then_degraded_under_high_latency(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    await collector.record_latency("peer1", 25.0)
    assert (await collector.get_peer_summary("peer1"))["status"] == "connected"
    # One 250 ms spike moves the smoothed latency only partly; a run of them degrades.
    await collector.record_latency("peer1", 250.0)
    assert (await collector.get_peer_summary("peer1"))["status"] == "connected"
    for _ in range(5):
        await collector.record_latency("peer1", 250.0)
    assert (await collector.get_peer_summary("peer1"))["status"] == "degraded"


async def test_all_peers_summary_and_remove_peer(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    collector.add_peer("peer2", "Peer 2")
    summaries = await collector.get_all_peers_summary()
    assert [s["peer_id"] for s in summaries] == ["peer1", "peer2"]
    collector.add_peer("peer1", "Renamed")
    assert (await collector.get_peer_summary("peer1"))["peer_name"] == "Renamed"
    collector.remove_peer("peer2")
    collector.remove_peer("never-added")
    assert [s["peer_id"] for s in await collector.get_all_peers_summary()] == ["peer1"]


async def test_latency_history_filters_by_duration(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    start = clock.now
    for value in (10.0, 20.0, 30.0):
        await collector.record_latency("peer1", value)
        clock.advance(10.0)
    # now = start + 30: samples at +0, +10, +20
    assert collector.get_latency_history("peer1", duration=3600) == [
        {"timestamp": start, "value": 10.0},
        {"timestamp": start + 10, "value": 20.0},
        {"timestamp": start + 20, "value": 30.0},
    ]
    assert [p["value"] for p in collector.get_latency_history("peer1", duration=15)] == [30.0]
    assert collector.get_latency_history("peer1", duration=5) == []
    with pytest.raises(ValueError, match="duration"):
        collector.get_latency_history("peer1", duration=-1)


async def test_unknown_peers_are_ignored(clock):
    collector = make(clock)
    await collector.record_latency("ghost", 10.0)
    await collector.record_bandwidth("ghost", 10, 10)
    await collector.record_packet_loss("ghost", 5.0)
    assert collector.monitor.peer_ids == []
    assert collector.get_peer_connection_quality("ghost") is None
    assert collector.get_aggregated_peer_metrics("ghost") is None


async def test_a_wrapped_monitor_applies_its_unknown_peer_policy(clock):
    collector = make(clock, unknown_peer="register")
    await collector.record_latency("auto", 10.0)
    assert collector.monitor.peer_ids == ["auto"]


async def test_bad_recording_input_raises(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    with pytest.raises(ValueError, match="latency_ms"):
        await collector.record_latency("peer1", -5.0)
    with pytest.raises(ValueError, match="latency_ms"):
        await collector.record_latency("ghost", math.inf)  # validated even for unknown ids
    with pytest.raises(ValueError, match="bytes_sent"):
        await collector.record_bandwidth("peer1", -1, 0)
    with pytest.raises(ValueError, match="packet_loss"):
        await collector.record_packet_loss("peer1", math.nan)
    with pytest.raises(ValueError, match="packet_loss"):
        await collector.record_packet_loss("peer1", "5")
    with pytest.raises(ValueError, match="peer_id"):
        collector.add_peer("", "Nobody")
    assert collector.get_latency_history("peer1") == []


async def test_connection_quality_with_jitter_and_loss(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    for value in (20.0, 30.0, 25.0):
        await collector.record_latency("peer1", value)
    clock.advance(4.0)
    quality = collector.get_peer_connection_quality("peer1")
    jitter = 0.625 + (5 - 0.625) / 16  # RFC 3550 over 20, 30, 25
    smoothed = 21.25 + (25 - 21.25) / 8  # EWMA with gain 1/8
    # The second scorer took each sample with the Monitor's jitter then (0, 0.625, then
    # the above), no loss, every measurement answered and LANrage's 10 Mbit/s stand-in.
    advanced = quality.pop("advanced")
    expected = lanrage_advanced(25.0, jitter, 0.0, 10.0, 100.0)
    assert advanced == {
        "quality_score": pytest.approx(expected),
        "quality_grade": "B",  # 88.5
        "latency_ms": 25.0,
        "jitter_ms": pytest.approx(jitter),
        "packet_loss_percent": 0.0,
        "bandwidth_mbps": 10.0,
        "stability_percent": 100.0,
    }
    scores = [
        lanrage_advanced(20.0, 0.0, 0.0, 10.0, 100.0),
        lanrage_advanced(30.0, 0.625, 0.0, 10.0, 100.0),
    ]
    assert quality.pop("rolling_5m") == {
        "sample_count": 3.0,
        "avg_score": pytest.approx((sum(scores) + expected) / 3),
        "grade": "B",
        "avg_latency_ms": 25.0,
        "avg_jitter_ms": pytest.approx((0.625 + jitter) / 3),
        "avg_packet_loss_percent": 0.0,
        "avg_bandwidth_mbps": 10.0,
        "avg_stability_percent": 100.0,
    }
    assert quality == {
        "peer_id": "peer1",
        "peer_name": "Peer 1",
        "quality_score": pytest.approx(score(smoothed, 0.0, jitter)),
        "quality_status": "excellent",
        "quality_trend": "stable",
        "status": "connected",
        "avg_latency_ms": 25.0,
        "jitter_ms": pytest.approx(jitter),
        "packet_loss_percent": 0.0,
        "bytes_sent": 0,
        "bytes_received": 0,
        "uptime_seconds": 4.0,
        "grade": "A",
        "mos": pytest.approx(quality["mos"]),
    }
    assert 4.0 < quality["mos"] <= 4.5
    await collector.record_packet_loss("peer1", 3.0)
    assert collector.get_peer_connection_quality("peer1")["quality_score"] == pytest.approx(
        score(smoothed, 3.0, jitter)
    )
    await collector.record_packet_loss("peer1", 250.0)  # clamped, as the original did
    assert collector.get_peer_connection_quality("peer1")["packet_loss_percent"] == 100.0
    await collector.record_packet_loss("peer1", -3)
    assert collector.get_peer_connection_quality("peer1")["packet_loss_percent"] == 0.0


async def test_failed_measurements_count_as_loss(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    await collector.record_latency("peer1", 10.0)
    await collector.record_latency("peer1", None)
    quality = collector.get_peer_connection_quality("peer1")
    assert quality["packet_loss_percent"] == 50.0
    assert quality["avg_latency_ms"] == 10.0


async def test_unmeasured_peer_has_no_score(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    quality = collector.get_peer_connection_quality("peer1")
    assert quality["quality_score"] is None
    assert quality["quality_status"] is None
    assert quality["avg_latency_ms"] is None


# --- game sessions ----------------------------------------------------------------------------


async def test_game_session_lifecycle(clock):
    collector = make(clock)
    assert collector.active_session is None
    assert await collector.end_game_session() is None  # nothing open: nothing happens
    await collector.start_game_session("minecraft", "Minecraft", ["Alice", "Bob"])
    active = collector.active_session
    assert isinstance(active, GameSession)
    assert (active.game_id, active.game_name) == ("minecraft", "Minecraft")
    assert active.peers == ["Alice", "Bob"]
    assert active.ended_at is None
    assert active.duration is None
    clock.advance(90.0)
    ended = await collector.end_game_session()
    assert ended is not None
    assert ended.duration == 90.0
    assert collector.active_session is None
    [session] = collector.get_game_sessions(limit=10)
    assert session == {
        "game_id": "minecraft",
        "game_name": "Minecraft",
        "started_at": clock.now - 90.0,
        "ended_at": clock.now,
        "duration": 90.0,
        "peers": ["Alice", "Bob"],
        "latency": {"average": None, "min": None, "max": None, "p95": None},
    }


async def test_session_latency_only_from_samples_inside_the_session(clock):
    collector = make(clock)
    collector.add_peer("alice", "Alice")
    collector.add_peer("carol", "Carol")
    await collector.record_latency("alice", 500.0)  # before the session: not counted
    await collector.start_game_session("g1", "Game", ["alice", "bob"])
    for value in (10.0, 30.0, 20.0):
        clock.advance(1.0)
        await collector.record_latency("alice", value)
    await collector.record_latency("carol", 999.0)  # not in the session
    collector.add_peer("bob", "Bob")  # joins late: his samples from now on count
    await collector.record_latency("bob", 40.0)
    assert collector.active_session.avg_latency == 25.0
    ended = await collector.end_game_session()
    await collector.record_latency("alice", 700.0)  # after the session: not counted
    assert (ended.avg_latency, ended.min_latency, ended.max_latency) == (25.0, 10.0, 40.0)
    [session] = collector.get_game_sessions()
    assert session["latency"] == {"average": 25.0, "min": 10.0, "max": 40.0, "p95": 40.0}
    assert session["duration"] == 3.0


async def test_starting_a_session_ends_the_open_one(clock):
    collector = make(clock)
    await collector.start_game_session("g1", "First", ["a"])
    clock.advance(5.0)
    await collector.start_game_session("g1", "Second", ["a"])  # same id may be reused
    assert collector.active_session.game_name == "Second"
    [first] = collector.get_game_sessions()
    assert (first["game_name"], first["duration"]) == ("First", 5.0)


async def test_fifteen_sessions_keep_the_last_ten_oldest_first(clock):
    collector = make(clock)
    for i in range(15):
        await collector.start_game_session(f"game{i}", f"Game {i}", ["Alice"])
        clock.advance(1.0)
        await collector.end_game_session()
    sessions = collector.get_game_sessions(limit=10)
    assert len(sessions) == 10
    assert [s["game_id"] for s in sessions] == [f"game{i}" for i in range(5, 15)]
    assert all(s["duration"] == 1.0 and s["ended_at"] is not None for s in sessions)
    assert collector.get_game_sessions(limit=0) == []
    assert len(collector.get_game_sessions(limit=100)) == 15
    with pytest.raises(ValueError, match="limit"):
        collector.get_game_sessions(limit=-1)


async def test_session_ended_through_the_monitor(clock):
    collector = make(clock)
    await collector.start_game_session("g1", "Game", ["a"])
    clock.advance(2.0)
    collector.monitor.end_session("g1")
    assert collector.active_session is None
    ended = await collector.end_game_session()
    assert ended is not None
    assert ended.duration == 2.0


async def test_bad_session_input_raises(clock):
    collector = make(clock)
    with pytest.raises(ValueError, match="session_id"):
        await collector.start_game_session("", "Game", [])
    with pytest.raises(ValueError, match="name"):
        await collector.start_game_session("g1", "", [])
    assert collector.active_session is None


# --- network quality --------------------------------------------------------------------------


async def test_network_quality_score_one_good_peer_then_a_slow_one(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    await collector.record_latency("peer1", 20.0)
    first = collector.get_network_quality_score()
    assert first >= 80
    assert first == pytest.approx(0.9 * score(20.0) + 0.1 * 100.0)  # CPU unsampled: 0 %
    collector.add_peer("peer2", "Peer 2")
    await collector.record_latency("peer2", 200.0)
    second = collector.get_network_quality_score()
    assert second < 80
    assert second == pytest.approx(0.9 * (score(20.0) + score(200.0)) / 2 + 10.0)


async def test_network_quality_report(clock):
    collector = make(clock)
    assert collector.get_network_quality_report() == {
        "score": 100.0,
        "grade": "A",
        "peer_count": 0,
        "system_score": 100.0,
        "peer_grades": {},
    }
    collector.add_peer("fast", "Fast")
    collector.add_peer("slow", "Slow")
    collector.add_peer("quiet", "Quiet")
    await collector.record_latency("fast", 20.0)
    await collector.record_latency("slow", 200.0)
    report = collector.get_network_quality_report()
    expected = 0.9 * (score(20.0) + score(200.0)) / 2 + 10.0
    assert report["score"] == pytest.approx(expected)
    assert report["grade"] == "C"  # 73.6: fair
    assert report["peer_count"] == 2
    assert report["system_score"] == 100.0
    assert report["peer_grades"] == {"fast": "A", "slow": "D"}  # 94.7 and 46.7


async def test_network_quality_counts_real_cpu(clock):
    collector = make(clock, system=True)
    sample = collector.monitor.sample_system()
    report = collector.get_network_quality_report()
    assert report["system_score"] == pytest.approx(100.0 - sample.cpu_percent)
    assert report["score"] == pytest.approx(100.0 - sample.cpu_percent)


# --- system figures ---------------------------------------------------------------------------


def test_system_summary_and_history_from_real_samples(clock):
    collector = make(clock, system=True)
    start = clock.now
    for _ in range(3):
        collector.monitor.sample_system()
        clock.advance(10.0)
    system = collector.monitor.system
    summary = collector.get_system_summary()
    cpu_kept = [v for _, v in collector.monitor.system_history("cpu_percent", 3600)]
    memory_kept = [v for _, v in collector.monitor.system_history("memory_percent", 3600)]
    assert summary["cpu"] == {
        "current": system.cpu_percent,
        "average": pytest.approx(sum(cpu_kept) / 3),
        "max": max(cpu_kept),
    }
    assert summary["memory"]["current"] == system.memory_percent
    assert summary["memory"]["max"] == max(memory_kept)
    assert summary["network"] == {
        "sent_rate": system.network_sent_rate,
        "recv_rate": system.network_recv_rate,
        "total_sent": system.network_sent_mb * 1024 * 1024,
        "total_recv": system.network_recv_mb * 1024 * 1024,
    }
    assert summary["network"]["total_recv"] > 0
    history = collector.get_system_history(duration=3600)
    assert [p["timestamp"] for p in history["cpu"]] == [start, start + 10, start + 20]
    assert [p["value"] for p in history["memory"]] == memory_kept
    assert len(history["network_sent"]) == len(history["network_received"]) == 3
    # now = start + 30; a 15 s window holds only the sample at start + 20.
    assert [p["timestamp"] for p in collector.get_system_history(15)["cpu"]] == [start + 20]
    with pytest.raises(ValueError, match="duration"):
        collector.get_system_history(math.nan)


def test_aggregated_system_metrics(clock):
    collector = make(clock, system=True)
    for _ in range(4):
        collector.monitor.sample_system()
        clock.advance(20.0)
    # Samples at +0, +20, +40, +60; now = +80, so a 60 s window holds +40 and +60.
    result = collector.get_aggregated_system_metrics(window_seconds=60.0)
    assert set(result) == {
        "cpu",
        "memory",
        "network_sent",
        "network_received",
        "window_seconds",
        "timestamp",
    }
    assert (result["window_seconds"], result["timestamp"]) == (60.0, clock.now)
    memory = [v for _, v in collector.monitor.system_history("memory_percent", 60.0)]
    assert len(memory) == 2
    assert result["memory"]["count"] == 2
    assert result["memory"]["avg"] == pytest.approx(sum(memory) / 2)
    assert (result["memory"]["min"], result["memory"]["max"]) == (min(memory), max(memory))
    assert result["cpu"]["count"] == 2
    empty = collector.get_aggregated_system_metrics(window_seconds=5.0)
    assert empty["cpu"]["count"] == 0
    assert empty["cpu"]["avg"] is None
    with pytest.raises(ValueError, match="window_seconds"):
        collector.get_aggregated_system_metrics(window_seconds=-1)


async def test_aggregated_peer_metrics(clock):
    collector = make(clock)
    collector.add_peer("peer1", "Peer 1")
    for value in (50.0, 10.0, 20.0, 30.0):
        await collector.record_latency("peer1", value)
        clock.advance(30.0)
    # Samples at +0, +30, +60, +90; now = +120: a 70 s window holds 20 and 30 (a 60 s one
    # would start exactly at +60, which is excluded).
    assert collector.get_aggregated_peer_metrics("peer1", 60.0)["latency"]["count"] == 1
    result = collector.get_aggregated_peer_metrics("peer1", window_seconds=70.0)
    assert result["peer_id"] == "peer1"
    assert result["peer_name"] == "Peer 1"
    assert result["latency"] == {
        "count": 2,
        "min": 20.0,
        "max": 30.0,
        "avg": 25.0,
        "sum": 50.0,
        "p50": 30.0,
        "p95": 30.0,
        "p99": 30.0,
    }
    assert result["status"] == "degraded"  # silent for 30 s: past the 15 s idle rule
    assert result["quality_trend"] in ("improving", "stable", "degrading")
    assert (
        result["quality_score"] == collector.get_peer_connection_quality("peer1")["quality_score"]
    )
    assert (result["window_seconds"], result["timestamp"]) == (70.0, clock.now)
    with pytest.raises(ValueError, match="window_seconds"):
        collector.get_aggregated_peer_metrics("peer1", window_seconds=math.inf)


# --- lifecycle --------------------------------------------------------------------------------


async def test_start_runs_the_monitor_loop_and_stop_ends_it():
    monitor = Monitor(Settings(metrics_interval=0.05))
    collector = MetricsCollector(monitor=monitor)
    assert collector.running is False
    await collector.start()
    try:
        assert collector.running is True
        await asyncio.sleep(0.12)
        # Ticks sampled the host: the summary has real figures, unlike the original's app.
        summary = collector.get_system_summary()
        assert summary["memory"]["current"] > 0
        assert len(collector.get_system_history(60)["memory"]) >= 2
    finally:
        await collector.stop()
    assert collector.running is False
    await collector.stop()  # stopping twice is harmless
