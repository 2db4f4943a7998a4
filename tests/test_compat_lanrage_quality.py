"""LANrage's second scorer: ConnectionQualityMonitor on its own, as LANrage's suite drives it,
and fed by the collector with the Monitor's figures."""

from __future__ import annotations

import math
import socket
import statistics

import pytest

from peerscope.compat.lanrage.metrics import (
    ConnectionQualityMonitor,
    ConnectionQualitySample,
)
from tests.lanrage_support import lanrage_advanced, make_lanrage
from tests.server_support import linux

HOUR = 3600.0


@pytest.fixture
def monitor(clock) -> ConnectionQualityMonitor:
    return ConnectionQualityMonitor(clock=clock)


# --- the score --------------------------------------------------------------------------------


def test_connection_quality_monitor_perfect_score(monitor):
    score, grade = monitor.calculate_quality_score(
        latency_ms=0.0,
        jitter_ms=0.0,
        packet_loss_percent=0.0,
        bandwidth_mbps=100.0,
        stability_percent=100.0,
    )
    assert (score, grade) == (100.0, "A")


@pytest.mark.parametrize(
    "figures",
    [
        (15.0, 2.0, 0.0, 50.0, 100.0),  # 97.15
        (30.0, 4.0, 30.0, 20.0, 100.0),  # 86.8
        (120.0, 25.0, 10.0, 4.0, 80.0),  # 42.5
        (199.0, 49.0, 49.0, 0.0, 0.0),  # 5.15
        (60.0, 10.0, 2.0, 1.5, 95.0),
    ],
)
def test_where_no_part_is_past_its_limit_the_score_is_lanrages(figures):
    score, grade = ConnectionQualityMonitor.calculate_quality_score(*figures)
    assert score == pytest.approx(lanrage_advanced(*figures))
    assert grade == ConnectionQualityMonitor.score_to_grade(score)


def test_connection_quality_monitor_latency_spike_degrades_score(monitor):
    high, _ = monitor.calculate_quality_score(15.0, 2.0, 0.0, 50.0, 100.0)
    low, grade = monitor.calculate_quality_score(250.0, 20.0, 0.0, 50.0, 100.0)
    assert high == pytest.approx(97.15)
    # Past 200 ms latency keeps costing: 56.5 (LANrage stopped at its weight: 64).
    assert low == pytest.approx(100 - 0.30 * 125 - 0.15 * 40)
    assert lanrage_advanced(250.0, 20.0, 0.0, 50.0, 100.0) == pytest.approx(64.0)
    assert grade == "D"


def test_connection_quality_monitor_packet_loss_impact(monitor):
    no_loss, _ = monitor.calculate_quality_score(30.0, 4.0, 0.0, 20.0, 100.0)
    with_loss, _ = monitor.calculate_quality_score(30.0, 4.0, 30.0, 20.0, 100.0)
    assert no_loss - with_loss == pytest.approx(0.25 * 30)


@pytest.mark.parametrize(
    ("loss", "expected", "grade", "lanrages"),
    [
        (100.0, 0.0, "F", 69.3),  # nothing comes back: 0, where LANrage read 69.3
        (60.0, 40.0, "D", 79.3),  # half or more lost: never better than poor
        (49.0, 94.3 - 0.25 * 49, "B", 94.3 - 0.25 * 49),
    ],
)
def test_heavy_loss_is_scored_as_peerscope_scores_it(loss, expected, grade, lanrages):
    score, letter = ConnectionQualityMonitor.calculate_quality_score(30.0, 4.0, loss, 20.0, 100.0)
    assert (score, letter) == (pytest.approx(expected), grade)
    assert lanrage_advanced(30.0, 4.0, loss, 20.0, 100.0) == pytest.approx(lanrages)


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        (100.0, "A"),
        (90.0, "A"),
        (89.9, "B"),
        (75.0, "B"),
        (70.0, "C"),  # LANrage: B
        (60.0, "C"),
        (50.0, "D"),  # LANrage: C
        (40.0, "D"),
        (30.0, "F"),  # LANrage: D
        (0.0, "F"),
    ],
)
def test_score_to_grade_is_peerscopes_one_scale(score, grade):
    assert ConnectionQualityMonitor.score_to_grade(score) == grade


@pytest.mark.parametrize("bad", [math.nan, -1.0, 100.5, math.inf, "90", None])
def test_score_to_grade_rejects_bad_scores(bad):
    with pytest.raises(ValueError, match="score"):
        ConnectionQualityMonitor.score_to_grade(bad)


@pytest.mark.parametrize(
    ("figures", "named"),
    [
        ((-1.0, 0.0, 0.0, 10.0, 100.0), "latency_ms"),
        ((10.0, math.nan, 0.0, 10.0, 100.0), "jitter_ms"),
        ((10.0, 0.0, 101.0, 10.0, 100.0), "packet_loss_percent"),
        ((10.0, 0.0, 0.0, -0.5, 100.0), "bandwidth_mbps"),
        ((10.0, 0.0, 0.0, 10.0, 100.1), "stability_percent"),
    ],
)
def test_calculate_quality_score_rejects_bad_figures(figures, named):
    with pytest.raises(ValueError, match=named):
        ConnectionQualityMonitor.calculate_quality_score(*figures)


# --- measurements -----------------------------------------------------------------------------


def test_connection_quality_monitor_stability_integration(monitor, clock):
    monitor.record_measurement("peer-stability", latency_ms=20.0)
    monitor.record_failed_measurement("peer-stability")
    monitor.record_failed_measurement("peer-stability")
    sample = monitor.record_measurement("peer-stability", latency_ms=25.0)
    jitter = statistics.stdev([20.0, 25.0])
    assert sample == ConnectionQualitySample(
        timestamp=clock.now,
        latency_ms=25.0,
        jitter_ms=pytest.approx(jitter),
        packet_loss_percent=0.0,
        bandwidth_mbps=100.0,
        stability_percent=50.0,  # 2 of 4 answered
        quality_score=pytest.approx(lanrage_advanced(25.0, jitter, 0.0, 100.0, 50.0)),
        quality_grade="B",  # 87.7
    )
    assert monitor.measurement_attempts["peer-stability"] == 4
    assert monitor.successful_measurements["peer-stability"] == 2
    assert monitor.get_latest("peer-stability") is sample


def test_connection_quality_monitor_rolling_average(monitor, clock):
    monitor.record_measurement("peer-rolling", latency_ms=20.0)
    clock.advance(60.0)
    monitor.record_measurement("peer-rolling", latency_ms=30.0)
    rolling = monitor.get_rolling_average("peer-rolling")
    jitter = statistics.stdev([20.0, 30.0])
    scores = [lanrage_advanced(20.0, 0.0, 0.0, 100.0, 100.0)]
    scores.append(lanrage_advanced(30.0, jitter, 0.0, 100.0, 100.0))
    assert rolling == {
        "sample_count": 2.0,
        "avg_score": pytest.approx(sum(scores) / 2),  # 95.2
        "grade": "A",
        "avg_latency_ms": 25.0,
        "avg_jitter_ms": pytest.approx(jitter / 2),
        "avg_packet_loss_percent": 0.0,
        "avg_bandwidth_mbps": 100.0,
        "avg_stability_percent": 100.0,
    }
    clock.advance(240.0)  # the first is 300 s old now: out (the window's start is exclusive)
    assert monitor.get_rolling_average("peer-rolling")["sample_count"] == 1.0
    clock.advance(60.0)
    assert monitor.get_rolling_average("peer-rolling") is None
    assert monitor.get_latest("peer-rolling").latency_ms == 30.0  # still kept


def test_window_size_bounds_the_samples_and_the_jitter(clock):
    monitor = ConnectionQualityMonitor(window_size=3, clock=clock)
    for value in (10.0, 20.0, 30.0, 40.0, 50.0):
        last = monitor.record_measurement("p", value)
    assert [s.latency_ms for s in monitor.samples["p"]] == [30.0, 40.0, 50.0]
    assert last.jitter_ms == pytest.approx(statistics.stdev([20.0, 30.0, 40.0, 50.0]))


def test_explicit_figures_are_taken_as_given(monitor):
    monitor.record_failed_measurement("p")
    sample = monitor.record_measurement(
        "p", 40.0, 1.0, 8.0, timestamp=123.0, jitter_ms=3.0, stability_percent=90.0
    )
    assert (sample.timestamp, sample.jitter_ms, sample.stability_percent) == (123.0, 3.0, 90.0)
    assert sample.quality_score == pytest.approx(lanrage_advanced(40.0, 3.0, 1.0, 8.0, 90.0))


def test_hourly_aggregates(monitor, clock):
    hour = math.floor(clock.now / HOUR) * HOUR
    clock.now = hour + 600
    monitor.record_measurement("p", 10.0, timestamp=hour + 100)
    monitor.record_measurement("p", 30.0, 4.0)
    clock.now = hour + HOUR + 5
    monitor.record_measurement("p", 50.0)
    first = [
        lanrage_advanced(10.0, 0.0, 0.0, 100.0, 100.0),
        lanrage_advanced(30.0, statistics.stdev([10.0, 30.0]), 4.0, 100.0, 100.0),
    ]
    second = lanrage_advanced(50.0, statistics.stdev([10.0, 30.0, 50.0]), 0.0, 100.0, 100.0)
    assert monitor.get_hourly_aggregates("p") == [
        {
            "hour_start": hour,
            "sample_count": 2.0,
            "avg_score": pytest.approx(sum(first) / 2),
            "grade": ConnectionQualityMonitor.score_to_grade(sum(first) / 2),
            "avg_latency_ms": 20.0,
            "avg_packet_loss_percent": 2.0,
        },
        {
            "hour_start": hour + HOUR,
            "sample_count": 1.0,
            "avg_score": pytest.approx(second),
            "grade": ConnectionQualityMonitor.score_to_grade(second),
            "avg_latency_ms": 50.0,
            "avg_packet_loss_percent": 0.0,
        },
    ]
    clock.now = hour + 25 * HOUR  # 24 h kept: the first hour's samples are older
    assert [a["hour_start"] for a in monitor.get_hourly_aggregates("p")] == [hour + HOUR]
    assert monitor.get_hourly_aggregates("ghost") == []


def test_unknown_and_forgotten_peers(monitor):
    assert monitor.get_latest("ghost") is None
    assert monitor.get_rolling_average("ghost") is None
    monitor.register_peer("quiet")
    assert monitor.get_latest("quiet") is None
    assert monitor.get_rolling_average("quiet") is None
    monitor.record_measurement("p", 10.0)
    monitor.forget_peer("p")
    monitor.forget_peer("never-seen")
    assert monitor.get_latest("p") is None
    assert "p" not in monitor.measurement_attempts
    assert list(monitor.samples) == ["quiet"]


def test_register_peer_keeps_a_known_peer(monitor, clock):
    monitor.register_peer("p")
    registered = clock.now
    monitor.record_measurement("p", 10.0)
    clock.advance(5.0)
    monitor.register_peer("p")
    assert monitor.peer_registered_at["p"] == registered
    assert len(monitor.samples["p"]) == 1


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda m: m.record_measurement("p", -1.0), "latency_ms"),
        (lambda m: m.record_measurement("p", math.nan), "latency_ms"),
        (lambda m: m.record_measurement("p", 10.0, math.nan), "packet_loss_percent"),
        (lambda m: m.record_measurement("p", 10.0, 101.0), "packet_loss_percent"),
        (lambda m: m.record_measurement("p", 10.0, 0.0, -1.0), "bandwidth_mbps"),
        (lambda m: m.record_measurement("p", 10.0, timestamp=math.inf), "timestamp"),
        (lambda m: m.record_measurement("p", 10.0, jitter_ms=-2.0), "jitter_ms"),
        (lambda m: m.record_measurement("p", 10.0, stability_percent=120.0), "stability_percent"),
        (lambda m: m.record_measurement("", 10.0), "peer_id"),
        (lambda m: m.record_failed_measurement(""), "peer_id"),
        (lambda m: m.register_peer("x" * 129), "peer_id"),
    ],
)
def test_bad_measurements_raise_and_count_nothing(monitor, call, named):
    with pytest.raises(ValueError, match=named):
        call(monitor)
    assert monitor.samples == {}
    assert monitor.measurement_attempts == {}


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"window_size": 0}, "window_size"),
        ({"window_size": 2.5}, "window_size"),
        ({"rolling_window_seconds": -1}, "rolling_window_seconds"),
        ({"hourly_history_hours": math.nan}, "hourly_history_hours"),
    ],
)
def test_bad_settings_raise(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ConnectionQualityMonitor(**kwargs)


# --- fed by the collector ---------------------------------------------------------------------


@pytest.fixture
def metrics(clock):
    return make_lanrage(clock)


async def test_the_collector_feeds_the_monitors_loss_and_stability(metrics):
    metrics.add_peer("peer1", "Peer 1")
    await metrics.record_latency("peer1", 10.0)
    await metrics.record_latency("peer1", None)
    await metrics.record_latency("peer1", 20.0)
    advanced = metrics.get_peer_connection_quality("peer1")["advanced"]
    # The Monitor counts the failure as lost (1 of 3) and its jitter is RFC 3550's.
    assert advanced == {
        "quality_score": pytest.approx(lanrage_advanced(20.0, 0.625, 100 / 3, 10.0, 200 / 3)),
        "quality_grade": "B",  # 76.0
        "latency_ms": 20.0,
        "jitter_ms": 0.625,
        "packet_loss_percent": pytest.approx(100 / 3),
        "bandwidth_mbps": 10.0,
        "stability_percent": pytest.approx(200 / 3),
    }
    assert metrics.quality_monitor.measurement_attempts["peer1"] == 3
    await metrics.record_packet_loss("peer1", 4.0)  # the app's own figure replaces it
    await metrics.record_bandwidth("peer1", 2 * 1024 * 1024, 1024 * 1024)
    await metrics.record_latency("peer1", 20.0)
    latest = metrics.quality_monitor.get_latest("peer1")
    assert (latest.packet_loss_percent, latest.bandwidth_mbps) == (4.0, 3.0)
    assert latest.stability_percent == 75.0


@linux
async def test_bandwidth_is_a_watched_connections_delivery_rate(metrics):
    metrics.add_peer("peer1", "Peer 1")
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    with accepted, client:
        assert metrics.monitor.watch_connection("peer1", accepted) is True
        accepted.sendall(b"x" * 200_000)
        received = 0
        while received < 200_000:
            received += len(client.recv(65536))
        metrics.monitor.tick()  # reads the connection
        await metrics.record_latency("peer1", 1.0)
        rate = metrics.monitor.peer("peer1")["tcp"]["delivery_rate_bps"]
    assert rate > 0
    advanced = metrics.get_peer_connection_quality("peer1")["advanced"]
    assert advanced["bandwidth_mbps"] == rate / 1e6


async def test_collector_quality_methods(metrics, clock):
    hour = math.floor(clock.now / HOUR) * HOUR
    clock.now = hour + HOUR - 100
    metrics.add_peer("peer1", "Peer 1")
    await metrics.record_latency("peer1", 20.0)
    clock.advance(200.0)  # into the next hour
    await metrics.record_latency("peer1", 30.0)
    rolling = metrics.get_quality_rolling_average("peer1")
    assert rolling == metrics.quality_monitor.get_rolling_average("peer1")
    assert (rolling["sample_count"], rolling["avg_latency_ms"]) == (2.0, 25.0)
    hourly = metrics.get_quality_hourly_aggregates("peer1")
    assert [(a["hour_start"], a["avg_latency_ms"]) for a in hourly] == [
        (hour, 20.0),
        (hour + HOUR, 30.0),
    ]
    clock.advance(301.0)  # past the 5 minutes: the newest sample stays, its average goes
    quality = metrics.get_peer_connection_quality("peer1")
    assert quality["advanced"]["latency_ms"] == 30.0
    assert "rolling_5m" not in quality
    assert metrics.get_quality_rolling_average("peer1") is None
    assert metrics.get_quality_rolling_average("ghost") is None
    assert metrics.get_quality_hourly_aggregates("ghost") == []


async def test_a_peer_without_samples_has_no_advanced_block(metrics):
    metrics.add_peer("peer1", "Peer 1")
    quality = metrics.get_peer_connection_quality("peer1")
    assert "advanced" not in quality
    assert "rolling_5m" not in quality
    await metrics.record_latency("peer1", None)  # a failure is no sample either
    assert "advanced" not in metrics.get_peer_connection_quality("peer1")


async def test_samples_go_with_the_peer(metrics):
    metrics.add_peer("peer1", "Peer 1")
    metrics.add_peer("peer2", "Peer 2")
    await metrics.record_latency("peer1", 20.0)
    await metrics.record_latency("peer2", 20.0)
    metrics.remove_peer("peer1")
    assert metrics.get_quality_rolling_average("peer1") is None
    assert metrics.get_quality_hourly_aggregates("peer1") == []
    # Removed through the Monitor: forgotten at the tick that hands out the event ...
    metrics.monitor.remove_peer("peer2")
    assert metrics.quality_monitor.get_latest("peer2") is not None
    metrics.monitor.tick()
    assert metrics.quality_monitor.get_latest("peer2") is None
    # ... unless the id is back by then: its new samples stay.
    metrics.add_peer("peer3", "Peer 3")
    await metrics.record_latency("peer3", 20.0)
    metrics.monitor.remove_peer("peer3")
    metrics.add_peer("peer3", "Peer 3")
    await metrics.record_latency("peer3", 25.0)
    metrics.monitor.tick()
    assert metrics.quality_monitor.get_latest("peer3").latency_ms == 25.0


async def test_a_peer_the_collector_never_added_is_scored_too(clock):
    collector = make_lanrage(clock)
    collector.monitor.add_peer("direct")
    await collector.record_latency("direct", 15.0)
    assert collector.get_peer_connection_quality("direct")["advanced"]["latency_ms"] == 15.0


async def test_unknown_peers_get_no_samples(metrics):
    await metrics.record_latency("ghost", 20.0)
    await metrics.record_latency("ghost", None)
    assert metrics.quality_monitor.samples == {}
    assert metrics.get_peer_connection_quality("ghost") is None
    with pytest.raises(ValueError, match="latency_ms"):
        await metrics.record_latency("ghost", -1.0)
