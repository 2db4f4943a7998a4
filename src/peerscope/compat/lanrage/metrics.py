"""LANrage's metrics API (``core/observability/metrics.py``) over :class:`peerscope.Monitor`.

Method names, arguments, sync/async-ness and the dict shapes follow the original; every
number comes from the Monitor. Deliberate differences from the original:

- ``start()`` starts the Monitor's tick loop (keeping its task; host sampling never blocks the
  event loop) and ``stop()`` waits for it to end. The host is sampled every
  ``Settings.metrics_interval`` (default 1 s) instead of every 10 s.
- ``uptime`` / ``uptime_seconds`` is the time since the peer connected, not since it was last
  seen. Packet counters are the Monitor's rather than always 0.
- Jitter is the Monitor's (RFC 3550 by default; ``Settings.quality.jitter_method="stddev"``
  gives the original's standard deviation over recent samples).
- Packet loss is tracked: ``record_packet_loss`` reports it to the Monitor (clamped to 0..100
  as the original did) and a failed measurement (``record_latency(peer, None)``) counts as
  lost; the score uses it at the next refresh, not only at the next latency sample.
- Quality score, band, trend and status are the Monitor's: the score uses the smoothed
  latency, so one spike does not degrade a peer; an unmeasured peer's score is None, not 100;
  status also follows failures in a row and idle time (silent 15 s → degraded by default).
- ``get_network_quality_score`` / ``_report`` use the Monitor's network score
  (0.9·mean peer score + 0.1·(100 − current CPU%)). The original's second scorer
  (``ConnectionQualityMonitor``: bandwidth and stability) is not reproduced, so the per-peer
  ``advanced``/``rolling_5m`` blocks and ``get_quality_rolling_average`` /
  ``get_quality_hourly_aggregates`` are absent.
- ``remove_peer`` forgets the peer (the Monitor has no "keep as disconnected" call); it no
  longer shows in summaries. ``add_peer`` on a known id updates the display name.
- Game sessions are Monitor sessions (``game_id`` is the session id): their latency figures
  come only from samples recorded during the session; starting a session while one is open
  ends the open one (it is kept in the history) instead of discarding it;
  ``end_game_session`` returns the ended :class:`GameSession`; ``get_game_sessions`` lists
  every ended session of the Monitor, and ``limit=0`` returns none rather than all.
- ``get_system_summary``'s ``total_sent``/``total_recv`` are the host's interface byte
  counters (psutil, since boot) instead of an estimate from rates × interval.
- Time windows keep samples with ``now − window < t <= now``: the start is exclusive and
  samples stamped after ``now`` are left out. Extra keys sit beside the original's: ``p50`` and
  ``p99`` in aggregates, ``p95`` in session latency, ``grade`` and ``mos`` in peer quality.
- Unknown peers are ignored, as in the original, with the collector's own Monitor; a wrapped
  Monitor applies its ``unknown_peer`` setting. Bad input (NaN, negative latency, negative
  byte counts, windows) raises ``ValueError`` naming the argument.
- ``config`` is accepted and kept but never read, exactly as before.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from peerscope.config import Settings
from peerscope.core import quality
from peerscope.core.model import Session
from peerscope.core.stats import aggregate
from peerscope.core.validation import validate_number
from peerscope.monitor import Monitor
from peerscope.peer_table import UnknownPeerError
from peerscope.seed_views import (
    SYSTEM_HISTORY_KEYS,
    game_sessions,
    seed_points,
    summarise_peer,
    system_summary,
)
from peerscope.slices import Steps, run_sliced

__all__ = [
    "GameSession",
    "MetricPoint",
    "MetricsCollector",
    "aggregate_metrics_by_window",
    "predict_connection_quality",
]


@dataclass
class MetricPoint:
    """One timestamped value (epoch seconds), as LANrage's series stored them."""

    timestamp: float
    value: float


@dataclass
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


def predict_connection_quality(
    latency_ms: float, packet_loss_percent: float = 0.0, jitter_ms: float = 0.0
) -> tuple[float, str]:
    """Score 0..100 and band (excellent/good/fair/poor/bad) from the default quality formula."""
    latency = validate_number(latency_ms, "latency_ms")
    loss = validate_number(packet_loss_percent, "packet_loss_percent", high=100.0)
    jitter = validate_number(jitter_ms, "jitter_ms")
    score = quality.quality_score(latency, loss, jitter)
    return score, quality.quality_band(score)


def aggregate_metrics_by_window(
    metrics: Iterable[MetricPoint], window_seconds: float = 60.0, current_time: float | None = None
) -> dict[str, Any]:
    """count/min/max/avg/p95/sum (plus p50/p99) of the points in the last ``window_seconds``.

    An empty window gives count 0, sum 0 and None for the rest, like the original.
    """
    window = validate_number(window_seconds, "window_seconds")
    now = time.time() if current_time is None else validate_number(current_time, "current_time")
    return dict(aggregate(((p.timestamp, p.value) for p in metrics), window, now))


class MetricsCollector:
    """LANrage's collector, reading and writing a :class:`peerscope.Monitor`.

    ``config`` is LANrage's Config (never read). ``monitor`` wraps an existing Monitor;
    without one the collector builds its own from ``PEERSCOPE_*`` settings, set to refuse
    unknown peers so the collector can ignore them as the original did.
    """

    def __init__(self, config: object = None, *, monitor: Monitor | None = None) -> None:
        self.config = config
        if monitor is None:
            monitor = Monitor(Settings.load(unknown_peer="raise"))
        self.monitor = monitor
        self._session: Session | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.monitor.is_running

    async def start(self) -> None:
        await self.monitor.start()

    async def stop(self) -> None:
        await self.monitor.stop()

    # --- recording ----------------------------------------------------------------------------

    def add_peer(self, peer_id: str, peer_name: str) -> None:
        self.monitor.add_peer(peer_id, name=peer_name)

    def remove_peer(self, peer_id: str) -> None:
        self.monitor.remove_peer(peer_id)

    async def record_latency(self, peer_id: str, latency: float | None) -> None:
        """One RTT in ms, or None for a measurement that failed (counted as lost)."""
        try:
            self.monitor.record_latency(peer_id, latency)
        except UnknownPeerError:
            return

    async def record_bandwidth(
        self, peer_id: str, bytes_sent: int = 0, bytes_received: int = 0
    ) -> None:
        try:
            self.monitor.record_traffic(
                peer_id, bytes_sent=bytes_sent, bytes_received=bytes_received
            )
        except UnknownPeerError:
            return

    async def record_packet_loss(self, peer_id: str, packet_loss: float) -> None:
        # The seed clamps to 0..100; only what is not a finite number is refused.
        loss = validate_number(packet_loss, "packet_loss", low=-math.inf)
        try:
            self.monitor.record_loss(peer_id, min(100.0, max(0.0, loss)))
        except UnknownPeerError:
            return

    # --- game sessions ------------------------------------------------------------------------

    @property
    def active_session(self) -> GameSession | None:
        session = self._session
        if session is None or not session.active:
            return None
        return GameSession.from_session(session)

    async def start_game_session(self, game_id: str, game_name: str, peers: list[str]) -> None:
        """Open a session; an open one is ended first (so ``game_id`` may be reused)."""
        await self.end_game_session()
        session_id = self.monitor.start_session(game_name, peers, session_id=game_id)
        self._session = self.monitor.session(session_id)

    async def end_game_session(self) -> GameSession | None:
        """End the open session and return it (None when none is open)."""
        session, self._session = self._session, None
        if session is None:
            return None
        # Someone may have ended it through the Monitor directly; the object then already
        # carries its end time.
        with contextlib.suppress(KeyError):
            if session.active:
                session = self.monitor.end_session(session.session_id)
        return GameSession.from_session(session)

    def get_game_sessions(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last ``limit`` ended sessions, oldest first."""
        return game_sessions(self.monitor, limit)

    # --- peer queries -------------------------------------------------------------------------

    async def get_peer_summary(self, peer_id: str) -> dict[str, Any] | None:
        found = summarise_peer(self.monitor, peer_id)
        return None if found is None else found[1]

    async def get_all_peers_summary(self) -> list[dict[str, Any]]:
        """Every peer's summary; built in slices that let the event loop run in between."""
        return await run_sliced(self._all_peers_summary())

    def _all_peers_summary(self) -> Steps[list[dict[str, Any]]]:
        summaries = []
        for peer_id in self.monitor.peer_ids:
            found = summarise_peer(self.monitor, peer_id)
            if found is not None:  # removed meanwhile
                summaries.append(found[1])
            yield
        return summaries

    def get_latency_history(self, peer_id: str, duration: float = 3600) -> list[dict[str, float]]:
        window = validate_number(duration, "duration")
        try:
            points = self.monitor.latency_history(peer_id, window)
        except KeyError:
            return []
        return seed_points(points)

    def get_peer_connection_quality(self, peer_id: str) -> dict[str, Any] | None:
        try:
            entry = self.monitor.peer(peer_id)
        except KeyError:
            return None
        return {
            "peer_id": peer_id,
            "peer_name": entry["name"],
            "quality_score": entry["quality_score"],
            "quality_status": entry["band"],
            "quality_trend": entry["trend"],
            "status": entry["status"],
            "avg_latency_ms": entry["average_latency_ms"],
            "jitter_ms": entry["jitter_ms"],
            "packet_loss_percent": entry["packet_loss_percent"],
            "bytes_sent": entry["bytes_sent"],
            "bytes_received": entry["bytes_received"],
            "uptime_seconds": entry["connection_duration"],
            "grade": entry["grade"],
            "mos": entry["mos"],
        }

    def get_aggregated_peer_metrics(
        self, peer_id: str, window_seconds: float = 60.0
    ) -> dict[str, Any] | None:
        window = validate_number(window_seconds, "window_seconds")
        try:
            entry = self.monitor.peer(peer_id)
            stats = self.monitor.latency_stats(peer_id, window)
        except KeyError:
            return None
        return {
            "peer_id": peer_id,
            "peer_name": entry["name"],
            "latency": dict(stats),
            "quality_score": entry["quality_score"],
            "quality_trend": entry["trend"],
            "status": entry["status"],
            "window_seconds": window_seconds,
            "timestamp": self.monitor.now(),
        }

    # --- system and network -------------------------------------------------------------------

    def get_system_summary(self) -> dict[str, Any]:
        """Current, average and maximum over the kept history; 0 where nothing was sampled."""
        return system_summary(self.monitor)

    def get_system_history(self, duration: float = 3600) -> dict[str, list[dict[str, float]]]:
        window = validate_number(duration, "duration")
        return {
            key: seed_points(self.monitor.system_history(name, window))
            for key, name in SYSTEM_HISTORY_KEYS.items()
        }

    def get_aggregated_system_metrics(self, window_seconds: float = 60.0) -> dict[str, Any]:
        window = validate_number(window_seconds, "window_seconds")
        result: dict[str, Any] = {
            key: dict(self.monitor.system_stats(name, window))
            for key, name in SYSTEM_HISTORY_KEYS.items()
        }
        result["window_seconds"] = window_seconds
        result["timestamp"] = self.monitor.now()
        return result

    def get_network_quality_score(self) -> float:
        score: float = self.monitor.snapshot()["network"]["score"]
        return score

    def get_network_quality_report(self) -> dict[str, Any]:
        network = self.monitor.snapshot()
        scored = [entry for entry in self.monitor.peers() if entry["quality_score"] is not None]
        cpu = network["system"]["cpu_percent"]
        return {
            "score": network["network"]["score"],
            "grade": network["network"]["grade"],
            "peer_count": len(scored),
            # With no peer scores the network score is the host's part alone.
            "system_score": quality.network_score([], cpu, self.monitor.settings.quality),
            "peer_grades": {entry["client_id"]: entry["grade"] for entry in scored},
        }
