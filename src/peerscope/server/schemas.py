"""Response models: what the REST API returns, as OpenAPI shows it to client generators (and
the alert rules, which it takes back in the shape it returns them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The shapes the API returns as the Monitor gives them (the message's TypedDicts, the core's
# records, alerting's records): one definition each.
from peerscope.alerting.dispatch import NotifierStats
from peerscope.alerting.records import ActiveAlert, AlertEvent, SilenceEntry
from peerscope.core.alerts import SCOPE_OF_METRIC, NoData, Op, Severity
from peerscope.core.peer_history import Bucket
from peerscope.core.stats import Aggregate
from peerscope.message import NetworkEntry, PeerEntry, SystemEntry


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, in a few words.")
    detail: Any = Field(description="Which input was wrong and why.")


class LatencySummary(BaseModel):
    current: float | None
    average: float | None
    min: float | None
    max: float | None


class Counts(BaseModel):
    sent: int
    received: int


class PeerSummary(PeerEntry):
    """The LANrage seed's peer summary, with every current figure of the peer beside it."""

    peer_id: str
    peer_name: str | None
    latency: LatencySummary
    bandwidth: Counts
    packets: Counts
    uptime: Annotated[float, Field(description="Seconds since the peer connected.")]
    window: Annotated[
        Aggregate | None,
        Field(description="Latency statistics over ?window= seconds, when asked for; else null."),
    ]


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


class SystemSummary(BaseModel):
    cpu: CurrentAverageMax
    memory: CurrentAverageMax
    network: NetworkSummary
    current: SystemEntry


class Summary(BaseModel):
    peers: list[PeerSummary]
    system: SystemSummary
    network_quality: float
    network: NetworkEntry


# What a history was read from: memory, or the history store's tier.
Tier = Literal["memory", "raw", "1m", "1h"]


class Point(BaseModel):
    timestamp: float
    value: float


class TimeRange(BaseModel):
    duration: float
    start: float = Field(alias="from", description="Epoch seconds, excluded.")
    end: float = Field(alias="to", description="Epoch seconds, included.")
    step: float | None = Field(description="Seconds per averaged point; null: as recorded.")
    tier: Tier = Field(
        description="Where the figures came from: memory, or the history store's tier (for a "
        "range that starts before the oldest sample memory holds)."
    )


class LatencyHistory(TimeRange):
    peer_id: str
    data: list[Point]
    buckets: list[Bucket] | None = Field(
        description="With `step`: each bucket's samples, probes sent and lost, loss %, "
        "latency min/p50/p95/max, jitter, score and MOS; `outage` when probes went out and "
        "none came back. Null without `step`."
    )
    stats: Aggregate


class SystemHistory(TimeRange):
    data: dict[str, list[Point]]


class GaugeFigure(BaseModel):
    """A gauge over a bucket; percentiles within the store's sketch's 1 % (exact in memory)."""

    count: int
    min: float
    max: float
    avg: float
    p50: float
    p95: float
    p99: float


class CounterFigure(BaseModel):
    """A counter over a bucket: how much it rose, per second, and its last value."""

    increase: float
    rate: float
    last: float


class HistoryBucket(BaseModel):
    """One bucket: ``timestamp`` (its start) and each figure asked for, by name: a
    GaugeFigure (latency_ms, cpu_percent, …), a CounterFigure (bytes_sent, probes_sent, …)
    or null where nothing was measured. A peer's buckets also count probes."""

    model_config = ConfigDict(extra="allow")

    timestamp: float
    sent: int | None = Field(None, description="A peer's probes sent in the bucket.")
    lost: int | None = Field(None, description="A peer's probes lost in the bucket.")
    loss_percent: float | None = Field(None, description="lost / sent; null when none was sent.")
    outage: bool | None = Field(None, description="Probes went out and none came back.")


class SeriesHistory(BaseModel):
    """A series' history over ``(from, to]``: every sample as columns (without ``step``), or
    ``step``-second buckets on multiples of the step (with it)."""

    peer_id: str | None = Field(None, description="The peer's (its route only).")
    start: float = Field(alias="from", description="Epoch seconds, excluded.")
    end: float = Field(alias="to", description="Epoch seconds, included.")
    step: float | None
    tier: Tier = Field(
        description="What was read: the store's raw samples or its 1-minute or 1-hour "
        "buckets (as the step and the range call for), or memory without a store."
    )
    figures: list[str]
    timestamps: list[float] | None = Field(description="Without step: each sample's time.")
    values: dict[str, list[float | None] | None] | None = Field(
        description="Without step: per figure, its value at each time (null where not "
        "measured); a whole figure null where memory keeps no history of it."
    )
    buckets: list[HistoryBucket] | None = Field(description="With step: oldest first.")


class StoredEventEntry(BaseModel):
    timestamp: float
    type: Literal["status", "path_changed", "removed", "session_started", "session_ended", "alert"]
    peer_id: str | None = Field(
        description="The peer's id (a hash of it with store.anonymize_ids); null for the "
        "host's and the server's own."
    )
    data: dict[str, Any] = Field(
        description="As recorded: {previous, status}; {reason}; the session (as "
        "/api/metrics/sessions lists it); the alert event (as /api/alerts/history)."
    )


class StoredEvents(BaseModel):
    events: list[StoredEventEntry] = Field(description="Newest first.")


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


class ReflectorCounts(BaseModel):
    reflected: int = Field(description="Probes answered.")
    rejected: int = Field(
        description="Datagrams not answered for what they are: malformed + unpadded."
    )
    malformed: int = Field(description="Datagrams that were not TWAMP-Test probes.")
    unpadded: int = Field(
        description="Probes shorter than the 41-octet reply, refused (reflector_unpadded)."
    )
    not_allowed: int = Field(description="Probes from senders outside reflector_allow.")
    rate_limited: int = Field(
        description="Probes over a sender's reflector_rate_limit / reflector_burst."
    )
    sources: int = Field(description="Sender addresses whose rate is being tracked.")
    sessions: int = Field(
        description="Test sessions (sender address and port) whose sequence numbers are kept."
    )
    sessions_evicted: int = Field(
        description="Sessions forgotten to make room past reflector_max_sessions."
    )


class ProberCounts(BaseModel):
    sent: int = Field(description="Probes sent since the prober started.")
    malformed: int = Field(
        description="Datagrams on the probe sockets that were no reply, or echoed the wrong "
        "timestamp."
    )
    unmatched: int = Field(description="Replies to no probe of ours (or long forgotten).")
    errors: int = Field(description="Sends the kernel refused and receive errors.")


class StoreStatus(BaseModel):
    path: str = Field(description="The database file, or :memory:.")
    error: str | None = Field(description="Why the last write failed; null once one succeeds.")
    samples: int = Field(
        description="Figures the writer took in since start: each figure of each series a "
        "tick changed."
    )
    flushes: int = Field(description="Commits since start.")
    failed_flushes: int = Field(description="Commits that failed (their rows are lost).")
    dropped: int = Field(description="Ticks and events dropped: the writer's queue was full.")


class Health(BaseModel):
    """``/api/health``: ``status`` for anyone; the rest only with the token (or for everyone
    when none is set), absent otherwise."""

    status: str = Field(description='"ok" while the server answers.')
    version: str | None = None
    monitor_running: bool | None = None
    uptime_seconds: float | None = None
    peers: int | None = None
    websocket_subscribers: int | None = None
    probed_peers: int | None = Field(None, description="Peers this agent probes (GET /api/peers).")
    prober: ProberCounts | None = Field(
        None, description="What the prober sent and could not use; null without a prober."
    )
    reflector_port: int | None = Field(
        None, description="UDP port answering TWAMP Light probes; null when not answering."
    )
    reflector: ReflectorCounts | None = Field(
        None, description="What the reflector answered and refused; null when not answering."
    )
    store: StoreStatus | None = Field(
        None, description="The history store; null when history is not kept."
    )


class ProbedPeer(BaseModel):
    """A peer this agent probes."""

    id: str
    name: str | None
    address: str = Field(description="HOST:PORT as probed (the host alone for ICMP).")
    method: str = Field(description="twamp, stamp, icmp or tcp.")
    padding: int | None = Field(
        None, description="TWAMP/STAMP probes' octets after the header; null: the default."
    )
    dscp: int = Field(0, description="The probes' DSCP, 0..63.")
    error: str | None = Field(
        None, description="Why no probes go out, e.g. the host name does not resolve."
    )


class ProbedPeers(BaseModel):
    peers: list[ProbedPeer]


class Alerts(BaseModel):
    alerts: list[ActiveAlert] = Field(description="Pending and firing alerts, firing first.")
    last_event_id: int = Field(
        description="The id of the newest event: read /api/alerts/history?after= from it."
    )


class AlertHistory(BaseModel):
    events: list[AlertEvent] = Field(description="Oldest first.")
    last_event_id: int = Field(description="The id of the newest event of all, kept or not.")


class AlertRuleBody(BaseModel):
    """One alert rule: the fields of ``peerscope.core.alerts.AlertRule`` (docs/ALERTS.md)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field must not be dropped unseen

    name: str = Field(description="Unique among the rules; alerts carry it as alertname.")
    metric: str = Field(description=f"One of: {', '.join(SCOPE_OF_METRIC)}.")
    op: Op
    threshold: float | str = Field(description="A number; for status, a status word.")
    clear: float | None = Field(
        None, description="Resolve only once the value is on the ok side of this (hysteresis)."
    )
    for_s: float = Field(0.0, description="Seconds a breach lasts (pending) before it fires.")
    keep_firing_for_s: float = Field(
        0.0, description="Seconds the value stays cleared before the alert resolves."
    )
    nodata: NoData = Field("keep", description="What a missing value means.")
    severity: Severity = "warning"
    repeat_s: float | None = Field(
        None, description="Tell it again every this many seconds while it fires; null: never."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Added to its alerts.")
    match: dict[str, str] = Field(
        default_factory=dict,
        description="Peer rules: only peers whose labels hold these (kind: the peer's kind).",
    )


class AlertRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[AlertRuleBody]


class Silences(BaseModel):
    silences: list[SilenceEntry] = Field(description="The silences in force.")


class Notifiers(BaseModel):
    notifiers: list[NotifierStats] = Field(
        description="Each notifier's events sent, failed (given up after the last retry), "
        "retried, dropped (pushed out of its full queue) and queued, and its last error."
    )


class ProfiledName(BaseModel):
    """One name's figures from the function profiler (``peerscope.profiler``), in ms."""

    name: str = Field(description="module.qualified_name, or a block's name.")
    kind: Literal["function", "coroutine", "block"]
    calls: int
    errors: int = Field(description="Calls that raised (the exception went on).")
    total_ms: float
    avg_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float = Field(description="From a sketch: within 1 % of the exact value.")
    p95_ms: float
    p99_ms: float
    last_call_at: float = Field(description="When the last call to finish began (epoch s).")
    last_ms: float
    cpu_ms: float | None = Field(description="Thread CPU time of the calls it was measured for.")
    cpu_calls: int


class ProcessFigures(BaseModel):
    cpu_percent: float = Field(description="Of one CPU, since the previous reading.")
    rss_bytes: int
    threads: int
    open_fds: int | None


class ProfilerState(BaseModel):
    enabled: bool = Field(description="Whether profiled functions are being timed.")
    sampling: bool = Field(description="Whether a pyinstrument sample is running now.")
    functions: list[ProfiledName] = Field(description="Every name timed, by total time.")
    hotspots: list[ProfiledName] = Field(description="The top names by total time.")
    slow_threshold_ms: float
    slow: list[ProfiledName] = Field(description="Names whose p95 call is slower.")
    process: ProcessFigures


class SampledFunction(BaseModel):
    function: str
    file: str
    line: int
    self_s: float = Field(description="Time in the function itself, not in what it called.")
    share: float = Field(description="self_s over the sample's duration (0..1).")


class ProfilerSample(BaseModel):
    seconds: float
    interval_s: float
    started_at: float
    duration_s: float
    sample_count: int
    cpu_time_s: float | None = Field(description="CPU time of the sampled thread.")
    top: list[SampledFunction] = Field(description="The functions where the time went.")
    tree: dict[str, Any] = Field(description="pyinstrument's JSON call tree.")
