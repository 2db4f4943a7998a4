"""The TWAMP Light sender: probes out, replies matched back to their probe by seq.

One UDP socket per address family serves every target, so probing 1,000 peers costs two
file descriptors. The seq on the wire is the sender's own counter, not the caller's: many
targets may share one reflector address, and each probe to it must be told apart. Replies
are matched by (reflector address, wire seq), so they must come from the address the probe
went to; anything else is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import cast

from peerscope.probe.method import Background, ReplyHandler, resolve
from peerscope.probe.target import ProbeTarget
from peerscope.probe.twamp import ReflectorPacket, SenderPacket, ntp_from_unix_ns

logger = logging.getLogger(__name__)
_SEQ_MASK = 0xFFFFFFFF
Key = tuple[str, int, int]  # reflector ip, port, wire seq


@dataclass(slots=True)
class _Sent:
    seq: int
    at: float  # loop time
    on_reply: ReplyHandler


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, sender: TwampSender) -> None:
        self.sender = sender
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.sender.received(data, addr, ntp_from_unix_ns(time.time_ns()))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the probe simply goes unanswered.
        self.sender.errors += 1


class TwampSender:
    """Sends TWAMP-Test probes and reports each reply's RTT to the probe's handler.

    A probe is remembered for ``remember_s`` after it was sent, so late and duplicate
    replies still reach their handler (which decides what they mean); after that a reply is
    counted as ``unmatched``.
    """

    def __init__(self, *, remember_s: float = 60.0) -> None:
        self._remember_s = remember_s
        self._sockets: dict[int, _Socket] = {}
        self._opening: dict[int, asyncio.Future[_Socket]] = {}
        self._sent: OrderedDict[Key, _Sent] = OrderedDict()
        self._wire_seq = 0
        self._background = Background()
        self.errors = 0  # send failures and ICMP errors on the sockets
        self.rejected = 0  # datagrams that are not TWAMP-Test replies
        self.unmatched = 0  # replies to no probe of ours (or forgotten ones)

    def send(self, target: ProbeTarget, seq: int, timeout_s: float,
             on_reply: ReplyHandler) -> None:
        """Send probe ``seq`` to a TWAMP reflector; an IP literal goes out at once."""
        if target.is_literal and target.port is not None:
            family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
            endpoint = self._sockets.get(family)
            if endpoint is not None and endpoint.transport is not None:
                self._send_now(endpoint.transport, (target.host, target.port), seq, on_reply)
                return
        self._background.spawn(self._send_later(target, seq, on_reply))

    async def _send_later(self, target: ProbeTarget, seq: int, on_reply: ReplyHandler) -> None:
        try:
            family, address = await resolve(target, socket.SOCK_DGRAM)
            endpoint = await self._socket(family)
        except OSError as error:
            self.errors += 1
            logger.debug("TWAMP probe to %s not sent: %s", target.address, error)
            return
        assert endpoint.transport is not None
        self._send_now(endpoint.transport, address, seq, on_reply)

    async def _socket(self, family: int) -> _Socket:
        endpoint = self._sockets.get(family)
        if endpoint is not None:
            return endpoint
        opening = self._opening.get(family)
        if opening is None:  # the first probe of a family opens its socket; others wait
            loop = asyncio.get_running_loop()
            opening = self._opening[family] = loop.create_future()
            try:
                _, protocol = await loop.create_datagram_endpoint(
                    lambda: _Socket(self), family=family)
            except OSError as error:
                del self._opening[family]
                opening.set_exception(error)
                opening.exception()  # retrieved here, so a lone opener logs nothing
                raise
            self._sockets[family] = protocol
            del self._opening[family]
            opening.set_result(protocol)
            return protocol
        return await asyncio.shield(opening)

    def _send_now(self, transport: asyncio.DatagramTransport, address: tuple[str, int],
                  seq: int, on_reply: ReplyHandler) -> None:
        now = asyncio.get_running_loop().time()
        self._forget_before(now - self._remember_s)
        wire_seq = self._wire_seq = (self._wire_seq + 1) & _SEQ_MASK
        self._sent[(address[0], address[1], wire_seq)] = _Sent(seq, now, on_reply)
        packet = SenderPacket(wire_seq, ntp_from_unix_ns(time.time_ns()))
        try:
            transport.sendto(packet.encode(), address)
        except OSError:
            self.errors += 1

    def _forget_before(self, horizon: float) -> None:
        sent = self._sent
        while sent:
            key, oldest = next(iter(sent.items()))
            if oldest.at >= horizon:
                return
            del sent[key]

    def received(self, data: bytes, addr: tuple[str | object, int], arrived: int) -> None:
        """A datagram on one of the sockets, ``arrived`` at this NTP time."""
        try:
            reply = ReflectorPacket.decode(data)
        except ValueError:
            self.rejected += 1
            return
        sent = self._sent.get((str(addr[0]), addr[1], reply.sender_seq))
        if sent is None:
            self.unmatched += 1
            return
        sent.on_reply(sent.seq, reply.round_trip_ms(arrived))

    async def close(self) -> None:
        await self._background.cancel()
        for endpoint in self._sockets.values():
            if endpoint.transport is not None:
                endpoint.transport.close()
        self._sockets.clear()
        self._sent.clear()
