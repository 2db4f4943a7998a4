"""The TWAMP Light sender: probes out, replies matched back to their probe.

One UDP socket per address family serves every target, so probing 1,000 peers costs two
file descriptors. The seq on the wire is the sender's own counter, not the caller's: many
targets may share one reflector address, and each probe to it must be told apart. Replies
are matched by (reflector address, wire seq), so they must come from the address the probe
went to; anything else is dropped and counted. Replies are timed by the kernel's arrival
stamp (see peerscope.probe.udp).
"""

from __future__ import annotations

import logging
import socket
import struct
import time

from peerscope.probe.method import Background, ReplyHandler, family_of, resolve
from peerscope.probe.target import ProbeTarget
from peerscope.probe.twamp import ERROR_ESTIMATE, SENDER_PADDING, reply_seq_and_rtt
from peerscope.probe.twamp import ntp_from_unix_ns as ntp
from peerscope.probe.udp import Address, UdpEndpoint

logger = logging.getLogger(__name__)
_SEQ_MASK = 0xFFFFFFFF
# SenderPacket(seq, timestamp).encode() without building the object, for the probe loop;
# a test holds the two to the same bytes.
_PROBE = struct.Struct(f"!IQH{SENDER_PADDING}x")
_NS = 1_000_000_000
# What is kept of a probe, by wire seq: where it went (a reply must come from there), the
# caller's seq and handler. A tuple, not an object: one is built per probe.
_Sent = tuple[str, int, int, ReplyHandler]


def encode_probe(seq: int, timestamp: int) -> bytes:
    """The bytes of ``SenderPacket(seq, timestamp)``, the default padding and error estimate."""
    return _PROBE.pack(seq, timestamp, ERROR_ESTIMATE)


class TwampSender:
    """Sends TWAMP-Test probes and reports each reply's RTT to the probe's handler.

    A probe is remembered for ``remember_s`` (up to twice that) after it was sent, so late
    and duplicate replies still reach their handler (which decides what they mean); after
    that a reply is counted as ``unmatched``.
    """

    def __init__(self, *, remember_s: float = 10.0) -> None:
        self._remember_ns = int(remember_s * _NS)
        self._endpoints: dict[int, UdpEndpoint] = {}
        # Two generations: every remember_s the older one is dropped whole, which bounds
        # memory without keeping a send time per probe or a queue to trim.
        self._sent: dict[int, _Sent] = {}
        self._older: dict[int, _Sent] = {}
        self._wire_seq = 0
        self._rotated_ns = 0
        self._background = Background()
        self.rejected = 0  # datagrams that are not TWAMP-Test replies
        self.unmatched = 0  # replies to no probe of ours (or forgotten ones)

    @property
    def errors(self) -> int:
        """Sends the kernel refused and ICMP errors received."""
        return sum(endpoint.errors for endpoint in self._endpoints.values())

    def send(self, target: ProbeTarget, seq: int, timeout_s: float,
             on_reply: ReplyHandler) -> None:
        """Send probe ``seq`` to a TWAMP reflector: at once to an IP, after lookup to a name."""
        if target.ip_version is not None and target.port is not None:
            self._send_now(family_of(target.ip_version), (target.host, target.port), seq,
                           on_reply)
        else:
            self._background.spawn(self._send_later(target, seq, on_reply))

    async def _send_later(self, target: ProbeTarget, seq: int, on_reply: ReplyHandler) -> None:
        try:
            family, address = await resolve(target, socket.SOCK_DGRAM)
        except OSError as error:
            logger.debug("TWAMP probe to %s not sent: %s", target.address, error)
            return
        self._send_now(family, address, seq, on_reply)

    def _endpoint(self, family: int) -> UdpEndpoint | None:
        endpoint = self._endpoints.get(family)
        if endpoint is None:
            try:
                endpoint = self._endpoints[family] = UdpEndpoint(family, self.received)
            except OSError as error:  # e.g. no IPv6 on this host
                logger.debug("TWAMP socket for family %d not opened: %s", family, error)
                return None
        return endpoint

    def _send_now(self, family: int, address: Address, seq: int,
                  on_reply: ReplyHandler) -> None:
        endpoint = self._endpoints.get(family) or self._endpoint(family)
        if endpoint is None:
            return
        now_ns = time.time_ns()  # t1, and the clock for forgetting
        # A clock stepped back rotates too, so memory stays bounded whatever the clock does.
        if not 0 <= now_ns - self._rotated_ns < self._remember_ns:
            self._rotated_ns = now_ns
            self._older, self._sent = self._sent, {}
        wire_seq = self._wire_seq = (self._wire_seq + 1) & _SEQ_MASK
        self._sent[wire_seq] = (address[0], address[1], seq, on_reply)
        endpoint.sendto(encode_probe(wire_seq, ntp(now_ns)), address)

    def received(self, data: bytes, address: Address, arrived_ns: int) -> None:
        """A datagram on one of the sockets, ``arrived_ns`` (Unix ns) by the kernel's stamp."""
        try:
            wire_seq, rtt_ms = reply_seq_and_rtt(data, ntp(arrived_ns))
        except ValueError:
            self.rejected += 1
            return
        sent = self._sent.get(wire_seq) or self._older.get(wire_seq)
        if sent is None or sent[0] != address[0] or sent[1] != address[1]:
            self.unmatched += 1
            return
        sent[3](sent[2], rtt_ms)

    async def close(self) -> None:
        await self._background.cancel()
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()
        self._sent.clear()
        self._older.clear()

