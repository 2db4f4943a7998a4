"""ICMP echo probes (icmplib), for hosts that run no reflector.

Linux lets an unprivileged process ping through an ICMP datagram socket when its group is
in ``net.ipv4.ping_group_range``; otherwise a raw socket needs root or CAP_NET_RAW. Both are
tried, unprivileged first. If neither is allowed the method says so once in the log and
every probe goes unanswered (the peer shows as lost, then disconnected); nothing crashes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
from typing import Any

from icmplib import ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPLibError, SocketPermissionError

from peerscope.core.probe_target import ProbeTarget
from peerscope.probe.method_protocol import (
    Background,
    FailureHandler,
    ReplyHandler,
    ResolveHandler,
    address_of,
)
from peerscope.probe.udp import enable_timestamps, kernel_arrival_ns

logger = logging.getLogger(__name__)
_ECHO_REPLY = (0, 129)  # ICMPv4 and ICMPv6 echo reply types
_SOCKETS: dict[int, Any] = {socket.AF_INET: ICMPv4Socket, socket.AF_INET6: ICMPv6Socket}


class IcmpPinger:
    """ICMP echo request/reply round trips, one short-lived socket per probe."""

    def __init__(self) -> None:
        self._privileged: dict[int, bool] = {}  # per family: which socket kind works
        self.unavailable: str | None = None  # why ICMP cannot be used here, once known
        self._ids = itertools.count(os.getpid() & 0xFFFF)
        self._background = Background()

    def send(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None = None,
        on_failure: FailureHandler | None = None,
    ) -> None:
        if self.unavailable is not None:
            return
        self._background.spawn(
            self._ping(target, seq, timeout_s, on_reply, on_resolved, on_failure)
        )

    def _open(self, family: int) -> Any:
        """An icmplib socket of whichever kind this process may open; None if neither."""
        kind = _SOCKETS[family]
        known = self._privileged.get(family)
        for privileged in (False, True) if known is None else (known,):
            try:
                icmp_socket = kind(privileged=privileged)
            except SocketPermissionError:
                continue
            self._privileged[family] = privileged
            return icmp_socket
        self.unavailable = (
            "ICMP probes need net.ipv4.ping_group_range to include this "
            f"process's group (gid {os.getgid()}) or CAP_NET_RAW; "
            "ICMP targets will show as lost"
        )
        logger.warning("%s", self.unavailable)
        return None

    async def _ping(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None,
        on_failure: FailureHandler | None,
    ) -> None:
        address = await address_of(target, socket.SOCK_RAW, seq, on_resolved, on_failure)
        if address is None:
            return
        family, (ip, _) = address
        try:
            icmp = self._open(family)
        except (ICMPLibError, OSError) as error:  # e.g. no IPv6 here
            logger.debug("ICMP probe to %s not sent: %s", target.host, error)
            return
        if icmp is None:
            return
        try:
            icmp.blocking = False
            # Like ping, take the reply's arrival time from the kernel: the event loop may
            # see the datagram later, and that wait is not network time.
            enable_timestamps(icmp.sock)
            request = ICMPRequest(
                destination=ip, id=next(self._ids) & 0xFFFF, sequence=seq & 0xFFFF
            )
            async with asyncio.timeout(timeout_s):
                icmp.send(request)  # stamps request.time just before sendto
                arrived = await _echo_reply(icmp, request)
        except (ICMPLibError, OSError, TimeoutError) as error:
            logger.debug("ICMP probe %d to %s: %s", seq, ip, error)
            return
        finally:
            icmp.close()
        on_reply(seq, max(0.0, (arrived - request.time) * 1000.0))

    async def close(self) -> None:
        await self._background.cancel()


async def _echo_reply(icmp: Any, request: Any) -> float:
    """Wait for the echo reply to ``request``; its arrival time, in epoch seconds."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[float] = loop.create_future()
    sock = icmp.sock

    def readable() -> None:
        while not arrived.done():
            try:
                packet, ancillary, _, _ = sock.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                arrived.set_exception(error)
                return
            at = kernel_arrival_ns(ancillary) / 1e9
            # icmplib knows where the ICMP header starts (raw sockets include the IP one).
            reply = icmp._parse_reply(packet, None, at)
            if (
                reply is not None
                and reply.id == request.id
                and reply.sequence == request.sequence
                and reply.type in _ECHO_REPLY
            ):
                arrived.set_result(at)

    loop.add_reader(sock, readable)
    try:
        return await arrived
    finally:
        loop.remove_reader(sock)
