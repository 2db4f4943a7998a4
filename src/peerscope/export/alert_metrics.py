"""The alerts in the Prometheus exposition: ``peerscope_alert_firing``, one series per pending
or firing alert as Prometheus' own ``ALERTS`` has, and each notifier's outcomes as
``peerscope_alert_notifications_total``.

A host or server rule's alert has ``peer_id=""`` (Prometheus reads an empty label as none).
Both families are declared even when empty, so a query names them before the first alert.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from peerscope.alerting import Alerting

__all__ = ["ALERT_LABELS", "OUTCOMES", "AlertCollector"]

ALERT_LABELS = ("rule", "severity", "peer_id", "alertstate")
# The NotifierStats counts exported, one series each per notifier.
OUTCOMES = ("sent", "failed", "retried", "dropped")


class AlertCollector(Collector):
    """A ``prometheus_client`` collector over ``alerting``: register it in a registry of your
    own, or let :class:`~peerscope.export.metrics_app.MetricsApp` serve it after the
    Monitor's series."""

    def __init__(self, alerting: Alerting) -> None:
        self.alerting = alerting

    def render(self) -> bytes:
        """Its families in the text format (``generate_latest`` of this collector alone)."""
        return generate_latest(self)

    def collect(self) -> Iterator[Metric]:
        firing = GaugeMetricFamily(
            "peerscope_alert_firing",
            "1 for each pending or firing alert, like Prometheus' ALERTS: its rule, severity, "
            "peer (empty for host and server rules) and alertstate (pending or firing).",
            labels=ALERT_LABELS,
        )
        for alert in self.alerting.active():
            firing.add_metric(
                (alert["rule"], alert["severity"], alert["peer_id"] or "", alert["state"]), 1.0
            )
        yield firing
        notifications = CounterMetricFamily(
            "peerscope_alert_notifications",
            "Alert events by notifier and outcome (count): sent, failed (given up after the "
            "last retry), retried (attempts that failed and were tried again) and dropped "
            "(pushed out of the notifier's full queue).",
            labels=("notifier", "outcome"),
        )
        for stats in self.alerting.notifier_stats():
            counts: Mapping[str, Any] = stats  # read by the OUTCOMES' names, all ints
            for outcome in OUTCOMES:
                notifications.add_metric((stats["name"], outcome), counts[outcome])
        yield notifications
