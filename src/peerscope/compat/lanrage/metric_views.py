"""LANrage's metric records (``MetricPoint``, ``PeerMetrics``, ``SystemMetrics``,
``GameSession``) as read-only views of a :class:`peerscope.Monitor`, and
``aggregate_metrics_by_window`` over a list of points.

LANrage's collector kept these as its own state; here every attribute is read from the
Monitor when it is read, so it always shows the Monitor as it is then, and nothing is kept
in step by hand. Writing is not supported: the views' attributes have no setters
(``AttributeError``), the peer mapping takes no items (``TypeError``), and ``MetricPoint``
and ``GameSession`` are frozen. The deques are built afresh at each read, so appending to
one changes nothing; record through the collector's methods instead.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from peerscope.core.model import Session
from peerscope.core.quality import Status, Trend
from peerscope.core.stats import aggregate
from peerscope.core.validation import validate_number
from peerscope.message import PeerDetail
from peerscope.monitor import Monitor
from peerscope.seed_views import SYSTEM_HISTORY_KEYS

__all__ = [
    "GameSession",
    "MetricPoint",
    "PeerMetrics",
    "PeerMetricsView",
    "SystemMetrics",
    "aggregate_metrics_by_window",
    "ended_game_sessions",
]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One timestamped value (epoch seconds), as LANrage's series stored them."""

    timestamp: float
    value: float


@dataclass(frozen=True)
class GameSession:
    game_id: str
    game_name: str
    started_at: float
    ended_at: float | None = None
    duration: float | None = None
    peers: list[str] = field(default_factory=list)
    avg_latency: float | None = None
    max_latency: float | None = None
    min_latency: float | None = None

    @classmethod
    def from_session(cls, session: Session) -> GameSession:
        stats = session.latency_stats()
        ended = session.ended_at
        return cls(
            game_id=session.session_id,
            game_name=session.name,
            started_at=session.started_at,
            ended_at=ended,
            duration=None if ended is None else ended - session.started_at,
            peers=list(session.peer_ids),
            avg_latency=stats["avg_latency"],
            max_latency=stats["max_latency"],
            min_latency=stats["min_latency"],
        )


def _points(samples: list[tuple[float, float]], capacity: int) -> deque[MetricPoint]:
    return deque((MetricPoint(t, value) for t, value in samples), maxlen=capacity)


class PeerMetrics:
    """One peer's figures, read from the Monitor at each access (``KeyError`` once the
    Monitor no longer has the peer)."""

    __slots__ = ("_monitor", "peer_id")

    def __init__(self, monitor: Monitor, peer_id: str) -> None:
        self._monitor = monitor
        self.peer_id = peer_id

    def __repr__(self) -> str:
        return f"PeerMetrics(peer_id={self.peer_id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PeerMetrics):
            return NotImplemented
        return self._monitor is other._monitor and self.peer_id == other.peer_id

    def __hash__(self) -> int:
        return hash((id(self._monitor), self.peer_id))

    def _entry(self) -> PeerDetail:
        return self._monitor.peer(self.peer_id)

    @property
    def peer_name(self) -> str | None:
        return self._entry()["name"]

    @property
    def latency(self) -> deque[MetricPoint]:
        """Every kept latency sample (ms), oldest first."""
        monitor = self._monitor
        samples = monitor.latency_history(self.peer_id, math.inf)
        return _points(samples, monitor.settings.latency_samples)

    @property
    def bytes_sent(self) -> int:
        return self._entry()["bytes_sent"]

    @property
    def bytes_received(self) -> int:
        return self._entry()["bytes_received"]

    @property
    def packets_sent(self) -> int:
        return self._entry()["packets_sent"]

    @property
    def packets_received(self) -> int:
        return self._entry()["packets_received"]

    @property
    def connection_uptime(self) -> float:
        """Seconds since the peer connected."""
        return self._entry()["connection_duration"]

    @property
    def last_seen(self) -> float:
        return self._entry()["last_seen"]

    @property
    def status(self) -> Status:
        return self._entry()["status"]

    @property
    def packet_loss_percent(self) -> float:
        return self._entry()["packet_loss_percent"]

    @property
    def jitter_ms(self) -> float | None:
        """None while the peer shows no figures (unanswered, or not measured lately)."""
        return self._entry()["jitter_ms"]

    @property
    def quality_score(self) -> float | None:
        """None before the first measurement."""
        return self._entry()["quality_score"]

    @property
    def quality_trend(self) -> Trend:
        return self._entry()["trend"]


class PeerMetricsView(Mapping[str, PeerMetrics]):
    """Peer id → :class:`PeerMetrics` for every peer the Monitor has now."""

    __slots__ = ("_monitor",)

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def __getitem__(self, peer_id: str) -> PeerMetrics:
        if peer_id not in self._monitor:
            raise KeyError(peer_id)
        return PeerMetrics(self._monitor, peer_id)

    def __contains__(self, peer_id: object) -> bool:
        try:
            return peer_id in self._monitor
        except TypeError:  # unhashable: no peer id
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._monitor.peer_ids)

    def __len__(self) -> int:
        return len(self._monitor.peer_ids)

    def __repr__(self) -> str:
        return f"PeerMetricsView({self._monitor.peer_ids!r})"


class SystemMetrics:
    """The host's kept samples, read from the Monitor at each access; network figures are
    rates in bytes per second."""

    __slots__ = ("_monitor",)

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def _series(self, key: str) -> deque[MetricPoint]:
        monitor = self._monitor
        samples = monitor.system_history(SYSTEM_HISTORY_KEYS[key], math.inf)
        return _points(samples, monitor.settings.system_history_samples)

    @property
    def cpu_percent(self) -> deque[MetricPoint]:
        return self._series("cpu")

    @property
    def memory_percent(self) -> deque[MetricPoint]:
        return self._series("memory")

    @property
    def network_sent(self) -> deque[MetricPoint]:
        return self._series("network_sent")

    @property
    def network_received(self) -> deque[MetricPoint]:
        return self._series("network_received")


def ended_game_sessions(monitor: Monitor) -> deque[GameSession]:
    """Every ended session the Monitor remembers, oldest first."""
    kept = monitor.settings.session_history
    ended = monitor.sessions(kept, include_active=False)
    return deque((GameSession.from_session(s) for s in reversed(ended)), maxlen=kept)


def aggregate_metrics_by_window(
    metrics: Iterable[MetricPoint], window_seconds: float = 60.0, current_time: float | None = None
) -> dict[str, Any]:
    """count/min/max/avg/p95/sum (plus p50/p99) of the points in the last ``window_seconds``.

    An empty window gives count 0, sum 0 and None for the rest, like the original.
    """
    window = validate_number(window_seconds, "window_seconds")
    now = time.time() if current_time is None else validate_number(current_time, "current_time")
    return dict(aggregate(((p.timestamp, p.value) for p in metrics), window, now))
