"""Cost per call of the hot path, next to prometheus_client doing the same job.

``Monitor.record_latency(peer_id, ms)`` against a labelled ``Histogram``: once with the
``labels(peer)`` lookup on every call (the like-for-like case: both name the peer each
call) and once on a cached child (the fastest way to use prometheus_client). Target:
peerscope <= 1.0x the cached child's ``observe``.

Every case runs the same loop, ``for a, b in pairs: f(a, b)``, over the same 100 peers in
turn with the same latencies, with the garbage collector paused for all of them alike; the
cases are interleaved. The loop's own cost (measured too) is in every figure; the ratio is
given on medians, on medians without the loop and on minimums, and the target is judged on
the least favourable of the three.

Run alone: ``python -m benchmarks.bench_record [--quick]``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from benchmarks.results import Reference, Result, Target, Verdict
from benchmarks.runner import run_alone
from benchmarks.timing import Stats, down, repeat, up
from peerscope.config import Settings
from peerscope.monitor import Monitor

PEERS = 100
TARGET_RATIO = 1.0


def workload(
    calls: int, peers: int = PEERS, seed: int = 7
) -> tuple[list[str], list[tuple[str, float]]]:
    """Peer ids and ``calls`` (peer, latency ms) pairs: peers in turn, each around its own base."""
    rng = random.Random(seed)
    ids = [f"peer-{i:05d}" for i in range(peers)]
    base = [rng.uniform(5.0, 120.0) for _ in ids]
    pairs = [(ids[i % peers], base[i % peers] * rng.uniform(0.9, 1.1)) for i in range(calls)]
    return ids, pairs


def _loop(pairs: list[tuple[Any, Any]]) -> Callable[[], None]:
    def run() -> None:
        for _a, _b in pairs:
            pass

    return run


def _calls(fn: Callable[[Any, Any], object], pairs: list[tuple[Any, Any]]) -> Callable[[], None]:
    def run() -> None:
        for a, b in pairs:
            fn(a, b)

    return run


def _direct(pairs: Sequence[tuple[Callable[[Any], object], Any]]) -> Callable[[], None]:
    def run() -> None:
        for f, v in pairs:
            f(v)

    return run


def _labels_observe(hist: Histogram, pairs: list[tuple[str, float]]) -> Callable[[], None]:
    labels = hist.labels

    def run() -> None:
        for peer, seconds in pairs:
            labels(peer).observe(seconds)

    return run


def _traffic(monitor: Monitor, pairs: list[tuple[str, int]]) -> Callable[[], None]:
    record = monitor.record_traffic

    def run() -> None:
        for peer, size in pairs:
            record(peer, bytes_sent=size, packets_sent=1)

    return run


def _message(monitor: Monitor, pairs: list[tuple[str, int]]) -> Callable[[], None]:
    record = monitor.record_message

    def run() -> None:
        for peer, size in pairs:
            record(peer, size=size, direction="in")

    return run


def run(quick: bool = False) -> list[Result]:
    calls, repeats = (2_000, 5) if quick else (20_000, 25)
    ids, pairs = workload(calls)
    monitor = Monitor(Settings(enable_system_metrics=False))
    for peer_id in ids:
        monitor.add_peer(peer_id)
    # Prometheus' base unit is the second: observe seconds into the default buckets.
    seconds = [(peer, ms / 1000.0) for peer, ms in pairs]
    registry = CollectorRegistry()
    hist = Histogram("x", "x", ["peer"], registry=registry)
    children = {peer: hist.labels(peer) for peer in ids}
    # Bound methods made up front: the cheapest possible way to call the cached children.
    cached = [(children[peer].observe, s) for peer, s in seconds]
    counter = Counter("y", "y", ["peer"], registry=registry)
    counter_children = {peer: counter.labels(peer) for peer in ids}
    sizes = [(peer, 64 + int(ms) * 8) for peer, ms in pairs]
    counted = [(counter_children[peer].inc, n) for peer, n in sizes]

    cases: dict[str, Callable[[], None]] = {
        "loop overhead": _loop(pairs),
        "peerscope record_latency": _calls(monitor.record_latency, pairs),
        "prometheus labels(peer).observe": _labels_observe(hist, seconds),
        "prometheus cached child.observe": _direct(cached),
        "peerscope record_traffic": _traffic(monitor, sizes),
        "peerscope record_message": _message(monitor, sizes),
        "prometheus cached counter.inc": _direct(counted),
    }
    results = repeat(cases, repeats=repeats, ops=calls, gc_off=True)
    found = ratios(results)
    worst = max(value for name, value in found.items() if not name.startswith("vs "))
    result = Result(
        name="bench_record",
        title="`record_latency` vs prometheus_client cached child "
        "`observe`, judged on the worst of three ratios",
        unit="ns/call",
        digits=1,
        target=Target(TARGET_RATIO, on="ratio"),
        figure=results["peerscope record_latency"].median,
        quick=quick,
        reference=Reference(
            "prometheus_client cached child `observe`",
            results["prometheus cached child.observe"].median,
            floor=False,
        ),
        ratio=worst,
    )
    _report(results, found, worst, result.verdict, calls, repeats)
    return [result]


def ratios(results: dict[str, Stats]) -> dict[str, float]:
    """peerscope / cached child: medians with and without the loop, and mins."""
    ours = results["peerscope record_latency"]
    theirs = results["prometheus cached child.observe"]
    loop = results["loop overhead"]
    return {
        "median": ours.median / theirs.median,
        "min": ours.minimum / theirs.minimum,
        "median, loop subtracted": (ours.median - loop.median) / (theirs.median - loop.median),
        "vs labels(peer).observe": ours.median / results["prometheus labels(peer).observe"].median,
    }


def _report(
    results: dict[str, Stats],
    found: dict[str, float],
    worst: float,
    verdict: Verdict,
    calls: int,
    repeats: int,
) -> None:
    print(
        f"bench_record: {PEERS} peers, {calls} calls per repeat, {repeats} repeats, "
        "gc paused for every case"
    )
    print(f"  {'case':<34} {'median ns/call':>15} {'min ns/call':>12}")
    for name, stats in results.items():
        fmt = up if name.startswith("peerscope") else down
        print(f"  {name:<34} {fmt(stats.median):>15} {fmt(stats.minimum):>12}")
    for name, value in found.items():
        if name.startswith("vs "):
            print(f"  ratio peerscope / prometheus labels(peer).observe (median): {up(value, 3)}x")
        else:
            print(f"  ratio peerscope / prometheus cached child ({name}): {up(value, 3)}x")
    print(
        f"  target <= {TARGET_RATIO}x the cached child's observe: {verdict.label} "
        f"(judged on the worst of the three ratios: {up(worst, 3)}x)"
    )


if __name__ == "__main__":
    run_alone(run)
