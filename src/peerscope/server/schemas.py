"""Response models: what the REST API returns, as OpenAPI shows it to client generators."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# The core's own records where the API returns them as they are: one definition each.
from peerscope.core.model import ServerStats
from peerscope.core.stats import Aggregate, Band


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, in a few words.")
    detail: Any = Field(description="Which input was wrong and why.")


class ClientEntry(BaseModel):
    """A peer as listed in the metrics message (`clients`). Unmeasured figures are null."""

    client_id: str
    name: str | None
    address: str | None
    kind: str
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
    jitter_ms: float
    packet_loss_percent: float
    quality_score: float | None
    band: str | None
    grade: str | None
    mos: float | None
    trend: str
    fps: float | None
    frame_time_ms: float | None
    status: str


class LatencySummary(BaseModel):
    current: float | None
    average: float | None
    min: float | None
    max: float | None


class Counts(BaseModel):
    sent: int
    received: int


class PeerSummary(ClientEntry):
    """The LANrage seed's peer summary, with every current figure of the peer beside it."""

    peer_id: str
    peer_name: str | None
    latency: LatencySummary
    bandwidth: Counts
    packets: Counts
    uptime: float = Field(description="Seconds since the peer connected.")
    window: Aggregate | None = Field(
        None, description="Latency statistics over ?window= seconds, when asked for.")


class PeerPage(BaseModel):
    peers: list[PeerSummary]
    total: int
    limit: int
    offset: int
    sort: str


class CurrentAverageMax(BaseModel):
    current: float
    average: float
    max: float


class NetworkSummary(BaseModel):
    sent_rate: float
    recv_rate: float
    total_sent: float
    total_recv: float


class SystemNow(BaseModel):
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


class SystemSummary(BaseModel):
    cpu: CurrentAverageMax
    memory: CurrentAverageMax
    network: NetworkSummary
    current: SystemNow


class Network(BaseModel):
    score: float
    grade: str
    band: str
    peers_by_status: dict[str, int]


class Summary(BaseModel):
    peers: list[PeerSummary]
    system: SystemSummary
    network_quality: float
    network: Network


class Point(BaseModel):
    timestamp: float
    value: float


class TimeRange(BaseModel):
    duration: float
    start: float = Field(alias="from", description="Epoch seconds, excluded.")
    end: float = Field(alias="to", description="Epoch seconds, included.")
    step: float | None = Field(description="Seconds per averaged point; null: as recorded.")


class LatencyHistory(TimeRange):
    peer_id: str
    data: list[Point]
    bands: list[Band] | None = Field(
        description="With `step`: min, p50, p95 and max of each bucket (the dashboard's "
                    "latency band); null without.")
    stats: Aggregate


class SystemHistory(TimeRange):
    data: dict[str, list[Point]]


class SystemStats(BaseModel):
    window: float
    stats: dict[str, Aggregate]


class SessionLatency(BaseModel):
    average: float | None
    min: float | None
    max: float | None
    p95: float | None = None


class SessionEntry(BaseModel):
    game_id: str
    game_name: str
    started_at: float
    ended_at: float | None
    duration: float | None
    peers: list[str]
    latency: SessionLatency


class Sessions(BaseModel):
    sessions: list[SessionEntry]


class MetricsMessage(BaseModel):
    """The message `/ws` pushes every tick."""

    type: str
    timestamp: float
    system: SystemNow
    server: ServerStats
    network: Network
    clients: list[ClientEntry]
    clients_total: int
    alerts: list[dict[str, Any]]


class ReflectorCounts(BaseModel):
    reflected: int = Field(description="Probes answered.")
    rejected: int = Field(description="Datagrams that were not TWAMP-Test probes, unanswered.")
    not_allowed: int = Field(description="Probes from senders outside reflector_allow.")
    rate_limited: int = Field(
        description="Probes over a sender's reflector_rate_limit / reflector_burst.")
    sources: int = Field(description="Sender addresses whose rate is being tracked.")


class Health(BaseModel):
    """``/api/health``: ``status`` for anyone; the rest only with the token (or for everyone
    when none is set), absent otherwise."""

    status: str = Field(description="\"ok\" while the server answers.")
    version: str | None = None
    monitor_running: bool | None = None
    uptime_seconds: float | None = None
    peers: int | None = None
    websocket_subscribers: int | None = None
    probed_peers: int | None = Field(None, description="Peers this agent probes (GET /api/peers).")
    reflector_port: int | None = Field(
        None, description="UDP port answering TWAMP Light probes; null when not answering.")
    reflector: ReflectorCounts | None = Field(
        None, description="What the reflector answered and refused; null when not answering.")


class ProbedPeer(BaseModel):
    """A peer this agent probes."""

    id: str
    name: str | None
    address: str = Field(description="HOST:PORT as probed (the host alone for ICMP).")
    method: str = Field(description="twamp, icmp or tcp.")
    error: str | None = Field(
        None, description="Why no probes go out, e.g. the host name does not resolve.")


class ProbedPeers(BaseModel):
    peers: list[ProbedPeer]
