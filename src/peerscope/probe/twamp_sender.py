"""The TWAMP Light sender: probes out, replies matched back to their probe.

One UDP socket per address family serves every target, so probing 1,000 peers costs two
file descriptors. The seq on the wire is the sender's own counter, not the caller's: many
targets may share one reflector address, and each probe to it must be told apart. Replies
are matched by (reflector address, wire seq), so they must come from the address the probe
went to; anything else is dropped and counted. Replies are timed by the kernel's arrival
stamp (see peerscope.probe.udp).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass

from peerscope.probe.method import Background, ReplyHandler, family_of, resolve
from peerscope.probe.target import ProbeTarget
from peerscope.probe.twamp import ERROR_ESTIMATE, SENDER_PADDING, ReflectorPacket
from peerscope.probe.twamp import ntp_from_unix_ns as ntp
from peerscope.probe.udp import Address, UdpEndpoint

logger = logging.getLogger(__name__)
_SEQ_MASK = 0xFFFFFFFF
# SenderPacket(seq, timestamp).encode() without building the object, for the probe loop;
# a test holds the two to the same bytes.
_PROBE = struct.Struct(f"!IQH{SENDER_PADDING}x")
Key = tuple[str, int, int]  # reflector ip, port, wire seq


@dataclass(slots=True)
class _Sent:
    seq: int
    at: float  # loop time
    on_reply: ReplyHandler


def encode_probe(seq: int, timestamp: int) -> bytes:
    """The bytes of ``SenderPacket(seq, timestamp)``, the default padding and error estimate."""
    return _PROBE.pack(seq, timestamp, ERROR_ESTIMATE)


class TwampSender:
    """Sends TWAMP-Test probes and reports each reply's RTT to the probe's handler.

    A probe is remembered for ``remember_s`` after it was sent, so late and duplicate
    replies still reach their handler (which decides what they mean); after that a reply is
    counted as ``unmatched``.
    """

    def __init__(self, *, remember_s: float = 10.0) -> None:
        self._remember_s = remember_s
        self._endpoints: dict[int, UdpEndpoint] = {}
        self._sent: OrderedDict[Key, _Sent] = OrderedDict()
        self._wire_seq = 0
        self._forgotten_at = 0.0
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
        endpoint = self._endpoint(family)
        if endpoint is None:
            return
        now = asyncio.get_running_loop().time()
        if now - self._forgotten_at >= 1.0:  # once a second is enough to bound memory
            self._forgotten_at = now
            self._forget_before(now - self._remember_s)
        wire_seq = self._wire_seq = (self._wire_seq + 1) & _SEQ_MASK
        self._sent[(address[0], address[1], wire_seq)] = _Sent(seq, now, on_reply)
        endpoint.sendto(encode_probe(wire_seq, ntp(time.time_ns())), address)

    def _forget_before(self, horizon: float) -> None:
        sent = self._sent
        while sent:
            key, oldest = next(iter(sent.items()))
            if oldest.at >= horizon:
                return
            del sent[key]

    def received(self, data: bytes, address: Address, arrived_ns: int) -> None:
        """A datagram on one of the sockets, ``arrived_ns`` (Unix ns) by the kernel's stamp."""
        try:
            reply = ReflectorPacket.decode(data)
        except ValueError:
            self.rejected += 1
            return
        sent = self._sent.get((address[0], address[1], reply.sender_seq))
        if sent is None:
            self.unmatched += 1
            return
        sent.on_reply(sent.seq, reply.round_trip_ms(ntp(arrived_ns)))

    async def close(self) -> None:
        await self._background.cancel()
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()
        self._sent.clear()

