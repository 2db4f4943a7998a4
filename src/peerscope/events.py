"""What the Monitor tells its subscribers. Handlers run on the Monitor's event loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from peerscope.core.model import PeerKind, ServerStats, SystemSample
from peerscope.core.quality import Status
from peerscope.message import (
    MetricsMessage,
    NetworkEntry,
    PeerEntry,
    server_entry,
    system_entry,
)


class PeerReading(NamedTuple):
    """A peer's measured figures as a tick found them.

    A tick lists the peers whose readings changed since the tick before: a new sample, a
    probe lost, traffic or a report recorded, or a new status. A tuple, not a dict: a tick
    may carry thousands. Band, grade and MOS are functions of these (peerscope.core.quality).
    ``kind`` and ``labels`` ride along so that a subscriber can tell which peers a rule or
    a view is about without asking the Monitor (the labels are the peer's own mapping:
    read, never change it).
    """

    peer_id: str
    kind: PeerKind
    labels: Mapping[str, str]
    status: Status
    # None before the first sample and while the peer is unanswered or stale (see
    # peerscope.core.assessment): a dead link has no latency.
    latency_ms: float | None  # the newest sample
    smoothed_latency_ms: float | None
    jitter_ms: float | None  # by the configured jitter_method
    loss_percent: float
    quality_score: float | None  # None while unmeasured
    bytes_sent: int
    bytes_received: int
    last_seen: float
    # Counters the history store keeps per bucket: a bucket's loss is its lost / sent.
    probes_sent: int = 0  # answered, lost and in flight
    probes_lost: int = 0
    # The kernel's figures of a watched TCP connection (None when none is watched).
    tcp_rtt_ms: float | None = None
    tcp_total_retrans: int | None = None
    # When ``latency_ms`` was measured: a reading listed for another change (traffic, a
    # status) repeats the newest sample, which the store must not keep twice.
    measured_at: float | None = None
    # Loss one way and the other, for a peer whose reflector says (peerscope.core.path).
    forward_loss_percent: float | None = None
    return_loss_percent: float | None = None


@dataclass(frozen=True, slots=True)
class MetricsTick:
    """One tick: what everything later (the ``/ws`` message, alerts, the store) is built from.

    ``changed`` holds the readings of the peers that changed since the previous tick, so a
    subscriber keeps its own view up to date in O(changed), without reading every peer.
    ``worst`` are the entries of the ``max_clients_in_message`` worst peers (the message's
    ``clients``), worst first.
    """

    timestamp: float
    system: SystemSample
    server: ServerStats
    network: NetworkEntry
    changed: tuple[PeerReading, ...]
    worst: tuple[PeerEntry, ...]
    peers_total: int

    def message(self) -> MetricsMessage:
        """The ``/ws`` metrics message of this tick, built anew on each call."""
        return {
            "type": "metrics",
            "timestamp": self.timestamp,
            "system": system_entry(self.system),
            "server": server_entry(self.server),
            "network": self.network,
            "clients": list(self.worst),
            "clients_total": self.peers_total,
            "alerts": [],
            "alerts_total": 0,
        }


@dataclass(frozen=True, slots=True)
class PeerAdded:
    peer_id: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class PeerRemoved:
    peer_id: str
    timestamp: float
    reason: str  # "removed" by the app, or "pruned" after staying disconnected past the TTL


@dataclass(frozen=True, slots=True)
class PeerStatusChanged:
    peer_id: str
    previous: Status
    status: Status
    timestamp: float


@dataclass(frozen=True, slots=True)
class PeerPathChanged:
    """A probed peer's path changed: its probes reach the reflector with another IP TTL,
    so they cross another number of routers (peerscope.core.path)."""

    peer_id: str
    previous_ttl: int
    ttl: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session_id: str
    name: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class SessionEnded:
    session_id: str
    name: str
    timestamp: float


Event = (
    MetricsTick
    | PeerAdded
    | PeerRemoved
    | PeerStatusChanged
    | PeerPathChanged
    | SessionStarted
    | SessionEnded
)
