"""LANrage's ``core/observability/metrics.py`` over :class:`peerscope.Monitor`: the
``MetricsCollector``, its records and the module functions.

Method names, arguments, sync/async-ness and dict shapes follow the original; every number
comes from the Monitor. The deliberate differences are listed in :mod:`peerscope.compat.lanrage`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import deque
from typing import Any

from peerscope.compat.lanrage.connection_quality import (
    ConnectionQualityMonitor,
    ConnectionQualitySample,
)
from peerscope.compat.lanrage.metric_views import (
    GameSession,
    MetricPoint,
    PeerMetrics,
    PeerMetricsView,
    SystemMetrics,
    aggregate_metrics_by_window,
    ended_game_sessions,
)
from peerscope.compat.lanrage.peer_judgement import (
    lanrage_settings,
    predict_connection_quality,
    score_measurement,
)
from peerscope.core import quality
from peerscope.core.model import Session
from peerscope.core.validation import validate_number
from peerscope.events import PeerRemoved, PeerStatusChanged
from peerscope.message import PeerDetail
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
    "ConnectionQualityMonitor",
    "ConnectionQualitySample",
    "GameSession",
    "MetricPoint",
    "MetricsCollector",
    "PeerMetrics",
    "SystemMetrics",
    "aggregate_metrics_by_window",
    "lanrage_settings",
    "predict_connection_quality",
]

logger = logging.getLogger(__name__)

_QUALITY_LOG_EVERY = 60  # answered measurements between two "Peer … quality" debug lines


class MetricsCollector:
    """LANrage's collector, reading and writing a :class:`peerscope.Monitor`.

    ``config`` is LANrage's Config (never read). ``monitor`` wraps an existing Monitor, whose
    settings stay as they are; without one the collector builds its own from
    :func:`lanrage_settings`. ``peer_metrics``, ``system_metrics``, ``game_sessions`` and
    ``active_session`` are read-only views of the Monitor (see
    :mod:`peerscope.compat.lanrage.metric_views`); ``quality_monitor`` is LANrage's second
    scorer, fed by :meth:`record_latency`.
    """

    def __init__(self, config: object = None, *, monitor: Monitor | None = None) -> None:
        self.config = config
        if monitor is None:
            monitor = Monitor(lanrage_settings())
        self.monitor = monitor
        self.quality_monitor = ConnectionQualityMonitor(clock=monitor.now)
        self._session: Session | None = None
        self._peer_metrics = PeerMetricsView(monitor)
        self._system_metrics = SystemMetrics(monitor)
        monitor.subscribe(self._on_event)

    def _on_event(self, event: object) -> None:
        if isinstance(event, PeerRemoved):
            # A peer that came back under the same id since keeps its new samples.
            if event.peer_id not in self.monitor:
                self.quality_monitor.forget_peer(event.peer_id)
        elif isinstance(event, PeerStatusChanged) and event.status != "connected":
            status, peer_id, previous = event.status, event.peer_id, event.previous
            logger.warning("Connection %s: %s (was %s)", status, peer_id, previous)

    # --- views --------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.monitor.is_running

    @property
    def collection_interval(self) -> float:
        """Seconds between two samples of the host (the Monitor's tick)."""
        return self.monitor.settings.metrics_interval

    @property
    def peer_metrics(self) -> PeerMetricsView:
        return self._peer_metrics

    @property
    def system_metrics(self) -> SystemMetrics:
        return self._system_metrics

    @property
    def game_sessions(self) -> deque[GameSession]:
        """Every ended session the Monitor remembers, oldest first."""
        return ended_game_sessions(self.monitor)

    @property
    def active_session(self) -> GameSession | None:
        session = self._session
        if session is None or not session.active:
            return None
        return GameSession.from_session(session)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        logger.info("Starting metrics collection")
        await self.monitor.start()
        logger.info("Metrics collection loop started")

    async def stop(self) -> None:
        logger.info("Stopping metrics collection")
        await self.monitor.stop()

    # --- recording ----------------------------------------------------------------------------

    def add_peer(self, peer_id: str, peer_name: str) -> None:
        new = peer_id not in self._peer_metrics
        self.monitor.add_peer(peer_id, name=peer_name)
        self.quality_monitor.register_peer(peer_id)
        if new and logger.isEnabledFor(logging.DEBUG):
            logger.debug("Added peer to metrics tracking: %s (%s)", peer_name, peer_id)

    def remove_peer(self, peer_id: str) -> None:
        removed = self.monitor.remove_peer(peer_id)
        self.quality_monitor.forget_peer(peer_id)
        if removed and logger.isEnabledFor(logging.DEBUG):
            logger.debug("Removed peer from metrics tracking: %s", peer_id)

    async def record_latency(self, peer_id: str, latency: float | None) -> None:
        """One RTT in ms, or None for a measurement that failed (counted as lost).

        An answered one is also scored by :attr:`quality_monitor` from the Monitor's figures.
        """
        debug = logger.isEnabledFor(logging.DEBUG)
        try:
            self.monitor.record_latency(peer_id, latency)
        except UnknownPeerError:
            if debug:
                logger.debug("Latency recorded for unknown peer: %s", peer_id)
            return
        if latency is None:
            self.quality_monitor.record_failed_measurement(peer_id)
            if debug:
                logger.debug("No latency recorded for %s - connection issue detected", peer_id)
            return
        try:
            entry = self.monitor.peer(peer_id)
        except KeyError:  # removed by another thread meanwhile
            return
        sample = score_measurement(self.quality_monitor, entry, latency)
        if debug:
            _log_measurement(entry, sample)

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

    async def start_game_session(self, game_id: str, game_name: str, peers: list[str]) -> None:
        """Open a session; an open one is ended first (so ``game_id`` may be reused)."""
        self._end_session()
        session_id = self.monitor.start_session(game_name, peers, session_id=game_id)
        self._session = self.monitor.session(session_id)
        logger.info("Starting game session: %s (%s) with %d peers", game_name, game_id, len(peers))

    async def end_game_session(self) -> GameSession | None:
        """End the open session and return it (None, with a warning, when none is open)."""
        ended = self._end_session()
        if ended is None:
            logger.warning("End game session called but no active session")
        return ended

    def _end_session(self) -> GameSession | None:
        session, self._session = self._session, None
        if session is None:
            return None
        # Someone may have ended it through the Monitor directly; the object then already
        # carries its end time.
        with contextlib.suppress(KeyError):
            if session.active:
                session = self.monitor.end_session(session.session_id)
        ended = GameSession.from_session(session)
        average = "unavailable" if ended.avg_latency is None else f"{ended.avg_latency:.1f}ms"
        logger.info(
            "Ended game session: %s (duration: %.1fs, avg_latency: %s)",
            ended.game_name,
            ended.duration,
            average,
        )
        return ended

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
        """The Monitor's figures of the peer, with the second scorer's newest sample
        (``advanced``) and its 5-minute averages (``rolling_5m``) once it has them."""
        try:
            entry = self.monitor.peer(peer_id)
        except KeyError:
            return None
        result: dict[str, Any] = {
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
        latest = self.quality_monitor.get_latest(peer_id)
        if latest is not None:
            result["advanced"] = {
                "quality_score": latest.quality_score,
                "quality_grade": latest.quality_grade,
                "latency_ms": latest.latency_ms,
                "jitter_ms": latest.jitter_ms,
                "packet_loss_percent": latest.packet_loss_percent,
                "bandwidth_mbps": latest.bandwidth_mbps,
                "stability_percent": latest.stability_percent,
            }
        rolling = self.quality_monitor.get_rolling_average(peer_id)
        if rolling is not None:
            result["rolling_5m"] = rolling
        return result

    def get_quality_rolling_average(self, peer_id: str) -> dict[str, float | str] | None:
        """The second scorer's averages over its last 5 minutes; None without samples."""
        return self.quality_monitor.get_rolling_average(peer_id)

    def get_quality_hourly_aggregates(self, peer_id: str) -> list[dict[str, float | str]]:
        """The second scorer's kept samples by clock hour, oldest first."""
        return self.quality_monitor.get_hourly_aggregates(peer_id)

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


def _log_measurement(entry: PeerDetail, sample: ConnectionQualitySample) -> None:
    """LANrage's debug lines for an answered measurement (the caller checked DEBUG is on)."""
    peer_id, answered = entry["client_id"], entry["probes"]["received"]
    if answered % _QUALITY_LOG_EVERY == 0:
        score = entry["quality_score"]
        logger.debug(
            "Peer %s quality=%s score=%s trend=%s latency_samples=%d",
            peer_id,
            entry["band"],
            "none" if score is None else f"{score:.1f}",
            entry["trend"],
            answered,
        )
    logger.debug(
        "Advanced quality sample peer=%s score=%.1f grade=%s latency=%.1fms jitter=%.1fms "
        "loss=%.1f%% stability=%.1f%%",
        peer_id,
        sample.quality_score,
        sample.quality_grade,
        sample.latency_ms,
        sample.jitter_ms,
        sample.packet_loss_percent,
        sample.stability_percent,
    )
