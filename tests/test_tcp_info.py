"""The kernel's TCP_INFO: the reading against real loopback connections, what a peer keeps of
it, and ``Monitor.watch_connection`` with sockets, transports and streams."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from peerscope import Monitor, Settings
from peerscope import tcp_info as tcp_info_module
from peerscope.core.kernel_tcp import (
    BUFFER_SIZE,
    ESTABLISHED,
    ConnectionState,
    TcpInfo,
    parse_tcp_info,
)
from peerscope.tcp_info import UNAVAILABLE, read_tcp_info
from tests.server_support import eventually, linux


@contextlib.contextmanager
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback pair: (the accepted end, the client end)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    with accepted, client:
        yield accepted, client


@dataclasses.dataclass
class Streams:
    server_reader: asyncio.StreamReader
    server_writer: asyncio.StreamWriter
    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter

    async def server_sends(self, size: int) -> None:
        self.server_writer.write(b"x" * size)
        await self.server_writer.drain()
        await self.client_reader.readexactly(size)


@contextlib.asynccontextmanager
async def tcp_streams() -> AsyncIterator[Streams]:
    """A loopback connection between an asyncio server and client, as a user's app has."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client_reader, client_writer = await asyncio.open_connection("127.0.0.1", port)
    server_reader, server_writer = await asyncio.wait_for(accepted.get(), 5)
    try:
        yield Streams(server_reader, server_writer, client_reader, client_writer)
    finally:
        for writer in (client_writer, server_writer):
            writer.close()
        server.close()
        await server.wait_closed()


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"not within {timeout} s: {result!r}"
        time.sleep(0.01)
    return result


def quiet_monitor(**overrides: Any) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False, **overrides))


def measured(monitor: Monitor, peer_id: str) -> dict[str, Any] | None:
    """Tick, then the peer's entry once it has a latency sample."""
    monitor.tick()
    entry: dict[str, Any] = dict(monitor.peer(peer_id))
    return entry if entry["latency_ms"] is not None else None


def samples(monitor: Monitor, peer_id: str) -> int:
    return monitor.latency_stats(peer_id, 3600.0)["count"]


# --- the reading --------------------------------------------------------------------------


@linux
def test_the_reading_follows_the_kernels_layout():
    """Counts the test controls land in the fields the layout names: a wrong offset reads
    another field's value."""
    size = 100_000
    with tcp_pair() as (server, client):
        server.sendall(b"x" * size)
        received = 0
        while received < size:
            received += len(client.recv(65_536))
        sent = wait_for(
            lambda: (info := read_tcp_info(server)) and info.bytes_acked == size and info
        )
        got = read_tcp_info(client)
    assert got is not None
    assert sent.state == got.state == ESTABLISHED
    assert got.bytes_received == size
    assert sent.bytes_received == 0
    assert got.bytes_acked == 1  # its SYN: it sent no data
    assert 1 <= sent.data_segs_out <= sent.segs_out
    assert got.data_segs_out == 0
    assert got.segs_in >= sent.data_segs_out
    assert 0.0 < sent.rtt_ms < 5.0
    assert 0.0 <= sent.rttvar_ms < 5.0
    assert sent.min_rtt_ms is not None
    assert 0.0 < sent.min_rtt_ms <= sent.rtt_ms
    assert sent.rto_ms >= 200.0  # Linux's least retransmission timeout
    assert sent.snd_cwnd >= 10  # the initial window (RFC 6928)
    assert (sent.total_retrans, sent.retransmits, sent.lost, sent.retrans) == (0, 0, 0, 0)
    assert sent.unacked == 0
    assert sent.delivery_rate is not None
    assert sent.delivery_rate > 0


@linux
def test_a_shorter_buffer_from_an_older_kernel_gives_the_fields_it_holds():
    with tcp_pair() as (server, _client):
        buffer = server.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, BUFFER_SIZE)
    assert len(buffer) == BUFFER_SIZE
    whole = parse_tcp_info(buffer)
    assert whole is not None
    assert whole.data_segs_out is not None
    later = ("bytes_acked", "bytes_received", "segs_out", "segs_in")
    newer = ("min_rtt_ms", "data_segs_out", "delivery_rate")

    def without(*names: str) -> TcpInfo:
        return dataclasses.replace(whole, **dict.fromkeys(names))

    assert parse_tcp_info(buffer[:104]) == without(*later, *newer)  # 2.6 to 4.0
    assert parse_tcp_info(buffer[:136]) == without("segs_out", "segs_in", *newer)  # 4.1
    assert parse_tcp_info(buffer[:144]) == without(*newer)  # 4.2
    assert parse_tcp_info(buffer[:160]) == without("delivery_rate")  # 4.6
    assert parse_tcp_info(buffer[:103]) is None
    assert parse_tcp_info(b"") is None
    # ~0U is the kernel's "no RTT sample yet", not a 4,294,967 ms minimum.
    unmeasured = buffer[:148] + b"\xff\xff\xff\xff" + buffer[152:]
    assert parse_tcp_info(unmeasured) == dataclasses.replace(whole, min_rtt_ms=None)


class _NoSocket:
    """A transport over no socket (a pipe's, say)."""

    def get_extra_info(self, name: str) -> None:
        return None

    def __repr__(self) -> str:
        return "PipeTransport()"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: "a socket",
            "connection: must be a socket.socket, an asyncio transport or an "
            "asyncio.StreamWriter, got 'a socket'",
        ),
        (lambda: 8700, "connection: must be a socket.socket, an asyncio transport"),
        (_NoSocket, "connection: PipeTransport() has no socket"),
        (
            lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
            "connection: must be a TCP socket (IPv4 or IPv6), got AF_INET SOCK_DGRAM",
        ),
        (
            lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
            "connection: must be a TCP socket (IPv4 or IPv6), got AF_UNIX SOCK_STREAM",
        ),
    ],
)
def test_what_is_no_open_tcp_connection_is_a_value_error_naming_it(make, message):
    connection = make()
    monitor = quiet_monitor()
    try:
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            read_tcp_info(connection)
        with pytest.raises(ValueError, match=r"^connection: "):
            monitor.watch_connection("p", connection)
    finally:
        if isinstance(connection, socket.socket):
            connection.close()
    assert "p" not in monitor


async def test_a_closed_socket_transport_or_stream_is_refused():
    monitor = quiet_monitor()
    with tcp_pair() as (server, _client):
        server.close()
        with pytest.raises(ValueError, match=r"^connection: the socket is closed$"):
            monitor.watch_connection("p", server)
    async with tcp_streams() as streams:
        writer = streams.server_writer
        writer.close()
        await writer.wait_closed()
        for connection in (writer, writer.transport):
            with pytest.raises(ValueError, match=r"^connection: the socket is closed$"):
                monitor.watch_connection("p", connection)
    assert "p" not in monitor
    with pytest.raises(ValueError, match=r"^peer_id: "), tcp_pair() as (server, _client):
        monitor.watch_connection("", server)


# --- what a peer keeps between readings ---------------------------------------------------

READING = TcpInfo(
    state=ESTABLISHED,
    retransmits=0,
    rto_ms=204.0,
    unacked=0,
    lost=0,
    retrans=0,
    rtt_ms=0.5,
    rttvar_ms=0.25,
    snd_cwnd=10,
    total_retrans=0,
    bytes_acked=1_000,
    bytes_received=0,
    segs_out=10,
    segs_in=10,
    min_rtt_ms=0.4,
    data_segs_out=10,
    delivery_rate=1_000_000,
)


def reading(**changes: Any) -> TcpInfo:
    return dataclasses.replace(READING, **changes)


def test_the_kernel_rtt_is_a_sample_only_when_the_peer_acknowledged_new_data():
    state = ConnectionState()
    assert state.take(READING, 0.0, 30.0) == (None, None)  # the baseline
    # Nothing new acknowledged: the kernel's figure is that of older data (or of a peer
    # that stopped answering), not a new measurement.
    assert state.take(reading(rtt_ms=0.6), 1.0, 30.0)[0] is None
    assert state.take(reading(rtt_ms=0.7, bytes_acked=2_000), 2.0, 30.0)[0] == 0.7
    assert state.take(reading(rtt_ms=0.7, bytes_acked=2_000), 3.0, 30.0)[0] is None
    assert state.take(reading(rtt_ms=0.0, bytes_acked=3_000), 4.0, 30.0)[0] is None  # no RTT
    assert state.info == reading(rtt_ms=0.0, bytes_acked=3_000)


def test_before_linux_4_1_a_new_rtt_estimate_is_the_sign_of_new_data():
    state = ConnectionState()
    old = reading(bytes_acked=None, bytes_received=None)
    state.take(old, 0.0, 30.0)
    assert state.take(old, 1.0, 30.0)[0] is None
    assert state.take(dataclasses.replace(old, rttvar_ms=0.3), 2.0, 30.0)[0] == 0.5


def test_loss_is_the_retransmitted_share_of_data_segments_over_the_window():
    state = ConnectionState()
    window = 30.0
    assert state.take(READING, 0.0, window)[1] is None  # the baseline
    # 100 data segments sent since, 30 of them again: a path dropping 30 %.
    lossy = reading(data_segs_out=110, total_retrans=30)
    assert state.take(lossy, 5.0, window)[1] == 30.0
    # Half a window on, the window starts where the previous half did: the loss still shows.
    assert state.take(lossy, 16.0, window)[1] == 30.0
    # 100 clean segments later and a whole window on, the lossy stretch has left the window.
    clean = reading(data_segs_out=210, total_retrans=30)
    assert state.take(clean, 32.0, window)[1] == 0.0
    # Nothing sent over a whole window: no evidence either way, no figure.
    assert state.take(clean, 64.0, window)[1] is None
    # Before 4.6 no count of data segments: no loss figure at all.
    assert ConnectionState().take(reading(data_segs_out=None), 0.0, window) == (None, None)


def test_loss_never_reads_over_100_percent():
    state = ConnectionState()
    state.take(READING, 0.0, 30.0)
    assert state.take(reading(data_segs_out=11, total_retrans=5), 1.0, 30.0)[1] == 100.0


# --- Monitor.watch_connection --------------------------------------------------------------


@linux
async def test_an_asyncio_connection_handed_to_the_monitor_measures_its_peer():
    monitor = quiet_monitor()
    async with tcp_streams() as streams:
        assert monitor.watch_connection("game-1", streams.server_writer) is True
        first = monitor.peer("game-1")
        assert first["kind"] == "peer"  # registered by the watch, as a recording call does
        assert first["tcp"] is not None  # the first reading shows at once ...
        assert first["latency_ms"] is None  # ... but it is the baseline, not a sample
        await streams.server_sends(10_000)
        entry = await eventually(lambda: measured(monitor, "game-1"))
    tcp = entry["tcp"]
    assert 0.0 < entry["latency_ms"] < 5.0
    assert entry["latency_ms"] == tcp["rtt_ms"]  # the sample is the reading's RTT
    assert 0.0 < tcp["min_rtt_ms"] <= tcp["rtt_ms"]
    assert (tcp["total_retrans"], tcp["retransmits"], tcp["lost"]) == (0, 0, 0)
    assert tcp["segs_out"] >= 1
    assert tcp["delivery_rate_bps"] > 0
    assert entry["packet_loss_percent"] == 0.0
    assert entry["app_rtt_ms"] is None
    assert entry["status"] == "connected"


@linux
@pytest.mark.parametrize("form", ["socket", "transport"])
async def test_a_socket_or_a_transport_is_watched_as_a_stream_is(form):
    monitor = quiet_monitor()
    if form == "socket":
        with tcp_pair() as (server, client):
            assert monitor.watch_connection("p", server) is True
            server.sendall(b"x" * 1_000)
            client.recv(1_000)
            entry = wait_for(lambda: measured(monitor, "p"))
    else:
        async with tcp_streams() as streams:
            assert monitor.watch_connection("p", streams.server_writer.transport) is True
            await streams.server_sends(1_000)
            entry = await eventually(lambda: measured(monitor, "p"))
    assert entry["tcp"] is not None
    assert 0.0 < entry["latency_ms"] < 5.0


@linux
async def test_an_idle_connection_gives_no_samples():
    monitor = quiet_monitor()
    async with tcp_streams() as streams:
        monitor.watch_connection("idle", streams.server_writer)
        await streams.server_sends(1_000)
        await eventually(lambda: measured(monitor, "idle"))
        count = samples(monitor, "idle")
        for _ in range(5):
            monitor.tick()
        assert samples(monitor, "idle") == count
        await streams.server_sends(1_000)
        await eventually(
            lambda: (monitor.tick(), samples(monitor, "idle") == count + 1)[1],
        )


@linux
async def test_removing_the_peer_stops_the_watch():
    monitor = quiet_monitor()
    async with tcp_streams() as streams:
        monitor.watch_connection("gone", streams.server_writer)
        assert monitor.remove_peer("gone") is True
        assert monitor.unwatch_connection("gone") is False
        monitor.add_peer("gone")  # the same id, a new peer: no connection comes with it
        await streams.server_sends(10_000)
        for _ in range(3):
            monitor.tick()
            await asyncio.sleep(0.01)
        entry = monitor.peer("gone")
    assert entry["tcp"] is None
    assert entry["latency_ms"] is None


@linux
async def test_a_closed_connection_is_unwatched_at_the_next_tick():
    monitor = quiet_monitor()
    async with tcp_streams() as streams:
        monitor.watch_connection("p", streams.server_writer)
        await streams.server_sends(1_000)
        await eventually(lambda: measured(monitor, "p"))
        streams.server_writer.close()
        await streams.server_writer.wait_closed()
        monitor.tick()
        entry = monitor.peer("p")
    assert entry["tcp"] is None
    assert entry["latency_ms"] is not None  # what was measured stays measured
    assert monitor.unwatch_connection("p") is False


@linux
async def test_unwatching_gives_the_loss_back_to_the_peers_own_measurements():
    monitor = quiet_monitor()
    async with tcp_streams() as streams:
        monitor.watch_connection("p", streams.server_writer)
        await streams.server_sends(1_000)
        await eventually(lambda: measured(monitor, "p"))
        assert monitor.unwatch_connection("p") is True
        assert monitor.unwatch_connection("p") is False
        monitor.record_latency("p", None)  # a failed measurement of the app's own
        entry = monitor.peer("p")
    assert entry["tcp"] is None
    assert entry["packet_loss_percent"] > 0.0


# --- the application echo ------------------------------------------------------------------


@linux
async def test_the_echo_of_a_watched_peer_is_its_app_rtt_alone():
    monitor = quiet_monitor()
    async with tcp_streams() as streams:
        monitor.watch_connection("p", streams.server_writer)
        monitor.record_app_rtt("p", 146.0)  # a page busy loading answers late
        entry = monitor.peer("p")
        assert entry["app_rtt_ms"] == 146.0
        assert entry["latency_ms"] is None
        monitor.record_app_rtt("p", None)  # an echo the page never answered
        entry = monitor.peer("p")
    assert entry["app_rtt_ms"] is None
    assert entry["packet_loss_percent"] == 0.0  # not a lost measurement: the kernel measures


def test_the_echo_of_a_peer_not_watched_is_its_latency_too():
    monitor = quiet_monitor()
    monitor.record_app_rtt("p", 12.5)
    entry = monitor.peer("p")
    assert (entry["app_rtt_ms"], entry["latency_ms"], entry["tcp"]) == (12.5, 12.5, None)
    monitor.record_app_rtt("p", None)
    entry = monitor.peer("p")
    assert entry["app_rtt_ms"] is None
    assert entry["latency_ms"] == 12.5
    assert entry["packet_loss_percent"] == 50.0  # one of two measurements failed


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "5", True])
def test_a_bad_app_rtt_is_a_value_error_naming_it(bad):
    monitor = quiet_monitor()
    with pytest.raises(ValueError, match=r"^rtt_ms: "):
        monitor.record_app_rtt("p", bad)
    assert "p" not in monitor


# --- where TCP_INFO is not available -------------------------------------------------------


def test_without_tcp_info_nothing_is_watched_and_that_is_said_once(monkeypatch, caplog):
    monkeypatch.setattr(tcp_info_module, "TCP_INFO_OPTION", None)
    monitor = quiet_monitor()
    with (
        caplog.at_level(logging.WARNING, logger="peerscope.tcp_info"),
        tcp_pair() as (server, _client),
    ):
        assert read_tcp_info(server) is None
        assert monitor.watch_connection("a", server) is False
        assert monitor.watch_connection("b", server) is False
    assert caplog.text.count(UNAVAILABLE) == 1
    assert "a" not in monitor
    monitor.record_app_rtt("a", 20.0)
    assert monitor.peer("a")["latency_ms"] == 20.0  # the echo measures it, as before
