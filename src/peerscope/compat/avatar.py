"""The avatar server's performance-monitoring API over :class:`peerscope.Monitor`.

``PerformanceMonitor`` and its ``collector`` keep the seed's names, arguments and dict keys;
every number comes from the Monitor. The seed's ``AVATAR_*`` environment variables are read
for any constructor argument left out:

- ``AVATAR_MONITORING_ENABLED`` (default true): false makes ``start()`` do nothing;
- ``AVATAR_METRICS_INTERVAL`` (default 1.0 s);
- ``AVATAR_CPU_ALERT_THRESHOLD`` (80), ``AVATAR_MEMORY_ALERT_THRESHOLD`` (85),
  ``AVATAR_LATENCY_ALERT_THRESHOLD`` (100 ms).

Alerts: the seed's four (CPU, memory, latency above their thresholds, a client idle over
60 s) run as peerscope alert rules, which wait before firing and do not flap
(docs/ALERTS.md). The active ones are the metrics' ``alerts``; set ``alert_handler`` to an
object whose ``handle_alert(alert)`` (sync or async) should get each one as it fires and
resolves, in the seed's ``performance_alert`` shape (plus ``state``, ``rule``, ``peer_id``
and ``started_at``). It is called from a task of its own, retried if it raises; it never
holds up the tick.

Differences from the seed: unknown clients are ignored by the tracking calls (the adapter's
own Monitor refuses unknown peers; a wrapped Monitor applies its ``unknown_peer`` setting);
bad input raises ``ValueError`` naming the argument or variable; the metrics message carries
peerscope's extra fields (jitter, loss, quality score, MOS, status) beside the seed's, and
the server metrics theirs (messages in and out, the event-loop lag: None until the Monitor
runs on a loop).
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any

from peerscope.alerting import AlertEvent, Alerting
from peerscope.alerting.notifiers import CallbackNotifier
from peerscope.config import Settings
from peerscope.core.alerts import DEFAULT_RULES, AlertRule
from peerscope.core.model import SystemSample
from peerscope.core.validation import validate_number
from peerscope.message import ServerEntry, server_entry
from peerscope.monitor import Monitor
from peerscope.peer_table import UnknownPeerError

__all__ = [
    "DEFAULT_ALERT_THRESHOLDS",
    "MetricsCollector",
    "PerformanceMonitor",
    "seed_alert",
    "seed_rules",
]

DEFAULT_METRICS_INTERVAL = 1.0
DEFAULT_ALERT_THRESHOLDS: dict[str, float] = {
    "cpu_percent": 80.0,
    "memory_percent": 85.0,
    "latency_ms": 100.0,
}
_THRESHOLD_ENV = {
    "cpu_percent": "AVATAR_CPU_ALERT_THRESHOLD",
    "memory_percent": "AVATAR_MEMORY_ALERT_THRESHOLD",
    "latency_ms": "AVATAR_LATENCY_ALERT_THRESHOLD",
}
_PERCENT_KEYS = frozenset({"cpu_percent", "memory_percent"})
# The seed kept the last 60 system samples ("1 minute" at the default interval).
SUMMARY_HISTORY_SAMPLES = 60
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _check_threshold(value: object, key: str, source: str) -> float:
    return validate_number(value, source, high=100.0 if key in _PERCENT_KEYS else math.inf)


def _env_number(name: str) -> float | None:
    text = os.environ.get(name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name}: must be a number, got {text!r}") from None


def _env_enabled() -> bool:
    text = os.environ.get("AVATAR_MONITORING_ENABLED")
    if text is None:
        return True
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"AVATAR_MONITORING_ENABLED: must be true or false, got {text!r}")


def _resolve_thresholds(given: dict[str, float] | None) -> dict[str, float]:
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise ValueError(f"alert_thresholds: must be a dict, got {type(given).__name__}")
    for key in given:
        if key not in DEFAULT_ALERT_THRESHOLDS:
            raise ValueError(
                f"alert_thresholds: unknown key {key!r}; expected one of "
                f"{', '.join(DEFAULT_ALERT_THRESHOLDS)}"
            )
    thresholds = {}
    for key, default in DEFAULT_ALERT_THRESHOLDS.items():
        if key in given:
            thresholds[key] = _check_threshold(given[key], key, f"alert_thresholds[{key!r}]")
            continue
        env = _THRESHOLD_ENV[key]
        from_env = _env_number(env)
        thresholds[key] = default if from_env is None else _check_threshold(from_env, key, env)
    return thresholds


def _build_monitor(metrics_interval: float | None, enable_system_metrics: bool | None) -> Monitor:
    source = "metrics_interval"
    interval = metrics_interval
    if interval is None:
        source = "AVATAR_METRICS_INTERVAL"
        interval = _env_number(source)
        if interval is None:
            source, interval = "metrics_interval", DEFAULT_METRICS_INTERVAL
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not 0.0 < interval < math.inf
    ):
        raise ValueError(f"{source}: must be a finite number > 0, got {interval!r}")
    # A SettingsError (a ValueError) names the interval by where it came from.
    settings = Settings.load(
        argument_names={"metrics_interval": source},
        metrics_interval=interval,
        enable_system_metrics=True if enable_system_metrics is None else enable_system_metrics,
        # Refused unknown ids let the tracking calls ignore clients never connected.
        unknown_peer="raise",
    )
    return Monitor(settings)


# The seed's four alerts: peerscope's default rules of those metrics, at the seed's
# thresholds (the hysteresis band keeps its width), and its stale-client rule.
_SEED_RULES = ("high_cpu", "high_memory", "high_latency", "stale_client")
_RULE_THRESHOLD_KEY = {
    "high_cpu": "cpu_percent",
    "high_memory": "memory_percent",
    "high_latency": "latency_ms",
}


def seed_rules(thresholds: dict[str, float]) -> tuple[AlertRule, ...]:
    """The seed's alerts as rules, at ``thresholds`` (keys of DEFAULT_ALERT_THRESHOLDS)."""
    rules = []
    for rule in DEFAULT_RULES:
        if rule.name not in _SEED_RULES:
            continue
        key = _RULE_THRESHOLD_KEY.get(rule.name)
        if key is not None:
            assert isinstance(rule.threshold, float)
            assert rule.clear is not None
            threshold = thresholds[key]
            band = rule.threshold - rule.clear
            rule = replace(rule, threshold=threshold, clear=max(0.0, threshold - band))
        rules.append(rule)
    return tuple(rules)


def seed_alert(event: AlertEvent) -> dict[str, Any]:
    """An alert event in the seed's ``performance_alert`` shape and words ("High CPU usage:
    85.3%"), with peerscope's ``state``, ``rule``, ``peer_id`` and ``started_at`` beside."""
    value, peer = event["value"], event["peer_id"]
    message = event["message"]
    if isinstance(value, float):
        words = {
            "cpu_percent": f"High CPU usage: {value:.1f}%",
            "memory_percent": f"High memory usage: {value:.1f}%",
            "latency_ms": f"High latency for client {peer}: {value:.1f}ms",
            "idle_seconds": f"Client {peer} inactive for {value:.0f}s",
        }
        message = words.get(event["metric"], message)
    if event["state"] == "resolved":
        message = f"Resolved: {message}"
    return {
        "type": "performance_alert",
        "severity": event["severity"],
        "message": message,
        "metric": event["metric"],
        "value": value,
        "threshold": event["threshold"],
        "timestamp": event["timestamp"],
        "state": event["state"],
        "rule": event["rule"],
        "peer_id": peer,
        "started_at": event["started_at"],
    }


class MetricsCollector:
    """The seed's collector: client and server tracking, written into the Monitor."""

    def __init__(self, monitor: Monitor, *, enable_client_metrics: bool = True) -> None:
        self.monitor = monitor
        self.enable_client_metrics = enable_client_metrics

    def collect_system_metrics(self) -> SystemSample:
        """Sample the host now. With system metrics disabled: the zero, unavailable sample."""
        if not self.monitor.settings.enable_system_metrics:
            return self.monitor.system
        return self.monitor.sample_system()

    def track_client_connection(self, client_id: str) -> None:
        if self.enable_client_metrics:
            self.monitor.add_peer(client_id, kind="client")

    def track_client_message(self, client_id: str, bytes_sent: int, bytes_recv: int) -> None:
        """One message from the client, with the bytes sent to and received from it.

        Only the client's counters: the seed counts server totals in ``track_message()``,
        which an app calls beside this one.
        """
        if not self.enable_client_metrics:
            return
        try:
            self.monitor.record_traffic(
                client_id, bytes_sent=bytes_sent, bytes_received=bytes_recv, messages_received=1
            )
        except UnknownPeerError:
            return

    def track_client_latency(self, client_id: str, latency_ms: float) -> None:
        if not self.enable_client_metrics:
            return
        try:
            self.monitor.record_latency(client_id, latency_ms)
        except UnknownPeerError:
            return

    def remove_client(self, client_id: str) -> None:
        if self.enable_client_metrics:
            self.monitor.remove_peer(client_id)

    def track_message(self) -> None:
        """Count one message in the server totals (and messages per second)."""
        self.monitor.record_message(None)

    def get_server_metrics(self) -> ServerEntry:
        return server_entry(self.monitor.server_stats())


class PerformanceMonitor:
    """The seed's monitor: a tick loop that samples, aggregates and publishes metrics.

    ``alert_thresholds`` (keys ``cpu_percent``, ``memory_percent``, ``latency_ms``) are
    validated, kept as ``.alert_thresholds`` and evaluated by ``.alerting`` (the seed's four
    rules, :func:`seed_rules`); ``alert_handler`` (None: nobody) gets each alert as it
    fires and resolves (:func:`seed_alert`).

    ``monitor`` wraps an existing Monitor, whose settings then govern the interval and
    system sampling; ``metrics_interval`` / ``enable_system_metrics`` may be passed only if
    they agree with them.
    """

    def __init__(
        self,
        metrics_interval: float | None = None,
        enable_system_metrics: bool | None = None,
        enable_client_metrics: bool = True,
        alert_thresholds: dict[str, float] | None = None,
        *,
        monitor: Monitor | None = None,
    ) -> None:
        self.enabled = _env_enabled()
        self.alert_thresholds = _resolve_thresholds(alert_thresholds)
        if monitor is None:
            monitor = _build_monitor(metrics_interval, enable_system_metrics)
        else:
            settings = monitor.settings
            if metrics_interval is not None and metrics_interval != settings.metrics_interval:
                raise ValueError(
                    f"metrics_interval {metrics_interval!r} disagrees with the "
                    f"wrapped Monitor's {settings.metrics_interval!r}"
                )
            if (
                enable_system_metrics is not None
                and enable_system_metrics != settings.enable_system_metrics
            ):
                raise ValueError(
                    f"enable_system_metrics {enable_system_metrics!r} disagrees "
                    "with the wrapped Monitor's settings"
                )
        self.monitor = monitor
        self.enable_client_metrics = enable_client_metrics
        self.collector = MetricsCollector(monitor, enable_client_metrics=enable_client_metrics)
        self.alert_handler: Any = None
        self.alerting = Alerting(
            monitor,
            seed_rules(self.alert_thresholds),
            notifiers=[CallbackNotifier(self._hand_over, name="alert_handler")],
        )

    def _hand_over(self, event: AlertEvent) -> object:
        # Called on the notifier's thread; what an async handle_alert returns is awaited by
        # the notifier on the loop (CallbackNotifier).
        handler = self.alert_handler
        return None if handler is None else handler.handle_alert(seed_alert(event))

    @property
    def metrics_interval(self) -> float:
        return self.monitor.settings.metrics_interval

    @property
    def enable_system_metrics(self) -> bool:
        return self.monitor.settings.enable_system_metrics

    @property
    def is_running(self) -> bool:
        return self.monitor.is_running

    async def start(self) -> None:
        """Start the tick loop and the alert handler's task (nothing when
        ``AVATAR_MONITORING_ENABLED`` is false)."""
        if self.enabled:
            await self.alerting.start()
            await self.monitor.start()

    def stop(self) -> None:
        """Stop at once (the seed's ``stop`` is synchronous); ``is_running`` turns False."""
        self.monitor.cancel()

    def get_current_metrics(self) -> dict[str, Any]:
        """The metrics message as of now, in the seed's shape (plus peerscope's fields)."""
        monitor = self.monitor
        if monitor.settings.enable_system_metrics and not monitor.system.available:
            # The seed's example reads metrics right after start(), before the first tick
            # has sampled the host; sample now so the figures are real, not zeros.
            monitor.sample_system()
        # A fresh snapshot rather than the last tick's message, so what was just tracked
        # shows at once, as it did in the seed.
        message: dict[str, Any] = {
            **monitor.snapshot(),
            "alerts": self.alerting.firing(),
            "alerts_total": self.alerting.count("firing"),
        }
        if not self.enable_client_metrics:
            return {**message, "clients": [], "clients_total": 0}
        clients = []
        for client in message["clients"]:
            if client["average_latency_ms"] is None:
                # The seed's clients always carry a number; peerscope says None for "not
                # measured yet", which the seed's dashboards cannot format.
                client = {**client, "average_latency_ms": 0.0}
            clients.append(client)
        return {**message, "clients": clients}

    def get_performance_summary(self) -> dict[str, Any]:
        """Uptime, system now/average/max over the last 60 samples, server figures, clients,
        client latency and active alerts, all as of now."""
        metrics = self.get_current_metrics()
        now: float = metrics["timestamp"]
        window = SUMMARY_HISTORY_SAMPLES * self.metrics_interval
        system: dict[str, Any] = {
            "available": self.monitor.system.available,
            "current": metrics["system"],
            "window_seconds": window,
        }
        for name in ("cpu_percent", "memory_percent"):
            stats = self.monitor.system_stats(name, window)
            system[name] = {
                "current": metrics["system"][name],
                "average": stats["avg"],
                "max": stats["max"],
                "samples": stats["count"],
            }
        averages = []
        if self.enable_client_metrics:
            averages = [
                peer["average_latency_ms"]
                for peer in self.monitor.peers()
                if peer["average_latency_ms"] is not None
            ]
        server = metrics["server"]
        return {
            "timestamp": now,
            "monitoring_enabled": self.enabled,
            "is_running": self.is_running,
            "uptime_seconds": server["uptime_seconds"],
            "system": system,
            "server": server,
            "clients": {
                "active": metrics["clients_total"],
                "by_status": (
                    metrics["network"]["peers_by_status"]
                    if self.enable_client_metrics
                    else dict.fromkeys(metrics["network"]["peers_by_status"], 0)
                ),
            },
            "latency": {
                "average_ms": server["average_latency_ms"] if averages else 0.0,
                "min_ms": min(averages, default=None),
                "max_ms": max(averages, default=None),
                "measured_clients": len(averages),
            },
            "alerts": {"active": len(metrics["alerts"]), "thresholds": dict(self.alert_thresholds)},
        }
