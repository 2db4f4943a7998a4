"""The kernel's measurements of TCP connections (Linux ``TCP_INFO``), read from their sockets.

:func:`read_tcp_info` reads one connection now. :class:`ConnectionWatch` keeps the
connections a Monitor reads at every tick, each under the peer it measures: the kernel's
smoothed RTT is the peer's latency and its retransmissions are the peer's loss, with no
cooperation from the far end. Linux only: elsewhere (or where the kernel refuses the option)
there is nothing to read, and the caller falls back to what it measures itself.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from asyncio.trsock import TransportSocket

from peerscope.core.kernel_tcp import BUFFER_SIZE, ConnectionState, TcpInfo, parse_tcp_info
from peerscope.core.model import Peer
from peerscope.core.validation import preview

logger = logging.getLogger(__name__)

# None where the kernel has no TCP_INFO to give (every platform but Linux).
TCP_INFO_OPTION: int | None = (
    getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
)
UNAVAILABLE = (
    "TCP_INFO not available on this platform: client latency comes from the application echo"
)
# What an asyncio transport hands out as its socket is a TransportSocket (a socket.socket
# stripped of what would disturb the transport); getsockopt is among what it keeps.
TcpSocket = socket.socket | TransportSocket
_INET = (socket.AF_INET, socket.AF_INET6)
_NO_SUCH_OPTION = (errno.ENOPROTOOPT, errno.EOPNOTSUPP)
_Watched = tuple[Peer, TcpSocket, ConnectionState]


def tcp_socket(connection: object) -> TcpSocket:
    """The socket of ``connection``: a ``socket.socket``, an asyncio transport or an
    ``asyncio.StreamWriter``. ``ValueError`` naming ``connection`` for anything else, for a
    closed socket, and for one that is not TCP over IPv4 or IPv6."""
    sock: object = connection
    if not isinstance(connection, socket.socket | TransportSocket):
        get_extra_info = getattr(connection, "get_extra_info", None)
        if not callable(get_extra_info):
            raise ValueError(
                "connection: must be a socket.socket, an asyncio transport or an "
                f"asyncio.StreamWriter, got {preview(connection)}"
            )
        sock = get_extra_info("socket")
        if sock is None:
            raise ValueError(f"connection: {preview(connection)} has no socket")
    if not isinstance(sock, socket.socket | TransportSocket):
        raise ValueError(f"connection: its socket is no socket, got {preview(sock)}")
    if sock.fileno() == -1:
        raise ValueError("connection: the socket is closed")
    if sock.family not in _INET or sock.type != socket.SOCK_STREAM:
        kind = f"{socket.AddressFamily(sock.family).name} {socket.SocketKind(sock.type).name}"
        raise ValueError(f"connection: must be a TCP socket (IPv4 or IPv6), got {kind}")
    return sock


def read_tcp_info(connection: object) -> TcpInfo | None:
    """The kernel's figures of a TCP connection now (see :func:`tcp_socket` for what
    ``connection`` may be); None where ``TCP_INFO`` is not available."""
    return _read(tcp_socket(connection))


def _read(sock: TcpSocket) -> TcpInfo | None:
    if TCP_INFO_OPTION is None:
        return None
    try:
        buffer = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO_OPTION, BUFFER_SIZE)
    except OSError as error:
        if error.errno in _NO_SUCH_OPTION:
            return None  # a kernel (or a sandbox's) without the option
        if sock.fileno() == -1:
            raise ValueError("connection: the socket is closed") from None
        raise ValueError(f"connection: TCP_INFO could not be read: {error}") from None
    return parse_tcp_info(buffer)


class ConnectionWatch:
    """The connections a Monitor reads every tick, by the id of the peer each one measures.

    The Monitor holds its lock for :meth:`watch`'s bookkeeping, :meth:`unwatch`,
    :meth:`watched` and :meth:`apply`; :meth:`read` makes the system calls and runs without
    it, so recording calls never wait on them. A tick costs one ``getsockopt`` per watched
    connection, nothing per other peer.
    """

    __slots__ = ("_said_unavailable", "_watched", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s  # the loss window (Settings.tcp_loss_window_s)
        self._watched: dict[str, _Watched] = {}
        self._said_unavailable = False

    def __len__(self) -> int:
        return len(self._watched)

    def first_reading(self, sock: TcpSocket) -> TcpInfo | None:
        """Read a connection about to be watched (without the lock); None, and said once in
        the log, where ``TCP_INFO`` is not available."""
        info = _read(sock)
        if info is None and not self._said_unavailable:
            self._said_unavailable = True
            logger.warning(UNAVAILABLE)
        return info

    def watch(self, peer: Peer, sock: TcpSocket, info: TcpInfo, now: float) -> None:
        """Under the lock: read ``sock`` for ``peer`` from now on, ``info`` its first
        reading (the baseline: it gives no sample). A peer watched already starts afresh
        with the new connection."""
        state = peer.connection
        peer.connection = state = ConnectionState(None if state is None else state.app_rtt_ms)
        state.take(info, now, self.window_s)
        self._watched[peer.peer_id] = (peer, sock, state)

    def unwatch(self, peer: Peer) -> bool:
        """Under the lock: stop reading the peer's connection; its kernel figures go, and
        its loss is measured as before the watch. False if it was not watched."""
        if self._watched.pop(peer.peer_id, None) is None:
            return False
        if peer.connection is not None:
            peer.connection.unwatched()
        peer.reported_loss_percent = None
        peer.dirty = True
        return True

    def forget(self, peer_id: str) -> None:
        """Under the lock: the peer is gone; its connection is no longer read."""
        self._watched.pop(peer_id, None)

    def watched(self) -> list[_Watched]:
        """Under the lock: what :meth:`read` is to read."""
        return list(self._watched.values())

    @staticmethod
    def read(watched: list[_Watched]) -> list[tuple[_Watched, TcpInfo | None]]:
        """Without the lock: each connection's reading, None for one that can no longer be
        read (it was closed)."""
        readings: list[tuple[_Watched, TcpInfo | None]] = []
        for entry in watched:
            try:
                info = _read(entry[1])
            except ValueError:
                info = None
            readings.append((entry, info))
        return readings

    def apply(self, readings: list[tuple[_Watched, TcpInfo | None]], now: float) -> None:
        """Under the lock: record what the readings measured.

        A fresh RTT (see :meth:`ConnectionState.take`) is a latency sample, as one recorded
        by ``record_latency``. The retransmission share is the peer's loss, through the
        place ``record_loss`` writes: TCP delivers everything in the end, so the probe-style
        count of lost measurements would always read 0, while the path's loss is what the
        kernel had to send again. A connection closed since it was watched is unwatched.
        """
        watched, window_s = self._watched, self.window_s
        for entry, info in readings:
            peer, _, state = entry
            if watched.get(peer.peer_id) is not entry:
                continue  # removed, or watched anew, while it was read
            if info is None:
                self.unwatch(peer)
                continue
            sample, loss = state.take(info, now, window_s)
            if sample is not None:
                peer.loss.pending_successes += 1  # record_latency's success, as it counts one
                peer.add_sample(now, sample)
                peer.dirty = True
            if loss is not None and loss != peer.reported_loss_percent:
                peer.reported_loss_percent = loss
                peer.dirty = True
