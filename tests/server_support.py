"""Real servers and clients for the server tests.

``live_server`` runs uvicorn on an ephemeral loopback port inside the test's own event loop,
over the app of an ``Agent(monitor)`` configured as ``Agent.run`` configures it, and
stops it cleanly (``should_exit``, then waits for uvicorn to close its sockets). Clients are
real: httpx for HTTP, the ``websockets`` package for ``/ws``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from peerscope import Monitor, Settings
from peerscope.agent import Agent
from peerscope.server import uvicorn_config
from peerscope.testing import ManualClock

# Keys the WebSocket contract in DESIGN.md promises in every metrics message.
MESSAGE_KEYS = {
    "type",
    "timestamp",
    "system",
    "server",
    "network",
    "clients",
    "clients_total",
    "alerts",
    "alerts_total",
}
SYSTEM_KEYS = {
    "cpu_percent",
    "memory_percent",
    "memory_used_mb",
    "memory_total_mb",
    "network_sent_mb",
    "network_recv_mb",
    "network_sent_rate",
    "network_recv_rate",
}
SERVER_KEYS = {
    "uptime_seconds",
    "active_connections",
    "total_connections",
    "total_messages",
    "messages_per_second",
    "average_latency_ms",
}
NETWORK_KEYS = {"score", "grade", "peers_by_status"}
CLIENT_KEYS = {
    "client_id",
    "connected_at",
    "message_count",
    "bytes_sent",
    "bytes_received",
    "last_message_time",
    "average_latency_ms",
    "connection_duration",
    "jitter_ms",
    "packet_loss_percent",
    "quality_score",
    "grade",
    "mos",
    "status",
}


@dataclass
class LiveServer:
    monitor: Monitor
    agent: Agent  # whose app is served: its prober, and its reflector (never started here)
    server: uvicorn.Server
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        # Plain HTTP: verify=False only skips loading a CA bundle (~50 ms per client).
        return httpx.AsyncClient(base_url=self.url, timeout=10.0, verify=False, **kwargs)

    async def ws(self, query: str = "", **kwargs: Any) -> ClientConnection:
        """A real WebSocket client on /ws (no compression, no library keepalive pings)."""
        options: dict[str, Any] = {
            "ping_interval": None,
            "compression": None,
            "open_timeout": 5,
            "close_timeout": 2,
        }
        options.update(kwargs)
        return await connect(self.ws_url + query, **options)


@contextlib.asynccontextmanager
async def running_agent(agent: Agent) -> AsyncIterator[str]:
    """``agent.run()`` (serve) until the block ends; yields its base URL once it listens."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(agent.run(on_ready=ready.set_result))
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def live_server(
    monitor: Monitor, *, mounted: bool = False, port: int = 0, app: Any = None
) -> AsyncIterator[LiveServer]:
    """Serve ``monitor`` on 127.0.0.1:``port`` (0: an ephemeral one) until the block ends.

    By default uvicorn runs as ``Agent.run`` configures it. ``mounted=True`` runs the app as
    it runs mounted in someone else's uvicorn: uvicorn's own WebSocket protocol (so frames go
    out through ASGI, not ``DirectWebSocketProtocol``) and its default 16 MiB frame limit.
    ``app`` is served instead of the agent's (an app as a user builds it to mount).
    """
    overrides: dict[str, Any] = {"timeout_graceful_shutdown": 5}
    if mounted:
        overrides.update(ws="websockets-sansio", ws_max_size=16 * 1024 * 1024)
    agent = Agent(monitor, host="127.0.0.1", port=port)
    config = uvicorn_config(agent.app if app is None else app, agent.settings, **overrides)
    server = uvicorn.Server(config)
    started_monitor = not monitor.is_running
    if started_monitor:
        await monitor.start()
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("uvicorn stopped before it started")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start within 10 s")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LiveServer(monitor, agent, server, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await agent.prober.stop()  # started by a POST /api/peers, if any
        if started_monitor:
            await monitor.stop()


def ws_monitor(**overrides: Any) -> Monitor:
    """A Monitor for the live-stream tests: fast ticks and fast server pings."""
    values: dict[str, Any] = {"metrics_interval": 0.1, "ws_ping_interval": 0.2}
    values.update(overrides)
    return Monitor(Settings(**values))


async def receive_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), timeout)
    decoded: dict[str, Any] = orjson.loads(message)
    return decoded


async def next_of_type(
    ws: ClientConnection,
    kind: str,
    timeout: float = 5.0,
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """The next message of type ``kind`` (matching ``where``), skipping other types."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {kind!r} message within {timeout} s")
        message = await receive_json(ws, remaining)
        if message.get("type") == kind and (where is None or where(message)):
            return message


async def read_until_closed(ws: ClientConnection, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every message until the server closes the socket (then see ``ws.close_code``)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the server did not close within {timeout} s")
        try:
            raw = await asyncio.wait_for(ws.recv(), remaining)
        except ConnectionClosed:
            return messages
        messages.append(orjson.loads(raw))


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll ``check`` (plain or async) until it returns something truthy; return that.

    What a test waits for this way, rather than for a fixed time, still comes when one
    stall of a busy CI machine (a few hundred ms) delays it.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)


async def peer_named(http: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    """The listed peer with display name ``name`` (how a test finds its own ws-N)."""
    response = await http.get("/api/metrics/peers", params={"sort": "id", "limit": 1000})
    assert response.status_code == 200, response.text
    found = [p for p in response.json()["peers"] if p["name"] == name]
    assert len(found) <= 1
    return found[0] if found else None


def quality_score(latency: float, loss: float, jitter: float) -> float:
    """The default (impairment) score, written out independently: the seed's weights and
    slopes, each part taken off the whole, clamped to 0..100 (docs/QUALITY.md)."""
    if loss >= 100:
        return 0.0
    score = 100 - 0.40 * latency / 1.5 - 0.35 * loss * 20 - 0.25 * jitter * 2
    if loss >= 50:
        score = min(score, 40.0)
    return max(0.0, min(100.0, score))


def mos(latency: float, jitter: float, loss: float) -> float:
    """DESIGN.md's simplified E-model."""
    effective = latency + 2 * jitter + 10
    r = 93.2 - effective / 40 if effective < 160 else 93.2 - (effective - 120) / 10
    r = min(100.0, max(0.0, r - 2.5 * loss))
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


# --- the seeded Monitor of the REST tests --------------------------------------------------

T0 = 1_700_000_000.0
# alpha's samples, one per second from T0+1; RFC 3550 jitter and the 1/8 EWMA over them.
ALPHA_SAMPLES = [10.0, 20.0, 30.0, 40.0]
ALPHA_JITTER = 1.76025390625  # 10/16, then + (10 - J)/16 twice
ALPHA_SMOOTHED = 16.89453125  # 10 -> 11.25 -> 13.59375 -> 16.89453125
BRAVO_LATENCY = 120.0
CHARLIE_LATENCY = 30.0
ALPHA_LOSS = 3.0  # reported by the app: alpha's score falls below charlie's (sort tests)


def seeded_monitor(clock: ManualClock) -> Monitor:
    """Four peers, two ended sessions and some traffic, all at known times; now = T0 + 5.

    - alpha: 10, 20, 30, 40 ms at T0+1..T0+4, 3 % loss reported; 1500 B / 10 packets
      sent, 3000 B / 20 received by record_traffic; 3 messages in (100 B each), 2 out
      (50 B each) at T0+4.5.
    - bravo: 120 ms at T0+3 (score 68). charlie: 30 ms at T0+4 (score 92).
    - delta: registered, never measured.
    - session match-1 (alpha, bravo) T0..T0+3.5 holds 10, 20, 30 and 120 ms;
      session match-2 (charlie) T0+4..T0+5 holds no sample.

    The tick interval is an hour: the one tick the server runs at start is the only one.
    """
    clock.now = T0
    monitor = Monitor(Settings(metrics_interval=3600.0, enable_system_metrics=False), clock=clock)
    monitor.add_peer(
        "alpha",
        name="Alpha",
        address="10.0.0.2:8701",
        labels={"region": "eu", "connection_type": "direct"},
    )
    monitor.add_peer("bravo", name="Bravo")
    monitor.add_peer("charlie")
    monitor.add_peer("delta", name="Delta")
    monitor.start_session("Match 1", ["alpha", "bravo"], session_id="match-1")
    for sample in ALPHA_SAMPLES[:3]:
        clock.advance(1)
        monitor.record_latency("alpha", sample)
    monitor.record_latency("bravo", BRAVO_LATENCY)
    clock.advance(0.5)
    monitor.end_session("match-1")  # T0+3.5
    clock.advance(0.5)
    monitor.record_latency("alpha", ALPHA_SAMPLES[3])  # T0+4
    monitor.record_latency("charlie", CHARLIE_LATENCY)
    monitor.start_session("Match 2", ["charlie"], session_id="match-2")
    monitor.record_loss("alpha", ALPHA_LOSS)
    monitor.record_traffic(
        "alpha", bytes_sent=1500, bytes_received=3000, packets_sent=10, packets_received=20
    )
    clock.advance(0.5)  # T0+4.5
    for _ in range(3):
        monitor.record_message("alpha", size=100, direction="in")
    for _ in range(2):
        monitor.record_message("alpha", size=50, direction="out")
    clock.advance(0.5)  # T0+5
    monitor.end_session("match-2")
    return monitor


def close_to(a: float | None, b: float, rel: float = 1e-9) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


# --- `peerscope serve` processes -------------------------------------------------------

READY = re.compile(r"^peerscope serving on http://127\.0\.0\.1:(\d+)\b")


# TCP_INFO is Linux's (CI runs on Linux, so these run there); elsewhere peerscope says it is
# unavailable, which tests/test_tcp_info.py checks on any platform.
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")


def cli_env(**extra: str) -> dict[str, str]:
    """The caller's environment without its PEERSCOPE_* variables, plus ``extra``; the
    probe reflector on a free port, no history kept, and only log records of WARNING and
    above (so that stderr holds what went wrong, and a long run's INFO lines never fill a
    pipe nobody reads), unless ``extra`` (or ``--db``, ``--log-level``) says otherwise."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PEERSCOPE_")}
    return {
        **env,
        "PEERSCOPE_REFLECTOR_PORT": "0",
        "PEERSCOPE_STORE__ENABLED": "false",
        "PEERSCOPE_LOG_LEVEL": "WARNING",
        **extra,
    }


def start_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "peerscope.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env if env is not None else cli_env(),
    )


def wait_ready(process: subprocess.Popen[str], timeout: float = 20) -> tuple[str, int]:
    """The first stdout line (the ready announcement) and the port in it."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.1)
        if readable:
            line = process.stdout.readline()
            match = READY.match(line)
            assert match, f"unexpected first line: {line!r}"
            return line, int(match.group(1))
        if process.poll() is not None:
            raise AssertionError(
                f"serve exited with {process.returncode}: "
                f"{process.stderr.read() if process.stderr else ''}"
            )
    raise AssertionError(f"serve did not announce itself within {timeout} s")
