"""peerscope's HTTP side: REST, the /ws stream and the dashboard (``create_app``), and how
uvicorn runs them (``uvicorn_config``, ``QuietServer``).

``peerscope.agent`` wires the app to the rest of the agent and serves it; to mount the API in
your own app, call ``create_app(monitor)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from peerscope.config import Settings
from peerscope.server.app import create_app
from peerscope.server.direct import DirectWebSocketProtocol

__all__ = ["QuietServer", "create_app", "uvicorn_config"]


class QuietServer(uvicorn.Server):
    """uvicorn, minus its ten wake-ups a second.

    uvicorn polls for shutdown every 0.1 s, which on a 2-core VM costs ~0.25 % of a core:
    half of an idle peerscope's budget. This one sleeps until a signal or :meth:`stop`
    wakes it, and otherwise once a second, which is when uvicorn refreshes its Date header.
    """

    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            counter += 10  # uvicorn's on_tick refreshes the Date header when counter % 10 == 0

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._wake is not None:
            self._wake.set()

    def stop(self) -> None:
        self.should_exit = True
        if self._wake is not None:
            self._wake.set()


def uvicorn_config(app: ASGIApp, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How peerscope runs uvicorn over ``app`` on ``settings.host``:``settings.port``
    (``overrides`` for tests)."""
    options: dict[str, Any] = {
        "log_level": "warning",
        "server_header": False,
        "lifespan": "off",
        "ws_max_size": settings.ws_max_message_bytes,
        # Compressing the ~150 KB frame costs ~1.7 ms per subscriber per tick (each
        # connection has its own zlib context); the frame is read on a LAN or loopback, so
        # it goes uncompressed.
        "ws_per_message_deflate": False,
        # Takes each tick's frame ready-made, so it is written to every subscriber in one loop.
        "ws": DirectWebSocketProtocol,
    }
    return uvicorn.Config(app, host=settings.host, port=settings.port, **{**options, **overrides})
