"""``/ws`` on a real uvicorn with real ``websockets`` clients: stream, echo, limits, fan-out."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import secrets
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from peerscope import MetricsTick, StatusRules, tcp_info
from tests.server_support import (
    CLIENT_KEYS,
    MESSAGE_KEYS,
    NETWORK_KEYS,
    SERVER_KEYS,
    SYSTEM_KEYS,
    LiveServer,
    eventually,
    live_server,
    next_of_type,
    peer_named,
    read_until_closed,
    receive_json,
    ws_monitor,
)

INTERVAL = 0.1  # ws_monitor's metrics_interval
# One stall of a busy 2-core CI machine (one of 230 ms was seen): a single wait may be this
# much longer than the product's own bound.
STALL = 0.35


async def health(live: LiveServer) -> dict[str, Any]:
    async with live.http() as http:
        response = await http.get("/api/health")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def my_peer(live: LiveServer, name: str) -> dict[str, Any]:
    """The ws-N peer of the client that connected with ``?name=``."""
    async with live.http() as http:
        peer = await eventually(lambda: peer_named(http, name))
    assert re.fullmatch(r"ws-\d+", peer["client_id"]), peer["client_id"]
    return peer  # type: ignore[no-any-return]


async def get_peer(live: LiveServer, peer_id: str) -> tuple[int, dict[str, Any]]:
    async with live.http() as http:
        response = await http.get(f"/api/metrics/peers/{peer_id}")
    return response.status_code, response.json()


def entry_for(frame: dict[str, Any], peer_id: str) -> dict[str, Any] | None:
    return next((c for c in frame["clients"] if c["client_id"] == peer_id), None)


def key_shape(value: Any) -> Any:
    """The keys of a message, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {key: key_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [key_shape(value[0])] if value else []
    return None


# --- the stream ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mounted", [False, True], ids=["served", "mounted"])
async def test_every_tick_pushes_one_metrics_message_shaped_like_current(mounted: bool):
    monitor = ws_monitor(ws_ping_interval=60)
    ticked: list[float] = []
    monitor.subscribe(lambda e: ticked.append(e.timestamp) if isinstance(e, MetricsTick) else None)
    async with live_server(monitor, mounted=mounted) as live:
        first = await live.ws("?name=watcher")
        second = await live.ws()
        frames: list[dict[str, Any]] = []
        raw_by_timestamp: dict[float, str] = {}
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            raw = await asyncio.wait_for(first.recv(), 2)
            message = orjson.loads(raw)
            if message["type"] == "metrics":
                frames.append(message)
                raw_by_timestamp[message["timestamp"]] = raw
        # About ten in a second; a stall of the machine skips ticks (never replays them), so
        # fewer is no fault.
        assert 5 <= len(frames) <= 13, len(frames)
        # One message per tick, in order: a run of the Monitor's ticks, none left out or
        # repeated, however the machine spaced them.
        stamps = [frame["timestamp"] for frame in frames]
        start = ticked.index(stamps[0])
        assert stamps == ticked[start : start + len(stamps)], (stamps, ticked)
        for frame in frames:
            assert set(frame) >= MESSAGE_KEYS
            assert set(frame["system"]) >= SYSTEM_KEYS
            assert set(frame["server"]) >= SERVER_KEYS
            assert set(frame["network"]) >= NETWORK_KEYS
            assert set(frame["network"]["peers_by_status"]) == {
                "connected",
                "degraded",
                "disconnected",
            }
        # Each client is a peer of kind client, listed in the stream.
        latest = frames[-1]
        me = await my_peer(live, "watcher")
        mine = entry_for(latest, me["client_id"])
        assert mine is not None
        assert set(mine) >= CLIENT_KEYS
        assert mine["kind"] == "client"
        assert latest["clients_total"] == 2
        assert latest["server"]["active_connections"] == 2
        # Serialized once: the other subscriber gets the very same text for a tick.
        match = None
        while match is None:
            raw = await asyncio.wait_for(second.recv(), 2)
            stamp = orjson.loads(raw).get("timestamp")
            if stamp in raw_by_timestamp:
                match = raw
                assert raw == raw_by_timestamp[stamp]
        # The same shape as GET /api/metrics/current.
        async with live.http() as http:
            current = (await http.get("/api/metrics/current")).json()
        assert key_shape(current) == key_shape(latest)
        await first.close()
        await second.close()


async def test_client_ping_is_answered_with_pong():
    async with live_server(ws_monitor(ws_ping_interval=60)) as live:
        ws = await live.ws()
        await ws.send(orjson.dumps({"type": "ping", "t": 123.25}).decode())
        pong = await next_of_type(ws, "pong")
        assert set(pong) == {"type", "t", "server_time"}
        assert pong["t"] == 123.25
        assert abs(pong["server_time"] - time.time()) < 5
        await ws.close()


@pytest.mark.slow
async def test_answering_the_server_ping_records_the_client_rtt(monkeypatch):
    """Where the kernel does not measure the client (no TCP_INFO), the echo is its latency.
    With TCP_INFO, see tests/test_server_tcp_info.py."""
    monkeypatch.setattr(tcp_info, "TCP_INFO_OPTION", None)
    delay = 0.15
    # A ping a second: the pong reaches the server before the next ping replaces the one it
    # answers, even when a stall of the machine holds it up.
    async with live_server(ws_monitor(ws_ping_interval=1.0)) as live:
        # Unbounded: the frames it leaves unread over 2 s must not hold up its close.
        ws = await live.ws("?name=rtt-probe", max_queue=None)
        ping = await next_of_type(ws, "ping")
        assert isinstance(ping["seq"], int)
        await asyncio.sleep(delay)  # the RTT the server measures includes this wait
        await ws.send(orjson.dumps({"type": "pong", "seq": ping["seq"]}).decode())
        me = await eventually(lambda: _measured(live, "rtt-probe"))
        assert me["kind"] == "client"
        assert me["address"] == f"127.0.0.1:{ws.local_address[1]}"
        rtt = me["latency_ms"]
        assert delay * 1000 <= rtt < delay * 1000 + 1000, rtt
        assert me["smoothed_latency_ms"] == rtt
        assert me["app_rtt_ms"] == rtt
        assert me["tcp"] is None
        # The metrics frames carry the same measurement for this client (from the first one
        # made after the server read the pong; with a stall of the machine, a tick may run
        # between the client's send and that read).
        frame = await next_of_type(
            ws,
            "metrics",
            where=lambda m: (
                (entry := entry_for(m, me["client_id"])) is not None
                and entry["latency_ms"] is not None
            ),
        )
        entry = entry_for(frame, me["client_id"])
        assert entry is not None
        assert entry["latency_ms"] == rtt
        assert entry["average_latency_ms"] == pytest.approx(rtt, rel=1e-6)  # float32 ring
        assert entry["quality_score"] is not None
        # A pong nobody asked for is an error naming seq; the socket stays open.
        await ws.send(orjson.dumps({"type": "pong", "seq": ping["seq"]}).decode())
        error = await next_of_type(ws, "error")
        assert error["error"] == "invalid message"
        assert "seq" in error["detail"]
        # Having answered once, an unanswered ping is a lost measurement.
        async with live.http() as http:
            lossy = await eventually(
                lambda: _with(http, me["client_id"], lambda p: p["packet_loss_percent"] > 0)
            )
        assert lossy["latency_ms"] == rtt
        await ws.close()


async def _measured(live: LiveServer, name: str) -> dict[str, Any] | None:
    async with live.http() as http:
        peer = await peer_named(http, name)
    return peer if peer is not None and peer["latency_ms"] is not None else None


async def _with(http: Any, peer_id: str, condition: Any) -> dict[str, Any] | None:
    response = await http.get(f"/api/metrics/peers/{peer_id}")
    assert response.status_code == 200
    peer: dict[str, Any] = response.json()
    return peer if condition(peer) else None


async def test_fps_is_stored_on_the_client():
    async with live_server(ws_monitor(ws_ping_interval=60)) as live:
        ws = await live.ws("?name=renderer")
        me = await my_peer(live, "renderer")
        await ws.send(orjson.dumps({"type": "fps", "fps": 59.5, "frame_time_ms": 16.75}).decode())
        # The first frame with figures (not the first tick after sending: a stall of the
        # machine may let a tick run before the server has read the message).
        frame = await next_of_type(
            ws,
            "metrics",
            where=lambda m: (
                (entry := entry_for(m, me["client_id"])) is not None and entry["fps"] is not None
            ),
        )
        entry = entry_for(frame, me["client_id"])
        assert entry is not None
        assert (entry["fps"], entry["frame_time_ms"]) == (59.5, 16.75)
        status, peer = await get_peer(live, me["client_id"])
        assert status == 200
        assert (peer["fps"], peer["frame_time_ms"]) == (59.5, 16.75)
        # Bad figures are refused with an error naming the field; the stored ones stay.
        for text, field in (
            ('{"type": "fps", "fps": -1, "frame_time_ms": 16}', "fps"),
            ('{"type": "fps", "fps": "fast", "frame_time_ms": 16}', "fps"),
            ('{"type": "fps", "fps": 60}', "frame_time_ms"),
            ('{"type": "fps", "fps": 60, "frame_time_ms": -0.5}', "frame_time_ms"),
        ):
            await ws.send(text)
            error = await next_of_type(ws, "error")
            assert error["error"] == "invalid message"
            assert error["detail"].startswith(field), (text, error)
        status, peer = await get_peer(live, me["client_id"])
        assert (peer["fps"], peer["frame_time_ms"]) == (59.5, 16.75)
        await ws.close()


async def test_bad_messages_get_an_error_and_the_socket_stays_open():
    async with live_server(ws_monitor(ws_ping_interval=60)) as live:
        ws = await live.ws("?name=clumsy")
        for text, error, detail in (
            ("not json{", "invalid JSON", "not json{"),
            ("[1, 2]", "expected a JSON object", "list"),
            ('{"type": "dance"}', "unknown message type", "dance"),
            ('{"no": "type"}', "unknown message type", "None"),
        ):
            await ws.send(text)
            reply = await next_of_type(ws, "error")
            assert (reply["error"], reply["detail"]) == (error, detail)
        await ws.send('{"type": "ping", "t": 1}')
        assert (await next_of_type(ws, "pong"))["t"] == 1
        me = await my_peer(live, "clumsy")
        assert me["messages_received"] == 5
        await ws.close()


async def test_binary_frames_are_refused_with_1008():
    async with live_server(ws_monitor(ws_ping_interval=60)) as live:
        ws = await live.ws()
        await ws.send(b"\x00\x01binary")
        await read_until_closed(ws)
        assert ws.close_code == 1008


# --- limits -------------------------------------------------------------------------------


@pytest.mark.parametrize("mounted", [False, True], ids=["served", "mounted"])
async def test_a_message_over_the_size_limit_closes_1009(mounted: bool):
    """Served as serve() serves it, uvicorn enforces the limit; mounted into an app served
    with uvicorn's default limit (16 MiB), the app must enforce it itself."""
    monitor = ws_monitor(ws_max_message_bytes=256, ws_ping_interval=60)
    async with live_server(monitor, mounted=mounted) as live:
        ws = await live.ws("?name=big")
        me = await my_peer(live, "big")
        fits = '{"type": "ping", "t": "' + "x" * 200 + '"}'
        assert len(fits) <= 256
        await ws.send(fits)
        assert (await next_of_type(ws, "pong"))["t"] == "x" * 200
        await ws.send('{"type": "ping", "t": "' + "x" * 300 + '"}')
        await read_until_closed(ws)
        assert ws.close_code == 1009
        # The closed client is forgotten.
        await eventually(lambda: _gone(live, me["client_id"]))


async def _gone(live: LiveServer, peer_id: str) -> bool:
    status, _ = await get_peer(live, peer_id)
    return status == 404 and (await health(live))["websocket_subscribers"] == 0


async def test_flooding_gets_errors_then_close_1008():
    monitor = ws_monitor(ws_max_messages_per_second=10, ws_ping_interval=60)
    async with live_server(monitor) as live:
        ws = await live.ws()
        for i in range(30):
            await ws.send(orjson.dumps({"type": "ping", "t": i}).decode())
        replies = [m for m in await read_until_closed(ws) if m["type"] != "metrics"]
        pongs = [m for m in replies if m["type"] == "pong"]
        errors = [m for m in replies if m["type"] == "error"]
        # 10 a second are served, the next 10 are told off, then the socket is closed.
        assert [m["t"] for m in pongs] == list(range(10))
        assert len(errors) == 10
        assert all(m["error"] == "rate limited" for m in errors)
        assert "10 messages per second" in errors[0]["detail"]
        assert ws.close_code == 1008
        assert "10 messages per second" in (ws.close_reason or "")


# --- fan-out ------------------------------------------------------------------------------


def _tcp_send_buffer_max() -> int:
    """The most a Linux TCP send buffer may grow to (it holds frames a stalled reader left)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("mounted", [False, True], ids=["served", "mounted"])
async def test_a_slow_subscriber_misses_frames_and_never_delays_a_fast_one(mounted: bool):
    """Served, frames are written straight to each transport (``DirectWebSocketProtocol``);
    mounted, each subscriber's task sends them through ASGI. Both bound what a stalled
    reader holds."""
    queue_frames = 2
    stall = 2.5
    monitor = ws_monitor(
        ws_queue_frames=queue_frames, ws_ping_interval=60, enable_system_metrics=False
    )
    # Frames of about 1 MB (200 listed peers with big labels, incompressible) so that the
    # kernel's socket buffers hold only a few of the ~25 frames made while one reader stalls.
    for i in range(200):
        monitor.add_peer(
            f"bulk-{i:03d}", labels={f"k{j}": secrets.token_hex(125) for j in range(16)}
        )
    async with live_server(monitor, mounted=mounted) as live:
        # The slow reader: a small receive buffer, and a client that stops reading from the
        # socket once one frame waits unread.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", live.port))
        sock.setblocking(False)
        slow = await live.ws("?name=slow", sock=sock, max_queue=1, max_size=None)
        fast = await live.ws("?name=fast", max_size=None)
        assert (await health(live))["websocket_subscribers"] == 2
        stalled_at = time.time()

        arrivals: list[tuple[float, float]] = []  # (arrival, tick timestamp)
        while time.time() - stalled_at < stall:
            frame = await next_of_type(fast, "metrics")
            arrivals.append((time.monotonic(), frame["timestamp"]))
        frame_size = len(orjson.dumps(monitor.last_message))
        assert frame_size > 800_000
        # The fast subscriber got every tick, each on time, while the slow one read nothing:
        # a tick apart as a rule, and never held up for long (a stall of the machine holds up
        # one frame or two, and the ticks themselves).
        assert len(arrivals) >= 0.7 * stall / INTERVAL, len(arrivals)
        waits = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
        assert statistics.median(waits) < 1.5 * INTERVAL, waits
        assert max(waits) < 4 * INTERVAL + STALL, waits
        ticks = [b[1] - a[1] for a, b in itertools.pairwise(arrivals)]
        assert statistics.median(ticks) < 1.5 * INTERVAL, ticks
        assert max(ticks) < 2.5 * INTERVAL + STALL, ticks

        # The slow one reads again: what reaches it is what was buffered (its bounded queue
        # plus the TCP buffers), then the newest frames; everything in between was dropped.
        resumed_at = time.time()
        stamps: list[float] = []
        while not stamps or stamps[-1] <= resumed_at:
            frame = await next_of_type(slow, "metrics", timeout=10)
            stamps.append(frame["timestamp"])
        backlog = [stamp for stamp in stamps if stamp <= resumed_at]
        made_while_stalled = (resumed_at - stalled_at) / INTERVAL
        # Held back at most: the kernel's send buffer, the queue, and a frame or so in each of
        # the client's reader, the server's transport buffer and the server's sender.
        bound = math.ceil(_tcp_send_buffer_max() / frame_size) + queue_frames + 5
        assert made_while_stalled >= bound + 5  # the premise: far more than could be held
        assert len(backlog) <= bound, (len(backlog), bound, stamps)
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert max(gaps) >= 4 * INTERVAL, gaps  # it missed frames rather than queue them
        # ... and from then on it gets each new tick again.
        follow = [(await next_of_type(slow, "metrics"))["timestamp"] for _ in range(5)]
        steps = [b - a for a, b in itertools.pairwise([stamps[-1], *follow])]
        assert all(0 < step < 2.5 * INTERVAL + STALL for step in steps), steps
        assert statistics.median(steps) < 1.5 * INTERVAL, steps
        await slow.close()
        await fast.close()


async def test_a_closed_socket_is_dropped():
    async with live_server(ws_monitor(ws_ping_interval=60)) as live:
        leaving = await live.ws("?name=leaving")
        crashing = await live.ws("?name=crashing")
        staying = await live.ws("?name=staying")
        ids = {
            name: (await my_peer(live, name))["client_id"]
            for name in ("leaving", "crashing", "staying")
        }
        assert (await health(live))["websocket_subscribers"] == 3

        await leaving.close()  # a clean close handshake
        await eventually(lambda: _subscribers(live, 2))
        assert (await get_peer(live, ids["leaving"]))[0] == 404
        closed_at = time.time()
        frame = await next_of_type(staying, "metrics", where=lambda m: m["timestamp"] > closed_at)
        assert entry_for(frame, ids["leaving"]) is None
        assert entry_for(frame, ids["staying"]) is not None
        assert frame["clients_total"] == 2

        crashing.transport.abort()  # gone without a close frame (TCP reset)
        await eventually(lambda: _subscribers(live, 1))
        assert (await get_peer(live, ids["crashing"]))[0] == 404
        assert (await health(live))["peers"] == 1
        await staying.close()
        await eventually(lambda: _subscribers(live, 0))
        assert (await health(live))["peers"] == 0


async def _subscribers(live: LiveServer, count: int) -> bool:
    return (await health(live))["websocket_subscribers"] == count


@pytest.mark.slow
async def test_stopping_the_server_closes_open_subscribers_promptly():
    """A subscriber that is not reading does not hold the shutdown up; it gets a close."""
    monitor = ws_monitor(ws_ping_interval=60)
    server = live_server(monitor)
    live = await server.__aenter__()
    ws = await live.ws(max_queue=1)
    await receive_json(ws)
    await asyncio.sleep(5 * INTERVAL)  # frames pile up unread
    stopping = time.monotonic()
    await server.__aexit__(None, None, None)
    assert time.monotonic() - stopping < 3
    assert not monitor.is_running
    await read_until_closed(ws)
    assert ws.close_code == 1012  # uvicorn's "service restart" on shutdown


@pytest.mark.slow
async def test_a_listening_client_stays_connected_while_its_socket_is_open(monkeypatch):
    """A subscriber that never answers the echo, where the kernel does not measure it (no
    TCP_INFO), is unmeasured, not gone: it must not age into degraded/disconnected (and
    crowd real peers out of the frame) while connected."""
    monkeypatch.setattr(tcp_info, "TCP_INFO_OPTION", None)
    # Idle limits well over the server's ping interval (0.2 s) plus one stall of the machine,
    # and a wait past the longer one, which a client left unmarked would have reached.
    rules = StatusRules(degraded_after_idle_s=1.0, disconnected_after_idle_s=1.5)
    async with live_server(ws_monitor(status=rules)) as live:
        listener = await live.ws("?name=listener")
        deadline = time.monotonic() + 2.0
        frame: dict[str, Any] = {}
        while time.monotonic() < deadline:
            message = await receive_json(listener)
            if message["type"] == "metrics":
                frame = message
        me = entry_for(frame, (await my_peer(live, "listener"))["client_id"])
        assert me is not None
        assert me["status"] == "connected"
        assert me["quality_score"] is None  # never measured
        assert me["latency_ms"] is None
        await listener.close()


# --- limits that answer -------------------------------------------------------------------


async def test_past_max_peers_a_client_is_closed_1013_with_the_limit_named():
    """Every /ws client is measured as a peer: past max_peers the handshake used to end in a
    dropped connection (1006) and a traceback in the log."""
    monitor = ws_monitor(max_peers=2, ws_ping_interval=60)
    monitor.record_latency("a", 1.0)
    monitor.record_latency("b", 1.0)
    async with live_server(monitor) as live:
        ws = await live.ws()
        await read_until_closed(ws)
        assert ws.close_code == 1013  # try again later
        assert ws.close_reason == "max_peers (2) reached; try later"
        assert sorted(monitor.peer_ids) == ["a", "b"]
        assert (await health(live))["websocket_subscribers"] == 0
        monitor.remove_peer("b")  # room again: the next client is served
        ws = await live.ws()
        assert (await next_of_type(ws, "metrics"))["clients_total"] == 2
        await ws.close()


def _bulk_monitor(**overrides: Any) -> Any:
    """Frames of about 1 MB, so a reader's socket buffers hold only a few of them."""
    monitor = ws_monitor(
        ws_queue_frames=2, ws_ping_interval=60, enable_system_metrics=False, **overrides
    )
    for i in range(200):
        monitor.add_peer(
            f"bulk-{i:03d}", labels={f"k{j}": secrets.token_hex(125) for j in range(16)}
        )
    return monitor


async def _stopped_reader(live: LiveServer, name: str) -> Any:
    """A client with a small receive buffer that stops reading once one frame waits."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", live.port))
    sock.setblocking(False)
    return await live.ws(f"?name={name}", sock=sock, max_queue=1, max_size=None)


@pytest.mark.slow
@pytest.mark.parametrize("mounted", [False, True], ids=["served", "mounted"])
async def test_a_subscriber_that_stops_reading_is_closed_1008_and_freed(mounted: bool):
    """20 such clients used to hold 2.8 MB each in the kernel for over 120 s, still counted
    as subscribers and peers. A reader that is only slow, and one that keeps up, stay."""
    async with live_server(_bulk_monitor(ws_stall_timeout_s=1.0), mounted=mounted) as live:
        stopped = await _stopped_reader(live, "stopped")
        fast = await live.ws("?name=fast", max_size=None)
        slow = await live.ws("?name=slow", max_size=None)
        assert (await health(live))["websocket_subscribers"] == 3
        stopped_id = (await my_peer(live, "stopped"))["client_id"]
        # The fast one reads every frame; the slow one a frame every 0.3 s, three ticks.
        started = time.monotonic()
        slow_frames = 0
        while (await health(live))["websocket_subscribers"] != 2:
            assert time.monotonic() - started < 10, "the stopped reader was never dropped"
            await next_of_type(fast, "metrics", timeout=5)
            if time.monotonic() - started > 0.3 * slow_frames:
                await next_of_type(slow, "metrics", timeout=5)
                slow_frames += 1
        dropped_after = time.monotonic() - started
        assert dropped_after > 1.0  # not before the stall timeout ...
        status, _ = await get_peer(live, stopped_id)
        assert status == 404  # ... and then no longer a peer either
        # Served, the close frame follows what waited in the buffers, so a client that
        # reads again learns why; mounted, ASGI can only ask its server to close.
        if not mounted:
            await read_until_closed(stopped, timeout=5)
            assert stopped.close_code == 1008
            assert stopped.close_reason == "not reading: no frame taken for 1 s"
        # A few more seconds: the slow and the fast readers are kept.
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            await next_of_type(fast, "metrics", timeout=5)
            await next_of_type(slow, "metrics", timeout=5)
            await asyncio.sleep(0.2)
        assert (await health(live))["websocket_subscribers"] == 2
        await fast.close()
        await slow.close()
        await stopped.close()
