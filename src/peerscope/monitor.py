"""The Monitor: the one owner of peerscope's state, its clock loop and its event bus.

A :class:`Monitor` is the peer table (:mod:`peerscope.peer_table`: the recording calls, the
hot path) with the rest around it: the tick, the queries, sessions, the host's and the
server's figures, and the events subscribers get. Every method may be called from any thread
(see peer_table for the lock). Subscribers' handlers always run on the event loop that
called :meth:`Monitor.start` (events raised by calls from other threads are delivered at the
next tick).
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from types import TracebackType
from typing import Self

from peerscope.config import Settings
from peerscope.core import quality
from peerscope.core.assessment import expire_probes
from peerscope.core.kernel_tcp import ConnectionState
from peerscope.core.model import Peer, ServerStats, Session, SystemSample
from peerscope.core.peer_history import Bucket, peer_buckets
from peerscope.core.sessions import SessionBook
from peerscope.core.stats import Aggregate, aggregate
from peerscope.core.validation import (
    validate_id,
    validate_labels,
    validate_number,
    validate_text,
)
from peerscope.event_bus import EventBus, Handler
from peerscope.events import MetricsTick, PeerReading, SessionEnded, SessionStarted
from peerscope.host_metrics import HostMetrics
from peerscope.loop_lag import LoopLag
from peerscope.message import (
    MetricsMessage,
    PeerDetail,
    PeerEntry,
    client_entry,
    network_entry,
    probe_counts,
)
from peerscope.peer_table import SCAN_SLICE, PeerTable
from peerscope.profiler import profile
from peerscope.server_counters import ServerCounters
from peerscope.slices import Steps, finish
from peerscope.tcp_info import ConnectionWatch, tcp_socket
from peerscope.ticker import Ticker


class Monitor(PeerTable):
    """Peers, host and server figures, refreshed every tick and published to subscribers."""

    def __init__(
        self, settings: Settings | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        settings = settings if settings is not None else Settings()
        super().__init__(
            settings,
            clock,
            bus=EventBus(settings.max_pending_events),
            sessions=SessionBook(settings.session_history),
            counters=ServerCounters(clock()),
        )
        self._host = HostMetrics(
            clock, settings.system_history_samples, enabled=settings.enable_system_metrics
        )
        # The latest tick without its readings (thousands of tuples, the subscribers' to
        # keep): what last_message is built from.
        self._last_tick: MetricsTick | None = None
        self._last_message: MetricsMessage | None = None
        self._ticker = Ticker(settings.metrics_interval, self.tick, "peerscope-tick")
        interval = settings.loop_lag_interval_s
        self._loop_lag = LoopLag(interval, max(60.0, interval)) if interval > 0 else None
        # The lag figures of the latest tick (each tick takes the worst since the one before).
        self._lag: tuple[float | None, float | None] = (None, None)
        self._connections = ConnectionWatch(settings.tcp_loss_window_s)

    # --- lifecycle ----------------------------------------------------------------------------

    def now(self) -> float:
        """The Monitor's clock (epoch seconds); every timestamp it reports comes from it."""
        return self._clock()

    @property
    def is_running(self) -> bool:
        return self._ticker.is_running

    async def start(self) -> None:
        """Start the tick loop on the running event loop; a second call does nothing."""
        if not self.is_running:
            self._counters.started_at = self._clock()
            if self._loop_lag is not None:
                self._loop_lag.start()
            self._ticker.start()

    def cancel(self) -> asyncio.Task[None] | None:
        """Ask the tick loop to stop without waiting; ``is_running`` is False at once.

        Returns the cancelled task (None if not running) for a caller that wants to await it.
        """
        self._stop_loop_lag()
        return self._ticker.cancel()

    async def stop(self) -> None:
        """Stop the tick loop and wait for it to finish; safe to call when not running."""
        self._stop_loop_lag()
        await self._ticker.stop()

    def _stop_loop_lag(self) -> None:
        if self._loop_lag is not None:
            self._loop_lag.stop()
        self._lag = (None, None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- the tick -----------------------------------------------------------------------------

    @profile(name="peerscope:tick", cpu=True)
    def tick(self) -> MetricsTick:
        """One clock step: sample the host, refresh every peer, publish a :class:`MetricsTick`.

        The tick lists the readings of the peers that changed since the previous tick, and
        hands the event to every subscriber.
        """
        if self._host.enabled:
            self._host.sample()
        connections = self._connections
        readings = None
        if connections:
            with self._lock:
                watched = connections.watched()
            readings = connections.read(watched)  # system calls: not under the lock
        if self._loop_lag is not None:
            self._lag = self._loop_lag.take()
        now = self._clock()
        with self._lock:
            if readings:
                connections.apply(readings, now)
            tick = self._survey(now, readings=True)
            self._last_tick, self._last_message = dataclasses.replace(tick, changed=()), None
            self._bus.emit(tick)
        self._bus.dispatch()
        return tick

    def snapshot(self) -> MetricsMessage:
        """Build the ``/ws`` metrics message from the current state.

        Cost is one pass over the peers (refresh of the changed ones, idle checks, pruning,
        sums) plus a top-N selection; it never reads stored samples. The peers it finds
        changed are still listed by the next tick.
        """
        now = self._clock()
        with self._lock:
            survey = self._survey(now, readings=False)
        return survey.message()

    @property
    def last_message(self) -> MetricsMessage | None:
        """The message of the latest tick (None before the first), built once per tick."""
        message = self._last_message
        if message is None:
            tick = self._last_tick
            if tick is None:
                return None
            message = self._last_message = tick.message()
        return message

    def _survey(self, now: float, *, readings: bool) -> MetricsTick:
        """Under the lock: a tick's pass over every peer, and what it found.

        ``readings``: take the changed peers' readings (the tick), or leave them listed for
        the next tick (a snapshot).
        """
        settings = self.settings
        for peer in self._probed.values():
            expire_probes(peer, now)  # at once when none can be due (next_expiry)
        sweep = self._assessor.sweep(self._peers.values(), now, settings.peer_ttl_s)
        changed = self._changed
        for peer in sweep.assessed:
            changed[peer.peer_id] = peer
        for peer, previous, status in sweep.changes:
            self._status_changed(peer, previous, status, now)
            changed[peer.peer_id] = peer
        for peer in sweep.expired:
            sent_at = peer.probe_sent_at
            if sent_at is not None and now - sent_at < settings.peer_ttl_s:
                # Still probed: its prober owns its lifetime. Pruned, it would come back
                # as a new, connected peer at the next probe, and flap every TTL.
                continue
            del self._peers[peer.peer_id]
            self._forget(peer, now, "pruned")
        system = self._host.latest
        network = quality.network_score_from_sum(
            sweep.score_sum, sweep.scored, system.cpu_percent, settings.quality
        )
        listed, peers = settings.max_clients_in_message, self._peers.values()
        # heapq's own advice: sorting wins when the share asked for is large (at 200 of
        # 1,000 peers 0.11 against 0.40 ms here), nsmallest when it is small.
        worst = (
            sorted(peers, key=_rank)[:listed]
            if len(peers) <= 10 * listed
            else heapq.nsmallest(listed, peers, key=_rank)
        )
        average = sweep.latency_sum / sweep.measured if sweep.measured else 0.0
        derived = self._assessor.derived
        taken: tuple[PeerReading, ...] = ()
        if readings:
            self._changed = {}
            taken = tuple(self._reading(peer, now) for peer in changed.values())
        return MetricsTick(
            timestamp=now,
            system=system,
            server=self._counters.stats(now, len(self._peers), average, self._lag),
            network=network_entry(
                network,
                quality.grade(network, settings.quality),
                quality.quality_band(network, settings.quality),
                self._status_counts,
            ),
            changed=taken,
            worst=tuple(client_entry(peer, now, derived(peer, now)) for peer in worst),
            peers_total=len(self._peers),
        )

    def _reading(self, peer: Peer, now: float) -> PeerReading:
        shown = self._assessor.shows_figures(peer, now)
        loss, connection, path = peer.loss, peer.connection, peer.path
        info = None if connection is None else connection.info
        directions = None if path is None else path.directions
        return PeerReading(
            peer.peer_id,
            peer.kind,
            peer.labels,
            peer.status,
            peer.last_latency_ms if shown else None,
            peer.smoothed_latency_ms if shown else None,
            self._assessor.jitter(peer) if shown else None,
            peer.loss_percent,
            peer.quality_score,
            peer.bytes_sent,
            peer.bytes_received,
            peer.last_seen,
            loss.sent_total,
            loss.lost_total,
            None if info is None else info.rtt_ms,
            None if info is None else info.total_retrans,
            peer.last_measured_at,
            None if directions is None else directions[0],
            None if directions is None else directions[1],
        )

    # --- connections the kernel measures ---------------------------------------------------

    def watch_connection(self, peer_id: str, connection: object) -> bool:
        """Measure the peer by its TCP connection, as the kernel sees it (Linux ``TCP_INFO``).

        ``connection`` is a ``socket.socket``, an asyncio transport or an
        ``asyncio.StreamWriter``. From the next tick on, each tick reads the connection: the
        kernel's smoothed RTT, whenever the peer acknowledged data since the previous tick,
        is a latency sample, and the share of data segments sent again over the last
        ``tcp_loss_window_s`` is the peer's loss; the entry's ``tcp`` shows the reading. The
        watch ends with the peer, with :meth:`unwatch_connection`, or at the tick that finds
        the connection closed. Returns False, and watches nothing, where ``TCP_INFO`` is not
        available (said once in the log); the peer is then measured as before.
        ``ValueError`` naming ``connection`` for anything but an open TCP connection.
        """
        connections = self._connections
        sock = tcp_socket(connection)
        info = connections.first_reading(sock)
        if info is None:
            return False
        now = self._clock()
        with self._lock:
            connections.watch(self._recording_peer(peer_id, now), sock, info, now)
        return True

    def unwatch_connection(self, peer_id: str) -> bool:
        """Stop reading the peer's connection (see :meth:`watch_connection`); its ``tcp``
        figures go and its loss is measured as before. False if it was not watched."""
        with self._lock:
            peer = self._peers.get(peer_id)
            return peer is not None and self._connections.unwatch(peer)

    def record_app_rtt(self, peer_id: str, rtt_ms: float | None) -> None:
        """The RTT of the application's own echo (a ping its peer answers), or None for an
        echo that got no answer; the entry shows the latest as ``app_rtt_ms``.

        For a peer whose connection is watched (:meth:`watch_connection`) it is kept apart:
        it holds the time the far application took to answer (a browser's busy main thread),
        not only the network's. For any other peer it is also a latency measurement, as
        :meth:`record_latency` records it.
        """
        if rtt_ms is not None:
            rtt_ms = validate_number(rtt_ms, "rtt_ms")
        now = self._clock()
        with self._lock:
            peer = self._recording_peer(peer_id, now)
            state = peer.connection
            if state is None:
                state = peer.connection = ConnectionState()
            state.app_rtt_ms = rtt_ms
            self._changed[peer.peer_id] = peer
            if state.info is not None:
                return
        self.record_latency(peer_id, rtt_ms)

    def _forget(self, peer: Peer, now: float, reason: str) -> None:
        super()._forget(peer, now, reason)
        self._connections.forget(peer.peer_id)

    # --- events -------------------------------------------------------------------------------

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` with every event from now on; returns a function that unsubscribes.

        Handlers must be quick (hand the event to a queue); one that raises is logged and
        stays subscribed.
        """
        return self._bus.subscribe(handler)

    @property
    def events_dropped(self) -> int:
        """Events dropped because ``max_pending_events`` waited for the next tick."""
        return self._bus.dropped

    # --- sessions -----------------------------------------------------------------------------

    def start_session(
        self,
        name: str,
        peer_ids: Iterable[str],
        *,
        session_id: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> str:
        """Begin a session; the listed peers' latency samples from now on feed its statistics."""
        validate_text(name, "name")
        ids = [validate_id(peer_id) for peer_id in peer_ids]
        sid = validate_id(session_id, "session_id") if session_id is not None else uuid.uuid4().hex
        checked_labels = validate_labels(labels)
        now = self._clock()
        with self._lock:
            self._sessions.open(
                Session(
                    session_id=sid, name=name, started_at=now, peer_ids=ids, labels=checked_labels
                ),
                self._peers,
            )
            self._bus.emit(SessionStarted(sid, name, now))
        return sid

    def end_session(self, session_id: str) -> Session:
        now = self._clock()
        with self._lock:
            session = self._sessions.close(session_id, now, self._peers)
            self._bus.emit(SessionEnded(session_id, session.name, now))
        return session

    def session(self, session_id: str) -> Session:
        """An active or remembered session by id; KeyError if neither."""
        with self._lock:
            return self._sessions.get(session_id)

    def restore_sessions(self, ended: Iterable[Session]) -> None:
        """Put sessions that ended before a restart (oldest first) back among the ended
        ones, before any that ends from now on."""
        with self._lock:
            self._sessions.restore(ended)

    def sessions(self, limit: int = 10, *, include_active: bool = True) -> list[Session]:
        """Most recent first: active sessions, then ended ones."""
        with self._lock:
            return self._sessions.recent(limit, include_open=include_active)

    # --- queries ------------------------------------------------------------------------------

    def peer(self, peer_id: str) -> PeerDetail:
        """One peer's current figures and its probes' outcomes; KeyError if unknown."""
        now = self._clock()
        with self._lock:
            peer = self._known_peer(peer_id)
            self._refresh(peer, now)
            entry = client_entry(peer, now, self._assessor.derived(peer, now))
            return {**entry, "probes": probe_counts(peer)}

    def peers(self) -> list[PeerEntry]:
        """Every peer's current figures (the ``clients`` entry shape).

        Built a slice at a time (see :meth:`scan`): the lock is never held for all peers.
        """
        return [entry for chunk in self.peer_slices() for entry in chunk]

    def peer_slices(self, size: int = SCAN_SLICE) -> Iterator[list[PeerEntry]]:
        """:meth:`peers`, a slice of ``size`` peers at a time (see :meth:`scan`)."""
        derived = self._assessor.derived
        return self.scan(lambda peer, now: client_entry(peer, now, derived(peer, now)), size=size)

    def latency_history(self, peer_id: str, duration_s: float) -> list[tuple[float, float]]:
        """(timestamp, ms) samples of the last ``duration_s`` seconds, oldest first."""
        now = self._clock()
        with self._lock:
            peer = self._known_peer(peer_id)
            return list(peer.latency.window(duration_s, now))

    def peer_history(self, peer_id: str, start: float, end: float, step: float) -> list[Bucket]:
        """The peer's ``(start, end]`` in ``step``-second buckets: samples, probes sent and
        lost, loss %, latency spread, jitter, score and MOS of each (see
        :mod:`peerscope.core.peer_history`)."""
        with self._lock:
            peer = self._known_peer(peer_id)
            samples = list(peer.latency)
            losses = [] if peer.losses is None else [t for t, _ in peer.losses]
        return peer_buckets(samples, losses, start, end, step, self.settings.quality)

    def latency_stats(self, peer_id: str, window_s: float) -> Aggregate:
        now = self._clock()
        with self._lock:
            peer = self._known_peer(peer_id)
            return aggregate(peer.latency, window_s, now)

    def sample_system(self) -> SystemSample:
        """Read the host now (also done every tick) and add it to the system history."""
        return self._host.sample()

    @property
    def system(self) -> SystemSample:
        """The latest host sample (taken each tick)."""
        return self._host.latest

    def restore_system(self, samples: Iterable[SystemSample]) -> None:
        """Put the host's samples from before a restart (oldest first, as the history store
        kept them) back in its history, so its charts go on where they stopped."""
        self._host.restore(samples)

    def system_history(self, name: str, duration_s: float) -> list[tuple[float, float]]:
        """(timestamp, value) samples of a system series over the last ``duration_s``."""
        return self._host.history(name, duration_s)

    def system_stats(self, name: str, window_s: float) -> Aggregate:
        """count/min/max/avg/sum/p50/p95/p99 of a system series over the last ``window_s``."""
        return self._host.stats(name, window_s)

    def server_stats(self) -> ServerStats:
        return finish(self.server_stats_steps())

    def server_stats_steps(self) -> Steps[ServerStats]:
        """:meth:`server_stats` in slices (see :meth:`scan`), for a caller on the event loop.

        Its average latency is the mean of the peers' smoothed latencies (0 with none
        measured), each brought up to date first.
        """
        measured: list[float] = []
        for chunk in self.scan(_smoothed_latency):
            measured.extend(latency for latency in chunk if latency is not None)
            yield
        average = math.fsum(measured) / len(measured) if measured else 0.0
        now = self._clock()
        with self._lock:
            return self._counters.stats(now, len(self._peers), average, self._lag)

    @property
    def uptime_seconds(self) -> float:
        """Seconds since the Monitor started, as in :meth:`server_stats`, at O(1) cost."""
        return self._counters.uptime(self._clock())


_rank = attrgetter("rank")


def _smoothed_latency(peer: Peer, now: float) -> float | None:
    return peer.smoothed_latency_ms
