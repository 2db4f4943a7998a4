"""The ``peerscope`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
import warnings
from collections.abc import Coroutine, Iterator, Sequence
from types import FrameType
from typing import Any, NoReturn, TextIO

from pydantic import ValidationError

from peerscope import probe_command, store_command
from peerscope._version import __version__
from peerscope.config import (
    PeerSpec,
    Settings,
    SettingsError,
    SettingsWarning,
    check_unique_peers,
    describe_errors,
)

# The settings each option sets, so that an error names the option the user typed.
OPTIONS = {
    "host": "--host",
    "port": "--port",
    "token": "--token",
    "metrics_interval": "--metrics-interval",
    "reflector_port": "--reflector-port",
    "enable_system_metrics": "--no-monitoring",
    "reflector_enabled": "--no-reflector",
    "store": "--db",
    "log_level": "--log-level",
    "log_format": "--log-format",
}


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors worded like every other: one line, ``peerscope: --option:
    what is wrong``, rather than the usage and ``peerscope serve: error: argument ...``."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument ([^/:]+)(/[^:]+)?: ", r"\1: ", message)
        self.exit(2, f"peerscope: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="peerscope", description="Real-time connection-quality and performance monitoring."
    )
    parser.add_argument("--version", action="version", version=f"peerscope {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="monitor this host and serve the API, /ws and /metrics"
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8700; 0 picks a free one)")
    serve.add_argument(
        "--metrics-interval", type=float, metavar="S", help="seconds between ticks (default 1.0)"
    )
    serve.add_argument(
        "--no-monitoring",
        action="store_true",
        help="do not sample this host (peers and the server are still measured)",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML settings file")
    serve.add_argument(
        "--token", help="bearer token required by REST and /ws (needed to bind beyond loopback)"
    )
    serve.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="probe this peerscope agent (TWAMP, default port 8701); "
        "repeatable; more kinds in [[peers]] of the config file",
    )
    serve.add_argument(
        "--reflector-port",
        type=int,
        metavar="PORT",
        help="UDP port answering other agents' probes (default 8701; 0 picks a free one)",
    )
    serve.add_argument(
        "--no-reflector", action="store_true", help="do not answer other agents' probes"
    )
    _history_arguments(serve, default="$XDG_DATA_HOME/peerscope/peerscope.db")
    _logging_arguments(serve)
    demo = commands.add_parser(
        "demo", help="live table of simulated peers and this host's real metrics"
    )
    demo.add_argument("--config", metavar="FILE", help="TOML settings file")
    demo.add_argument(
        "--metrics-interval", type=float, metavar="S", help="seconds between ticks (default 1.0)"
    )
    demo.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    demo.add_argument("--seed", type=int, help="random seed for the simulated peers")
    demo.add_argument(
        "--port", type=int, help="HTTP port of the dashboard and API (default 8700; 0 picks one)"
    )
    demo.add_argument(
        "--reflector-port",
        type=int,
        metavar="PORT",
        help="UDP port answering other agents' probes (default 8701)",
    )
    _history_arguments(demo, default=":memory:, gone when the demo ends")
    _logging_arguments(demo)
    probe_command.add_arguments(
        commands.add_parser(
            "probe", help="probe one host (TWAMP, ICMP or TCP) and summarise, like ping"
        )
    )
    store_command.add_commands(commands)
    return parser


def _history_arguments(command: argparse.ArgumentParser, *, default: str) -> None:
    where = command.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        metavar="PATH",
        help=f"keep history in this SQLite file, or ':memory:' (default {default})",
    )
    where.add_argument("--no-db", action="store_true", help="keep no history")


def _logging_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--log-level",
        metavar="LEVEL",
        help="least severe log records written on stderr: DEBUG, INFO, WARNING, ERROR or "
        "CRITICAL (default INFO)",
    )
    command.add_argument(
        "--log-format",
        metavar="FORMAT",
        help="log lines on stderr: plain (default) or json (one object a line)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "probe":
        return probe_command.run(args)
    if args.command in store_command.COMMANDS:
        return store_command.run(args)
    overrides: dict[str, object] = {}
    if args.metrics_interval is not None:
        overrides["metrics_interval"] = args.metrics_interval
    for name in ("host", "port", "token", "reflector_port", "log_level", "log_format"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    if args.command == "serve":
        if args.no_monitoring:
            overrides["enable_system_metrics"] = False
        if args.no_reflector:
            overrides["reflector_enabled"] = False
    if args.no_db:
        overrides["store"] = {"enabled": False}
    elif args.db is not None:
        overrides["store"] = {"enabled": True, "db": args.db}
    try:
        with _warnings_on_stderr():
            settings = _settings(args, overrides)
    except SettingsError as error:
        report(error)
        return 2
    if args.command == "serve":
        return _serve(settings)
    if args.command == "demo":
        from peerscope.demo import run_demo

        return _run(run_demo(settings, duration=args.duration, seed=args.seed))
    return 0


def _settings(args: argparse.Namespace, overrides: dict[str, object]) -> Settings:
    settings = Settings.load(args.config, argument_names=OPTIONS, **overrides)
    if args.command != "serve" or not args.peer:
        return settings
    added = [(f"--peer {address}", _peer_argument(address)) for address in args.peer]
    try:
        check_unique_peers(
            [*((f"peers[{index}]", spec) for index, spec in enumerate(settings.peers)), *added]
        )
    except ValueError as error:
        raise SettingsError(f"--peer: {error}") from None
    return settings.model_copy(update={"peers": [*settings.peers, *(s for _, s in added)]})


def _peer_argument(address: str) -> PeerSpec:
    try:
        return PeerSpec(address=address)
    except ValidationError as error:
        raise SettingsError(describe_errors(error, lambda path, missing: "--peer")) from None


@contextlib.contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """Each SettingsWarning as one line, ``peerscope: warning: ...``, rather than Python's
    report with a file and line number that mean nothing to whoever runs the command."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", SettingsWarning)
        show = warnings.showwarning

        def shown(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if issubclass(category, SettingsWarning):
                print(f"peerscope: warning: {message}", file=sys.stderr)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = shown
        yield


def report(error: SettingsError) -> None:
    """Each line of ``error`` as one line on stderr, ``peerscope: where: what``."""
    for line in str(error).splitlines():
        print(f"peerscope: {line}", file=sys.stderr)


def _serve(settings: Settings) -> int:
    from peerscope.agent import Agent

    try:
        agent = Agent.from_settings(settings)
    except SettingsError as error:  # beyond loopback without a token
        report(error)
        return 2

    def ready(url: str) -> None:
        print(f"peerscope serving on {url} (API docs at {url}/docs)", flush=True)
        if agent.reflector is not None:
            print(
                f"answering TWAMP Light probes on UDP {settings.reflector_host}:"
                f"{agent.reflector.port}",
                flush=True,
            )
        if settings.peers:
            print(
                f"probing {len(settings.peers)} peer(s) every {settings.probe_interval:g} s",
                flush=True,
            )

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; with the default
    # action that would end the process with status -15 after a clean shutdown.
    signal.signal(signal.SIGTERM, terminate)
    return _run(agent.run(on_ready=ready))


def _run(main: Coroutine[Any, Any, None]) -> int:
    """Run ``main`` until it ends or Ctrl-C; settings it finds wrong at start-up (a busy
    port, say) end it with status 2, like settings refused before it started."""
    try:
        asyncio.run(main)
    except SettingsError as error:
        report(error)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
