"""peerscope's HTTP side: REST, the /ws stream and /metrics, served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
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


async def serve(monitor: Monitor, *, host: str | None = None, port: int | None = None,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``monitor``'s API in the running event loop until SIGINT/SIGTERM or cancel.

    This is the agent: it also answers TWAMP Light probes on ``reflector_port`` (unless
    ``reflector_enabled`` is off) and probes the configured ``peers``. Starts the Monitor if
    it is not running (and stops it again on the way out). Refuses to bind beyond loopback
    without a token. ``on_ready`` gets the base URL once listening (with the real port when
    ``port`` is 0). Raises :class:`SettingsError` when it cannot listen (a port in use, an
    address this host does not have), naming the setting to change.
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
        sockets = await _listen(settings.host, settings.port)
        for sock in sockets:  # uvicorn closes them too; this is for a failed start-up
            stack.callback(sock.close)
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
        serving = asyncio.create_task(server.serve(sockets=sockets))
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
        raise _cannot_listen(
            error, "UDP", settings.reflector_host, settings.reflector_port,
            host_setting="reflector_host", port_setting="reflector_port",
            change_port="set another reflector_port (--reflector-port or "
                        "PEERSCOPE_REFLECTOR_PORT), or reflector_enabled = false "
                        "(--no-reflector)") from None


async def _listen(host: str, port: int) -> list[socket.socket]:
    """The HTTP server's listening sockets, bound here rather than by uvicorn, so that a
    busy port is an OSError to explain (uvicorn logs it and exits with status 3).

    Like asyncio's ``create_server``: one socket per address ``host`` resolves to (IPv6 ones
    IPv6 only), SO_REUSEADDR so a restart need not wait out TIME_WAIT; port 0 picks a free
    port, the same for every address.
    """
    loop = asyncio.get_running_loop()
    sockets: list[socket.socket] = []
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise _cannot_listen(error, "TCP", host, port, host_setting="host", port_setting="port",
                             change_port="set another port (--port or PEERSCOPE_PORT)"
                             ) from None
    return sockets


def _cannot_listen(error: OSError, protocol: str, host: str, port: int, *, host_setting: str,
                   port_setting: str, change_port: str) -> SettingsError:
    """Why peerscope cannot listen on ``host``:``port``, naming the setting to change."""
    where = f"{protocol} {host}:{port}"
    if isinstance(error, socket.gaierror):
        return SettingsError(f"{host_setting}: cannot resolve {host!r}: {error.strerror}")
    if error.errno == errno.EADDRINUSE:
        return SettingsError(f"{port_setting}: {port} is in use ({where}); {change_port}")
    if error.errno == errno.EACCES and 0 < port < 1024:
        return SettingsError(f"{port_setting}: {port} needs privileges ({where}; ports below "
                             f"1024 need root or CAP_NET_BIND_SERVICE); {change_port}")
    if error.errno == errno.EADDRNOTAVAIL:
        return SettingsError(f"{host_setting}: {host} is not an address of this host "
                             f"({where}: {error.strerror}); bind one it has, or 127.0.0.1")
    return SettingsError(f"{port_setting}: cannot listen on {where}: {error.strerror or error}")


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
    on_ready(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
