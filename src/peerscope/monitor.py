"""The Monitor: the one owner of peerscope's state, its clock loop and its event bus.

Thread safety: every recording and query method may be called from any thread. One lock
serialises them, held only for the few field updates a call makes (a read of every peer holds
it for one slice of peers at a time), so a recording call never waits on I/O or for long.
Subscribers' handlers always run on the event loop that called :meth:`Monitor.start` (events
raised by calls from other threads are delivered at the next tick).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from peerscope.config import Settings
from peerscope.core import quality
from peerscope.core.assessment import Assessor, expire_probes
from peerscope.core.history import SystemHistory
from peerscope.core.loss import Arrival, LossTracker
from peerscope.core.model import Peer, PeerKind, ServerStats, Session, SystemSample
from peerscope.core.quality import Status
from peerscope.core.rate import SlidingCounter
from peerscope.core.series import Series
from peerscope.core.sessions import SessionBook
from peerscope.core.stats import Aggregate, aggregate
from peerscope.core.validation import (
    preview,
    real_number,
    validate_count,
    validate_id,
    validate_labels,
    validate_number,
    validate_text,
)
from peerscope.events import (
    Event,
    MetricsTick,
    PeerAdded,
    PeerRemoved,
    PeerStatusChanged,
    SessionEnded,
    SessionStarted,
)
from peerscope.message import (
    client_entry,
    network_entry,
    probe_counts,
    server_entry,
    system_entry,
)
from peerscope.slices import Steps, finish
from peerscope.system import SystemSampler
from peerscope.ticker import Ticker

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

_INF = math.inf
Direction = Literal["in", "out"]
Handler = Callable[[Event], None]
T = TypeVar("T")
# Peers per hold of the lock in a read of every peer: ~1 ms with all of them changed.
SCAN_SLICE = 128


class UnknownPeerError(KeyError):
    """A recording call named a peer that is not registered (with ``unknown_peer="raise"``)."""


class PeerLimitError(ValueError):
    """Registering one more peer would pass ``max_peers``; nothing was changed."""


class Monitor:
    """Peers, host and server figures, refreshed every tick and published to subscribers."""

    def __init__(self, settings: Settings | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings if settings is not None else Settings()
        self._clock = clock
        self._lock = threading.Lock()
        self._peers: dict[str, Peer] = {}
        # Peers that have had sequence-numbered probes: only these need expiry each tick.
        self._probed: dict[str, Peer] = {}
        self._status_counts: dict[Status, int] = dict.fromkeys(quality.STATUSES, 0)
        self._assessor = Assessor(self.settings.quality, self.settings.status)
        self._sessions = SessionBook(self.settings.session_history)
        # Events wait here for the next tick's dispatch, only while someone listens, and at
        # most max_pending_events of them (the oldest go first): a Monitor that never ticks,
        # or ticks rarely under a flood of add/remove calls, holds bounded memory.
        self._pending_events: deque[Event] = deque()
        self.events_dropped = 0
        self._handlers: list[Handler] = []
        self._messages_in = SlidingCounter(1.0)
        self._messages_out = SlidingCounter(1.0)
        self._total_messages = 0
        self._total_connections = 0
        self._started_at = clock()
        self._sampler = SystemSampler(clock) if self.settings.enable_system_metrics else None
        self._system = SystemSample(timestamp=self._started_at, available=False)
        self._system_history = SystemHistory(self.settings.system_history_samples)
        self._last_message: dict[str, Any] | None = None
        self._app: FastAPI | None = None
        self._ticker = Ticker(self.settings.metrics_interval, self.tick, "peerscope-tick")

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def app(self) -> FastAPI:
        """The REST/WebSocket/metrics API over this Monitor, as an ASGI app to mount.

        Built on first use. Mounted apps do not run sub-app lifespans, so start the Monitor
        yourself (``async with monitor`` or ``await monitor.start()``).
        """
        if self._app is None:
            # The server sits above the Monitor in the house; imported here, on demand, so
            # library users who never serve HTTP do not load FastAPI.
            from peerscope.server.app import create_app

            self._app = create_app(self)
        return self._app

    def now(self) -> float:
        """The Monitor's clock (epoch seconds); every timestamp it reports comes from it."""
        return self._clock()

    @property
    def is_running(self) -> bool:
        return self._ticker.is_running

    async def start(self) -> None:
        """Start the tick loop on the running event loop; a second call does nothing."""
        if not self.is_running:
            self._started_at = self._clock()
            self._ticker.start()

    def cancel(self) -> asyncio.Task[None] | None:
        """Ask the tick loop to stop without waiting; ``is_running`` is False at once.

        Returns the cancelled task (None if not running) for a caller that wants to await it.
        """
        return self._ticker.cancel()

    async def stop(self) -> None:
        """Stop the tick loop and wait for it to finish; safe to call when not running."""
        await self._ticker.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def tick(self) -> dict[str, Any]:
        """One clock step: sample the host, refresh peers, build and publish the message."""
        if self._sampler is not None:
            self.sample_system()
        message = self.snapshot()
        with self._lock:
            self._last_message = message
            self._emit(MetricsTick(message, message["timestamp"]))
        self._dispatch()
        return message

    # --- events -------------------------------------------------------------------------------

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` with every event from now on; returns a function that unsubscribes.

        Handlers must be quick (hand the event to a queue); one that raises is logged and
        stays subscribed.
        """
        with self._lock:
            self._handlers.append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers:
                    self._handlers.remove(handler)

        return unsubscribe

    def _emit(self, event: Event) -> None:
        """Under the lock: queue ``event`` for the next dispatch, if anyone is subscribed."""
        if not self._handlers:
            return
        pending = self._pending_events
        if len(pending) >= self.settings.max_pending_events:
            pending.popleft()
            self.events_dropped += 1
        pending.append(event)

    def _dispatch(self) -> None:
        with self._lock:
            events, self._pending_events = self._pending_events, deque()
            handlers = list(self._handlers)
        for event in events:
            for handler in handlers:
                try:
                    handler(event)
                except Exception:
                    logger.exception("peerscope event handler %r failed", handler)

    # --- peers --------------------------------------------------------------------------------

    def add_peer(self, peer_id: str, *, name: str | None = None, address: str | None = None,
                 kind: PeerKind = "peer", labels: dict[str, str] | None = None) -> None:
        """Register a peer (a new connection); for a known id, update its name/address/labels."""
        validate_id(peer_id)
        if name is not None:
            validate_text(name, "name")
        if address is not None:
            validate_text(address, "address")
        if kind not in ("peer", "client"):
            raise ValueError(f"kind: must be 'peer' or 'client', got {preview(kind)}")
        checked_labels = validate_labels(labels)
        now = self._clock()
        with self._lock:
            peer = self._peers.get(peer_id)
            if peer is None:
                peer = self._register(peer_id, now)
                peer.kind = kind
            if name is not None:
                peer.name = name
            if address is not None:
                peer.address = address
            if labels is not None:
                peer.labels = checked_labels

    def _register(self, peer_id: str, now: float) -> Peer:
        if len(self._peers) >= self.settings.max_peers:
            raise PeerLimitError(f"max_peers: the limit of {self.settings.max_peers} peers is "
                                 f"reached; peer_id {preview(peer_id)} was not added")
        peer = Peer(
            peer_id=peer_id,
            latency=Series(self.settings.latency_samples),
            loss=LossTracker(window=self.settings.quality.loss_window),
            connected_at=now,
            last_seen=now,
            status_since=now,
        )
        self._sessions.join(peer)
        self._peers[peer_id] = peer
        self._status_counts["connected"] += 1
        self._total_connections += 1
        self._emit(PeerAdded(peer_id, now))
        return peer

    def _recording_peer(self, peer_id: str, now: float) -> Peer:
        """Under the lock: the peer a recording call names, registered if unknown."""
        try:
            peer = self._peers.get(peer_id)
        except TypeError:
            validate_id(peer_id)  # unhashable, so no str: raises the ValueError naming it
            raise
        return peer if peer is not None else self._peer_for_recording(peer_id, now)

    def _peer_for_recording(self, peer_id: str, now: float) -> Peer:
        """Called under the lock for an id not found in the peer table."""
        validate_id(peer_id)  # first: an id that is no id is a ValueError, never "unknown"
        if self.settings.unknown_peer == "raise":
            raise UnknownPeerError(f"unknown peer_id {peer_id!r}; call add_peer first or set "
                                   "unknown_peer='register'")
        return self._register(peer_id, now)

    def remove_peer(self, peer_id: str) -> bool:
        """Forget a peer (a connection closed); its messages stay in the server totals."""
        _check_key(peer_id)
        now = self._clock()
        with self._lock:
            peer = self._peers.pop(peer_id, None)
            if peer is None:
                return False
            self._forget(peer, now, "removed")
            return True

    def _forget(self, peer: Peer, now: float, reason: str) -> None:
        self._status_counts[peer.status] -= 1
        self._probed.pop(peer.peer_id, None)
        peer.sessions = ()
        self._emit(PeerRemoved(peer.peer_id, now, reason))

    @property
    def peer_ids(self) -> list[str]:
        with self._lock:
            return list(self._peers)

    def __contains__(self, peer_id: object) -> bool:
        """Whether ``peer_id`` is registered."""
        return peer_id in self._peers

    # --- hot path -----------------------------------------------------------------------------

    def record_latency(self, peer_id: str, latency_ms: float | None) -> None:
        """Record one round-trip time in ms, or ``None`` for a measurement that failed."""
        # The hottest call in peerscope: it only stores; jitter, smoothing and loss take the
        # sample in at the next refresh (peerscope.core.assessment).
        if latency_ms is not None:
            if type(latency_ms) is not float:
                latency_ms = real_number(latency_ms, "latency_ms")
            if not 0.0 <= latency_ms < _INF:
                raise ValueError(f"latency_ms: must be a finite number >= 0, got {latency_ms!r}")
        now = self._clock()
        lock = self._lock
        lock.acquire()
        try:
            try:
                peer = self._peers.get(peer_id)
            except TypeError:
                # Unhashable, so no str: this raises the ValueError naming it. A hashable id
                # that is no str is simply not found, and refused when it would be registered.
                validate_id(peer_id)
                raise
            if peer is None:
                peer = self._peer_for_recording(peer_id, now)
            peer.dirty = True
            if latency_ms is None:
                peer.consecutive_failures += 1
                peer.loss.record(False)
                return
            peer.latency.append(now, latency_ms)
            peer.last_latency_ms = latency_ms
            peer.unfolded += 1
            peer.consecutive_failures = 0
            peer.last_seen = now
            peer.loss.pending_successes += 1  # LossTracker.record(True), folded in later
            if peer.sessions:
                for session in peer.sessions:
                    session.add(latency_ms)
        finally:
            lock.release()

    # --- sequence-numbered probes -------------------------------------------------------------

    def record_probe_sent(self, peer_id: str, seq: int, *, timeout_s: float | None = None) -> None:
        """A probe with sequence number ``seq`` went to the peer; its outcome is pending.

        Until its reply arrives or ``timeout_s`` passes the probe is in flight and not
        counted as lost; past it, the next refresh (a tick, or a query) counts it lost and as
        a failed measurement. ``timeout_s`` sets the peer's probe timeout (default 2 s) for
        every probe of its in flight; the latest value given applies.
        """
        self.record_probes_sent(((peer_id, seq),), timeout_s=timeout_s)

    def record_probes_sent(self, probes: Iterable[tuple[str, int]], *,
                           timeout_s: float | None = None) -> None:
        """:meth:`record_probe_sent` for many (peer_id, seq) at once: one clock read for all.

        Every seq is checked before any is recorded; a seq sent twice raises after the probes
        before it were recorded.
        """
        checked = [(_check_key(peer_id), validate_count(seq, "seq")) for peer_id, seq in probes]
        if timeout_s is not None:
            timeout_s = validate_number(timeout_s, "timeout_s", high=3600.0)
            if timeout_s == 0:
                raise ValueError("timeout_s: must be > 0, got 0")
        now = self._clock()
        probed = self._probed
        lock = self._lock
        lock.acquire()
        try:
            for peer_id, seq in checked:
                peer = self._recording_peer(peer_id, now)
                tracker = peer.loss
                if timeout_s is not None and timeout_s != tracker.timeout_s:
                    tracker.set_timeout(timeout_s)
                tracker.sent(seq, now)
                peer.probe_sent_at = now
                probed[peer_id] = peer
        finally:
            lock.release()

    def record_probe_reply(self, peer_id: str, seq: int, rtt_ms: float) -> Arrival:
        """The reply to probe ``seq`` arrived with a round-trip time of ``rtt_ms``.

        Returns how it arrived: ``on_time``; ``late`` (after its timeout: the loss it was
        counted as is taken back); ``duplicate`` (a second reply to one probe: counted, no
        sample); or ``unknown`` (a seq never sent, or too old to remember: no sample). On
        time and late replies are latency samples, with the effects of :meth:`record_latency`.
        """
        return self.record_probe_replies(((peer_id, seq, rtt_ms),))[0]

    def record_probe_replies(self, replies: Iterable[tuple[str, int, float]], *,
                             known_only: bool = False) -> list[Arrival]:
        """:meth:`record_probe_reply` for many (peer_id, seq, rtt_ms) at once, all stamped
        with one clock read; returns each one's arrival, in order.

        Every reply is checked before any is recorded. ``known_only``: a reply for a peer not
        registered (any more) is left out, of the result too, instead of registering the peer
        (a prober whose peer was removed while its probe was in flight must not bring it back).
        """
        checked = [(_check_key(peer_id), validate_count(seq, "seq"),
                    validate_number(rtt_ms, "rtt_ms")) for peer_id, seq, rtt_ms in replies]
        now = self._clock()
        arrivals: list[Arrival] = []
        peers = self._peers
        lock = self._lock
        lock.acquire()
        try:
            for peer_id, seq, rtt in checked:
                peer = peers.get(peer_id)
                if peer is None:
                    if known_only:
                        continue
                    peer = self._peer_for_recording(peer_id, now)
                # Expire first, so a probe that timed out before this reply counts as a
                # failure.
                expire_probes(peer, now)
                arrival = peer.loss.arrived(seq)
                peer.dirty = True
                if arrival == "on_time" or arrival == "late":
                    # record_latency's sample steps; the tracker has already counted the
                    # outcome.
                    peer.latency.append(now, rtt)
                    peer.last_latency_ms = rtt
                    peer.unfolded += 1
                    peer.consecutive_failures = 0
                    peer.last_seen = now
                    for session in peer.sessions:
                        session.add(rtt)
                arrivals.append(arrival)
        finally:
            lock.release()
        return arrivals

    def record_traffic(self, peer_id: str, *, bytes_sent: int = 0, bytes_received: int = 0,
                       packets_sent: int = 0, packets_received: int = 0,
                       messages_sent: int = 0, messages_received: int = 0) -> None:
        """Add to a peer's counters (sent = to the peer) without touching server message totals.

        Use :meth:`record_message` for each application message instead when you want it in
        the server's totals and messages-per-second too.
        """
        bytes_sent = validate_count(bytes_sent, "bytes_sent")
        bytes_received = validate_count(bytes_received, "bytes_received")
        packets_sent = validate_count(packets_sent, "packets_sent")
        packets_received = validate_count(packets_received, "packets_received")
        messages_sent = validate_count(messages_sent, "messages_sent")
        messages_received = validate_count(messages_received, "messages_received")
        now = self._clock()
        with self._lock:
            peer = self._recording_peer(peer_id, now)
            peer.bytes_sent += bytes_sent
            peer.bytes_received += bytes_received
            peer.packets_sent += packets_sent
            peer.packets_received += packets_received
            peer.messages_sent += messages_sent
            peer.messages_received += messages_received
            if messages_sent or messages_received:
                peer.last_message_time = now
            if bytes_received or packets_received or messages_received:
                # Heard from: dirty, so a peer that had gone idle is judged again.
                peer.last_seen = now
                peer.dirty = True

    def mark_alive(self, peer_id: str) -> None:
        """The peer is known to be there (its connection is open and kept alive) though it
        sent nothing: it does not age by the idle rules. Nothing is counted or measured."""
        now = self._clock()
        with self._lock:
            peer = self._recording_peer(peer_id, now)
            peer.last_seen = now
            peer.dirty = True

    def record_loss(self, peer_id: str, loss_percent: float) -> None:
        """Report loss the app measured itself (0..100); it replaces the measured figure."""
        loss = validate_number(loss_percent, "loss_percent", high=100.0)
        now = self._clock()
        with self._lock:
            peer = self._recording_peer(peer_id, now)
            peer.reported_loss_percent = loss
            peer.dirty = True

    def record_message(self, peer_id: str | None = None, *, size: int = 0,
                       direction: Direction = "in") -> None:
        """Count one application message, from (``in``) or to (``out``) a peer or the server."""
        size = validate_count(size, "size")
        if direction not in ("in", "out"):
            raise ValueError(f"direction: must be 'in' or 'out', got {preview(direction)}")
        now = self._clock()
        with self._lock:
            peer = None
            if peer_id is not None:
                peer = self._recording_peer(peer_id, now)
            self._total_messages += 1
            if direction == "in":
                self._messages_in.add(now)
            else:
                self._messages_out.add(now)
            if peer is None:
                return
            peer.last_message_time = now
            if direction == "in":
                peer.messages_received += 1
                peer.bytes_received += size
                peer.last_seen = now
                peer.dirty = True
            else:
                peer.messages_sent += 1
                peer.bytes_sent += size

    def record_fps(self, peer_id: str, fps: float, frame_time_ms: float) -> None:
        """A client's own rendering performance (frames per second, ms per frame)."""
        rate = validate_number(fps, "fps", high=10_000.0)
        frame_time = validate_number(frame_time_ms, "frame_time_ms", high=60_000.0)
        now = self._clock()
        with self._lock:
            peer = self._recording_peer(peer_id, now)
            peer.fps, peer.frame_time_ms = rate, frame_time

    # --- sessions -----------------------------------------------------------------------------

    def start_session(self, name: str, peer_ids: Iterable[str], *, session_id: str | None = None,
                      labels: dict[str, str] | None = None) -> str:
        """Begin a session; the listed peers' latency samples from now on feed its statistics."""
        validate_text(name, "name")
        ids = [validate_id(peer_id) for peer_id in peer_ids]
        sid = validate_id(session_id, "session_id") if session_id is not None else \
            uuid.uuid4().hex
        checked_labels = validate_labels(labels)
        now = self._clock()
        with self._lock:
            self._sessions.open(Session(session_id=sid, name=name, started_at=now, peer_ids=ids,
                                        labels=checked_labels), self._peers)
            self._emit(SessionStarted(sid, name, now))
        return sid

    def end_session(self, session_id: str) -> Session:
        now = self._clock()
        with self._lock:
            session = self._sessions.close(session_id, now, self._peers)
            self._emit(SessionEnded(session_id, session.name, now))
        return session

    def session(self, session_id: str) -> Session:
        """An active or remembered session by id; KeyError if neither."""
        with self._lock:
            return self._sessions.get(session_id)

    def sessions(self, limit: int = 10, *, include_active: bool = True) -> list[Session]:
        """Most recent first: active sessions, then ended ones."""
        with self._lock:
            return self._sessions.recent(limit, include_open=include_active)

    # --- queries ------------------------------------------------------------------------------

    def peer(self, peer_id: str) -> dict[str, Any]:
        """One peer's current figures (the ``clients`` entry shape); KeyError if unknown."""
        now = self._clock()
        with self._lock:
            peer = self._known_peer(peer_id)
            self._refresh(peer, now)
            entry = client_entry(peer, now, self._assessor.derived(peer))
            entry["probes"] = probe_counts(peer)
            return entry

    def _known_peer(self, peer_id: str) -> Peer:
        """Under the lock: a registered peer, or KeyError naming the id."""
        peer = self._peers.get(peer_id)
        if peer is None:
            raise KeyError(f"unknown peer_id {peer_id!r}")
        return peer

    def peers(self) -> list[dict[str, Any]]:
        """Every peer's current figures (the ``clients`` entry shape).

        Built a slice at a time (see :meth:`scan`): the lock is never held for all peers.
        """
        return [entry for chunk in self.peer_slices() for entry in chunk]

    def peer_slices(self, size: int = SCAN_SLICE) -> Iterator[list[dict[str, Any]]]:
        """:meth:`peers`, a slice of ``size`` peers at a time (see :meth:`scan`)."""
        derived = self._assessor.derived
        return self.scan(lambda peer, now: client_entry(peer, now, derived(peer)), size=size)

    def scan(self, view: Callable[[Peer, float], T], *,
             size: int = SCAN_SLICE) -> Iterator[list[T]]:
        """``view(peer, now)`` of every peer, brought up to date first, ``size`` at a time.

        The lock is held while one slice is built and let go between slices, so a read of
        every peer lets recording calls and the tick in between, and a caller on the event
        loop can let the loop run between slices (:mod:`peerscope.slices`). The peers are
        those registered at the first slice; one removed before its slice is left out.
        ``view`` runs under the lock: it must be quick, keep no reference to the peer and
        not call the Monitor.
        """
        if size < 1:
            raise ValueError(f"size: must be at least 1, got {size!r}")
        return self._scan(view, size)

    def _scan(self, view: Callable[[Peer, float], T], size: int) -> Iterator[list[T]]:
        with self._lock:
            peers = list(self._peers.values())
        registered = self._peers
        for start in range(0, len(peers), size):
            now = self._clock()
            with self._lock:
                chunk = []
                for peer in peers[start:start + size]:
                    if registered.get(peer.peer_id) is peer:
                        self._refresh(peer, now)
                        chunk.append(view(peer, now))
            yield chunk

    def latency_history(self, peer_id: str, duration_s: float) -> list[tuple[float, float]]:
        """(timestamp, ms) samples of the last ``duration_s`` seconds, oldest first."""
        now = self._clock()
        with self._lock:
            peer = self._known_peer(peer_id)
            return list(peer.latency.window(duration_s, now))

    def latency_stats(self, peer_id: str, window_s: float) -> Aggregate:
        now = self._clock()
        with self._lock:
            peer = self._known_peer(peer_id)
            return aggregate(peer.latency, window_s, now)

    def sample_system(self) -> SystemSample:
        """Read the host now (also done every tick) and add it to the system history."""
        sampler = self._sampler
        if sampler is None:
            raise RuntimeError("system metrics are disabled (enable_system_metrics=False)")
        sample = sampler.sample()
        with self._lock:
            self._system = sample
            self._system_history.add(sample)
        return sample

    @property
    def system(self) -> SystemSample:
        """The latest host sample (taken each tick)."""
        return self._system

    def system_history(self, name: str, duration_s: float) -> list[tuple[float, float]]:
        """(timestamp, value) samples of a system series over the last ``duration_s``."""
        now = self._clock()
        with self._lock:
            return self._system_history.window(name, duration_s, now)

    def system_stats(self, name: str, window_s: float) -> Aggregate:
        """count/min/max/avg/sum/p50/p95/p99 of a system series over the last ``window_s``."""
        now = self._clock()
        with self._lock:
            return self._system_history.stats(name, window_s, now)

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
            return self._server_stats(now, average)

    @property
    def uptime_seconds(self) -> float:
        """Seconds since the Monitor started, as in :meth:`server_stats`, at O(1) cost."""
        return self._uptime(self._clock())

    def _uptime(self, now: float) -> float:
        return max(0.0, now - self._started_at)

    def _server_stats(self, now: float, average_latency: float) -> ServerStats:
        rate_in = self._messages_in.rate(now)
        rate_out = self._messages_out.rate(now)
        return ServerStats(
            uptime_seconds=self._uptime(now),
            active_connections=len(self._peers),
            total_connections=self._total_connections,
            total_messages=self._total_messages,
            messages_per_second=rate_in + rate_out,
            messages_in_per_second=rate_in,
            messages_out_per_second=rate_out,
            average_latency_ms=average_latency,
        )

    @property
    def last_message(self) -> dict[str, Any] | None:
        """The message built by the latest tick (None before the first)."""
        return self._last_message

    # --- the tick's work ----------------------------------------------------------------------

    def _refresh(self, peer: Peer, now: float) -> None:
        if peer.peer_id in self._probed:
            expire_probes(peer, now)
        previous = peer.status
        changed = self._assessor.refresh(peer, now)
        if changed is not None:
            self._status_changed(peer, previous, changed, now)

    def _status_changed(self, peer: Peer, previous: Status, status: Status, now: float) -> None:
        self._status_counts[previous] -= 1
        self._status_counts[status] += 1
        self._emit(PeerStatusChanged(peer.peer_id, previous, status, now))

    def snapshot(self) -> dict[str, Any]:
        """Build the ``/ws`` metrics message from the current state.

        Cost is one pass over the peers (refresh of the changed ones, idle checks, pruning,
        sums) plus a top-N selection; it never reads stored samples.
        """
        now = self._clock()
        settings = self.settings
        with self._lock:
            for peer in self._probed.values():
                expire_probes(peer, now)  # at once when none can be due (next_expiry)
            sweep = self._assessor.sweep(self._peers.values(), now, settings.peer_ttl_s)
            for peer, previous, status in sweep.changes:
                self._status_changed(peer, previous, status, now)
            for peer in sweep.expired:
                sent_at = peer.probe_sent_at
                if sent_at is not None and now - sent_at < settings.peer_ttl_s:
                    # Still probed: its prober owns its lifetime. Pruned, it would come back
                    # as a new, connected peer at the next probe, and flap every TTL.
                    continue
                del self._peers[peer.peer_id]
                self._forget(peer, now, "pruned")
            system = self._system
            network = quality.network_score_from_sum(sweep.score_sum, sweep.scored,
                                                     system.cpu_percent, settings.quality)
            listed, peers = settings.max_clients_in_message, self._peers.values()
            # heapq's own advice: sorting wins when the share asked for is large (at 200 of
            # 1,000 peers 0.11 against 0.40 ms here), nsmallest when it is small.
            worst = (sorted(peers, key=_rank)[:listed] if len(peers) <= 10 * listed
                     else heapq.nsmallest(listed, peers, key=_rank))
            average = sweep.latency_sum / sweep.measured if sweep.measured else 0.0
            derived = self._assessor.derived
            return {
                "type": "metrics",
                "timestamp": now,
                "system": system_entry(system),
                "server": server_entry(self._server_stats(now, average)),
                "network": network_entry(network, quality.grade(network, settings.quality),
                                         quality.quality_band(network, settings.quality),
                                         self._status_counts),
                "clients": [client_entry(peer, now, derived(peer)) for peer in worst],
                "clients_total": len(self._peers),
                "alerts": [],
            }


_rank = attrgetter("rank")


def _smoothed_latency(peer: Peer, now: float) -> float | None:
    return peer.smoothed_latency_ms


def _check_key(peer_id: object) -> str:
    """A peer id as a recording call may look it up: a str is taken as it is (an unknown one
    is checked in full when it is registered); anything else is refused here, before an
    unhashable object reaches the peer table as a TypeError."""
    if type(peer_id) is str:
        return peer_id
    return validate_id(peer_id)
