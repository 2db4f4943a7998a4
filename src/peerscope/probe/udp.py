"""A non-blocking UDP socket on the event loop whose datagrams carry the kernel's arrival time
(or an ICMP socket read the same way: ``kind`` and ``proto`` pick it).

Why not an asyncio ``DatagramProtocol``: its transport reads one datagram per wake-up of
the loop and stamps nothing. Probing wants both: the time a datagram reached the host (the
loop may look at it later, and that wait is not network time; ping stamps replies the same
way, with ``SO_TIMESTAMPNS``), and draining every queued datagram in one wake-up, which is
most of the CPU saved when 1,000 peers answer each second.

An endpoint is read either as soon as a datagram is queued (``read_when_ready``, for a
reflector, which answers at once) or only when its owner calls ``read()`` (for a sender,
which reads on its own schedule: waking the process for every few replies cost more than
all the rest of probing, and the kernel's stamps make the time of reading irrelevant to
the round trip).

A reflector also wants the TTL (IPv4) or hop limit (IPv6) each datagram arrived with, which
it echoes to the sender; ``receive_ttl=True`` asks the kernel for it in the same
``recvmsg`` and hands it to the handler as a fourth argument (None if none came).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Literal, overload

SO_TIMESTAMPNS = 35  # Linux; Python's socket module does not name it
IP_RECVTTL = 12  # Linux; nor this one
_TIMESPEC = struct.Struct("@qq")
_TTL = struct.Struct("@i")  # both the IPv4 TTL and the IPv6 hop limit come as a C int
_TTL_KINDS = ((socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT))
_MAX_DATAGRAM = 2048  # larger datagrams are cut short here, and so rejected by the codecs
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
_ANCILLARY_WITH_TTL = _ANCILLARY + socket.CMSG_SPACE(_TTL.size)
_DRAIN = 256  # datagrams read per call at most, so one busy socket cannot starve the loop

Address = tuple[str, int]
DatagramHandler = Callable[[bytes, Address, int], None]
"""Called with (data, sender address, arrival time in Unix ns) for every datagram."""
TtlDatagramHandler = Callable[[bytes, Address, int, int | None], None]
"""The same, with the IP TTL or hop limit the datagram arrived with (None: not known)."""


def kernel_arrival_ns(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The ``SO_TIMESTAMPNS`` arrival time among a datagram's ancillary data, else now."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, ns = _TIMESPEC.unpack_from(data)
            return int(seconds * 1_000_000_000 + ns)
    return time.time_ns()


def enable_timestamps(sock: socket.socket) -> None:
    """Ask the kernel to stamp every datagram's arrival (best effort: Linux only)."""
    # Not Linux: kernel_arrival_ns falls back to reading the clock.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def kernel_ttl(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The TTL or hop limit among a datagram's ancillary data, else None."""
    for level, kind, data in ancillary:
        if (level, kind) in _TTL_KINDS and len(data) >= _TTL.size:
            return int(_TTL.unpack_from(data)[0])
    return None


def enable_ttl(sock: socket.socket, family: int) -> None:
    """Ask the kernel for every datagram's TTL (best effort: Linux names these options)."""
    with contextlib.suppress(OSError):
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    # On an IPv6 socket too: the IPv4 datagrams a dual-stack socket takes carry a TTL.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)


class UdpEndpoint:
    """One UDP socket read by the running loop; ``close()`` releases it.

    ``kind`` and ``proto`` open another datagram socket instead, e.g. ICMP's (``SOCK_DGRAM``
    or ``SOCK_RAW`` with ``IPPROTO_ICMP``); PermissionError if the process may not.
    """

    @overload
    def __init__(
        self,
        family: int,
        on_datagram: DatagramHandler,
        bind: tuple[Any, ...] | None = None,
        *,
        read_when_ready: bool = True,
        receive_buffer: int | None = None,
        kind: int = socket.SOCK_DGRAM,
        proto: int = 0,
        receive_ttl: Literal[False] = False,
    ) -> None: ...

    @overload
    def __init__(
        self,
        family: int,
        on_datagram: TtlDatagramHandler,
        bind: tuple[Any, ...] | None = None,
        *,
        read_when_ready: bool = True,
        receive_buffer: int | None = None,
        kind: int = socket.SOCK_DGRAM,
        proto: int = 0,
        receive_ttl: Literal[True],
    ) -> None: ...

    def __init__(
        self,
        family: int,
        on_datagram: Callable[..., None],
        bind: tuple[Any, ...] | None = None,
        *,
        read_when_ready: bool = True,
        receive_buffer: int | None = None,
        kind: int = socket.SOCK_DGRAM,
        proto: int = 0,
        receive_ttl: bool = False,
    ) -> None:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            enable_timestamps(sock)
            if receive_ttl:
                enable_ttl(sock, family)
            if receive_buffer is not None:
                # Linux grants up to twice net.core.rmem_max without privileges; a smaller
                # buffer than asked for is no error, only less headroom.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            if bind is not None:
                sock.bind(bind)
            self._loop = asyncio.get_running_loop()
            if read_when_ready:
                self._loop.add_reader(sock.fileno(), self.read)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._read_when_ready = read_when_ready
        self._on_datagram = on_datagram
        self._receive_ttl = receive_ttl
        self.errors = 0  # failed sends and receive errors (ICMP unreachable and the like)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def sendto(self, data: bytes, address: Address) -> bool:
        """Send without blocking; False if the kernel refused (buffer full, unreachable)."""
        try:
            self.sock.sendto(data, address)
        except OSError:
            self.errors += 1
            return False
        return True

    def read(self) -> bool:
        """Hand every queued datagram to the handler, up to a limit; True if more may wait."""
        recvmsg, handler, with_ttl = self.sock.recvmsg, self._on_datagram, self._receive_ttl
        room = _ANCILLARY_WITH_TTL if with_ttl else _ANCILLARY
        for _ in range(_DRAIN):
            try:
                data, ancillary, _, address = recvmsg(_MAX_DATAGRAM, room)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                # An ICMP error queued by an earlier send (port unreachable): the probe it
                # was about goes unanswered; keep reading.
                self.errors += 1
                continue
            if with_ttl:
                handler(data, address, kernel_arrival_ns(ancillary), kernel_ttl(ancillary))
            else:
                handler(data, address, kernel_arrival_ns(ancillary))
        return True

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            if self._read_when_ready:
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
