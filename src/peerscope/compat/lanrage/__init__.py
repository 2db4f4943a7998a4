"""LANrage's observability API over :class:`peerscope.Monitor`.

The submodules mirror LANrage's: ``from core.observability.metrics import X`` becomes
``from peerscope.compat.lanrage.metrics import X``; every name is importable from this
package too.
"""

from peerscope.compat.lanrage.metrics import (
    GameSession,
    MetricPoint,
    MetricsCollector,
    aggregate_metrics_by_window,
    predict_connection_quality,
)

__all__ = [
    "GameSession",
    "MetricPoint",
    "MetricsCollector",
    "aggregate_metrics_by_window",
    "predict_connection_quality",
]
