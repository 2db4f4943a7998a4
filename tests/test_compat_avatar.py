"""The avatar seed's PerformanceMonitor over the Monitor: the seed's example and exact figures."""

from __future__ import annotations

import asyncio
import math
import re

import pytest

from peerscope import Monitor, Settings, SystemSample
from peerscope.compat.avatar import DEFAULT_ALERT_THRESHOLDS, PerformanceMonitor

AVATAR_VARIABLES = (
    "AVATAR_MONITORING_ENABLED",
    "AVATAR_METRICS_INTERVAL",
    "AVATAR_CPU_ALERT_THRESHOLD",
    "AVATAR_MEMORY_ALERT_THRESHOLD",
    "AVATAR_LATENCY_ALERT_THRESHOLD",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in AVATAR_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def manual(clock, *, system: bool = False, **kwargs) -> PerformanceMonitor:
    monitor = Monitor(Settings(enable_system_metrics=system), clock=clock)
    return PerformanceMonitor(monitor=monitor, **kwargs)


async def test_seed_server_side_integration_example_runs_as_written():
    # The seed's "Server-Side Integration" example, verbatim but for its import line.
    from peerscope.compat.avatar import PerformanceMonitor

    # Initialize monitor
    monitor = PerformanceMonitor(metrics_interval=1.0)

    # Start monitoring (async)
    await monitor.start()

    # Track client connections
    monitor.collector.track_client_connection("client-123")

    # Track messages
    monitor.collector.track_message()
    monitor.collector.track_client_message("client-123", bytes_sent=1024, bytes_recv=512)

    # Track latency
    monitor.collector.track_client_latency("client-123", latency_ms=25.5)

    # Get current metrics
    metrics = monitor.get_current_metrics()

    # Stop monitoring
    monitor.stop()

    assert monitor.is_running is False
    assert metrics["type"] == "metrics"
    [client] = metrics["clients"]
    assert client["client_id"] == "client-123"
    assert client["message_count"] == 1
    assert client["bytes_sent"] == 1024
    assert client["bytes_received"] == 512
    assert client["average_latency_ms"] == 25.5
    assert client["connection_duration"] >= 0.0
    server = metrics["server"]
    assert server["total_messages"] == 1
    assert server["active_connections"] == 1
    assert server["average_latency_ms"] == 25.5
    system = metrics["system"]
    assert system["memory_total_mb"] > 0
    assert 0 < system["memory_used_mb"] <= system["memory_total_mb"]
    assert 0 < system["memory_percent"] <= 100
    assert 0 <= system["cpu_percent"] <= 100
    assert system["network_sent_mb"] >= 0
    assert system["network_recv_mb"] >= 0
    assert metrics["alerts"] == []
    await asyncio.sleep(0)  # let the cancelled tick task finish before the loop closes


async def test_start_runs_the_tick_loop_and_stop_is_immediate():
    perf = PerformanceMonitor(metrics_interval=0.05)
    assert perf.is_running is False
    await perf.start()
    assert perf.is_running is True
    await asyncio.sleep(0.12)
    assert perf.monitor.last_message is not None
    perf.stop()
    assert perf.is_running is False
    perf.stop()  # a second stop is harmless
    await asyncio.sleep(0)


def test_collector_tracks_clients_into_the_monitor(clock):
    perf = manual(clock)
    collector = perf.collector
    collector.track_client_connection("c1")
    clock.advance(2.0)
    collector.track_client_message("c1", 100, 40)
    collector.track_client_message("c1", bytes_sent=10, bytes_recv=5)
    collector.track_client_latency("c1", 30.0)
    collector.track_client_latency("c1", 10.0)
    peer = perf.monitor.peer("c1")
    assert peer["kind"] == "client"
    assert peer["message_count"] == 2
    assert peer["messages_received"] == 2
    assert (peer["bytes_sent"], peer["bytes_received"]) == (110, 45)
    assert peer["average_latency_ms"] == 20.0
    assert peer["last_message_time"] == clock.now
    # Client messages are per-client only: server totals come from track_message().
    assert perf.monitor.server_stats().total_messages == 0
    collector.remove_client("c1")
    assert "c1" not in perf.monitor


def test_tracking_an_unknown_client_is_ignored():
    perf = PerformanceMonitor(enable_system_metrics=False)
    perf.collector.track_client_message("ghost", 1, 1)
    perf.collector.track_client_latency("ghost", 5.0)
    assert perf.monitor.peer_ids == []


def test_bad_tracking_input_raises_value_error(clock):
    perf = manual(clock)
    perf.collector.track_client_connection("c1")
    with pytest.raises(ValueError, match="latency_ms"):
        perf.collector.track_client_latency("c1", -1.0)
    with pytest.raises(ValueError, match="latency_ms"):
        perf.collector.track_client_latency("c1", math.nan)
    with pytest.raises(ValueError, match="bytes_sent"):
        perf.collector.track_client_message("c1", -5, 0)
    with pytest.raises(ValueError, match="bytes_received"):
        perf.collector.track_client_message("c1", 0, 1.5)
    with pytest.raises(ValueError, match="peer_id"):
        perf.collector.track_client_connection("")
    assert perf.monitor.peer("c1")["message_count"] == 0


def test_server_metrics_have_the_seed_keys_with_exact_values(clock):
    perf = manual(clock)
    collector = perf.collector
    collector.track_client_connection("a")
    collector.track_client_connection("b")
    collector.track_client_latency("a", 10.0)
    collector.track_client_latency("b", 30.0)
    clock.advance(5.0)
    for _ in range(3):
        collector.track_message()
    metrics = collector.get_server_metrics()
    assert metrics == {
        "uptime_seconds": 5.0,
        "active_connections": 2,
        "total_connections": 2,
        "total_messages": 3,
        "messages_per_second": 3.0,
        "messages_in_per_second": 3.0,
        "messages_out_per_second": 0.0,
        "average_latency_ms": 20.0,
        "loop_lag_ms": None,  # measured on the loop the Monitor runs on: it is not running
        "loop_lag_p99_ms": None,
    }
    clock.advance(1.0)
    assert collector.get_server_metrics()["messages_per_second"] == 0.0


def test_collect_system_metrics_returns_a_real_sample():
    perf = PerformanceMonitor()
    sample = perf.collector.collect_system_metrics()
    assert isinstance(sample, SystemSample)
    assert sample.available is True
    assert sample.memory_total_mb > 0
    assert 0 <= sample.cpu_percent <= 100
    assert perf.monitor.system is sample
    assert len(perf.monitor.system_history("memory_percent", 60)) == 1


def test_system_metrics_disabled_gives_zeros_and_no_sampling(clock):
    perf = PerformanceMonitor(enable_system_metrics=False)
    assert perf.enable_system_metrics is False
    assert perf.monitor.settings.enable_system_metrics is False
    sample = perf.collector.collect_system_metrics()
    assert sample.available is False
    assert (sample.cpu_percent, sample.memory_total_mb) == (0.0, 0.0)
    assert perf.get_current_metrics()["system"]["memory_total_mb"] == 0.0


def test_current_metrics_map_unmeasured_latency_to_zero(clock):
    perf = manual(clock)
    perf.collector.track_client_connection("quiet")
    clock.advance(3.0)
    metrics = perf.get_current_metrics()
    [client] = metrics["clients"]
    assert client["average_latency_ms"] == 0.0
    assert client["connection_duration"] == 3.0
    assert client["connected_at"] == clock.now - 3.0
    assert metrics["timestamp"] == clock.now
    assert metrics["clients_total"] == 1
    # The Monitor's own view still says "not measured"; only the seed shape says 0.
    assert perf.monitor.peer("quiet")["average_latency_ms"] is None


def test_client_metrics_disabled_makes_tracking_a_no_op(clock):
    perf = manual(clock, enable_client_metrics=False)
    collector = perf.collector
    collector.track_client_connection("c1")
    collector.track_client_message("c1", 10, 10)
    collector.track_client_latency("c1", 10.0)
    collector.remove_client("c1")
    collector.track_message()
    assert perf.monitor.peer_ids == []
    metrics = perf.get_current_metrics()
    assert metrics["clients"] == []
    assert metrics["clients_total"] == 0
    assert metrics["server"]["total_messages"] == 1
    summary = perf.get_performance_summary()
    assert summary["clients"] == {
        "active": 0,
        "by_status": {"connected": 0, "degraded": 0, "disconnected": 0},
    }
    assert summary["latency"]["measured_clients"] == 0


def test_performance_summary_exact_figures(clock):
    perf = manual(clock, alert_thresholds={"cpu_percent": 90.0})
    collector = perf.collector
    for client_id, latency in (("a", 10.0), ("b", 40.0), ("c", None)):
        collector.track_client_connection(client_id)
        if latency is not None:
            collector.track_client_latency(client_id, latency)
    collector.track_message()
    clock.advance(10.0)
    summary = perf.get_performance_summary()
    assert summary["timestamp"] == clock.now
    assert summary["monitoring_enabled"] is True
    assert summary["is_running"] is False
    assert summary["uptime_seconds"] == 10.0
    assert summary["server"]["total_messages"] == 1
    assert summary["server"]["active_connections"] == 3
    assert summary["clients"] == {
        "active": 3,
        "by_status": {"connected": 3, "degraded": 0, "disconnected": 0},
    }
    assert summary["latency"] == {
        "average_ms": 25.0,
        "min_ms": 10.0,
        "max_ms": 40.0,
        "measured_clients": 2,
    }
    assert summary["alerts"] == {
        "active": 0,
        "thresholds": {"cpu_percent": 90.0, "memory_percent": 85.0, "latency_ms": 100.0},
    }
    system = summary["system"]
    assert system["available"] is False  # sampling disabled in this Monitor
    assert system["window_seconds"] == 60.0
    assert system["cpu_percent"] == {"current": 0.0, "average": None, "max": None, "samples": 0}


def test_performance_summary_system_history(clock):
    perf = manual(clock, system=True)
    samples = []
    for _ in range(3):
        samples.append(perf.collector.collect_system_metrics())
        clock.advance(1.0)
    summary = perf.get_performance_summary()
    memory = summary["system"]["memory_percent"]
    # History values are stored as float32; compare with what the Monitor kept.
    kept = [value for _, value in perf.monitor.system_history("memory_percent", 60)]
    assert memory["samples"] == 3 == len(kept)
    assert memory["average"] == pytest.approx(sum(kept) / 3)
    assert memory["max"] == max(kept)
    assert memory["current"] == perf.monitor.system.memory_percent
    assert summary["system"]["available"] is True
    assert summary["system"]["current"]["memory_total_mb"] == samples[-1].memory_total_mb


def test_alert_thresholds_defaults_and_custom():
    assert PerformanceMonitor(enable_system_metrics=False).alert_thresholds == {
        "cpu_percent": 80.0,
        "memory_percent": 85.0,
        "latency_ms": 100.0,
    }
    assert DEFAULT_ALERT_THRESHOLDS["latency_ms"] == 100.0
    perf = PerformanceMonitor(
        metrics_interval=0.5,
        enable_system_metrics=True,
        enable_client_metrics=True,
        alert_thresholds={"cpu_percent": 90.0, "memory_percent": 90.0, "latency_ms": 150},
    )
    assert perf.alert_thresholds == {
        "cpu_percent": 90.0,
        "memory_percent": 90.0,
        "latency_ms": 150.0,
    }
    assert perf.metrics_interval == 0.5
    assert perf.monitor.settings.metrics_interval == 0.5


@pytest.mark.parametrize(
    ("thresholds", "named"),
    [
        ({"disk_percent": 50.0}, "disk_percent"),
        ({"cpu_percent": math.nan}, "cpu_percent"),
        ({"cpu_percent": 101.0}, "cpu_percent"),
        ({"memory_percent": -1.0}, "memory_percent"),
        ({"latency_ms": math.inf}, "latency_ms"),
        ({"latency_ms": "100"}, "latency_ms"),
        ({"latency_ms": True}, "latency_ms"),
    ],
)
def test_bad_alert_thresholds_raise_naming_the_key(thresholds, named):
    with pytest.raises(ValueError, match=named):
        PerformanceMonitor(alert_thresholds=thresholds)


@pytest.mark.parametrize("interval", [0, -1.0, math.nan, math.inf, "1", 7200.0])
def test_bad_metrics_interval_raises(interval):
    with pytest.raises(ValueError, match="metrics_interval"):
        PerformanceMonitor(metrics_interval=interval)


def test_environment_variables_fill_missing_arguments(monkeypatch):
    monkeypatch.setenv("AVATAR_METRICS_INTERVAL", "2.5")
    monkeypatch.setenv("AVATAR_CPU_ALERT_THRESHOLD", "70")
    monkeypatch.setenv("AVATAR_MEMORY_ALERT_THRESHOLD", "75.5")
    monkeypatch.setenv("AVATAR_LATENCY_ALERT_THRESHOLD", "250")
    perf = PerformanceMonitor(enable_system_metrics=False)
    assert perf.metrics_interval == 2.5
    assert perf.alert_thresholds == {
        "cpu_percent": 70.0,
        "memory_percent": 75.5,
        "latency_ms": 250.0,
    }
    # Arguments win over the environment, key by key.
    perf = PerformanceMonitor(
        metrics_interval=0.25, enable_system_metrics=False, alert_thresholds={"latency_ms": 50.0}
    )
    assert perf.metrics_interval == 0.25
    assert perf.alert_thresholds == {
        "cpu_percent": 70.0,
        "memory_percent": 75.5,
        "latency_ms": 50.0,
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AVATAR_METRICS_INTERVAL", "fast"),
        ("AVATAR_METRICS_INTERVAL", "0"),
        ("AVATAR_METRICS_INTERVAL", "nan"),
        ("AVATAR_METRICS_INTERVAL", "99999"),
        ("AVATAR_CPU_ALERT_THRESHOLD", "high"),
        ("AVATAR_CPU_ALERT_THRESHOLD", "150"),
        ("AVATAR_MEMORY_ALERT_THRESHOLD", "-5"),
        ("AVATAR_LATENCY_ALERT_THRESHOLD", "inf"),
        ("AVATAR_MONITORING_ENABLED", "maybe"),
    ],
)
def test_bad_environment_values_raise_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        PerformanceMonitor(enable_system_metrics=False)


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [
        (
            {"metrics_interval": 7200.0},
            {},
            "metrics_interval: Input should be less than or equal to 3600",
        ),
        (
            {},
            {"AVATAR_METRICS_INTERVAL": "99999"},
            "AVATAR_METRICS_INTERVAL: Input should be less than or equal to 3600",
        ),
    ],
)
def test_an_interval_peerscope_refuses_is_named_once(monkeypatch, arguments, environment, message):
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        PerformanceMonitor(enable_system_metrics=False, **arguments)


@pytest.mark.parametrize("value", ["false", "0", "No", " off "])
async def test_monitoring_disabled_makes_start_a_no_op(monkeypatch, value):
    monkeypatch.setenv("AVATAR_MONITORING_ENABLED", value)
    perf = PerformanceMonitor(enable_system_metrics=False)
    assert perf.enabled is False
    await perf.start()
    assert perf.is_running is False
    assert perf.get_performance_summary()["monitoring_enabled"] is False
    perf.stop()


async def test_monitoring_enabled_true_starts(monkeypatch):
    monkeypatch.setenv("AVATAR_MONITORING_ENABLED", "TRUE")
    perf = PerformanceMonitor(enable_system_metrics=False)
    await perf.start()
    assert perf.is_running is True
    perf.stop()
    assert perf.is_running is False
    await asyncio.sleep(0)


def test_wrapping_a_monitor_checks_agreement(clock):
    monitor = Monitor(Settings(enable_system_metrics=False, metrics_interval=2.0), clock=clock)
    perf = PerformanceMonitor(2.0, False, monitor=monitor)
    assert perf.monitor is monitor
    assert perf.collector.monitor is monitor
    with pytest.raises(ValueError, match="metrics_interval"):
        PerformanceMonitor(metrics_interval=1.0, monitor=monitor)
    with pytest.raises(ValueError, match="enable_system_metrics"):
        PerformanceMonitor(enable_system_metrics=True, monitor=monitor)


class SeedHandler:
    """The seed's "Alert Integration" example: an object with an async handle_alert."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, object]] = []

    async def handle_alert(self, alert):
        self.alerts.append(alert)


async def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the deadline"
        await asyncio.sleep(0.01)


def test_the_seeds_four_alerts_run_at_its_thresholds():
    from peerscope.compat.avatar import seed_rules

    rules = {
        rule.name: rule for rule in seed_rules({**DEFAULT_ALERT_THRESHOLDS, "latency_ms": 150})
    }
    assert list(rules) == ["high_cpu", "high_memory", "high_latency", "stale_client"]
    assert (rules["high_latency"].threshold, rules["high_latency"].clear) == (150.0, 130.0)
    assert (rules["high_cpu"].threshold, rules["high_cpu"].clear) == (80.0, 75.0)
    assert rules["stale_client"].severity == "info"


async def test_alert_handler_gets_the_seeds_alert_once_per_firing_and_its_resolve(clock):
    performance = manual(clock, alert_thresholds={"latency_ms": 120.0})
    handler = SeedHandler()
    performance.alert_handler = handler  # as the seed's README sets it
    await performance.alerting.start()
    monitor = performance.monitor
    monitor.add_peer("client-123", kind="client")
    for _ in range(40):  # 31 s above 120 ms: pending 30 s, then firing, told once
        monitor.record_latency("client-123", 250.0)
        clock.advance(1.0)
        monitor.tick()
    await wait_for(lambda: handler.alerts)
    (alert,) = handler.alerts
    assert alert["type"] == "performance_alert"
    assert alert["severity"] == "warning"
    assert alert["metric"] == "latency_ms"
    assert alert["threshold"] == 120.0
    assert alert["state"] == "firing"
    assert alert["peer_id"] == "client-123"
    assert re.fullmatch(r"High latency for client client-123: \d+\.\dms", alert["message"])
    metrics = performance.get_current_metrics()
    assert [a["rule"] for a in metrics["alerts"]] == ["high_latency"]
    assert performance.get_performance_summary()["alerts"]["active"] == 1
    for _ in range(40):
        monitor.record_latency("client-123", 10.0)
        clock.advance(1.0)
        monitor.tick()
    await wait_for(lambda: len(handler.alerts) == 2)
    resolved = handler.alerts[1]
    assert resolved["state"] == "resolved"
    assert resolved["message"].startswith("Resolved: High latency for client client-123: ")
    assert performance.get_current_metrics()["alerts"] == []
    await performance.alerting.stop()


async def test_a_sync_handler_that_raises_is_retried_and_does_not_stop_the_ticks(clock):
    performance = manual(clock)
    calls: list[str] = []

    class Failing:
        def handle_alert(self, alert):
            calls.append(alert["message"])
            if len(calls) < 2:
                raise RuntimeError("the handler's own bug")

    performance.alert_handler = Failing()
    await performance.alerting.start()
    monitor = performance.monitor
    monitor.add_peer("c", kind="client")
    clock.advance(61.0)  # unheard over 60 s: the seed's stale client
    monitor.tick()
    await wait_for(lambda: len(calls) == 2)
    assert calls == ["Client c inactive for 61s"] * 2
    assert performance.alerting.notifier_stats()[0]["retried"] == 1
    await performance.alerting.stop()
