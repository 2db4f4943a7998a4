"""The ``peerscope`` command line."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from types import FrameType
from typing import Any

from pydantic import ValidationError

from peerscope import probe_command
from peerscope._version import __version__
from peerscope.config import PeerSpec, Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peerscope",
        description="Real-time connection-quality and performance monitoring.")
    parser.add_argument("--version", action="version", version=f"peerscope {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="monitor this host and serve the API, /ws and /metrics")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8700; 0 picks a free one)")
    serve.add_argument("--metrics-interval", type=float, metavar="S",
                       help="seconds between ticks (default 1.0)")
    serve.add_argument("--no-monitoring", action="store_true",
                       help="do not sample this host (peers and the server are still measured)")
    serve.add_argument("--config", metavar="FILE", help="TOML settings file")
    serve.add_argument("--token", help="bearer token required by REST and /ws "
                                       "(needed to bind beyond loopback)")
    serve.add_argument("--peer", action="append", default=[], metavar="HOST[:PORT]",
                       help="probe this peerscope agent (TWAMP, default port 8701); "
                            "repeatable; more kinds in [[peers]] of the config file")
    serve.add_argument("--reflector-port", type=int, metavar="PORT",
                       help="UDP port answering other agents' probes (default 8701; "
                            "0 picks a free one)")
    serve.add_argument("--no-reflector", action="store_true",
                       help="do not answer other agents' probes")
    demo = commands.add_parser(
        "demo", help="live table of simulated peers and this host's real metrics")
    demo.add_argument("--config", metavar="FILE", help="TOML settings file")
    demo.add_argument("--metrics-interval", type=float, metavar="S",
                      help="seconds between ticks (default 1.0)")
    demo.add_argument("--duration", type=float, metavar="S",
                      help="stop after S seconds (default: run until Ctrl-C)")
    demo.add_argument("--seed", type=int, help="random seed for the simulated peers")
    demo.add_argument("--port", type=int,
                      help="HTTP port of the dashboard and API (default 8700; 0 picks one)")
    demo.add_argument("--reflector-port", type=int, metavar="PORT",
                      help="UDP port answering other agents' probes (default 8701)")
    probe_command.add_arguments(commands.add_parser(
        "probe", help="probe one host (TWAMP, ICMP or TCP) and summarise, like ping"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "probe":
        return probe_command.run(args)
    overrides: dict[str, object] = {}
    if args.metrics_interval is not None:
        overrides["metrics_interval"] = args.metrics_interval
    for name in ("host", "port", "token", "reflector_port"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    if args.command == "serve":
        if args.no_monitoring:
            overrides["enable_system_metrics"] = False
        if args.no_reflector:
            overrides["reflector_enabled"] = False
    try:
        settings = Settings.load(args.config, **overrides)
        if args.command == "serve" and args.peer:
            settings = settings.model_copy(
                update={"peers": [*settings.peers, *map(_peer_argument, args.peer)]})
    except SettingsError as error:
        print(f"peerscope: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings)
    if args.command == "demo":
        from peerscope.demo import run_demo

        return _run(run_demo(settings, duration=args.duration, seed=args.seed))
    return 0


def _peer_argument(address: str) -> PeerSpec:
    try:
        return PeerSpec(address=address)
    except ValidationError as error:
        raise SettingsError(f"--peer {address!r}: " + "; ".join(
            item["msg"].removeprefix("Value error, ") for item in error.errors())) from None


def _serve(settings: Settings) -> int:
    from peerscope.monitor import Monitor
    from peerscope.server import serve

    monitor = Monitor(settings)

    def ready(url: str) -> None:
        print(f"peerscope serving on {url} (API docs at {url}/docs)", flush=True)
        reflector = getattr(monitor.app.state, "reflector", None)
        if reflector is not None:
            print(f"answering TWAMP Light probes on UDP {settings.reflector_host}:"
                  f"{reflector.port}", flush=True)
        if settings.peers:
            print(f"probing {len(settings.peers)} peer(s) every {settings.probe_interval:g} s",
                  flush=True)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; with the default
    # action that would end the process with status -15 after a clean shutdown.
    signal.signal(signal.SIGTERM, terminate)
    return _run(serve(monitor, on_ready=ready))


def _run(main: Coroutine[Any, Any, None]) -> int:
    """Run ``main`` until it ends or Ctrl-C; settings it finds wrong at start-up (a busy
    port, say) end it with status 2, like settings refused before it started."""
    try:
        asyncio.run(main)
    except SettingsError as error:
        print(f"peerscope: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
