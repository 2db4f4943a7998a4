"""What the Monitor tells its subscribers. Handlers run on the Monitor's event loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peerscope.core.quality import Status


@dataclass(frozen=True, slots=True)
class MetricsTick:
    """A tick's metrics message (the ``/ws`` contract), built once for every subscriber."""

    message: dict[str, Any]
    timestamp: float


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
class SessionStarted:
    session_id: str
    name: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class SessionEnded:
    session_id: str
    name: str
    timestamp: float


Event = MetricsTick | PeerAdded | PeerRemoved | PeerStatusChanged | SessionStarted | SessionEnded
