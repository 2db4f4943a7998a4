"""The ``peerscope`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from peerscope import __version__
from peerscope.config import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peerscope",
        description="Real-time connection-quality and performance monitoring.")
    parser.add_argument("--version", action="version", version=f"peerscope {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="live table of simulated peers and this host's real metrics")
    demo.add_argument("--config", metavar="FILE", help="TOML settings file")
    demo.add_argument("--metrics-interval", type=float, metavar="S",
                      help="seconds between ticks (default 1.0)")
    demo.add_argument("--duration", type=float, metavar="S",
                      help="stop after S seconds (default: run until Ctrl-C)")
    demo.add_argument("--seed", type=int, help="random seed for the simulated peers")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {}
    if args.metrics_interval is not None:
        overrides["metrics_interval"] = args.metrics_interval
    try:
        settings = Settings.load(args.config, **overrides)
    except SettingsError as error:
        print(f"peerscope: {error}", file=sys.stderr)
        return 2
    if args.command == "demo":
        from peerscope.demo import run_demo

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_demo(settings, duration=args.duration, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
