"""The shapes peerscope shows the outside world: the ``/ws`` metrics message and its parts.

The field names follow the WebSocket contract in DESIGN.md (and so the avatar seed);
extra fields are added beside them, never renamed. Each shape is a TypedDict: plain dicts at
run time (ready for JSON, no copy), typed for mypy, and the one definition the REST schemas
(pydantic reads TypedDicts) and the message share.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

# pydantic reads a TypedDict only from typing_extensions before Python 3.12.
from typing_extensions import TypedDict

from peerscope.core.assessment import Derived
from peerscope.core.kernel_tcp import TcpInfo
from peerscope.core.model import Peer, PeerKind, ServerStats, SystemSample
from peerscope.core.path import PathFigures, PathState
from peerscope.core.quality import STATUSES, Band, Grade, Status, Trend
from peerscope.core.status_reason import StatusReason


class TcpEntry(TypedDict):
    """A watched TCP connection as the kernel reports it (``Monitor.watch_connection``):
    smoothed RTT, its variation and the lowest seen (ms), retransmission timeouts in a row
    now, segments retransmitted over the connection's life, segments in flight taken as
    lost, segments sent, and the delivery rate in bits per second. Figures an older kernel
    does not report are None."""

    rtt_ms: float
    rttvar_ms: float
    min_rtt_ms: float | None
    retransmits: int
    total_retrans: int
    lost: int
    segs_out: int | None
    delivery_rate_bps: int | None


class PathEntry(PathFigures):
    """Both directions of a peer's path, from its TWAMP or STAMP replies
    (:class:`peerscope.core.path.PathFigures`), and when it last changed (epoch seconds)."""

    last_path_change: float | None


class PeerEntry(TypedDict):
    """A peer as listed in the message's ``clients``. Unmeasured figures are None (null),
    not a fake 0; so are the measured ones while the peer is unanswered or stale
    (peerscope.core.assessment), with ``last_measured_at`` saying how old they would be."""

    client_id: str
    name: str | None
    address: str | None
    kind: PeerKind
    labels: dict[str, str]
    connected_at: float
    message_count: int
    messages_sent: int
    messages_received: int
    bytes_sent: int
    bytes_received: int
    packets_sent: int
    packets_received: int
    last_message_time: float | None
    last_seen: float
    idle_seconds: float
    connection_duration: float
    latency_ms: float | None
    smoothed_latency_ms: float | None
    average_latency_ms: float | None
    last_measured_at: float | None
    packet_loss_percent: float
    quality_score: float | None
    jitter_ms: float | None
    band: Band | None
    grade: Grade | None
    mos: float | None
    trend: Trend
    fps: float | None
    frame_time_ms: float | None
    status: Status
    status_reason: StatusReason
    status_text: str
    tcp: TcpEntry | None
    app_rtt_ms: float | None
    path: PathEntry | None


class ProbeCounts(TypedDict):
    """The outcomes of a peer's sequence-numbered probes (and plain measurements)."""

    sent: int
    received: int
    lost: int
    in_flight: int
    late: int
    reordered: int
    duplicates: int
    unknown: int


class PeerDetail(PeerEntry):
    """One peer as :meth:`peerscope.monitor.Monitor.peer` returns it: its entry and its
    probes' outcomes."""

    probes: ProbeCounts


class SystemEntry(TypedDict):
    """The host and this process, as the message's ``system``."""

    cpu_percent: float
    memory_percent: float
    memory_used_mb: float
    memory_total_mb: float
    network_sent_mb: float
    network_recv_mb: float
    network_sent_rate: float
    network_recv_rate: float
    process_cpu_percent: float
    process_rss_mb: float
    process_threads: int
    process_fds: int
    available: bool


class ServerEntry(TypedDict):
    """The server's own figures, as the message's ``server``."""

    uptime_seconds: float
    active_connections: int
    total_connections: int
    total_messages: int
    messages_per_second: float
    messages_in_per_second: float
    messages_out_per_second: float
    average_latency_ms: float
    loop_lag_ms: float | None
    loop_lag_p99_ms: float | None


class NetworkEntry(TypedDict):
    """The network as a whole: its 0-100 score, grade and band, and peers by status."""

    score: float
    grade: Grade
    band: Band
    peers_by_status: dict[Status, int]


class MetricsMessage(TypedDict):
    """The message ``/ws`` pushes every tick (and :meth:`Monitor.snapshot` returns)."""

    type: Literal["metrics"]
    timestamp: float
    system: SystemEntry
    server: ServerEntry
    network: NetworkEntry
    clients: list[PeerEntry]
    clients_total: int
    alerts: list[dict[str, Any]]
    alerts_total: int


def client_entry(peer: Peer, now: float, derived: Derived) -> PeerEntry:
    """One peer as listed in ``clients``."""
    connection = peer.connection
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
        "packet_loss_percent": peer.loss_percent,
        "quality_score": peer.quality_score,
        **derived,
        "fps": peer.fps,
        "frame_time_ms": peer.frame_time_ms,
        "status": peer.status,
        "tcp": None if connection is None else tcp_entry(connection.info),
        "app_rtt_ms": None if connection is None else connection.app_rtt_ms,
        "path": None if peer.path is None else path_entry(peer.path),
    }


def path_entry(path: PathState) -> PathEntry:
    change = path.last_change
    return {**path.figures(), "last_path_change": None if change is None else change.at}


def tcp_entry(info: TcpInfo | None) -> TcpEntry | None:
    if info is None:
        return None
    rate = info.delivery_rate
    return {
        "rtt_ms": info.rtt_ms,
        "rttvar_ms": info.rttvar_ms,
        "min_rtt_ms": info.min_rtt_ms,
        "retransmits": info.retransmits,
        "total_retrans": info.total_retrans,
        "lost": info.lost,
        "segs_out": info.segs_out,
        "delivery_rate_bps": None if rate is None else rate * 8,
    }


def probe_counts(peer: Peer) -> ProbeCounts:
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


def system_entry(sample: SystemSample) -> SystemEntry:
    entry = asdict(sample)
    del entry["timestamp"]
    return entry  # type: ignore[return-value]  # SystemSample's fields are SystemEntry's


def server_entry(stats: ServerStats) -> ServerEntry:
    return asdict(stats)  # type: ignore[return-value]  # ServerStats' fields are ServerEntry's


def network_entry(
    score: float, grade: Grade, band: Band, counts: dict[Status, int]
) -> NetworkEntry:
    return {
        "score": score,
        "grade": grade,
        "band": band,
        "peers_by_status": {status: counts.get(status, 0) for status in STATUSES},
    }
