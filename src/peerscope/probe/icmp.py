"""ICMP echo probes, for hosts that run no reflector: one socket per address family serves
every target, as fping does, with no object or task per probe.

The socket: an ICMP datagram socket where Linux allows it (a process whose group is in
``net.ipv4.ping_group_range``); the kernel then owns the echo identifier (the socket's
local "port"), fills in the checksum and hands this socket only the replies to it. Else a
raw socket (root or CAP_NET_RAW): this pinger picks the identifier, writes the IPv4
checksum, asks the kernel to pass only echo replies (ICMP_FILTER, ICMP6_FILTER: no copy of
every other ICMP message on the host, nor of the requests it sends to itself on loopback),
skips the IPv4 header a raw socket reads, and drops replies carrying another identifier
(another pinger's, fping's). If neither socket is allowed, the method says so once in the
log and every probe goes unanswered (the peer shows as lost, then disconnected); nothing
crashes.

Probes asked for in one callback of the loop go out together right after it, and replies
are read on the pinger's own schedule (:mod:`peerscope.probe.reply_schedule`), every
queued one per read, each timed by the kernel's arrival stamp (like ping,
``SO_TIMESTAMPNS``; see :mod:`peerscope.probe.udp`) against the clock read just before its
request went out.

The 16-bit echo sequence number is the pinger's own counter, not the caller's seq (many
targets share the socket); a reply is matched to its probe by that sequence number, and
must come from the address the probe went to and carry the probe's payload, the send time
in ns (8 octets): a reply from elsewhere, a stale reply whose sequence number has since
been reused, or a garbled one is dropped and counted in ``unmatched``.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import struct
import time

from peerscope.core.probe_target import ProbeTarget
from peerscope.probe.method_protocol import (
    Background,
    FailureHandler,
    ReplyHandler,
    ResolveHandler,
    address_of,
    family_of,
)
from peerscope.probe.reply_schedule import READ_WAIT_S, RECEIVE_BUFFER, ReplySchedule
from peerscope.probe.udp import Address, UdpEndpoint

logger = logging.getLogger(__name__)
# type, code, checksum, identifier, sequence number; then the payload: the send time in ns
ECHO = struct.Struct("!BBHHHQ")
_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
_PROTOCOL: dict[int, int] = {
    socket.AF_INET: socket.IPPROTO_ICMP,
    socket.AF_INET6: socket.IPPROTO_ICMPV6,
}
_SOL_RAW = 255  # Linux: the level of ICMP_FILTER; Python's socket module names neither
_ICMP_FILTER = 1  # IPv4: a 32-bit mask of the message types the kernel withholds
_ICMP6_FILTER = 1  # IPv6: a 256-bit mask, likewise
_WIRE_SEQS = 1 << 16
_FIRST_SLOTS = 1024
_NS = 1_000_000_000
_identifiers = itertools.count(os.getpid())  # one per raw socket of this process


class _EchoSocket:
    """One family's ICMP socket, datagram if allowed, else raw: writes echo requests, picks
    the echo replies to them out of what it reads, and hands each to the pinger (counting
    the rest in its ``malformed``). PermissionError if neither kind may be opened."""

    def __init__(self, family: int, pinger: IcmpPinger) -> None:
        self.family = family
        self._pinger = pinger
        self.raw = False
        try:
            self.endpoint = self._open(socket.SOCK_DGRAM)
        except PermissionError:
            self.raw = True
            self.endpoint = self._open(socket.SOCK_RAW)
        self.identifier = next(_identifiers) & 0xFFFF if self.raw else 0
        self._request_type = _REQUEST[family]
        self._reply_type = _REPLY[family]
        # A raw IPv4 socket reads the IP header too, and the kernel computes no checksum.
        self._ipv4_raw = self.raw and family == socket.AF_INET
        if self.raw:
            self._pass_only_echo_replies()

    def _open(self, kind: int) -> UdpEndpoint:
        return UdpEndpoint(
            self.family,
            self.received,
            read_when_ready=False,
            receive_buffer=RECEIVE_BUFFER,
            kind=kind,
            proto=_PROTOCOL[self.family],
        )

    def _pass_only_echo_replies(self) -> None:
        sock, reply = self.endpoint.sock, self._reply_type
        try:
            if self.family == socket.AF_INET:
                sock.setsockopt(
                    _SOL_RAW, _ICMP_FILTER, struct.pack("=I", ~(1 << reply) & 0xFFFFFFFF)
                )
            else:
                blocked = [0xFFFFFFFF] * 8
                blocked[reply >> 5] &= ~(1 << (reply & 31))
                sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("=8I", *blocked))
        except OSError as error:  # not Linux: every message is read, and the rest dropped
            logger.debug("ICMP filter not set: %s", error)

    def request(self, wire_seq: int, sent_ns: int) -> bytes:
        checksum = 0
        if self._ipv4_raw:
            # RFC 1071: the ones' complement of the ones' complement sum of 16-bit words.
            total = (
                (self._request_type << 8)
                + self.identifier
                + wire_seq
                + (sent_ns >> 48)
                + ((sent_ns >> 32) & 0xFFFF)
                + ((sent_ns >> 16) & 0xFFFF)
                + (sent_ns & 0xFFFF)
            )
            total = (total & 0xFFFF) + (total >> 16)
            total = (total & 0xFFFF) + (total >> 16)
            checksum = ~total & 0xFFFF
        return ECHO.pack(self._request_type, 0, checksum, self.identifier, wire_seq, sent_ns)

    def received(self, data: bytes, address: Address, arrived_ns: int) -> None:
        start = (data[0] & 0x0F) << 2 if self._ipv4_raw and data else 0
        if len(data) < start + ECHO.size:
            self._pinger.malformed += 1
            return
        kind, code, _, identifier, wire_seq, sent_ns = ECHO.unpack_from(data, start)
        if kind != self._reply_type or code != 0 or (self.raw and identifier != self.identifier):
            self._pinger.malformed += 1
            return
        self._pinger.echoed(wire_seq, sent_ns, address[0], arrived_ns)


class _SentProbes:
    """The echo requests sent and remembered, in parallel lists (no object per probe):
    where each went, when, its caller's seq and handler.

    Slots are picked by the 16-bit wire seq modulo their number; they double (up to one per
    wire seq) whenever a slot would be reused for a probe younger than ``remember_ns``. Past
    65,536 probes a memory span, the oldest is forgotten.
    """

    def __init__(self, remember_ns: int) -> None:
        self.remember_ns = remember_ns
        self.clear(_FIRST_SLOTS)

    def clear(self, slots: int) -> None:
        self._mask = slots - 1
        self._wire_seqs = [-1] * slots
        self._sent_ns = [0] * slots
        self._hosts = [""] * slots
        self._seqs = [0] * slots
        self._handlers: list[ReplyHandler | None] = [None] * slots

    def add(self, wire_seq: int, sent_ns: int, host: str, seq: int, handler: ReplyHandler) -> None:
        i = wire_seq & self._mask
        if (
            self._handlers[i] is not None
            and 0 <= sent_ns - self._sent_ns[i] < self.remember_ns
            and self._mask < _WIRE_SEQS - 1
        ):
            self._grow()
            i = wire_seq & self._mask
        self._wire_seqs[i] = wire_seq
        self._sent_ns[i] = sent_ns
        self._hosts[i] = host
        self._seqs[i] = seq
        self._handlers[i] = handler

    def find(
        self, wire_seq: int, sent_ns: int, host: str, arrived_ns: int
    ) -> tuple[int, ReplyHandler] | None:
        """(seq, handler) of the remembered probe this reply answers, else None."""
        i = wire_seq & self._mask
        handler = self._handlers[i]
        if (
            handler is None
            or self._wire_seqs[i] != wire_seq
            or self._sent_ns[i] != sent_ns
            or self._hosts[i] != host
            or arrived_ns - sent_ns >= self.remember_ns
        ):
            return None
        return self._seqs[i], handler

    def _grow(self) -> None:
        old = (self._wire_seqs, self._sent_ns, self._hosts, self._seqs, self._handlers)
        self.clear(2 * len(self._wire_seqs))
        for wire_seq, sent_ns, host, seq, handler in zip(*old, strict=True):
            if handler is not None:
                self.add(wire_seq, sent_ns, host, seq, handler)


class IcmpPinger:
    """ICMP echo round trips to any number of targets over one socket per address family.

    A probe is remembered for ``remember_s`` after it was sent, so late and duplicate
    replies still reach their handler (which decides what they mean). Replies reach their
    handler at most ``read_wait_s`` after they arrive.
    """

    def __init__(self, *, remember_s: float = 10.0, read_wait_s: float = READ_WAIT_S) -> None:
        self._sockets: dict[int, _EchoSocket] = {}
        self._sent = _SentProbes(int(remember_s * _NS))
        self._wire_seq = 0
        self._background = Background()
        self._schedule = ReplySchedule(self._read, read_wait_s)
        # Probes asked for and not yet sent: (socket, address, caller's seq, handler).
        self._outbox: list[tuple[_EchoSocket, str, int, ReplyHandler]] = []
        self.unavailable: str | None = None  # why ICMP cannot be used here, once known
        self.malformed = 0  # datagrams that are no echo reply to this pinger
        self.unmatched = 0  # echo replies to no remembered probe, or from the wrong address

    @property
    def errors(self) -> int:
        """Sends the kernel refused and receive errors."""
        return sum(echo.endpoint.errors for echo in self._sockets.values())

    def send(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None = None,
        on_failure: FailureHandler | None = None,
    ) -> None:
        """Send echo request ``seq`` to ``target``: at once to an IP, after lookup to a name."""
        if self.unavailable is not None:
            return
        if target.ip_version is not None:
            self._send_now(family_of(target.ip_version), target.host, seq, timeout_s, on_reply)
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
        resolved = await address_of(target, socket.SOCK_RAW, seq, on_resolved, on_failure)
        if resolved is not None and self.unavailable is None:
            family, (host, _) = resolved
            self._send_now(family, host, seq, timeout_s, on_reply)

    def _socket(self, family: int) -> _EchoSocket | None:
        try:
            echo = self._sockets[family] = _EchoSocket(family, self)
        except PermissionError:
            self.unavailable = (
                "ICMP probes need net.ipv4.ping_group_range to include this "
                f"process's group (gid {os.getgid()}) or CAP_NET_RAW; "
                "ICMP targets will show as lost"
            )
            logger.warning("%s", self.unavailable)
            return None
        except OSError as error:  # e.g. no IPv6 on this host
            logger.debug("ICMP socket for family %d not opened: %s", family, error)
            return None
        self._schedule.opened_socket()
        return echo

    def _send_now(
        self, family: int, host: str, seq: int, timeout_s: float, on_reply: ReplyHandler
    ) -> None:
        echo = self._sockets.get(family) or self._socket(family)
        if echo is None:
            return
        self._schedule.before_send(time.time_ns(), timeout_s)
        if not self._outbox:
            self._schedule.send_soon(self._send_outbox)
        self._outbox.append((echo, host, seq, on_reply))

    def _send_outbox(self) -> None:
        """Send the probes asked for since the last call, back to back."""
        outbox, self._outbox = self._outbox, []
        remember, clock = self._sent.add, time.time_ns
        wire_seq = self._wire_seq
        for echo, host, seq, on_reply in outbox:
            wire_seq = (wire_seq + 1) & 0xFFFF
            sent_ns = clock()
            remember(wire_seq, sent_ns, host, seq, on_reply)
            echo.endpoint.sendto(echo.request(wire_seq, sent_ns), (host, 0))
        self._wire_seq = wire_seq

    def _read(self) -> bool:
        more = False
        for echo in list(self._sockets.values()):
            more = echo.endpoint.read() or more
        return more

    def echoed(self, wire_seq: int, sent_ns: int, host: str, arrived_ns: int) -> None:
        """An echo reply to this pinger, ``arrived_ns`` (Unix ns) by the kernel's stamp."""
        found = self._sent.find(wire_seq, sent_ns, host, arrived_ns)
        if found is None:
            self.unmatched += 1
            return
        seq, handler = found
        rtt_ms = (arrived_ns - sent_ns) / 1e6
        handler(seq, rtt_ms if rtt_ms > 0.0 else 0.0)  # below the clock's resolution

    async def close(self) -> None:
        self._schedule.cancel()
        self._outbox.clear()
        await self._background.cancel()
        for echo in self._sockets.values():
            echo.endpoint.close()
        self._sockets.clear()
        self._sent.clear(_FIRST_SLOTS)
