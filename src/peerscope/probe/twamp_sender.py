"""The TWAMP Light and STAMP sender: probes out, replies matched back to their probe.

One UDP socket per address family (and DSCP) serves every target, so probing 1,000 peers
costs two file descriptors. The seq on the wire is the sender's own counter, not the
caller's: many targets may share one reflector address, and each probe to it must be told
apart. It starts at a random value, so that a stateless reflector (which copies it) is told
from a stateful one (which counts from 0). Replies are matched by (reflector address, wire
seq) and must echo the probe's timestamp; anything else is dropped and counted. Replies are
read liberally (peerscope.probe.twamp): any that carries the timestamps will do.

Replies are timed by the kernel's arrival stamp (see peerscope.probe.udp); the RTT is that
stamp minus the sender's own clock read just before the probe went out (t4 − t1, both to the
ns on one clock), less the time the reflector held the probe (t3 − t2). Each first reply
also gives a :class:`peerscope.core.path.PathSample`: the sender counts, per reflector
address, the probes it sent and the replies it got, and the reflector's seq says how many
it received, so loss splits by direction (see peerscope.core.path).

Probes asked for in one callback of the loop go out together, back to back, right after it:
a probe sent while the reflector's process still runs from the one before is cheaper for
the kernel than one that must wake it (on this project's 2-core VM, 8-9 µs a ``sendto``
back to back against 11-16 µs with 6 µs of Python between them).

Replies are read on the sender's schedule, not when they arrive
(peerscope.probe.reply_schedule): on this project's VM, 1,000 probes a second on loopback
cost 3.3 % of a core for the socket work alone read as they came, against 2.2 % read this
way (docs/BENCHMARKS.md section 8).
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import time
from functools import cache

from peerscope.core.path import PathSample
from peerscope.core.probe_target import DEFAULT_PADDING, ProbeTarget
from peerscope.probe.clock_sync import ClockWatch
from peerscope.probe.method_protocol import (
    Background,
    FailureHandler,
    ReplyHandler,
    ResolveHandler,
    address_of,
    family_of,
)
from peerscope.probe.reply_schedule import READ_WAIT_S, RECEIVE_BUFFER, ReplySchedule
from peerscope.probe.sender_session import SenderSession
from peerscope.probe.twamp import (
    PTP_FORMAT,
    SENDER_PADDING,
    SYNCHRONIZED,
    TTL_UNKNOWN,
    error_estimate_for,
    error_seconds,
    hold_ms,
    parse_reply,
    unix_ns_from_timestamp,
)
from peerscope.probe.twamp import ntp_from_unix_ns as ntp
from peerscope.probe.udp import Address, UdpEndpoint

logger = logging.getLogger(__name__)
_SEQ_MASK = 0xFFFFFFFF
_HALF_RANGE = 1 << 63
_RANGE = 1 << 64
_MS_PER_UNIT = 1000.0 / (1 << 32)  # an NTP timestamp's unit, 2^-32 s, in ms
_NS = 1_000_000_000
_FIRST_SLOTS = 1024


@cache
def _probe_layout(padding: int) -> struct.Struct:
    """A probe's header and ``padding`` zeros, packed in one call."""
    return struct.Struct(f"!IQH{padding}x")


def encode_probe(
    seq: int, timestamp: int, error_estimate: int, padding: int = SENDER_PADDING
) -> bytes:
    """The bytes of ``SenderPacket(seq, timestamp, error_estimate, padding)``, without
    building the packet; a test holds the two to the same bytes."""
    return _probe_layout(padding).pack(seq, timestamp, error_estimate)


class _SentProbes:
    """The probes sent and remembered: where each went, when, its caller's seq and handler.

    Slots are picked by wire seq modulo their number. Wire seqs are consecutive, so slots
    are written in turn and a probe is forgotten when its slot is reused; the slots double
    whenever that would forget one younger than ``remember_ns``. Parallel lists rather than
    a dict of tuples: a probe creates no object for the garbage collector to track, and 10 s
    of probes (10,000 at 1,000 a second) kept as tuples reached its oldest generation and
    set off a full collection every few seconds.
    """

    def __init__(self, remember_ns: int) -> None:
        self.remember_ns = remember_ns
        self.clear(_FIRST_SLOTS)

    def clear(self, slots: int) -> None:
        self._mask = slots - 1
        self._wire_seqs = [-1] * slots
        self._sent_ns = [0] * slots
        self._t1s = [0] * slots  # the NTP timestamp written into the probe, its echo's match
        self._hosts = [""] * slots
        self._ports = [0] * slots
        self._seqs = [0] * slots
        self._handlers: list[ReplyHandler | None] = [None] * slots
        # Its ordinal in its session (−1 once answered: later replies are duplicates), and
        # the session.
        self._ordinals = [0] * slots
        self._sessions: list[SenderSession | None] = [None] * slots

    def add(
        self,
        wire_seq: int,
        sent_ns: int,
        t1: int,
        address: Address,
        seq: int,
        handler: ReplyHandler,
        session: SenderSession,
        ordinal: int,
    ) -> None:
        i = wire_seq & self._mask
        # A clock stepped back does not make a probe younger, so memory stays bounded.
        if self._handlers[i] is not None and 0 <= sent_ns - self._sent_ns[i] < self.remember_ns:
            self._grow()
            i = wire_seq & self._mask
        self._wire_seqs[i] = wire_seq
        self._sent_ns[i] = sent_ns
        self._t1s[i] = t1
        self._hosts[i], self._ports[i] = address[0], address[1]
        self._seqs[i] = seq
        self._handlers[i] = handler
        self._sessions[i] = session
        self._ordinals[i] = ordinal

    def find(self, wire_seq: int, arrived_ns: int, address: Address) -> int:
        """The slot of the remembered probe a reply from ``address`` answers, else −1."""
        i = wire_seq & self._mask
        if (
            self._handlers[i] is None
            or self._wire_seqs[i] != wire_seq
            or arrived_ns - self._sent_ns[i] >= self.remember_ns
            or self._hosts[i] != address[0]
            or self._ports[i] != address[1]
        ):
            return -1
        return i

    def _grow(self) -> None:
        """Double the slots. Each probe gets its own: one more bit of the wire seq picks it."""
        old = (
            self._wire_seqs,
            self._sent_ns,
            self._t1s,
            self._hosts,
            self._ports,
            self._seqs,
            self._handlers,
            self._sessions,
            self._ordinals,
        )
        self.clear(2 * len(self._wire_seqs))
        for wire_seq, sent_ns, t1, host, port, seq, handler, session, ordinal in zip(
            *old, strict=True
        ):
            if handler is not None and session is not None:
                self.add(wire_seq, sent_ns, t1, (host, port), seq, handler, session, ordinal)


class TwampSender:
    """Sends TWAMP-Test (or STAMP) probes and reports each reply's RTT, and for first
    replies its :class:`~peerscope.core.path.PathSample`, to the probe's handler.

    A probe is remembered for ``remember_s`` after it was sent, so late and duplicate
    replies still reach their handler (which decides what they mean); after that a reply is
    counted as ``unmatched``. Replies reach their handler at most ``read_wait_s`` after they
    arrive (see the module docstring). A probe is padded as its target says, by default as
    its method's base packet is (peerscope.core.probe_target.DEFAULT_PADDING).
    """

    def __init__(
        self,
        *,
        remember_s: float = 10.0,
        read_wait_s: float = READ_WAIT_S,
        clock: ClockWatch | None = None,
    ) -> None:
        self._endpoints: dict[tuple[int, int], UdpEndpoint] = {}
        self._sessions: dict[tuple[int, int, Address], SenderSession] = {}
        self._sent = _SentProbes(int(remember_s * _NS))
        self._wire_seq = random.getrandbits(32)
        self._clock = clock or ClockWatch()
        self._clock_status = self._clock.status()  # as of the last batch of sends
        # The last reflector error estimate seen, and the error it states in ms.
        self._their_estimate = -1
        self._their_error_ms = 0.0
        self._background = Background()
        self._schedule = ReplySchedule(self._read, read_wait_s)
        # Probes asked for and not yet sent: (endpoint, address, caller's seq, handler,
        # layout, session).
        self._outbox: list[
            tuple[UdpEndpoint, Address, int, ReplyHandler, struct.Struct, SenderSession]
        ] = []
        self.malformed = 0  # datagrams that are not replies, or do not echo the probe's t1
        self.unmatched = 0  # replies to no probe of ours (or forgotten ones)
        self.duplicates = 0  # second replies to one probe

    @property
    def errors(self) -> int:
        """Sends the kernel refused and ICMP errors received."""
        return sum(endpoint.errors for endpoint in self._endpoints.values())

    def send(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None = None,
        on_failure: FailureHandler | None = None,
    ) -> None:
        """Send probe ``seq`` to a reflector: at once to an IP, after lookup to a name."""
        if target.ip_version is not None and target.port is not None:
            self._send_now(
                target,
                family_of(target.ip_version),
                (target.host, target.port),
                seq,
                timeout_s,
                on_reply,
            )
        else:
            self._background.spawn(
                self._send_later(target, seq, timeout_s, on_reply, on_resolved, on_failure)
            )

    async def _send_later(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None,
        on_failure: FailureHandler | None,
    ) -> None:
        resolved = await address_of(target, socket.SOCK_DGRAM, seq, on_resolved, on_failure)
        if resolved is not None:
            family, address = resolved
            self._send_now(target, family, address, seq, timeout_s, on_reply)

    def _endpoint(self, family: int, dscp: int) -> UdpEndpoint | None:
        key = (family, dscp)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            try:
                endpoint = UdpEndpoint(
                    family, self.received, read_when_ready=False, receive_buffer=RECEIVE_BUFFER
                )
            except OSError as error:  # e.g. no IPv6 on this host
                logger.debug("TWAMP socket for family %d not opened: %s", family, error)
                return None
            if dscp:
                set_dscp(endpoint.sock, family, dscp)
            self._endpoints[key] = endpoint
            self._schedule.opened_socket()
        return endpoint

    def _send_now(
        self,
        target: ProbeTarget,
        family: int,
        address: Address,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
    ) -> None:
        dscp = target.dscp
        endpoint = self._endpoints.get((family, dscp)) or self._endpoint(family, dscp)
        if endpoint is None:
            return
        key = (family, dscp, address)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = SenderSession()
        padding = target.padding if target.padding is not None else DEFAULT_PADDING[target.method]
        self._schedule.before_send(time.time_ns(), timeout_s)
        if not self._outbox:
            self._schedule.send_soon(self._send_outbox)
        self._outbox.append((endpoint, address, seq, on_reply, _probe_layout(padding), session))

    def _send_outbox(self) -> None:
        """Send the probes asked for since the last call, back to back."""
        outbox, self._outbox = self._outbox, []
        remember, clock = self._sent.add, time.time_ns
        status = self._clock_status = self._clock.status()
        error_estimate = error_estimate_for(status.error_s, synchronized=status.synchronized)
        wire_seq = self._wire_seq
        for endpoint, address, seq, on_reply, layout, session in outbox:
            wire_seq = (wire_seq + 1) & _SEQ_MASK
            ordinal = session.sent
            session.sent = ordinal + 1
            sent_ns = clock()
            t1 = ntp(sent_ns)
            remember(wire_seq, sent_ns, t1, address, seq, on_reply, session, ordinal)
            endpoint.sendto(layout.pack(wire_seq, t1, error_estimate), address)
        self._wire_seq = wire_seq

    def _read(self) -> bool:
        """Hand every reply queued on the sockets to its handler; True if more may wait."""
        more = False
        for endpoint in list(self._endpoints.values()):
            more = endpoint.read() or more
        return more

    def received(self, data: bytes, address: Address, arrived_ns: int) -> None:
        """A datagram on one of the sockets, ``arrived_ns`` (Unix ns) by the kernel's stamp."""
        try:
            reflector_seq, t3, error_estimate, t2, wire_seq, t1, ttl = parse_reply(data)
        except ValueError:
            self.malformed += 1
            return
        sent = self._sent
        i = sent.find(wire_seq, arrived_ns, address)
        if i < 0:
            self.unmatched += 1
            return
        if t1 != sent._t1s[i]:
            self.malformed += 1
            return
        handler = sent._handlers[i]
        assert handler is not None
        sent_ns = sent._sent_ns[i]
        round_trip_ms = (arrived_ns - sent_ns) / 1e6
        if error_estimate & PTP_FORMAT:
            held_ms = hold_ms(t3, t2, error_estimate)
            forward_ms = (unix_ns_from_timestamp(t2, error_estimate, sent_ns) - sent_ns) / 1e6
        else:  # NTP, as nearly every reflector sends: both differences of one kind, inline
            held_ms = ((t3 - t2 + _HALF_RANGE) % _RANGE - _HALF_RANGE) * _MS_PER_UNIT
            forward_ms = ((t2 - t1 + _HALF_RANGE) % _RANGE - _HALF_RANGE) * _MS_PER_UNIT
        rtt_ms = round_trip_ms - held_ms
        # Clamped at 0: the reflector's clock may run at another rate than ours, and a
        # round trip below the clocks' resolution can come out negative.
        rtt_ms = rtt_ms if rtt_ms > 0.0 else 0.0
        ordinal = sent._ordinals[i]
        session = sent._sessions[i]
        if ordinal < 0 or session is None:
            self.duplicates += 1
            handler(sent._seqs[i], rtt_ms)
            return
        sent._ordinals[i] = -1
        # A stateless reflector copies our seq (RFC 8762 §4.2): it says nothing of direction.
        counts = session.counts(ordinal, None if reflector_seq == wire_seq else reflector_seq)
        if counts is None:
            handler(sent._seqs[i], rtt_ms)
            return
        if error_estimate != self._their_estimate:
            self._their_estimate = error_estimate
            self._their_error_ms = error_seconds(error_estimate) * 1000.0
        ours = self._clock_status
        path = PathSample(
            session.epoch,
            counts[0],
            counts[1],
            session.answered,
            forward_ms,
            round_trip_ms - held_ms - forward_ms,  # t4 − t3
            ours.synchronized and bool(error_estimate & SYNCHRONIZED),
            ours.error_s * 1000.0 + self._their_error_ms,
            None if ttl < 0 or ttl == TTL_UNKNOWN else ttl,
        )
        handler(sent._seqs[i], rtt_ms, path)

    async def close(self) -> None:
        self._schedule.cancel()
        self._outbox.clear()
        await self._background.cancel()
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()
        self._sessions.clear()
        self._sent.clear(_FIRST_SLOTS)


def set_dscp(sock: socket.socket, family: int, dscp: int) -> None:
    """Mark the socket's packets with ``dscp`` (the six high bits of the TOS / traffic
    class octet); ECN bits left 0."""
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, dscp << 2)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
