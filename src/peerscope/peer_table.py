"""The peer table, its lock and the recording calls: the hot path of peerscope.

Thread safety: every recording call may be made from any thread. One lock serialises them,
held only for the few field updates a call makes (a read of every peer holds it for one
slice of peers at a time, :meth:`PeerTable.scan`), so a recording call never waits on I/O
or for long. Recording only stores: jitter, smoothing, loss and the score take the samples
in at the peer's next refresh (the tick, or a query that reads it; peerscope.core.assessment).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, TypeVar, get_args

from peerscope.config import Settings
from peerscope.core import quality
from peerscope.core.assessment import Assessor, expire_probes
from peerscope.core.loss import Arrival, LossTracker
from peerscope.core.model import Peer, PeerKind, ProblemKind
from peerscope.core.path import PathSample, PathState
from peerscope.core.quality import Status
from peerscope.core.series import Series
from peerscope.core.sessions import SessionBook
from peerscope.core.validation import (
    preview,
    real_number,
    validate_count,
    validate_id,
    validate_labels,
    validate_number,
    validate_text,
)
from peerscope.event_bus import EventBus
from peerscope.events import PeerAdded, PeerPathChanged, PeerRemoved, PeerStatusChanged
from peerscope.server_counters import ServerCounters

_INF = math.inf
Direction = Literal["in", "out"]
T = TypeVar("T")
# Peers per hold of the lock in a read of every peer: ~1 ms with all of them changed.
SCAN_SLICE = 128
# A failure's detail may quote a host name of up to 256 characters and the resolver's message.
MAX_DETAIL_LENGTH = 1024
PROBLEM_KINDS: tuple[ProblemKind, ...] = get_args(ProblemKind)


class UnknownPeerError(KeyError):
    """A recording call named a peer that is not registered (with ``unknown_peer="raise"``)."""


class PeerLimitError(ValueError):
    """Registering one more peer would pass ``max_peers``; nothing was changed."""


class PeerTable:
    """Every peer's record, registered, recorded into and brought up to date under one lock.

    The :class:`peerscope.monitor.Monitor` is a PeerTable with a clock loop, queries and
    events around it; this class holds what the recording calls touch, so the hot path is
    read in one place.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float],
        *,
        bus: EventBus,
        sessions: SessionBook,
        counters: ServerCounters,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._peers: dict[str, Peer] = {}
        # Peers that have had sequence-numbered probes: only these need expiry each tick.
        self._probed: dict[str, Peer] = {}
        # Peers whose readings changed since the last tick took them (a refresh found them
        # changed): the tick lists these, in O(changed), not every peer.
        self._changed: dict[str, Peer] = {}
        self._status_counts: dict[Status, int] = dict.fromkeys(quality.STATUSES, 0)
        self._assessor = Assessor(settings.quality, settings.status)
        self._bus = bus
        self._sessions = sessions
        self._counters = counters

    # --- peers --------------------------------------------------------------------------------

    def add_peer(
        self,
        peer_id: str,
        *,
        name: str | None = None,
        address: str | None = None,
        kind: PeerKind = "peer",
        labels: dict[str, str] | None = None,
    ) -> None:
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
            # The next tick lists it (kind and labels ride in its reading): a new peer is
            # seen by subscribers even before anything is recorded for it.
            self._changed[peer_id] = peer

    def restore_peer(
        self,
        peer_id: str,
        *,
        name: str | None,
        address: str | None,
        kind: PeerKind,
        labels: dict[str, str],
        connected_at: float,
        samples: Iterable[tuple[float, float | None]],
    ) -> bool:
        """Bring back a peer known before a restart with its recent latency samples (None:
        a failed measurement) at the times they were taken, oldest first: the next tick
        judges it from them, so a peer not heard from since reads stale or disconnected,
        never live. False (nothing done) if the peer is already registered."""
        validate_id(peer_id)
        checked_labels = validate_labels(labels)
        with self._lock:
            if peer_id in self._peers:
                return False
            peer = self._register(peer_id, connected_at)
            peer.kind, peer.name, peer.address, peer.labels = kind, name, address, checked_labels
            for t, value in samples:
                if value is None:
                    peer.consecutive_failures += 1
                    peer.loss.record(False)
                    peer.note_loss(t)
                else:
                    peer.loss.record(True)
                    peer.add_sample(t, value)
            peer.dirty = True
            self._changed[peer_id] = peer
        return True

    def _register(self, peer_id: str, now: float) -> Peer:
        if len(self._peers) >= self.settings.max_peers:
            raise PeerLimitError(
                f"max_peers: the limit of {self.settings.max_peers} peers is "
                f"reached; peer_id {preview(peer_id)} was not added"
            )
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
        self._counters.total_connections += 1
        self._bus.emit(PeerAdded(peer_id, now))
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
            raise UnknownPeerError(
                f"unknown peer_id {peer_id!r}; call add_peer first or set unknown_peer='register'"
            )
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
        self._changed.pop(peer.peer_id, None)
        peer.sessions = ()
        self._bus.emit(PeerRemoved(peer.peer_id, now, reason))

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
                peer = self._peers[peer_id]
            except KeyError:
                peer = self._peer_for_recording(peer_id, now)
            except TypeError:
                # Unhashable, so no str: this raises the ValueError naming it. A hashable id
                # that is no str is simply not found, and refused when it would be registered.
                validate_id(peer_id)
                raise
            peer.dirty = True
            if latency_ms is None:
                peer.consecutive_failures += 1
                peer.loss.record(False)
                peer.note_loss(now)
                return
            peer.loss.pending_successes += 1  # LossTracker.record(True), folded in later
            peer.add_sample(now, latency_ms)
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

    def record_probes_sent(
        self, probes: Iterable[tuple[str, int]], *, timeout_s: float | None = None
    ) -> None:
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

    def record_probe_replies(
        self, replies: Iterable[tuple[str, int, float]], *, known_only: bool = False
    ) -> list[Arrival]:
        """:meth:`record_probe_reply` for many (peer_id, seq, rtt_ms) at once, all stamped
        with one clock read; returns each one's arrival, in order.

        Every reply is checked before any is recorded. ``known_only``: a reply for a peer not
        registered (any more) is left out, of the result too, instead of registering the peer
        (a prober whose peer was removed while its probe was in flight must not bring it back).
        """
        checked = [
            (_check_key(peer_id), validate_count(seq, "seq"), validate_number(rtt_ms, "rtt_ms"))
            for peer_id, seq, rtt_ms in replies
        ]
        now = self._clock()
        arrivals: list[Arrival] = []
        lock = self._lock
        lock.acquire()
        try:
            for peer_id, seq, rtt in checked:
                peer = self._answering_peer(peer_id, now, known_only)
                if peer is None:
                    continue
                arrival = peer.loss.arrived(seq)
                peer.dirty = True
                if arrival == "on_time" or arrival == "late":
                    peer.add_sample(now, rtt)  # the tracker has counted the outcome
                arrivals.append(arrival)
        finally:
            lock.release()
        return arrivals

    def record_probe_failure(self, peer_id: str, seq: int, kind: ProblemKind, detail: str) -> None:
        """The target itself said no to probe ``seq``: ``port_closed`` (a TCP connection
        refused) or ``unresolved`` (its name does not resolve), ``detail`` saying more.

        The probe is lost now rather than at its timeout, and a failed measurement; the
        peer's ``status_reason`` names the problem until its next successful sample. A probe
        no longer in flight (timed out already, or never announced) was counted when it
        timed out, or is not counted: only the reason is kept.
        """
        self.record_probe_failures(((peer_id, seq, kind, detail),))

    def record_probe_failures(
        self, failures: Iterable[tuple[str, int, ProblemKind, str]], *, known_only: bool = False
    ) -> None:
        """:meth:`record_probe_failure` for many (peer_id, seq, kind, detail) at once, with
        one clock read; every item is checked before any is recorded. ``known_only`` as for
        :meth:`record_probe_replies`."""
        checked = [
            (
                _check_key(peer_id),
                validate_count(seq, "seq"),
                _problem_kind(kind),
                validate_text(detail, "detail", max_length=MAX_DETAIL_LENGTH),
            )
            for peer_id, seq, kind, detail in failures
        ]
        now = self._clock()
        with self._lock:
            for peer_id, seq, kind, detail in checked:
                peer = self._answering_peer(peer_id, now, known_only)
                if peer is None:
                    continue
                sent_at = peer.loss.refused(seq)
                if sent_at is not None:
                    peer.note_loss(sent_at)
                    peer.consecutive_failures += 1
                peer.problem = (kind, detail)
                peer.dirty = True

    def record_probe_paths(self, samples: Iterable[tuple[str, PathSample]]) -> None:
        """What TWAMP/STAMP replies said of both directions of peers' paths (forward and
        return loss and delay, the probes' TTL at the reflector): see peerscope.core.path.
        A new TTL is a :class:`~peerscope.events.PeerPathChanged`. Samples for peers not
        registered are left out."""
        now = self._clock()
        with self._lock:
            for peer_id, sample in samples:
                peer = self._peers.get(peer_id)
                if peer is None:
                    continue
                path = peer.path
                if path is None:
                    path = peer.path = PathState(self.settings.quality.loss_window)
                change = path.add(sample, now)
                if change is not None:
                    peer.dirty = True  # its status text names the change
                    self._bus.emit(PeerPathChanged(peer_id, change.previous_ttl, change.ttl, now))

    def _answering_peer(self, peer_id: str, now: float, known_only: bool) -> Peer | None:
        """Under the lock: the peer an outcome of its probe is for, its probes past their
        timeout expired first (so one that timed out before this outcome counts as lost
        then, and is not counted again now). None for a peer not registered when
        ``known_only`` (a prober whose peer was removed must not bring it back)."""
        peer = self._peers.get(peer_id)
        if peer is None:
            if known_only:
                return None
            peer = self._peer_for_recording(peer_id, now)
        expire_probes(peer, now)
        return peer

    def record_traffic(
        self,
        peer_id: str,
        *,
        bytes_sent: int = 0,
        bytes_received: int = 0,
        packets_sent: int = 0,
        packets_received: int = 0,
        messages_sent: int = 0,
        messages_received: int = 0,
    ) -> None:
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
            else:
                self._changed[peer.peer_id] = peer  # its counts changed: nothing to judge

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

    def record_message(
        self, peer_id: str | None = None, *, size: int = 0, direction: Direction = "in"
    ) -> None:
        """Count one application message, from (``in``) or to (``out``) a peer or the server."""
        size = validate_count(size, "size")
        if direction not in ("in", "out"):
            raise ValueError(f"direction: must be 'in' or 'out', got {preview(direction)}")
        now = self._clock()
        with self._lock:
            peer = None
            if peer_id is not None:
                peer = self._recording_peer(peer_id, now)
            self._counters.message(now, inbound=direction == "in")
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
                self._changed[peer.peer_id] = peer

    def record_fps(self, peer_id: str, fps: float, frame_time_ms: float) -> None:
        """A client's own rendering performance (frames per second, ms per frame)."""
        rate = validate_number(fps, "fps", high=10_000.0)
        frame_time = validate_number(frame_time_ms, "frame_time_ms", high=60_000.0)
        now = self._clock()
        with self._lock:
            peer = self._recording_peer(peer_id, now)
            peer.fps, peer.frame_time_ms = rate, frame_time

    def scan(
        self, view: Callable[[Peer, float], T], *, size: int = SCAN_SLICE
    ) -> Iterator[list[T]]:
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
                for peer in peers[start : start + size]:
                    if registered.get(peer.peer_id) is peer:
                        self._refresh(peer, now)
                        chunk.append(view(peer, now))
            yield chunk

    def _known_peer(self, peer_id: str) -> Peer:
        """Under the lock: a registered peer, or KeyError naming the id."""
        peer = self._peers.get(peer_id)
        if peer is None:
            raise KeyError(f"unknown peer_id {peer_id!r}")
        return peer

    def _refresh(self, peer: Peer, now: float) -> None:
        if peer.peer_id in self._probed:
            expire_probes(peer, now)
        previous, dirty = peer.status, peer.dirty
        changed = self._assessor.refresh(peer, now)
        if changed is not None:
            self._status_changed(peer, previous, changed, now)
        if dirty or changed is not None:
            self._changed[peer.peer_id] = peer

    def _status_changed(self, peer: Peer, previous: Status, status: Status, now: float) -> None:
        self._status_counts[previous] -= 1
        self._status_counts[status] += 1
        self._bus.emit(PeerStatusChanged(peer.peer_id, previous, status, now))


def _problem_kind(kind: object) -> ProblemKind:
    for known in PROBLEM_KINDS:
        if kind == known:
            return known
    raise ValueError(f"kind: must be 'port_closed' or 'unresolved', got {preview(kind)}")


def _check_key(peer_id: object) -> str:
    """A peer id as a recording call may look it up: a str is taken as it is (an unknown one
    is checked in full when it is registered); anything else is refused here, before an
    unhashable object reaches the peer table as a TypeError."""
    if type(peer_id) is str:
        return peer_id
    return validate_id(peer_id)
