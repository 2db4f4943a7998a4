"""The Prometheus exposition served: ``render`` and :class:`MetricsApp`, the ASGI app (as
prometheus_client's ``make_asgi_app``) that the agent mounts at ``/metrics``.

One :class:`~peerscope.export.prometheus.MonitorCollector` (and registry) per Monitor,
kept while the Monitor lives; given an Alerting, its families
(:mod:`peerscope.export.alert_metrics`) follow the Monitor's.
"""

from __future__ import annotations

import threading
import weakref

from starlette.types import Receive, Scope, Send

from peerscope.alerting import Alerting
from peerscope.export.alert_metrics import AlertCollector
from peerscope.export.profiler_metrics import ProfilerCollector
from peerscope.export.prometheus import CONTENT_TYPE, MonitorCollector
from peerscope.monitor import Monitor
from peerscope.pieces import pieces_response
from peerscope.profiler import Profiler
from peerscope.slices import Steps, Turns, finish

__all__ = ["MetricsApp", "render", "render_steps"]

_collectors: weakref.WeakKeyDictionary[Monitor, MonitorCollector] = weakref.WeakKeyDictionary()
_collectors_lock = threading.Lock()


def render(
    monitor: Monitor, *, alerting: Alerting | None = None, profiler: Profiler | None = None
) -> tuple[bytes, str]:
    """The /metrics body for ``monitor`` (and ``alerting``, ``profiler``) and its
    Content-Type."""
    body = b"".join(finish(render_steps(monitor, alerting=alerting, profiler=profiler)))
    return body, CONTENT_TYPE


def render_steps(
    monitor: Monitor, *, alerting: Alerting | None = None, profiler: Profiler | None = None
) -> Steps[list[bytes]]:
    """The /metrics body for ``monitor``, built in steps (``MonitorCollector.render_steps``),
    then ``alerting``'s families and ``profiler``'s."""
    pieces = yield from _collector(monitor).render_steps()
    if alerting is not None:
        pieces += yield from AlertCollector(alerting).render_steps()
    if profiler is not None:
        pieces += yield from ProfilerCollector(profiler).render_steps()
    return pieces


class MetricsApp:
    """The exposition of ``monitor`` as an ASGI app: every request gets the whole of it.

    Rendered a slice at a time in ``turns``, so the event loop runs between slices; pass the
    ``Turns`` the REST API's reads of every peer use (``create_app(turns=...)``), so that a
    scrape and a listing take turns rather than stalling the loop side by side. Sent in
    pieces, as rendered. It checks no token and no method: mounted with
    ``create_app(monitor, metrics=...)`` it is served at ``/metrics`` for GET, behind the
    API's token (unless ``metrics_public``) and Host check. With ``alerting``, the alerts
    (``peerscope_alert_firing``) and notifications follow the Monitor's series; with
    ``profiler``, the profiled names' figures (``peerscope_profiled_seconds``) after them.
    """

    def __init__(
        self,
        monitor: Monitor,
        *,
        turns: Turns | None = None,
        alerting: Alerting | None = None,
        profiler: Profiler | None = None,
    ) -> None:
        self.monitor = monitor
        self.turns = Turns() if turns is None else turns
        self.alerting = alerting
        self.profiler = profiler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "MetricsApp serves HTTP requests only"
        steps = render_steps(self.monitor, alerting=self.alerting, profiler=self.profiler)
        pieces = await self.turns.run(steps)
        await pieces_response(pieces, CONTENT_TYPE)(scope, receive, send)


def _collector(monitor: Monitor) -> MonitorCollector:
    """One collector (and registry) per Monitor, kept while the Monitor lives."""
    with _collectors_lock:
        collector = _collectors.get(monitor)
        if collector is None:
            collector = _collectors[monitor] = MonitorCollector(monitor, weak=True)
    return collector
