"""What the store takes in from the Monitor: a tick's figures per series, and the events kept.

The event loop hands the writer thread the tick itself (immutable) and these small records;
turning them into rows is the writer's work, off the loop.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from peerscope.core import quality
from peerscope.core.rollup import FIGURES, SeriesKind
from peerscope.events import MetricsTick, PeerReading

__all__ = ["PeerKeys", "PeerMeta", "StoredEvent", "tick_samples"]

HOST_KEY = "host"
SERVER_KEY = "server"


@dataclass(frozen=True, slots=True)
class PeerMeta:
    """A peer's name, address, kind and labels as they were when it was added."""

    peer_id: str
    timestamp: float
    name: str | None
    address: str | None
    kind: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """Something that happened, kept as it was: a status change, a session, an alert.
    ``peer_id`` ties it to a peer's series (None for the host's and the server's own)."""

    timestamp: float
    type: str
    peer_id: str | None
    data: Mapping[str, Any]


class PeerKeys:
    """A peer's key in the store: its id, or with ``anonymize_ids`` an HMAC-SHA256 of it
    under the database's own random salt, so the file never holds the raw id while the
    same peer always finds its history."""

    def __init__(self, salt: bytes | None) -> None:
        self._salt = salt
        self._cache: dict[str, str] = {}

    @staticmethod
    def new_salt() -> str:
        return secrets.token_hex(16)

    @property
    def anonymized(self) -> bool:
        return self._salt is not None

    def key(self, peer_id: str) -> str:
        if self._salt is None:
            return peer_id
        found = self._cache.get(peer_id)
        if found is None:
            digest = hmac.new(self._salt, peer_id.encode(), hashlib.sha256).hexdigest()
            found = self._cache[peer_id] = digest[:32]
        return found


def _peer_values(reading: PeerReading, fresh: bool) -> tuple[float | None, ...]:
    latency, jitter, loss = reading.latency_ms, reading.jitter_ms, reading.loss_percent
    if not fresh:
        latency = None
    mos = None if latency is None or jitter is None else quality.mos(latency, jitter, loss)
    return (
        latency,
        jitter,
        loss,
        reading.quality_score,
        mos,
        reading.tcp_rtt_ms,
        reading.bytes_sent,
        reading.bytes_received,
        reading.probes_sent,
        reading.probes_lost,
        reading.tcp_total_retrans,
    )


_HOST = tuple(figure.name for figure in FIGURES["host"])
_SERVER = tuple(figure.name for figure in FIGURES["server"])


def tick_samples(
    tick: MetricsTick, keys: PeerKeys, measured: dict[str, float]
) -> Iterator[tuple[SeriesKind, str, tuple[float | None, ...]]]:
    """Each series' figures in this tick, in :data:`FIGURES` order: the host's (when psutil
    read it), the server's, and those of every peer whose readings changed. A peer's latency
    is kept only when it is a new measurement (``measured`` holds, per peer, the time of
    the last one kept, and is updated here), so a raw sample is never counted twice."""
    system = tick.system
    if system.available:
        yield "host", HOST_KEY, tuple(getattr(system, name) for name in _HOST)
    server = tick.server
    yield "server", SERVER_KEY, tuple(getattr(server, name) for name in _SERVER)
    key = keys.key
    for reading in tick.changed:
        peer_id, measured_at = reading.peer_id, reading.measured_at
        fresh = False
        if measured_at is not None and measured_at != measured.get(peer_id):
            measured[peer_id] = measured_at
            fresh = True
        yield "peer", key(peer_id), _peer_values(reading, fresh)
