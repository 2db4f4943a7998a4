"""The records peerscope keeps: peers, system samples, server figures and sessions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from peerscope.core.kernel_tcp import ConnectionState
from peerscope.core.loss import LossTracker
from peerscope.core.path import PathState
from peerscope.core.quality import Status
from peerscope.core.series import Series
from peerscope.core.stats import nearest_rank

PeerKind = Literal["peer", "client"]
ProblemKind = Literal["port_closed", "unresolved"]
NO_LABELS: Mapping[str, str] = MappingProxyType({})  # shared by every unlabelled peer


@dataclass(slots=True, eq=False)
class Peer:
    """One remote endpoint and everything measured about it.

    The hot-path fields (latency ring, last sample, counters) are written by the Monitor
    under its lock; the running figures (jitter, smoothed latency) and the judged ones
    (score, trend averages, status, rank) are brought up to date at the next refresh (the
    tick, or a query that reads the peer) while ``dirty`` is set (see
    peerscope.core.assessment).
    """

    peer_id: str
    latency: Series
    loss: LossTracker
    connected_at: float
    name: str | None = None
    address: str | None = None
    kind: PeerKind = "peer"
    labels: Mapping[str, str] = field(default_factory=lambda: NO_LABELS)
    last_seen: float = 0.0
    last_message_time: float | None = None
    last_latency_ms: float | None = None
    unfolded: int = 0  # samples recorded since jitter and smoothing last took them in
    folded_latency_ms: float | None = None  # the newest sample they have taken in
    smoothed_latency_ms: float | None = None
    jitter_ms: float = 0.0
    reported_loss_percent: float | None = None
    consecutive_failures: int = 0
    probe_sent_at: float | None = None  # latest sequence-numbered probe (record_probe_sent)
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    packets_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    fps: float | None = None  # rendering rate the client reports about itself
    frame_time_ms: float | None = None
    status: Status = "connected"
    status_since: float = 0.0
    quality_score: float | None = None
    trend_short: float | None = None
    trend_long: float | None = None
    rank: float = 2101.0  # sort key, worst first; see assessment.rank
    sessions: tuple[Session, ...] = ()  # active sessions this peer is in; rarely non-empty
    # Why its probes fail when the target said so itself (a refused port, a name that does
    # not resolve), with the detail; cleared by the next sample.
    problem: tuple[ProblemKind, str] | None = None
    # When its failed measurements were sent (lost probes' send times), for loss over time;
    # made at the first loss, so a loss-free peer pays for no ring.
    losses: Series | None = None
    dirty: bool = True
    # Its TCP connection's kernel figures and its application echo (rarely set: one slot).
    connection: ConnectionState | None = None
    # Both directions of its path, for a peer probed by TWAMP or STAMP (else None).
    path: PathState | None = None

    @property
    def message_count(self) -> int:
        return self.messages_sent + self.messages_received

    @property
    def loss_percent(self) -> float:
        """The app's own latest loss report if it sends them, else the measured loss."""
        reported = self.reported_loss_percent
        return self.loss.loss_percent if reported is None else reported

    @property
    def average_latency_ms(self) -> float | None:
        """Mean of the latency ring (the recent history, not the smoothed value); O(ring)."""
        return self.latency.mean()

    def add_sample(self, now: float, latency_ms: float) -> None:
        """Take in one measured round trip: the one sample step of ``record_latency`` and of a
        probe's reply. The loss outcome is the caller's (a reply's tracker has counted it)."""
        self.latency.append(now, latency_ms)
        self.last_latency_ms = latency_ms
        self.unfolded += 1
        self.consecutive_failures = 0
        self.last_seen = now
        self.problem = None
        if self.sessions:
            for session in self.sessions:
                session.add(latency_ms)

    def note_loss(self, sent_at: float) -> None:
        """Keep the time of one failed measurement (a lost probe's send time)."""
        losses = self.losses
        if losses is None:
            losses = self.losses = Series(self.latency.capacity)
        losses.append(sent_at, 1.0)

    @property
    def last_measured_at(self) -> float | None:
        """When the newest successful sample was taken."""
        return self.latency.newest_time()

    def uptime(self, now: float) -> float:
        """Seconds since the peer connected."""
        return max(0.0, now - self.connected_at)

    def idle(self, now: float) -> float:
        """Seconds since the peer was last heard from."""
        return max(0.0, now - self.last_seen)


@dataclass(slots=True)
class SystemSample:
    """One reading of the host and of this process. ``available`` is False if psutil failed."""

    timestamp: float
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    memory_used_mb: float = 0.0
    memory_total_mb: float = 0.0
    network_sent_mb: float = 0.0
    network_recv_mb: float = 0.0
    network_sent_rate: float = 0.0
    network_recv_rate: float = 0.0
    process_cpu_percent: float = 0.0
    process_rss_mb: float = 0.0
    process_threads: int = 0
    process_fds: int = 0
    available: bool = True


@dataclass(slots=True)
class ServerStats:
    uptime_seconds: float
    active_connections: int
    total_connections: int
    total_messages: int
    messages_per_second: float
    messages_in_per_second: float
    messages_out_per_second: float
    average_latency_ms: float
    # How late a timer fired on the Monitor's event loop: the worst since the previous tick
    # and the p99 over the last minute (None: not measured, the Monitor not running).
    loop_lag_ms: float | None = None
    loop_lag_p99_ms: float | None = None


@dataclass(slots=True, eq=False)
class Session:
    """A stretch of time (a game, a match, a call) with its peers' latency during it.

    Only samples recorded between start and end feed the statistics: samples are added as
    they are recorded, never pulled from history afterwards. The values are kept (up to
    ``max_samples``, after which only count/sum/min/max keep growing) for percentiles.
    """

    session_id: str
    name: str
    started_at: float
    peer_ids: list[str]
    ended_at: float | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: NO_LABELS)
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    samples: list[float] = field(default_factory=list)
    max_samples: int = 10_000

    def add(self, latency_ms: float) -> None:
        self.count += 1
        self.total += latency_ms
        if latency_ms < self.minimum:
            self.minimum = latency_ms
        if latency_ms > self.maximum:
            self.maximum = latency_ms
        if len(self.samples) < self.max_samples:
            self.samples.append(latency_ms)

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def duration(self, now: float) -> float:
        return (self.ended_at if self.ended_at is not None else now) - self.started_at

    def latency_stats(self) -> dict[str, float | None]:
        if not self.count:
            return {
                "avg_latency": None,
                "min_latency": None,
                "max_latency": None,
                "p95_latency": None,
            }
        return {
            "avg_latency": self.total / self.count,
            "min_latency": self.minimum,
            "max_latency": self.maximum,
            "p95_latency": nearest_rank(sorted(self.samples), 0.95),
        }
