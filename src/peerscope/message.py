"""The shapes peerscope shows the outside world: the ``/ws`` metrics message and its parts.

The field names follow the WebSocket contract in DESIGN.md (and so the avatar seed);
extra fields are added beside them, never renamed.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from peerscope.core.assessment import Derived
from peerscope.core.model import Peer, ServerStats, SystemSample
from peerscope.core.quality import STATUSES, Grade, Status


def client_entry(peer: Peer, now: float, derived: Derived) -> dict[str, Any]:
    """One peer as listed in ``clients``. Unmeasured figures are None, not a fake 0."""
    return {
        "client_id": peer.peer_id,
        "name": peer.name,
        "address": peer.address,
        "kind": peer.kind,
        "labels": dict(peer.labels),
        "connected_at": peer.connected_at,
        "message_count": peer.message_count,
        "messages_sent": peer.messages_sent,
        "messages_received": peer.messages_received,
        "bytes_sent": peer.bytes_sent,
        "bytes_received": peer.bytes_received,
        "packets_sent": peer.packets_sent,
        "packets_received": peer.packets_received,
        "last_message_time": peer.last_message_time,
        "last_seen": peer.last_seen,
        "idle_seconds": peer.idle(now),
        "connection_duration": peer.uptime(now),
        "latency_ms": peer.last_latency_ms,
        "smoothed_latency_ms": peer.smoothed_latency_ms,
        "average_latency_ms": peer.average_latency_ms,
        "packet_loss_percent": peer.loss_percent,
        "quality_score": peer.quality_score,
        **derived,
        "fps": peer.fps,
        "frame_time_ms": peer.frame_time_ms,
        "status": peer.status,
    }


def probe_counts(peer: Peer) -> dict[str, int]:
    """The outcomes of a peer's sequence-numbered probes (and plain measurements)."""
    loss = peer.loss
    return {
        "sent": loss.sent_total,
        "received": loss.received_total,
        "lost": loss.lost_total,
        "in_flight": loss.in_flight,
        "late": loss.late,
        "reordered": loss.reordered,
        "duplicates": loss.duplicates,
        "unknown": loss.unknown,
    }


def system_entry(sample: SystemSample) -> dict[str, Any]:
    entry = asdict(sample)
    del entry["timestamp"]
    return entry


def server_entry(stats: ServerStats) -> dict[str, Any]:
    return asdict(stats)


def network_entry(score: float, grade: Grade, band: str,
                  counts: dict[Status, int]) -> dict[str, Any]:
    return {
        "score": score,
        "grade": grade,
        "band": band,
        "peers_by_status": {status: counts.get(status, 0) for status in STATUSES},
    }
