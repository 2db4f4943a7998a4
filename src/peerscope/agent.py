"""The agent: what ``peerscope serve`` runs, built from one Monitor's settings and wired here.

This is the house's composition root (CONTRIBUTING.md, "The house"): the Monitor, the Prober
of the configured peers, the TWAMP Light reflector, the alerting of the ``[alerts]``
settings, the history store of the ``[store]`` settings, and the HTTP app (REST, ``/ws``,
the dashboard, and the Prometheus exporter at ``/metrics``) that uvicorn serves. The parts
below it never reach for one another: what one needs of another is handed to it here. The
profiler will be built here too.

The log: an agent built by :meth:`Agent.from_settings` (the commands') sets up logging from
the settings (``log_level``, ``log_format``: :func:`peerscope.logs.configure_logging`) and
writes uvicorn's and asyncio's records the same way; one built over an application's Monitor
leaves logging to the application. Either way it logs its start-up (what listens where),
the Monitor's status changes and sessions (:mod:`peerscope.monitor_log`) and its shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

import uvicorn

from peerscope.alerting.configured import configured_alerting
from peerscope.config import Settings, SettingsError
from peerscope.export.metrics_app import MetricsApp
from peerscope.logs import configure_logging
from peerscope.monitor import Monitor
from peerscope.monitor_log import MonitorLog
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.profiler import get_profiler
from peerscope.server import QuietServer, create_app, uvicorn_config
from peerscope.server.app import METRICS_PATH
from peerscope.server.auth import check_bind
from peerscope.slices import Turns
from peerscope.store import HistoryStore, StoreError
from peerscope.store.database import MEMORY
from peerscope.store.restore import restore

__all__ = ["Agent", "serve"]

log = logging.getLogger(__name__)
store_log = logging.getLogger("peerscope.store")
# Besides peerscope's own: the HTTP server's records and the event loop's (a task that
# failed unseen), so that the command's stderr holds lines of one format.
OTHER_LOGGERS = ("uvicorn", "asyncio")


class Agent:
    """``monitor`` and what serves it: ``prober`` (probing the configured ``peers``),
    ``reflector`` (None with ``reflector_enabled`` off), ``alerting`` (None with
    ``alerts.enabled`` off), ``store`` (the history store; None with ``store.enabled`` off,
    or when its database cannot be used: then ``store_error`` says why, and the same line
    is logged to ``peerscope.store``) and the HTTP ``app``.

    Building opens the store (its writer thread keeps the Monitor's ticks and events, and
    the alerting's, from then on) and subscribes the alerting to the Monitor (its rules are
    evaluated on the Monitor's ticks from then on; its notifiers send once :meth:`run`
    starts them); :meth:`run` starts the rest, and closes the store on its way out. ``host``
    and ``port`` override the settings' (``port=0`` picks a free port). Refuses to bind
    beyond loopback without a token (:class:`SettingsError`) before building anything.
    ``owns_logging``: logging was configured for this agent (:meth:`from_settings`), so
    uvicorn is told to configure none of its own.
    """

    def __init__(
        self,
        monitor: Monitor,
        *,
        host: str | None = None,
        port: int | None = None,
        owns_logging: bool = False,
    ) -> None:
        settings = monitor.settings.model_copy(
            update={
                key: value for key, value in (("host", host), ("port", port)) if value is not None
            }
        )
        check_bind(settings)
        self.monitor = monitor
        self.settings = settings
        self._owns_logging = owns_logging
        self._started = False  # serving: its stop is logged
        self.prober = Prober(
            monitor,
            interval_s=settings.probe_interval,
            count=settings.probe_count,
            timeout_s=settings.probe_timeout,
            tcp_refused=settings.tcp_refused,
        )
        self.reflector = (
            Reflector(
                rate_limit=settings.reflector_rate_limit,
                burst=settings.reflector_burst,
                max_sources=settings.reflector_max_sources,
                allow=settings.reflector_allow,
                mode=settings.reflector_mode,
                session_idle_s=settings.reflector_session_idle_s,
                max_sessions=settings.reflector_max_sessions,
                unpadded=settings.reflector_unpadded,
            )
            if settings.reflector_enabled
            else None
        )
        self.alerting = configured_alerting(monitor)
        self.store_error: str | None = None
        self._unlisten: Callable[[], None] = lambda: None
        self.store = self._open_store() if settings.store.enabled else None
        # REST listings and /metrics renders read every peer: one line for both, so that
        # they take turns on the loop rather than stall it side by side.
        turns = Turns()
        self.app = create_app(
            monitor,
            prober=self.prober,
            reflector=self.reflector,
            metrics=MetricsApp(
                monitor, turns=turns, alerting=self.alerting, profiler=get_profiler()
            ),
            turns=turns,
            alerting=self.alerting,
            store=self.store,
        )

    def _open_store(self) -> HistoryStore | None:
        """The history store, keeping the Monitor's and the alerting's events; None, said
        once, when its database cannot be used: a history lost is no reason not to serve."""
        try:
            store = HistoryStore(self.settings.store)
        except StoreError as error:
            self.store_error = f"{error}; going on in memory, without history"
            store_log.error("%s", self.store_error)
            return None
        store.attach(self.monitor)
        if self.alerting is not None:
            self._unlisten = self.alerting.listen(store.record_alert)
        return store

    async def _close_store(self, store: HistoryStore) -> None:
        self._unlisten()
        # Its writer thread commits what is queued and ends: a wait not for the loop.
        await asyncio.to_thread(store.close)

    @classmethod
    def from_settings(cls, settings: Settings) -> Agent:
        """An agent over a new Monitor of ``settings``, the process's own: logging is set
        up first (so that a history store that cannot be opened is told in the format
        asked for), from ``log_level`` and ``log_format``, for peerscope's loggers and
        :data:`OTHER_LOGGERS`."""
        configure_logging(settings.log_level, settings.log_format, also=OTHER_LOGGERS)
        return cls(Monitor(settings), owns_logging=True)

    async def run(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in the running event loop until SIGINT/SIGTERM or cancel.

        Listens on ``host``:``port``, answers TWAMP Light probes on ``reflector_port``, probes
        the configured ``peers`` and starts the Monitor if it is not running (each is stopped
        again on the way out). ``on_ready`` gets the base URL once listening (with the real
        port when ``port`` is 0). Raises :class:`SettingsError` when it cannot listen (a port
        in use, an address this host does not have), naming the setting to change, before
        anything started. With a history store, a Monitor not yet running is first refilled
        from it (``peerscope.store.restore``: the host's recent samples, the peers seen
        within ``peer_ttl_s``, the sessions, the alert log and the alerts that were firing);
        the store is closed on the way out, however it ends, after the Monitor stops, so
        that its last ticks are kept. Logs (``peerscope.agent``, INFO) what listens where
        once listening, ``shutting down`` when the server stops and ``stopped`` at the end.
        """
        settings, prober = self.settings, self.prober
        # log_config=None: uvicorn's records go to the handler configure_logging gave them.
        quiet = {"log_config": None} if self._owns_logging else {}
        server = QuietServer(uvicorn_config(self.app, settings, **quiet))
        for spec in settings.peers:
            prober.add(spec.target())
        try:
            await self._serve(server, on_ready)
        finally:
            if self._started:
                log.info("stopped")

    async def _serve(self, server: QuietServer, on_ready: Callable[[str], None] | None) -> None:
        settings, monitor, prober = self.settings, self.monitor, self.prober
        self._started = False
        async with contextlib.AsyncExitStack() as stack:
            if self.store is not None:  # first in, so last out: after the Monitor stops
                stack.push_async_callback(self._close_store, self.store)
                if not monitor.is_running:
                    # Before anything else runs on the loop (it reads the file), and before
                    # the first tick, as restore() asks.
                    restore(self.store.reader, monitor, self.alerting)
            sockets = await _listen(settings.host, settings.port)
            for sock in sockets:  # uvicorn closes them too; this is for a failed start-up
                stack.callback(sock.close)
            if self.reflector is not None:
                await _start_reflector(self.reflector, settings)
                stack.callback(self.reflector.stop)
            if self.alerting is not None:
                await self.alerting.start()
                stack.push_async_callback(self.alerting.stop)
            stack.callback(MonitorLog(monitor).attach())  # before the first tick's events
            if not monitor.is_running:
                await monitor.start()
                stack.push_async_callback(monitor.stop)
            await prober.start()
            stack.push_async_callback(prober.stop)
            announcer = asyncio.create_task(_announce(server, self._ready(on_ready)))
            stack.callback(announcer.cancel)
            serving = asyncio.create_task(server.serve(sockets=sockets))
            self._started = True
            try:
                await asyncio.shield(serving)
            except asyncio.CancelledError:
                # Cancelled by our caller: let uvicorn close its sockets and connections first.
                server.stop()
                await serving
                raise
            finally:
                log.info("shutting down")

    def _ready(self, on_ready: Callable[[str], None] | None) -> Callable[[str], None]:
        """What to do once listening at a URL: log what listens where, then ``on_ready``."""

        def ready(url: str) -> None:
            self._log_start(url)
            if on_ready is not None:
                on_ready(url)

        return ready

    def _log_start(self, url: str) -> None:
        settings, reflector, store = self.settings, self.reflector, self.store
        peers = len(settings.peers)
        if store is None:
            history = "none kept (in memory only)"
        elif store.path == MEMORY:
            history = "in memory, for this run"
        else:
            history = f"in {store.path}"
        parts = [f"metrics at {url}{METRICS_PATH}"]
        if reflector is not None:
            ports = f"{reflector.port}" + (
                "" if reflector.stamp_port is None else f" and {reflector.stamp_port} (STAMP)"
            )
            parts.append(f"reflector on UDP {settings.reflector_host}:{ports}")
        parts += [f"{peers} peer{'' if peers == 1 else 's'} configured", f"history {history}"]
        log.info(
            "serving %s (%s)",
            url,
            "; ".join(parts),
            extra={
                "url": url,
                "metrics_path": METRICS_PATH,
                "reflector_port": None if reflector is None else reflector.port,
                "reflector_stamp_port": None if reflector is None else reflector.stamp_port,
                "peers": peers,
                "history": None if store is None else store.path,
            },
        )


async def serve(
    monitor: Monitor,
    *,
    host: str | None = None,
    port: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``monitor``'s API in the running event loop until SIGINT/SIGTERM or cancel, as
    the agent: answering TWAMP Light probes and probing the configured ``peers`` too.

    ``Agent(monitor, host=host, port=port).run(on_ready)``: see :meth:`Agent.run`. Refuses
    to bind beyond loopback without a token, and raises :class:`SettingsError` when it
    cannot listen, naming the setting to change.
    """
    await Agent(monitor, host=host, port=port).run(on_ready)


async def _start_reflector(reflector: Reflector, settings: Settings) -> None:
    try:
        await reflector.start(settings.reflector_host, settings.reflector_port)
    except OSError as error:
        raise _cannot_listen(
            error,
            "UDP",
            settings.reflector_host,
            settings.reflector_port,
            host_setting="reflector_host",
            port_setting="reflector_port",
            change_port="set another reflector_port (--reflector-port or "
            "PEERSCOPE_REFLECTOR_PORT), or reflector_enabled = false "
            "(--no-reflector)",
        ) from None
    if not settings.reflector_stamp_port:
        return
    try:
        await reflector.start_stamp(settings.reflector_host, settings.reflector_stamp_port)
    except OSError as error:
        reflector.stop()
        raise _cannot_listen(
            error,
            "UDP",
            settings.reflector_host,
            settings.reflector_stamp_port,
            host_setting="reflector_host",
            port_setting="reflector_stamp_port",
            change_port="set another reflector_stamp_port (PEERSCOPE_REFLECTOR_STAMP_PORT), "
            "or 0 for none",
        ) from None


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
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
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
        raise _cannot_listen(
            error,
            "TCP",
            host,
            port,
            host_setting="host",
            port_setting="port",
            change_port="set another port (--port or PEERSCOPE_PORT)",
        ) from None
    return sockets


def _cannot_listen(
    error: OSError,
    protocol: str,
    host: str,
    port: int,
    *,
    host_setting: str,
    port_setting: str,
    change_port: str,
) -> SettingsError:
    """Why peerscope cannot listen on ``host``:``port``, naming the setting to change."""
    where = f"{protocol} {host}:{port}"
    if isinstance(error, socket.gaierror):
        return SettingsError(f"{host_setting}: cannot resolve {host!r}: {error.strerror}")
    if error.errno == errno.EADDRINUSE:
        return SettingsError(f"{port_setting}: {port} is in use ({where}); {change_port}")
    if error.errno == errno.EACCES and 0 < port < 1024:
        return SettingsError(
            f"{port_setting}: {port} needs privileges ({where}; ports below "
            f"1024 need root or CAP_NET_BIND_SERVICE); {change_port}"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return SettingsError(
            f"{host_setting}: {host} is not an address of this host "
            f"({where}: {error.strerror}); bind one it has, or 127.0.0.1"
        )
    return SettingsError(f"{port_setting}: cannot listen on {where}: {error.strerror or error}")


async def _announce(server: uvicorn.Server, on_ready: Callable[[str], None]) -> None:
    while not server.started:
        await asyncio.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    on_ready(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
