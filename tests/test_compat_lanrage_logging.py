"""The log lines LANrage's collector wrote: start, stop, quality updates (DEBUG), game
sessions and status changes, on the adapter's logger."""

from __future__ import annotations

import logging

import pytest

from peerscope.compat.lanrage.metrics import MetricsCollector
from tests.lanrage_support import make, make_lanrage

LOGGER = "peerscope.compat.lanrage.metrics"


@pytest.fixture
def metrics_collector(clock) -> MetricsCollector:
    return make_lanrage(clock)


def lines(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def test_metrics_start_and_stop_log(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    collector = MetricsCollector(None)
    await collector.start()
    try:
        assert lines(caplog, logging.INFO) == [
            "Starting metrics collection",
            "Metrics collection loop started",
        ]
        caplog.clear()
    finally:
        await collector.stop()
    assert lines(caplog, logging.INFO) == ["Stopping metrics collection"]
    assert {record.name for record in caplog.records} == {LOGGER}


async def test_record_latency_logs_quality_events(metrics_collector, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    metrics_collector.add_peer("metrics_test_peer", "Test Peer")
    assert lines(caplog) == ["Added peer to metrics tracking: Test Peer (metrics_test_peer)"]
    caplog.clear()
    await metrics_collector.record_latency("metrics_test_peer", 50.0)
    # 100 − 0.30·50/2 − 0.15·(100 − 5·10): no jitter or loss yet, LANrage's 10 Mbit/s.
    assert lines(caplog) == [
        "Advanced quality sample peer=metrics_test_peer score=85.0 grade=B latency=50.0ms "
        "jitter=0.0ms loss=0.0% stability=100.0%"
    ]
    caplog.clear()
    for _ in range(59):
        await metrics_collector.record_latency("metrics_test_peer", 50.0)
    quality_lines = [line for line in lines(caplog) if line.startswith("Peer ")]
    assert quality_lines == [  # every 60th answered measurement
        "Peer metrics_test_peer quality=good score=86.7 trend=stable latency_samples=60"
    ]
    assert len(lines(caplog)) == 60


async def test_failures_and_unknown_peers_log_at_debug(metrics_collector, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    metrics_collector.add_peer("peer1", "Peer 1")
    caplog.clear()
    await metrics_collector.record_latency("peer1", None)
    await metrics_collector.record_latency("ghost", 10.0)
    assert lines(caplog) == [
        "No latency recorded for peer1 - connection issue detected",
        "Latency recorded for unknown peer: ghost",
    ]
    metrics_collector.add_peer("peer1", "Renamed")  # known: not added again
    metrics_collector.remove_peer("peer1")
    metrics_collector.remove_peer("peer1")  # gone: nothing to say
    assert lines(caplog)[2:] == ["Removed peer from metrics tracking: peer1"]


async def test_nothing_is_logged_on_the_hot_path_below_debug(metrics_collector, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    metrics_collector.add_peer("peer1", "Peer 1")
    for value in (25.0, None, 250.0):
        await metrics_collector.record_latency("peer1", value)
    await metrics_collector.record_latency("ghost", 10.0)
    await metrics_collector.record_bandwidth("peer1", 10, 10)
    await metrics_collector.record_packet_loss("peer1", 1.0)
    assert caplog.records == []


async def test_game_session_logging(metrics_collector, caplog, clock):
    caplog.set_level(logging.INFO, logger=LOGGER)
    await metrics_collector.start_game_session("test_game_1", "Test Game", ["peer1", "peer2"])
    assert lines(caplog, logging.INFO) == [
        "Starting game session: Test Game (test_game_1) with 2 peers"
    ]
    caplog.clear()
    clock.advance(90.0)
    await metrics_collector.end_game_session()
    assert lines(caplog, logging.INFO) == [
        "Ended game session: Test Game (duration: 90.0s, avg_latency: unavailable)"
    ]
    caplog.clear()
    metrics_collector.add_peer("peer1", "Peer 1")
    await metrics_collector.start_game_session("g2", "Second", ["peer1"])
    await metrics_collector.record_latency("peer1", 20.0)
    await metrics_collector.record_latency("peer1", 30.0)
    clock.advance(5.0)
    # Starting a session while one is open ends it: said as an end, with no warning.
    await metrics_collector.start_game_session("g3", "Third", [])
    assert lines(caplog, logging.INFO)[1] == (
        "Ended game session: Second (duration: 5.0s, avg_latency: 25.0ms)"
    )
    await metrics_collector.end_game_session()
    caplog.clear()
    assert await metrics_collector.end_game_session() is None
    assert lines(caplog, logging.WARNING) == ["End game session called but no active session"]


async def test_status_changes_are_warned_once_at_the_tick(metrics_collector, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    metrics_collector.add_peer("peer1", "Peer 1")
    await metrics_collector.record_latency("peer1", 25.0)
    for _ in range(3):
        await metrics_collector.record_latency("peer1", 250.0)
    assert caplog.records == []  # not on the hot path
    metrics_collector.monitor.tick()
    metrics_collector.monitor.tick()
    assert lines(caplog, logging.WARNING) == ["Connection degraded: peer1 (was connected)"]


async def test_a_wrapped_monitors_peers_are_logged_on_the_same_logger(clock, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    collector = make(clock, unknown_peer="register")
    await collector.record_latency("auto", 10.0)  # registered by the Monitor's setting
    assert lines(caplog)[0].startswith("Advanced quality sample peer=auto ")
