"""DirectWebSocketProtocol: the ready-made-frame extension, on a real uvicorn and client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from peerscope.server.direct import EXTENSION, DirectWebSocketProtocol


class ScopeKeeper:
    """An ASGI app that accepts each WebSocket and hands its scope to the test."""

    def __init__(self) -> None:
        self.scopes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await self.scopes.put(scope)
        while (await receive())["type"] != "websocket.disconnect":
            pass


@contextlib.asynccontextmanager
async def serving(app: ScopeKeeper, *, deflate: bool) -> AsyncIterator[int]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws=DirectWebSocketProtocol,
        ws_per_message_deflate=deflate,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert not task.done()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def text_frame(payload: bytes) -> bytes:
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


async def test_a_written_frame_reaches_the_client_as_one_text_message():
    app = ScopeKeeper()
    async with (
        serving(app, deflate=False) as port,
        connect(f"ws://127.0.0.1:{port}/", compression=None) as client,
    ):
        scope = await asyncio.wait_for(app.scopes.get(), 5)
        write = scope["extensions"][EXTENSION]["write"]
        big = b'{"n":"' + b"x" * 200_000 + b'"}'
        assert write(text_frame(b'{"n":1}'), 1 << 20) is True
        assert write(text_frame(big), 1 << 20) is True
        assert await asyncio.wait_for(client.recv(), 5) == '{"n":1}'
        assert await asyncio.wait_for(client.recv(), 5) == big.decode()


@pytest.mark.slow
async def test_a_full_send_buffer_refuses_the_frame_instead_of_growing():
    """A reader that does not read: once the kernel's buffers are full, frames wait in the
    transport, and past the limit the writer says no rather than buffer more."""
    app = ScopeKeeper()
    async with (
        serving(app, deflate=False) as port,
        connect(
            f"ws://127.0.0.1:{port}/",
            compression=None,
            max_size=None,
            max_queue=1,
            close_timeout=0.5,
        ) as client,
    ):
        scope = await asyncio.wait_for(app.scopes.get(), 5)
        write = scope["extensions"][EXTENSION]["write"]
        frame = text_frame(b'"' + b"y" * 1_000_000 + b'"')
        limit = 3 * len(frame)
        outcomes = [write(frame, limit) for _ in range(200)]
        # Some went out, then the writer refused: 200 MB were not queued in memory.
        assert outcomes[0] is True
        assert outcomes.count(False) > 100
        refused_at = outcomes.index(False)
        assert all(not ok for ok in outcomes[refused_at:])
        # The client still gets whole, valid frames.
        assert len(await asyncio.wait_for(client.recv(), 5)) == 1_000_002


async def test_a_closing_connection_refuses_frames():
    app = ScopeKeeper()
    async with serving(app, deflate=False) as port:
        client = await connect(f"ws://127.0.0.1:{port}/", compression=None)
        scope = await asyncio.wait_for(app.scopes.get(), 5)
        write = scope["extensions"][EXTENSION]["write"]
        await client.close()
        assert write(text_frame(b"{}"), 1 << 20) is False


@pytest.mark.parametrize("offered", [True, False], ids=["offers deflate", "no deflate"])
async def test_a_compressed_connection_gets_no_writer(offered: bool):
    """With permessage-deflate agreed, each connection compresses its own frames: the
    shared uncompressed frame must not be written to it, so the extension is not offered."""
    app = ScopeKeeper()
    async with (
        serving(app, deflate=True) as port,
        connect(f"ws://127.0.0.1:{port}/", compression="deflate" if offered else None),
    ):
        scope = await asyncio.wait_for(app.scopes.get(), 5)
        assert (EXTENSION in scope["extensions"]) is not offered
