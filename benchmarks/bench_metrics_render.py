"""Cost of one /metrics render at 1,000 peers, next to prometheus_client doing the same job.

peerscope: ``render(monitor)`` (``peerscope.export.prometheus``), the whole job of a scrape:
read the Monitor (``peers()``, ``system``, ``server_stats()``), build the families and write
the text with ``generate_latest``. The Monitor has 1,000 peers, each with a full latency
ring (filled through ``record_latency`` with a hand-moved clock), traffic, messages, a name
and two user labels; system metrics are off (psutil's cost is the tick's, not the scrape's).

prometheus_client: ``generate_latest`` over a registry of plain labelled ``Gauge`` objects
holding the same series (same names, label names and values, values set up front), the way
an app would keep them if it set gauges itself. Its output is checked to be byte-identical
to peerscope's, ``# TYPE`` lines aside (peerscope's counters are typed ``counter``). Only the
rendering of that registry is timed; setting its values is not.

Cases are interleaved, the garbage collector stays on for both (a scrape allocates, and the
collector's pauses are part of its cost). Target: peerscope <= 1.0x, judged on the worse of
the median and min ratios.

Run alone: ``python -m benchmarks.bench_metrics_render [--quick]``.
"""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.metrics_core import Metric

from benchmarks.results import Reference, Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import Stats, down, repeat, up
from peerscope.config import Settings
from peerscope.export.metrics_app import render
from peerscope.export.prometheus import MonitorCollector
from peerscope.monitor import Monitor
from peerscope.testing import ManualClock

PEERS = 1_000
TARGET_RATIO = 1.0
REGIONS = ("eu-west", "us-east", "ap-south")


def filled_monitor(peers: int = PEERS, seed: int = 13) -> Monitor:
    """1,000 named, labelled peers with full latency rings, traffic and messages."""
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    rng = random.Random(seed)
    ids = [f"peer-{i:05d}" for i in range(peers)]
    base = [rng.uniform(5.0, 120.0) for _ in ids]
    for i, peer_id in enumerate(ids):
        monitor.add_peer(
            peer_id,
            name=f"player {i}",
            labels={
                "region": REGIONS[i % len(REGIONS)],
                "connection_type": "relay" if i % 4 == 0 else "direct",
            },
        )
    record = monitor.record_latency
    for _ in range(monitor.settings.latency_samples):
        clock.advance(1.0)
        for peer_id, rtt in zip(ids, base, strict=True):
            record(peer_id, rtt * rng.uniform(0.9, 1.1))
    for peer_id in ids:
        monitor.record_traffic(
            peer_id,
            bytes_sent=rng.randrange(1 << 30),
            bytes_received=rng.randrange(1 << 30),
            packets_sent=rng.randrange(1 << 20),
            packets_received=rng.randrange(1 << 20),
        )
        for _ in range(3):
            monitor.record_message(peer_id, size=rng.randrange(1, 1500), direction="in")
        monitor.record_message(peer_id, size=rng.randrange(1, 1500), direction="out")
    monitor.tick()  # refresh everyone and set the network score, as the loop would
    return monitor


def equivalent_registry(families: list[Metric]) -> CollectorRegistry:
    """Plain labelled Gauges holding the same series as ``families``, values set up front."""
    registry = CollectorRegistry()
    for family in families:
        # The sample names are the exposed names (counters' include _total).
        name = family.name + "_total" if family.type == "counter" else family.name
        # A family with no samples (no client reported fps) becomes a labelled parent with
        # no children, which writes no sample either.
        label_names = sorted(family.samples[0].labels) if family.samples else ["peer_id"]
        gauge = Gauge(name, family.documentation, label_names, registry=registry)
        for sample in family.samples:
            (gauge.labels(**sample.labels) if sample.labels else gauge).set(sample.value)
    return registry


def _untyped(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if not line.startswith(b"# TYPE ")]


def run(quick: bool = False) -> list[Result]:
    repeats = 5 if quick else 30
    monitor = filled_monitor()
    families = list(MonitorCollector(monitor).collect())
    registry = equivalent_registry(families)
    ours_body, _ = render(monitor)
    theirs_body = generate_latest(registry)
    if _untyped(ours_body) != _untyped(theirs_body):
        # An error, not an exit: a whole run goes on with the other benchmarks.
        raise RuntimeError(
            "bench_metrics_render: the two registries do not expose the same "
            "series; the comparison would be meaningless"
        )
    samples = sum(len(family.samples) for family in families)
    cases = {
        "peerscope render(monitor)": lambda: render(monitor),
        "prometheus generate_latest(gauges)": lambda: generate_latest(registry),
    }
    results = repeat(cases, repeats=repeats, gc_off=False)
    ms = {
        name: Stats(r.median / 1e6, r.minimum / 1e6, r.maximum / 1e6, r.repeats)
        for name, r in results.items()
    }
    print(
        f"bench_metrics_render: {PEERS} peers, {samples} samples, {len(ours_body)} bytes "
        f"per scrape, {repeats} repeats, gc on; ms per render"
    )
    print(f"  {'case':<36} {'median ms':>10} {'min ms':>9} {'max ms':>9}")
    for name, stats in ms.items():
        fmt = up if name.startswith("peerscope") else down
        print(
            f"  {name:<36} {fmt(stats.median, 3):>10} {fmt(stats.minimum, 3):>9} "
            f"{fmt(stats.maximum, 3):>9}"
        )
    found = ratios(ms)
    for name, value in found.items():
        print(f"  ratio peerscope / prometheus generate_latest ({name}): {up(value, 3)}x")
    worst = max(found.values())
    result = Result(
        name="bench_metrics_render",
        title=f"`/metrics` render at {PEERS:,} peers vs "
        "prometheus_client `generate_latest` over plain labelled gauges, judged on the worse "
        "of the median and min ratios",
        unit="ms",
        digits=3,
        target=Target(TARGET_RATIO, on="ratio"),
        figure=ms["peerscope render(monitor)"].median,
        quick=quick,
        reference=Reference(
            "prometheus_client `generate_latest`",
            ms["prometheus generate_latest(gauges)"].median,
            floor=False,
        ),
        ratio=worst,
    )
    print(
        f"  target <= {TARGET_RATIO}x: {result.verdict.label} (judged on the worse of the "
        f"two: {up(worst, 3)}x)"
    )
    return [result]


def ratios(results: dict[str, Stats]) -> dict[str, float]:
    ours = results["peerscope render(monitor)"]
    theirs = results["prometheus generate_latest(gauges)"]
    return {"median": ours.median / theirs.median, "min": ours.minimum / theirs.minimum}


if __name__ == "__main__":
    run_alone(run)
