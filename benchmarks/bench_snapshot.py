"""Cost of one ``Monitor.snapshot()`` (the tick's message) as the number of peers grows.

Every peer has a full latency ring (``latency_samples``, 360 by default), filled through
``record_latency`` with a hand-moved clock that advances 1 s per sample, so the samples are
real; system metrics are off. Two cases at each size:

- steady: nothing recorded since the last snapshot, no peer is dirty;
- all dirty: every peer gets one new latency (the clock moves 1 s) before each snapshot,
  the realistic case of probing every peer at 1 Hz. The recording is not timed.

The garbage collector stays on (no peer library is timed here), so its pauses count.
Target: <= 25 ms per snapshot at 10,000 peers, in both cases.

Run alone: ``python -m benchmarks.bench_snapshot [--quick]``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from benchmarks.results import Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import Stats, repeat, up
from peerscope.config import Settings
from peerscope.monitor import Monitor
from peerscope.testing import ManualClock

SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100, 1_000)
TARGET_MS = 25.0
TARGET_PEERS = 10_000


def filled_monitor(peers: int, seed: int = 11) -> tuple[Monitor, ManualClock, list[float]]:
    """A Monitor whose every peer has a full latency ring; returns it, its clock, base RTTs."""
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    rng = random.Random(seed)
    ids = [f"peer-{i:05d}" for i in range(peers)]
    base = [rng.uniform(5.0, 120.0) for _ in ids]
    for peer_id in ids:
        monitor.add_peer(peer_id)
    record = monitor.record_latency
    for _ in range(monitor.settings.latency_samples):
        clock.advance(1.0)
        for peer_id, rtt in zip(ids, base, strict=True):
            record(peer_id, rtt * rng.uniform(0.9, 1.1))
    monitor.tick()  # deliver the PeerAdded events and refresh everyone, as the loop would
    return monitor, clock, base


def prober(
    monitor: Monitor, clock: ManualClock, base: list[float], seed: int
) -> Callable[[], None]:
    """One 1 Hz probing round: the clock moves 1 s and every peer gets a new latency."""
    ids = monitor.peer_ids
    record = monitor.record_latency
    rng = random.Random(seed)

    def probe_everyone() -> None:
        clock.advance(1.0)
        for peer_id, rtt in zip(ids, base, strict=True):
            record(peer_id, rtt * rng.uniform(0.9, 1.1))

    return probe_everyone


def run(quick: bool = False) -> list[Result]:
    sizes = QUICK_SIZES if quick else SIZES
    repeats = 5 if quick else 15
    results: dict[tuple[int, str], Stats] = {}
    print(
        f"bench_snapshot: full {Settings().latency_samples}-sample rings, {repeats} repeats, "
        "gc on; ms per snapshot"
    )
    print(f"  {'peers':>7} {'case':<10} {'median ms':>10} {'min ms':>9} {'max ms':>9}")
    for peers in sizes:
        monitor, clock, base = filled_monitor(peers)
        steady = repeat({"steady": monitor.snapshot}, repeats=repeats, gc_off=False)
        dirty = repeat(
            {"all dirty": monitor.snapshot},
            repeats=repeats,
            gc_off=False,
            setup=prober(monitor, clock, base, seed=peers),
        )
        for case, found in (*steady.items(), *dirty.items()):
            ms = Stats(found.median / 1e6, found.minimum / 1e6, found.maximum / 1e6, found.repeats)
            results[(peers, case)] = ms
            print(
                f"  {peers:>7} {case:<10} {up(ms.median, 3):>10} {up(ms.minimum, 3):>9} "
                f"{up(ms.maximum, 3):>9}"
            )
        del monitor
    # --quick stops below the target's size: its figure is not measured then.
    worst = (
        max(results[(TARGET_PEERS, case)].median for case in ("steady", "all dirty"))
        if TARGET_PEERS in sizes
        else None
    )
    result = Result(
        name="bench_snapshot",
        title=f"`Monitor.snapshot()` at {TARGET_PEERS:,} peers, the worse median "
        "of steady and all dirty",
        unit="ms",
        digits=3,
        target=Target(TARGET_MS),
        figure=worst,
        quick=quick,
    )
    shown = "" if worst is None else f" ({up(worst, 3)} ms)"
    print(
        f"  target <= {TARGET_MS} ms at {TARGET_PEERS} peers (median, worse case): "
        f"{result.verdict.label}{shown}"
    )
    return [result]


if __name__ == "__main__":
    run_alone(run)
