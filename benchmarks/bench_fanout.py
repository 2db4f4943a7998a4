"""Fan-out: time from a tick to the last of N WebSocket subscribers receiving its frame.

Three processes, so that no two of them share an event loop:

- the server: a fresh interpreter serving a Monitor with real uvicorn
  (``peerscope.agent.serve``) on a loopback ephemeral port. 200 probed peers, every
  latency ring full (360 samples, a clock shifted back 1 s per round while filling) and
  traffic and messages recorded; system metrics off, ``metrics_interval`` 3600 s and
  ``ws_ping_interval`` 3600 s so neither the Ticker nor the RTT echo fires during the
  measurement. It ticks only when told to on its stdin: it first records one new latency
  per probed peer (1 Hz probing; not timed), then reads ``CLOCK_MONOTONIC`` and calls
  ``monitor.tick()`` on its event loop;
- the subscribers: a second fresh interpreter opening N real WebSocket connections to
  ``/ws`` (TCP, HTTP upgrade, RFC 6455 frames) on one asyncio loop, and recording
  ``CLOCK_MONOTONIC`` when the last byte of each connection's copy of the frame was read. The
  client is a minimal one written here (``Subscriber``: it reads into one reused buffer and
  copies no payload it does not need) because the ``websockets`` package's client spent about
  as much CPU per frame as the server (130 ms per tick at 1,000 subscribers against the
  server's 143 ms), so the figure would have measured the client;
- this process, which runs the two, asks for one tick at a time (0.1 s apart), waits until
  all N copies have arrived, and pairs the times (``CLOCK_MONOTONIC`` is one clock for the
  whole host).

With two or more CPUs the server is pinned to the first and the subscribers to the second, so
the scheduler does not put them on one CPU to preempt each other (on the 2-CPU VM the figures
come from, that happened mid-run, and the server's wall time grew while its CPU did not).

Per tick, latency = (last subscriber's receive time) - (the server's time just before
``tick()``): it includes building the message (one snapshot, all 200 peers changed),
serializing it, queueing it for every subscriber and every send. Every dashboard connection
is also registered as a peer (``ws-N``, kind client) in the Monitor, so the server holds
N + 200 peers. They never send anything, so the server's idle rules are set to 3600 s:
with the defaults they would turn degraded after 15 s and be listed before the probed peers
(worst first). Each tick's frame is checked, on one connection, to list the 200 probed
peers.

Two cases, because browsers (and the ``websockets`` client) offer the permessage-deflate
extension and uvicorn accepts it unless told not to: ``deflate``, the client offers it, and
if the server accepts, it compresses the frame once per subscriber (each connection has its
own compression context); ``none``, the client does not offer it and the server sends the
same bytes to all. What the server answered is printed when it is not what was offered.
(``serve`` refuses deflate, so both now get the same uncompressed frame.)

A third case, ``floor``, is the same measurement against a bare asyncio server
(``_floor_main``): a bare 101 to the handshake, then per tick one ``transport.write`` of a
frame of the same bytes (the real message, its timestamp replaced) to every connection,
the frame built before the clock starts. No snapshot, no JSON, no ASGI, no bookkeeping: what
this machine's kernel and asyncio need to put the bytes in N loopback sockets. The ratio
peerscope / floor is printed per N.

Also printed per case: the first subscriber's receive time, the server's CPU time per tick
(user + system, everything the server process spent from one tick to the next: the fan-out,
the next probing round and the idle gap) and the subscriber process's, to show which side
limits the figure, and the frame's size (and its size on the wire when deflated). Target:
<= 25 ms at 1,000 subscribers, judged on the larger median of the two cases.

Run alone: ``python -m benchmarks.bench_fanout [--quick]``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import random
import resource
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from websockets.frames import Frame, Opcode

from benchmarks.children import Child, commands_from_parent
from benchmarks.results import Reference, Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import down, up
from peerscope.agent import serve
from peerscope.config import Settings
from peerscope.core.quality import StatusRules
from peerscope.monitor import Monitor

SIZES = (10, 100, 1_000)
QUICK_SIZES = (10, 100)
TICKS = 20
QUICK_TICKS = 5
WARMUP_TICKS = 2
PEERS = 200
TARGET_MS = 25.0
TARGET_SUBSCRIBERS = 1_000
CASES = ("deflate", "none", "floor")
GAP_S = 0.1  # pause between ticks, so each starts with the server idle
TIMEOUT_S = 120.0


def monotonic() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def pin(which: int) -> None:
    """Keep this process on one CPU: the server on the first, the subscribers on the second,
    so the scheduler cannot put both on one CPU and have them preempt each other."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[which]})


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# --- the server process ---------------------------------------------------------------------


class ShiftedClock:
    """``time.time()`` plus an offset: moved back while the rings are filled, then 0."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


def _probed_monitor(peers: int = PEERS, seed: int = 3) -> tuple[Monitor, Callable[[], None]]:
    """A Monitor with ``peers`` full-ring peers, and a function doing one probing round."""
    rng = random.Random(seed)
    # The subscribers never send anything: with the default idle rules they would turn
    # degraded after 15 s and be listed before the probed peers (worst first).
    settings = Settings(
        enable_system_metrics=False,
        metrics_interval=3600.0,
        reflector_port=0,
        ws_ping_interval=3600.0,
        status=StatusRules(degraded_after_idle_s=3600.0, disconnected_after_idle_s=3600.0),
    )
    clock = ShiftedClock(-float(settings.latency_samples))
    monitor = Monitor(settings, clock=clock)
    ids = [f"peer-{i:05d}" for i in range(peers)]
    base = [rng.uniform(5.0, 120.0) for _ in ids]
    for i, peer_id in enumerate(ids):
        monitor.add_peer(peer_id, name=f"player {i}", address=f"10.0.{i // 250}.{i % 250}:4000")
    for _ in range(settings.latency_samples):
        clock.offset += 1.0
        for peer_id, rtt in zip(ids, base, strict=True):
            monitor.record_latency(peer_id, rtt * rng.uniform(0.9, 1.1))
            monitor.record_traffic(
                peer_id, bytes_sent=1200, bytes_received=300, packets_sent=20, packets_received=20
            )
            monitor.record_message(peer_id, size=120, direction="in")
    clock.offset = 0.0

    def probe_everyone() -> None:
        for peer_id, rtt in zip(ids, base, strict=True):
            monitor.record_latency(peer_id, rtt * rng.uniform(0.9, 1.1))

    return monitor, probe_everyone


async def _serve_main() -> None:
    monitor, probe_everyone = _probed_monitor()
    commands = commands_from_parent()

    def ready(url: str) -> None:
        print(f"ready {url.replace('http://', 'ws://')}/ws", flush=True)

    server = asyncio.create_task(serve(monitor, host="127.0.0.1", port=0, on_ready=ready))
    while (command := await commands.get()) != "quit":
        if command == "tick":
            probe_everyone()
            preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
            cpu = time.process_time()
            start = monotonic()
            message = monitor.tick().message()
            print(f"ticked {start!r} {message['timestamp']!r} {cpu!r} {preempted}", flush=True)
    server.cancel()
    await asyncio.gather(server, return_exceptions=True)


def _serve_child(subscribers: int, profile_to: str | None = None) -> None:
    raise_fd_limit(subscribers + 256)
    pin(0)
    if profile_to is None:
        asyncio.run(_serve_main())
        return
    import cProfile

    with cProfile.Profile() as profile:
        asyncio.run(_serve_main())
    profile.dump_stats(profile_to)


# --- the floor: the same bytes written by a bare asyncio server --------------------------------


class _BareConnection(asyncio.Protocol):
    """Answers the WebSocket handshake with a bare 101 and one greeting frame, then only
    keeps its transport: what is left when everything but the writes is taken away."""

    def __init__(self, transports: list[asyncio.Transport]) -> None:
        self._transports = transports
        self._request = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._request is None or self._transport is None:
            return  # the client's pongs
        self._request += data
        if b"\r\n\r\n" in self._request:
            self._request = None  # type: ignore[assignment]
            self._transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n\r\n"
                + Frame(Opcode.TEXT, b'{"type":"hello"}').serialize(mask=False)
            )
            self._transports.append(self._transport)


async def _floor_main() -> None:
    monitor, _ = _probed_monitor()
    template = orjson.dumps(monitor.tick().message())  # the real frame's bytes, tick after tick
    stamp_at = len(METRICS_PREFIX)
    stamp_end = template.index(b",", stamp_at)
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    server = await loop.create_server(lambda: _BareConnection(transports), "127.0.0.1", 0)
    commands = commands_from_parent()
    print(f"ready ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws", flush=True)
    while (command := await commands.get()) != "quit":
        if command == "tick":
            stamp = repr(time.time()).encode()
            wire = Frame(Opcode.TEXT, template[:stamp_at] + stamp + template[stamp_end:]).serialize(
                mask=False
            )
            preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
            cpu = time.process_time()
            start = monotonic()
            for transport in transports:
                transport.write(wire)
            print(f"ticked {start!r} {stamp.decode()} {cpu!r} {preempted}", flush=True)
    server.close()


def _floor_child(subscribers: int) -> None:
    raise_fd_limit(subscribers + 256)
    pin(0)
    asyncio.run(_floor_main())


# --- the subscriber process -----------------------------------------------------------------

METRICS_PREFIX = b'{"type":"metrics","timestamp":'


class Arrivals:
    """Receive times of each tick's frame over all connections; reports when all have it."""

    def __init__(self, subscribers: int) -> None:
        self.subscribers = subscribers
        self.greeted = 0
        self.all_greeted = asyncio.get_running_loop().create_future()
        self._seen: dict[bytes, list[float]] = {}  # timestamp -> [count, first, last, size]
        self.watched: Subscriber | None = None  # the one connection that counts listed peers

    def message(self, head: bytes, size: int, wire: int, now: float) -> None:
        if not head.startswith(METRICS_PREFIX):  # the server's RTT ping, once on connect
            self.greeted += 1
            if self.greeted == self.subscribers:
                self.all_greeted.set_result(None)
            return
        start = len(METRICS_PREFIX)
        stamp = head[start : head.index(b",", start)]
        seen = self._seen.get(stamp)
        if seen is None:
            seen = self._seen[stamp] = [0, now, now, size]
        seen[0] += 1
        seen[2] = now
        if seen[0] == self.subscribers:
            del self._seen[stamp]
            cpu = time.process_time()
            listed = self.watched.listed if self.watched is not None else -1
            print(
                f"got {stamp.decode()} {seen[1]!r} {seen[2]!r} {size} {wire} {cpu!r} {listed}",
                flush=True,
            )


class Subscriber(asyncio.BufferedProtocol):
    """A minimal WebSocket client (RFC 6455, and RFC 7692 for permessage-deflate): reads the
    server's frames as they stream in, answers protocol pings, and tells ``Arrivals`` each
    message's first bytes and size with the time its last byte was read.

    Lean on purpose: the ``websockets`` client spent about as much CPU per frame as the
    server does to send it, so the figure measured the client. This one reads into one
    reused buffer (``recv_into``) and copies no payload it does not need.
    """

    def __init__(self, host: str, path: str, deflate: bool, arrivals: Arrivals) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            + (
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                if deflate
                else ""
            )
            + "\r\n"
        ).encode()
        self._arrivals = arrivals
        self._buffer = bytearray(1 << 18)
        self._view = memoryview(self._buffer)
        self._handshake: bytearray | None = bytearray()
        self._header = bytearray()  # the frame header being read
        self._left = -1  # payload bytes still to come in the current frame; -1: a header
        self._first = 0  # the current frame's first header byte (FIN, RSV1, opcode)
        self._size = 0  # its message size (inflated when compressed)
        self._wire = 0  # its payload size on the wire
        self._head = bytearray()  # its first bytes (the whole payload for the watched one)
        self._inflater: zlib._Decompress | None = None
        self.transport: asyncio.Transport | None = None
        self.extensions = ""
        self.opened = asyncio.get_running_loop().create_future()
        self.listed = 0  # probed peers listed in the last metrics frame (watched only)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self._request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"lost before the handshake: {exc}"))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        now = monotonic()
        data = self._view[:nbytes]
        if self._handshake is not None:
            self._handshake += data
            end = self._handshake.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._handshake[:end]).decode("latin-1")
            data = memoryview(bytes(self._handshake[end + 4 :]))
            self._handshake = None
            if not head.startswith("HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(head.splitlines()[0]))
                return
            if "permessage-deflate" in head.lower():
                self.extensions = "permessage-deflate"
                self._inflater = zlib.decompressobj(-15)
            self.opened.set_result(None)
        self._frames(data, now)

    def _frames(self, data: memoryview, now: float) -> None:
        pos, size = 0, len(data)
        while pos < size:
            if self._left < 0:
                pos = self._read_header(data, pos)
                if self._left < 0:
                    return  # the header goes on in the next read
            take = min(self._left, size - pos)
            chunk = data[pos : pos + take]
            if self._first & 0x40 and self._inflater is not None:  # RSV1: compressed
                inflated = self._inflater.decompress(chunk)
                self._keep(inflated)
                self._size += len(inflated)
            else:
                self._keep(chunk)
                self._size += take
            self._left -= take
            pos += take
            if self._left == 0:
                self._message_done(now)

    def _read_header(self, data: memoryview, pos: int) -> int:
        header = self._header
        while True:
            need = 2
            if len(header) >= 2:
                length = header[1] & 0x7F
                need = 4 if length == 126 else 10 if length == 127 else 2
            if len(header) >= need:
                break
            take = min(need - len(header), len(data) - pos)
            if take == 0:
                return pos
            header += data[pos : pos + take]
            pos += take
        length = header[1] & 0x7F
        if length >= 126:
            length = int.from_bytes(header[2:], "big")
        self._first, self._left, self._size, self._wire = header[0], length, 0, length
        self._head.clear()
        header.clear()
        return pos

    def _keep(self, chunk: memoryview | bytes) -> None:
        room = len(chunk) if self._arrivals.watched is self else 64 - len(self._head)
        if room > 0:
            self._head += chunk[:room]

    def _message_done(self, now: float) -> None:
        first, self._left = self._first, -1
        if first & 0x40 and self._inflater is not None:
            tail = self._inflater.decompress(b"\x00\x00\xff\xff")
            self._keep(tail)
            self._size += len(tail)
        opcode = first & 0x0F
        if opcode == 0x9:  # ping: answer with a masked pong carrying the same payload
            payload = bytes(self._head)
            mask = os.urandom(4)
            masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            assert self.transport is not None
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)
        elif opcode in (0x1, 0x2):
            if not first & 0x80:
                raise RuntimeError("fragmented messages are not expected from the server")
            head = bytes(self._head[:64])
            if self._arrivals.watched is self and head.startswith(METRICS_PREFIX):
                self.listed = self._head.count(b'"client_id":"peer-')
            self._arrivals.message(head, self._size, self._wire, now)


def _same(connection: Subscriber) -> Subscriber:
    return connection


async def _subscribe_main(url: str, subscribers: int, deflate: bool) -> None:
    address, _, path = url.removeprefix("ws://").partition("/")
    host, _, port = address.rpartition(":")
    loop = asyncio.get_running_loop()
    arrivals = Arrivals(subscribers)
    connections: list[Subscriber] = []
    for start in range(0, subscribers, 50):
        batch = [
            Subscriber(address, "/" + path, deflate, arrivals)
            for _ in range(start, min(start + 50, subscribers))
        ]
        await asyncio.gather(
            *(loop.create_connection(functools.partial(_same, c), host, int(port)) for c in batch)
        )
        await asyncio.gather(*(c.opened for c in batch))
        connections += batch
    arrivals.watched = connections[0]
    await asyncio.wait_for(arrivals.all_greeted, 60)
    print(f"ready {connections[0].extensions or 'none'}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()


def _subscribe_child(url: str, subscribers: int, compression: str) -> None:
    raise_fd_limit(subscribers + 256)
    pin(1)
    asyncio.run(_subscribe_main(url, subscribers, compression == "deflate"))


# --- this process ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    subscribers: int
    case: str  # deflate/none: what the client offered peerscope; floor: the bare server
    negotiated: str  # what the server accepted
    latency_ms: list[float]  # per tick: last subscriber's receive time - tick time
    first_ms: list[float]  # per tick: first subscriber's receive time - tick time
    server_cpu_ms: list[float]  # per tick: server CPU time from this tick to the next
    client_cpu_ms: list[float]  # per tick: subscriber process CPU time, likewise
    preempted: list[int]  # per tick: the server's involuntary context switches, likewise
    frame_bytes: int
    wire_bytes: int
    listed: list[int]  # probed peers listed in the frames, as seen (200 expected)


def measure(subscribers: int, case: str, ticks: int, profile_to: str | None = None) -> Measured:
    """One case; ``profile_to``: run the server under cProfile and dump its stats there."""
    code = (
        f"import _floor_child; _floor_child({subscribers})"
        if case == "floor"
        else f"import _serve_child; _serve_child({subscribers}, {profile_to!r})"
    )
    server = Child(f"from benchmarks.bench_fanout {code}", TIMEOUT_S)
    compression = "deflate" if case == "deflate" else "none"
    client: Child | None = None
    rows: list[tuple[float, float, float, float, float, int]] = []
    sizes: set[tuple[int, int]] = set()
    listed: set[int] = set()
    try:
        (url,) = server.expect("ready")
        client = Child(
            "from benchmarks.bench_fanout import _subscribe_child; "
            f"_subscribe_child({url!r}, {subscribers}, {compression!r})",
            TIMEOUT_S,
        )
        (negotiated,) = client.expect("ready")
        # One tick more than measured: its CPU readings close the last measured interval.
        for _ in range(WARMUP_TICKS + ticks + 1):
            time.sleep(GAP_S)
            server.send("tick")
            start, stamp, server_cpu, preempted = server.expect("ticked")
            got_stamp, first, last, size, wire, client_cpu, peers = client.expect("got")
            if float(got_stamp) != float(stamp):
                raise RuntimeError(f"tick {stamp} answered with frames of {got_stamp}")
            rows.append(
                (
                    float(start),
                    float(first),
                    float(last),
                    float(server_cpu),
                    float(client_cpu),
                    int(preempted),
                )
            )
            sizes.add((int(size), int(wire)))
            listed.add(int(peers))
    finally:
        if client is not None:
            client.close()
        server.close()
    measured = range(WARMUP_TICKS, WARMUP_TICKS + ticks)
    return Measured(
        subscribers,
        case,
        negotiated,
        latency_ms=[(rows[i][2] - rows[i][0]) * 1000.0 for i in measured],
        first_ms=[(rows[i][1] - rows[i][0]) * 1000.0 for i in measured],
        server_cpu_ms=[(rows[i + 1][3] - rows[i][3]) * 1000.0 for i in measured],
        client_cpu_ms=[(rows[i + 1][4] - rows[i][4]) * 1000.0 for i in measured],
        preempted=[rows[i + 1][5] - rows[i][5] for i in measured],
        frame_bytes=max(size for size, _ in sizes),
        wire_bytes=max(wire for _, wire in sizes),
        listed=sorted(listed),
    )


def run(quick: bool = False) -> list[Result]:
    sizes, ticks = (QUICK_SIZES, QUICK_TICKS) if quick else (SIZES, TICKS)
    print(
        f"bench_fanout: {PEERS} probed peers listed in every frame, {ticks} ticks per case "
        f"(+{WARMUP_TICKS} warm-up), uvicorn on loopback, subscribers in another process"
    )
    print(
        "  latency = last subscriber's receive time - time just before tick(), ms; "
        "CPU = per tick, ms"
    )
    print(
        "  (first: the first subscriber's copy; srv/cli CPU: server/subscriber process CPU "
        "per tick; preempt: the server's involuntary context switches per tick, a sign of "
        "CPU contention; medians over the ticks)"
    )
    print(
        f"  {'subs':>5} {'case':<8} {'median':>8} {'max':>8} {'first':>7} "
        f"{'srv CPU':>8} {'cli CPU':>8} {'preempt':>7} {'frame bytes':>12} "
        f"{'on the wire':>12}"
    )
    measured = []
    for subscribers in sizes:
        for case in CASES:
            found = measure(subscribers, case, ticks)
            measured.append(found)
            _report(found)
    return [_verdict(measured, quick)]


def _report(result: Measured) -> None:
    median = statistics.median
    print(
        f"  {result.subscribers:>5} {result.case:<8} "
        f"{up(median(result.latency_ms), 2):>8} {up(max(result.latency_ms), 2):>8} "
        f"{up(median(result.first_ms), 2):>7} {up(median(result.server_cpu_ms), 2):>8} "
        f"{up(median(result.client_cpu_ms), 2):>8} {median(result.preempted):>7g} "
        f"{result.frame_bytes:>12} {result.wire_bytes:>12}"
    )
    if result.negotiated != ("permessage-deflate" if result.case == "deflate" else "none"):
        print(f"    (the server answered with extensions: {result.negotiated})")
    if result.listed != [PEERS] and result.case != "floor":
        print(f"    (frames listed {result.listed} probed peers, not {PEERS})")


def _verdict(results: list[Measured], quick: bool) -> Result:
    for subscribers in sorted({r.subscribers for r in results}):
        floor = [r for r in results if r.subscribers == subscribers and r.case == "floor"]
        ours = [r for r in results if r.subscribers == subscribers and r.case != "floor"]
        if floor and ours:
            worst_ms = max(statistics.median(r.latency_ms) for r in ours)
            floor_ms = statistics.median(floor[0].latency_ms)
            print(
                f"  {subscribers:>5} subscribers: peerscope (worse case) / bare writes of the "
                f"same frame = {up(worst_ms / floor_ms, 3)}x"
            )
    title = (
        f"tick to the last of {TARGET_SUBSCRIBERS:,} WebSocket subscribers, {PEERS} "
        "peers in the frame (median, worse of deflate offered and none)"
    )
    judged = [r for r in results if r.subscribers == TARGET_SUBSCRIBERS and r.case != "floor"]
    if not judged:  # --quick stops below the target's size
        result = Result(
            name="bench_fanout",
            title=title,
            unit="ms",
            digits=2,
            target=Target(TARGET_MS),
            figure=None,
            quick=quick,
        )
        print(
            f"  target <= {TARGET_MS:g} ms at {TARGET_SUBSCRIBERS:,} subscribers: "
            f"{result.verdict.label}"
        )
        return result
    worst = max(judged, key=lambda r: statistics.median(r.latency_ms))
    median = statistics.median(worst.latency_ms)
    (bare,) = (r for r in results if r.subscribers == TARGET_SUBSCRIBERS and r.case == "floor")
    floor_ms = statistics.median(bare.latency_ms)
    result = Result(
        name="bench_fanout",
        title=title,
        unit="ms",
        digits=2,
        target=Target(TARGET_MS),
        figure=median,
        quick=quick,
        reference=Reference("bare asyncio server writing the same frame", floor_ms, floor=True),
        ratio=median / floor_ms,
        detail=f"worse case: {worst.case}",
    )
    print(
        f"  target <= {TARGET_MS:g} ms at {TARGET_SUBSCRIBERS:,} subscribers: "
        f"{result.verdict.label} (worse case {worst.case}: median {up(median, 2)} ms; the "
        f"floor {down(floor_ms, 2)} ms)"
    )
    return result


if __name__ == "__main__":
    run_alone(run)
