"""peerscope's HTTP side: REST, the /ws stream and /metrics, served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from peerscope.config import Settings, SettingsError
from peerscope.monitor import Monitor
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.server.app import create_app
from peerscope.server.auth import check_bind
from peerscope.server.direct import DirectWebSocketProtocol

__all__ = ["create_app", "serve", "uvicorn_config"]
logger = logging.getLogger(__name__)


async def serve(monitor: Monitor, *, host: str | None = None, port: int | None = None,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``monitor``'s API in the running event loop until SIGINT/SIGTERM or cancel.

    This is the agent: it also answers TWAMP Light probes on ``reflector_port`` (unless
    ``reflector_enabled`` is off) and probes the configured ``peers``. Starts the Monitor if
    it is not running (and stops it again on the way out). Refuses to bind beyond loopback
    without a token. ``on_ready`` gets the base URL once listening (with the real port when
    ``port`` is 0).
    """
    settings = monitor.settings.model_copy(
        update={key: value for key, value in (("host", host), ("port", port))
                if value is not None})
    check_bind(settings)
    config = uvicorn_config(monitor, settings.host, settings.port)
    server = QuietServer(config)
    prober: Prober = monitor.app.state.prober
    for spec in settings.peers:
        prober.add(spec.target())
    async with contextlib.AsyncExitStack() as stack:
        if settings.reflector_enabled:
            reflector = Reflector(rate_limit=settings.reflector_rate_limit,
                                  burst=settings.reflector_burst,
                                  max_sources=settings.reflector_max_sources,
                                  allow=settings.reflector_allow)
            await _start_reflector(reflector, settings)
            stack.callback(reflector.stop)
            monitor.app.state.reflector = reflector
            stack.callback(delattr, monitor.app.state, "reflector")
        if not monitor.is_running:
            await monitor.start()
            stack.push_async_callback(monitor.stop)
        await prober.start()
        stack.push_async_callback(prober.stop)
        if on_ready is not None:
            announcer = asyncio.create_task(_announce(server, on_ready))
            stack.callback(announcer.cancel)
        serving = asyncio.create_task(server.serve())
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            # Cancelled by our caller: let uvicorn close its sockets and connections first.
            server.stop()
            await serving
            raise


async def _start_reflector(reflector: Reflector, settings: Settings) -> None:
    try:
        await reflector.start(settings.reflector_host, settings.reflector_port)
    except OSError as error:
        raise SettingsError(
            f"reflector_port: cannot answer probes on UDP {settings.reflector_host}:"
            f"{settings.reflector_port}: {error.strerror or error}; set another "
            "reflector_port (PEERSCOPE_REFLECTOR_PORT) or reflector_enabled = false"
        ) from None


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


def uvicorn_config(monitor: Monitor, host: str, port: int, **overrides: Any) -> uvicorn.Config:
    """How peerscope runs uvicorn over ``monitor``'s app (``overrides`` for tests)."""
    options: dict[str, Any] = {
        "log_level": "warning", "server_header": False, "lifespan": "off",
        "ws_max_size": monitor.settings.ws_max_message_bytes,
        # Compressing the ~150 KB frame costs ~1.7 ms per subscriber per tick (each
        # connection has its own zlib context); the frame is read on a LAN or loopback, so
        # it goes uncompressed.
        "ws_per_message_deflate": False,
        # Takes each tick's frame ready-made, so it is written to every subscriber in one loop.
        "ws": DirectWebSocketProtocol,
    }
    return uvicorn.Config(monitor.app, host=host, port=port,
                          **{**options, **overrides})


async def _announce(server: uvicorn.Server, on_ready: Callable[[str], None]) -> None:
    while not server.started:
        await asyncio.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    on_ready(f"http://{host}:{port}")
