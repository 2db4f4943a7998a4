"""The alerts in the Prometheus exposition: ``peerscope_alert_firing``, one series per pending
or firing alert as Prometheus' own ``ALERTS`` has, and each notifier's outcomes as
``peerscope_alert_notifications_total``.

A host or server rule's alert has ``peer_id=""`` (Prometheus reads an empty label as none).
Both families are declared even when empty, so a query names them before the first alert.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from peerscope.alerting import Alerting
from peerscope.export.sliced_exposition import Families, family_steps
from peerscope.slices import Steps, finish

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
        return b"".join(finish(self.render_steps()))

    def render_steps(self) -> Steps[list[bytes]]:
        """:meth:`render` in steps of ``RENDER_SLICE`` alerts: an outage fires an alert per
        peer, thousands at once, and the loop runs between the steps."""
        pieces = yield from family_steps(_firing, self.alerting.exposed())
        pieces.append(generate_latest(Families([self._notifications()])))
        return pieces

    def collect(self) -> Iterator[Metric]:
        yield _firing(self.alerting.exposed())
        yield self._notifications()

    def _notifications(self) -> Metric:
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
        return notifications


def _firing(alerts: Sequence[tuple[str, str, str, str]]) -> Metric:
    firing = GaugeMetricFamily(
        "peerscope_alert_firing",
        "1 for each pending or firing alert, like Prometheus' ALERTS: its rule, severity, "
        "peer (empty for host and server rules) and alertstate (pending or firing).",
        labels=ALERT_LABELS,
    )
    for labels in alerts:
        firing.add_metric(labels, 1.0)
    return firing
