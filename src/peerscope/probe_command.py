"""``peerscope probe HOST[:PORT]``: probe one host a few times and summarise, like ping."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
import sys
from typing import Any

import orjson

from peerscope.core.dscp import parse_dscp
from peerscope.core.probe_target import MAX_PADDING, METHODS, ProbeTarget
from peerscope.probe.method_protocol import does_not_resolve, resolve
from peerscope.probe.one_shot import ProbeResult, probe_series
from peerscope.probe.report import result_line, summarize, summary_lines

PROGRESS_FROM = 20  # probes in a run from which a TTY gets a progress bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "address",
        metavar="HOST[:PORT]",
        help="host to probe; TWAMP defaults to port 8701, STAMP to 862, TCP needs a port, "
        "ICMP takes none; IPv6 as [::1]:8701",
    )
    parser.add_argument(
        "--count", "-c", type=int, default=5, metavar="N", help="probes to send (default 5)"
    )
    parser.add_argument(
        "--interval",
        "-i",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between probes (default 1.0)",
    )
    parser.add_argument(
        "--method",
        "-m",
        choices=METHODS,
        default="twamp",
        help="twamp (a peerscope agent or any TWAMP Light reflector), stamp (an RFC 8762 "
        "reflector), icmp (echo; needs ping permission) or tcp (connect time)",
    )
    parser.add_argument(
        "--padding",
        type=int,
        metavar="N",
        help=f"TWAMP/STAMP: octets after the probe's 14-octet header, 0..{MAX_PADDING} "
        "(default 27 for twamp, 30 for stamp: replies as long as probes)",
    )
    parser.add_argument(
        "--dscp",
        type=_dscp,
        default=0,
        metavar="DSCP",
        help="TWAMP/STAMP: the probes' DSCP, 0..63 or a name such as ef, af41, cs5 (default 0)",
    )
    parser.add_argument(
        "--timeout",
        "-W",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds to wait for each reply (default 2.0)",
    )
    parser.add_argument(
        "--tcp-refused",
        choices=("fail", "reachable"),
        default="fail",
        help="a refused TCP connection (closed port) is a lost probe (fail, the default) or "
        "a round trip that measures the path (reachable)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with every result and the summary",
    )


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 if anything answered, 1 if every probe was lost, 2 for bad arguments."""
    try:
        target = _target(args)
        _check(args.count, 1, 1_000_000, "--count")
        _check(args.interval, 0.001, 3600.0, "--interval")
        _check(args.timeout, 0.001, 3600.0, "--timeout")
        results = asyncio.run(_collect(target, args))
    except ValueError as error:
        print(f"peerscope: {error}", file=sys.stderr)
        return 2
    summary = summarize(results, args.count)
    if args.json:
        document: dict[str, Any] = {
            "address": target.address,
            "method": target.method,
            "results": [_result_document(result) for result in results],
            "summary": dataclasses.asdict(summary),
        }
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
    else:
        print("\n".join(summary_lines(target.address, target.method, summary)))
    return 0 if summary.received else 1


def _result_document(result: ProbeResult) -> dict[str, Any]:
    document = dataclasses.asdict(result)
    # A NamedTuple, which asdict keeps as one and orjson does not take: its fields by name.
    document["path"] = None if result.path is None else result.path._asdict()
    return document


def _dscp(text: str) -> int:
    try:
        return parse_dscp(text)
    except ValueError as error:
        # argparse words it "--dscp: ..." (see cli._Parser); the field name would repeat.
        raise argparse.ArgumentTypeError(str(error).removeprefix("dscp: ")) from None


def _target(args: argparse.Namespace) -> ProbeTarget:
    try:
        return ProbeTarget.parse(
            args.address, method=args.method, padding=args.padding, dscp=args.dscp
        )
    except ValueError as error:
        message = str(error)
        if message.startswith(("padding:", "dscp:")):  # named as the user typed them
            raise ValueError(f"--{message}") from None
        raise


def _check(value: float, low: float, high: float, option: str) -> None:
    if not low <= value <= high:
        raise ValueError(f"{option}: must be within {low:g}..{high:g}, got {value:g}")


async def _collect(target: ProbeTarget, args: argparse.Namespace) -> list[ProbeResult]:
    """The run's results; ValueError, before any probe, if the host name does not resolve
    (a mistake to say so, not a host to report as 100 % loss)."""
    try:
        await resolve(target, socket.SOCK_DGRAM)
    except OSError as error:
        raise ValueError(f"address: {does_not_resolve(target.host, error)}") from None
    results: list[ProbeResult] = []
    series = probe_series(
        target,
        count=args.count,
        interval_s=args.interval,
        timeout_s=args.timeout,
        tcp_refused=args.tcp_refused,
    )
    if not args.json:
        print(
            f"PROBE {target.address} ({target.method}): {args.count} probes, "
            f"{args.interval:g} s apart",
            flush=True,
        )
    if args.json or args.count < PROGRESS_FROM or not sys.stdout.isatty():
        async for result in series:
            results.append(result)
            if not args.json:
                print(result_line(result), flush=True)
        return results
    from rich.progress import Progress  # only a long run on a terminal draws one

    with Progress(transient=True) as progress:
        task = progress.add_task("probing", total=args.count)
        async for result in series:
            results.append(result)
            progress.console.print(result_line(result), highlight=False)
            if result.arrival not in ("late", "duplicate"):  # each probe's first outcome
                progress.advance(task)
    return results
