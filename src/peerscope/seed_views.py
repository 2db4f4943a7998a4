"""The LANrage seed's shapes of the Monitor's figures, read through its public API.

REST's seed paths (``/api/metrics/...``) and the LANrage adapter
(:mod:`peerscope.compat.lanrage`) answer in these shapes; both build them here, so neither
output reaches into the other and the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from peerscope.core.model import Session
from peerscope.message import PeerDetail
from peerscope.monitor import Monitor

# The seed's keys for the host series in its history, and the Monitor's series behind them.
SYSTEM_HISTORY_KEYS = {
    "cpu": "cpu_percent",
    "memory": "memory_percent",
    "network_sent": "network_sent_rate",
    "network_received": "network_recv_rate",
}
# "All the history there is": system history accepts any window, but aggregate() wants a
# finite one, and ~30 years outlasts any ring.
_ALL_HISTORY_S = 1e9
_BYTES_PER_MB = 1024.0 * 1024.0


def seed_points(points: Iterable[tuple[float, float]]) -> list[dict[str, float]]:
    """The seed's ``[{timestamp, value}]`` of ``(t, value)`` points."""
    return [{"timestamp": t, "value": v} for t, v in points]


def summarise_peer(
    monitor: Monitor,
    peer_id: str,
) -> tuple[PeerDetail, dict[str, Any]] | None:
    """A peer's figures (``Monitor.peer``) and the seed's summary of them; None if unknown."""
    try:
        entry = monitor.peer(peer_id)
        # Every stored sample was taken after connecting; the extra second covers the ring's
        # millisecond rounding of timestamps.
        stats = monitor.latency_stats(peer_id, entry["connection_duration"] + 1.0)
    except KeyError:
        return None
    return entry, {
        "peer_id": peer_id,
        "peer_name": entry["name"],
        "status": entry["status"],
        "latency": {
            "current": entry["latency_ms"],
            "average": stats["avg"],
            "min": stats["min"],
            "max": stats["max"],
        },
        "bandwidth": {"sent": entry["bytes_sent"], "received": entry["bytes_received"]},
        "packets": {"sent": entry["packets_sent"], "received": entry["packets_received"]},
        "uptime": entry["connection_duration"],
        "last_seen": entry["last_seen"],
    }


def system_summary(monitor: Monitor) -> dict[str, Any]:
    """The host now, with average and maximum over the kept history; 0 where nothing was
    sampled."""
    system = monitor.system
    figures: dict[str, dict[str, float]] = {}
    for key in ("cpu", "memory"):
        name = SYSTEM_HISTORY_KEYS[key]
        stats = monitor.system_stats(name, _ALL_HISTORY_S)
        figures[key] = {
            "current": getattr(system, name) if system.available else 0.0,
            "average": stats["avg"] or 0.0,
            "max": stats["max"] or 0.0,
        }
    return {
        "cpu": figures["cpu"],
        "memory": figures["memory"],
        "network": {
            "sent_rate": system.network_sent_rate,
            "recv_rate": system.network_recv_rate,
            "total_sent": system.network_sent_mb * _BYTES_PER_MB,
            "total_recv": system.network_recv_mb * _BYTES_PER_MB,
        },
    }


def game_sessions(monitor: Monitor, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` ended sessions, oldest first, as the seed's game sessions."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit: must be an integer >= 0, got {limit!r}")
    return [
        game_session(session) for session in reversed(monitor.sessions(limit, include_active=False))
    ]


def game_session(session: Session) -> dict[str, Any]:
    """One session as the seed's game session (what the history store keeps of it too)."""
    stats = session.latency_stats()
    ended = session.ended_at
    return {
        "game_id": session.session_id,
        "game_name": session.name,
        "started_at": session.started_at,
        "ended_at": ended,
        "duration": None if ended is None else ended - session.started_at,
        "peers": list(session.peer_ids),
        "latency": {
            "average": stats["avg_latency"],
            "min": stats["min_latency"],
            "max": stats["max_latency"],
            "p95": stats["p95_latency"],
        },
    }
