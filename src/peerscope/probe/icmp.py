"""ICMP echo probes (icmplib), for hosts that run no reflector.

Linux lets an unprivileged process ping through an ICMP datagram socket when its group is
in ``net.ipv4.ping_group_range``; otherwise a raw socket needs root or CAP_NET_RAW. Both are
tried, unprivileged first. If neither is allowed the method says so once in the log and
every probe goes unanswered (the peer shows as lost, then disconnected); nothing crashes.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
from typing import Any

from icmplib import AsyncSocket, ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPLibError, SocketPermissionError

from peerscope.probe.method import Background, ReplyHandler, resolve
from peerscope.probe.target import ProbeTarget

logger = logging.getLogger(__name__)
_SOCKETS: dict[int, Any] = {socket.AF_INET: ICMPv4Socket,
                                           socket.AF_INET6: ICMPv6Socket}


class IcmpPinger:
    """ICMP echo request/reply round trips, one short-lived socket per probe."""

    def __init__(self) -> None:
        self._privileged: dict[int, bool] = {}  # per family: which socket kind works
        self.unavailable: str | None = None  # why ICMP cannot be used here, once known
        self._ids = itertools.count(os.getpid() & 0xFFFF)
        self._background = Background()

    def send(self, target: ProbeTarget, seq: int, timeout_s: float,
             on_reply: ReplyHandler) -> None:
        if self.unavailable is not None:
            return
        self._background.spawn(self._ping(target, seq, timeout_s, on_reply))

    def _open(self, family: int) -> Any:
        """An AsyncSocket of whichever kind this process may open; None if neither."""
        kind = _SOCKETS[family]
        known = self._privileged.get(family)
        for privileged in (False, True) if known is None else (known,):
            try:
                icmp_socket = kind(privileged=privileged)
            except SocketPermissionError:
                continue
            self._privileged[family] = privileged
            return AsyncSocket(icmp_socket)
        self.unavailable = ("ICMP probes need net.ipv4.ping_group_range to include this "
                            f"process's group (gid {os.getgid()}) or CAP_NET_RAW; "
                            "ICMP targets will show as lost")
        logger.warning("peerscope: %s", self.unavailable)
        return None

    async def _ping(self, target: ProbeTarget, seq: int, timeout_s: float,
                    on_reply: ReplyHandler) -> None:
        try:
            family, (ip, _) = await resolve(target, socket.SOCK_RAW)
        except OSError as error:
            logger.debug("ICMP probe to %s not sent: %s", target.host, error)
            return
        try:
            icmp = self._open(family)
        except (ICMPLibError, OSError) as error:  # e.g. no IPv6 on this host
            logger.debug("ICMP probe to %s not sent: %s", ip, error)
            return
        if icmp is None:
            return
        request = ICMPRequest(destination=ip, id=next(self._ids) & 0xFFFF,
                              sequence=seq & 0xFFFF)
        try:
            icmp.send(request)
            reply = await icmp.receive(request, timeout_s)
            reply.raise_for_status()  # an error message (unreachable, TTL) is no answer
        except (ICMPLibError, OSError) as error:
            logger.debug("ICMP probe %d to %s: %s", seq, ip, error)
            return
        finally:
            icmp.close()
        on_reply(seq, max(0.0, (reply.time - request.time) * 1000.0))

    async def close(self) -> None:
        await self._background.cancel()
