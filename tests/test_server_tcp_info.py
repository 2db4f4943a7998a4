"""``/ws`` clients measured by the kernel (TCP_INFO) on a real uvicorn, and the proof with
nftables: retransmissions rise while a rule drops some of a client's segments.

The nftables test needs root and ``nft``; CI runs as root with both installed, so there it
runs (and fails when it cannot); elsewhere, not as root, it is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from peerscope import Monitor
from peerscope import tcp_info as tcp_info_module
from peerscope.server import create_app
from peerscope.server import ws as ws_module
from peerscope.tcp_info import UNAVAILABLE
from tests.nftables_support import dropping, require_nftables
from tests.server_support import LiveServer, eventually, linux, live_server, peer_named, ws_monitor


async def peer(live: LiveServer, name: str) -> dict[str, Any] | None:
    async with live.http() as http:
        return await peer_named(http, name)


async def peer_where(
    live: LiveServer, name: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await peer(live, name)
        return found if found is not None and condition(found) else None

    found: dict[str, Any] = await eventually(check, timeout=timeout)
    return found


def kernel_monitor(**overrides: Any) -> Monitor:
    """A Monitor for the RTT tests: frames half a second apart, as ``serve``'s (1 s) are more
    than a retransmission timeout (200 ms) apart, so the client's kernel acknowledges each
    at once (quick-ACK after an idle gap). Closer together, a lone small segment waits for
    the client's read or its delayed-ACK timer, and the server's RTT includes that wait
    (here the client reads on the server's own event loop)."""
    values: dict[str, Any] = {"metrics_interval": 0.5, "ws_ping_interval": 1.0}
    values.update(overrides)
    return ws_monitor(**values)


@contextlib.asynccontextmanager
async def busy_page(
    ws: ClientConnection, delay_s: float, answering: asyncio.Event
) -> AsyncIterator[None]:
    """Play a browser tab whose main thread is busy: every frame is read as it comes (a
    browser's network stack does not wait for the page), and the server's pings are
    answered ``delay_s`` late, while ``answering`` is set."""
    answers: set[asyncio.Task[None]] = set()

    async def answer(seq: int) -> None:
        await asyncio.sleep(delay_s)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(orjson.dumps({"type": "pong", "seq": seq}).decode())

    async def play() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                message = orjson.loads(raw)
                if message["type"] == "ping" and answering.is_set():
                    task = asyncio.create_task(answer(message["seq"]))
                    answers.add(task)
                    task.add_done_callback(answers.discard)

    task = asyncio.create_task(play())
    try:
        yield
    finally:
        for pending in (task, *answers):
            pending.cancel()
        await asyncio.gather(task, *answers, return_exceptions=True)
        await ws.close()


def kernel_measured(entry: dict[str, Any]) -> bool:
    return (
        entry["tcp"] is not None
        and entry["latency_ms"] is not None
        and entry["app_rtt_ms"] is not None
    )


@linux
@pytest.mark.slow
@pytest.mark.parametrize("mounted", [False, True], ids=["serve", "mounted"])
async def test_a_websocket_client_is_measured_by_the_kernel_and_its_echo_is_app_rtt(mounted):
    """The issue's case: a page whose main thread is busy answers the echo 150 ms late; its
    latency is the network's, from the kernel, and the echo shows apart as ``app_rtt_ms``.
    Under ``serve`` the protocol hands over the transport; mounted in a plain uvicorn, the
    transport is found through the server's protocol."""
    delay = 0.15
    answering = asyncio.Event()
    answering.set()
    # A ping a second: the late pong arrives before the next ping replaces the one it answers.
    async with live_server(kernel_monitor(), mounted=mounted) as live:
        ws = await live.ws("?name=busy-page")
        async with busy_page(ws, delay, answering):
            me = await peer_where(live, "busy-page", kernel_measured)
            tcp = me["tcp"]
            assert 0.0 < tcp["rtt_ms"] < 5.0  # loopback
            assert 0.0 < me["latency_ms"] < 5.0  # the kernel's, not the echo's
            assert 0.0 < me["smoothed_latency_ms"] < 5.0
            assert tcp["min_rtt_ms"] is not None
            assert tcp["min_rtt_ms"] <= tcp["rtt_ms"]
            assert tcp["total_retrans"] == 0
            assert tcp["segs_out"] > 0
            assert delay * 1000 <= me["app_rtt_ms"] < delay * 1000 + 1000
            assert me["quality_score"] is not None
            assert me["packet_loss_percent"] == 0.0
            # The page stops answering: no echo RTT any more, but nothing was lost, and the
            # kernel goes on measuring it.
            answering.clear()
            quiet = await peer_where(live, "busy-page", lambda p: p["app_rtt_ms"] is None)
            assert quiet["packet_loss_percent"] == 0.0
            assert quiet["status"] == "connected"
            assert 0.0 < quiet["latency_ms"] < 5.0


@linux
@pytest.mark.slow
async def test_a_client_that_only_listens_is_measured_by_the_kernel():
    async with live_server(kernel_monitor()) as live:
        ws = await live.ws("?name=listener")
        async with busy_page(ws, 0.0, asyncio.Event()):
            me = await peer_where(live, "listener", lambda p: p["latency_ms"] is not None)
    assert 0.0 < me["latency_ms"] < 5.0
    assert me["app_rtt_ms"] is None
    assert me["status"] == "connected"


@pytest.mark.slow
async def test_without_tcp_info_the_echo_is_the_latency_and_that_is_said_once(monkeypatch, caplog):
    monkeypatch.setattr(tcp_info_module, "TCP_INFO_OPTION", None)
    answering = asyncio.Event()
    answering.set()
    with caplog.at_level(logging.WARNING, logger="peerscope.tcp_info"):
        async with live_server(kernel_monitor()) as live:
            first, second = await live.ws("?name=echo-1"), await live.ws("?name=echo-2")
            async with busy_page(first, 0.0, answering), busy_page(second, 0.0, answering):
                me = await peer_where(live, "echo-1", lambda p: p["latency_ms"] is not None)
    assert me["tcp"] is None
    assert me["app_rtt_ms"] == me["latency_ms"]
    assert caplog.text.count(UNAVAILABLE) == 1


def receive_wrapped(monitor: Monitor) -> Callable[..., Awaitable[None]]:
    """peerscope's app behind middleware that wraps ``receive``, as many do."""
    inner = create_app(monitor)

    async def app(scope: Any, receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        async def wrapped_receive() -> Any:
            return await receive()

        await inner(scope, wrapped_receive, send)

    return app


@linux
@pytest.mark.slow
async def test_serves_protocol_hands_the_transport_over_whatever_wraps_receive():
    monitor = kernel_monitor()
    async with live_server(monitor, app=receive_wrapped(monitor)) as live:
        ws = await live.ws("?name=wrapped")
        async with busy_page(ws, 0.0, asyncio.Event()):
            me = await peer_where(live, "wrapped", lambda p: p["latency_ms"] is not None)
    assert me["tcp"] is not None
    assert 0.0 < me["latency_ms"] < 5.0


@pytest.mark.slow
async def test_a_server_that_hides_its_transport_leaves_the_echo_as_the_latency(caplog):
    """Mounted in a plain uvicorn behind middleware that wraps ``receive`` (or in another
    server), no connection can be found: the echo measures the client, said once."""
    monitor = kernel_monitor()
    ws_module._say_no_transport.cache_clear()  # said once per process: earlier tests said it
    answering = asyncio.Event()
    answering.set()
    with caplog.at_level(logging.WARNING, logger="peerscope.server.ws"):
        async with live_server(monitor, mounted=True, app=receive_wrapped(monitor)) as live:
            first, second = await live.ws("?name=hidden-1"), await live.ws("?name=hidden-2")
            async with busy_page(first, 0.0, answering), busy_page(second, 0.0, answering):
                me = await peer_where(live, "hidden-1", lambda p: p["latency_ms"] is not None)
    assert me["tcp"] is None
    assert me["app_rtt_ms"] == me["latency_ms"]
    assert caplog.text.count(ws_module.NO_TRANSPORT) == 1


# --- the proof: retransmissions under packet loss ------------------------------------------


@linux
@pytest.mark.slow
async def test_retransmissions_rise_when_nftables_drops_a_clients_segments():
    """The issue's proof: the server sends a client its frames while the kernel drops 30 % of
    them on the way; the client's ``total_retrans`` rises and shows as its loss."""
    require_nftables()
    monitor: Monitor = ws_monitor()
    async with live_server(monitor) as live:
        ws = await live.ws("?name=lossy")
        async with busy_page(ws, 0.0, asyncio.Event()):
            before = await peer_where(live, "lossy", lambda p: p["latency_ms"] is not None)
            assert before["tcp"]["total_retrans"] == 0
            start = time.monotonic()
            segments = f"tcp sport {live.port} tcp dport {ws.local_address[1]}"
            with dropping(f"{segments} numgen random mod 100 < 30"):
                # Ten frames a second go out (metrics_interval 0.1 s); each lost one is sent
                # again, the later ones too once the kernel's probe finds the gap.
                lossy = await peer_where(
                    live,
                    "lossy",
                    lambda p: p["tcp"]["total_retrans"] >= 3 and p["packet_loss_percent"] > 0.0,
                    timeout=30,
                )
            took = time.monotonic() - start
    assert lossy["tcp"]["total_retrans"] >= 3, (lossy, took)
    assert 0.0 < lossy["packet_loss_percent"] <= 100.0
