"""The history store (issue 14): bytes on disk, ingest, the tick's cost, and range queries.

A *sample* is one figure's value at one time (a peer's latency at 12:00:01). A figure not
measured then (a lost probe's latency and MOS, the TCP figures of a peer not watched over
TCP) is absent, not a sample, and is not counted, though the store keeps its place. The
workload is ``benchmarks.store_workload``: probed peers with noisy latency, smooth jitter,
a few lossy ones going dark now and then, growing traffic counters, plus the host and the
server. Everything runs on real SQLite files in a temporary folder, written by the store's
own ``Writer`` thread and read by its ``HistoryReader``, in an interpreter of its own (as
``bench_alerts``), not on the heap the benchmarks before it leave.

1. **One hour at 1,000 peers** (``bench_store_bytes``, ``bench_store_ingest``): ticks of a
   simulated clock, one per second, made a minute at a time (untimed), then handed to the
   writer (``Writer.submit``) and committed (``Writer.flush``), timed from the first
   submit to the commit. The ingest figure is samples over the sum of those times, the
   writer's sustained rate through its queue, thread and commits; the queue holds a
   minute, and a run where it dropped a tick fails. After the hour (and one tick of the
   next minute, so the hour's last minute is a raw row): the file's size, with its WAL
   checkpointed, over the hour's samples; the payload of each tier; then the writer's
   ``catch_up`` rolls it up and the 1-minute tier's payload read.
2. **Thirty days of the host and one peer** (the 1-hour tier, and the long queries): six
   hours of 1 Hz samples are made, cut into minutes and repeated. The raw tier's rows are
   written directly a day at a time, as the writer writes them (``encode_chunk``,
   ``summarize``), with their packed samples only in the last 24 h (older raw rows are past
   the raw tier's retention, and the rollup reads only their summaries); after each day
   the writer's own rollup and pruning run until none is due (``Writer.catch_up``), so the
   1-minute and 1-hour tiers are its own. The range ends at 13:30 UTC, so today and this
   hour are read from the tier below, as in use.
3. **The tick with the store attached** (``bench_store_tick``): two Monitors of 1,000 peers
   on hand-moved clocks, fed the same latencies, one with a ``HistoryStore`` attached;
   ``Monitor.tick()`` (which hands the tick to its subscribers) of each timed in turn,
   60 rounds, the order swapped every round, with 50 ms before each tick in which the
   writer takes in the tick before it (a real tick comes once a second). The writer thread
   flushes on its own clock meanwhile, and at the minute boundary it packs 1,000 raw rows:
   whatever it does during a tick competes with it. Target on the worse of the median and
   mean ratios.
4. **Queries**, on the reader as the API calls it (warm: the first call of each dropped),
   interleaved with the naive table's: one peer's last hour raw (``bench_store_raw_hour``,
   every figure); one peer's latency over 30 days at a step of 1 h with p50/p95/p99
   (``bench_store_30d``: what a 30-day chart asks; the reader answers from the 1-hour
   buckets, themselves the minute buckets merged, and merges today's hours and this hour's
   minutes itself); the host's 7 days at the step the dashboard asks for that range, 1 h
   (``bench_store_host_7d``: the four figures the host's history carries, 168 buckets
   from the 1-hour tier). Printed for information: the host's 7 days at 600 s (1,008
   buckets each merged from ten 1-minute buckets: the dashboard's step before it was
   measured here), and the peer's 30 days at 600 s, which reads the 1-minute tier whole.
5. **The naive table** (``benchmarks.naive_store``): one row per sample, measured in the
   same run. For the hour it holds the same samples of 25 of the 1,000 peers with the host
   and the server, a transaction a minute (a row costs the same whatever the number of
   peers, and the index lookups of the queries grow with the logarithm of the rows); for
   the long queries, the rows they read (the peer's latency for 30 days, the host's four
   figures for 7 days), made inside SQLite.

Targets: raw tier <= 2 bytes per sample on disk; >= 500,000 samples/s ingest; tick with the
store <= 1.1x without; last hour raw <= 10 ms; 30 days <= 50 ms; host 7 days <= 50 ms.

Run alone: ``python -m benchmarks.bench_store [--quick]``.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.children import ROOT
from benchmarks.naive_store import NaiveTable
from benchmarks.results import Reference, Result, Target
from benchmarks.runner import run_alone
from benchmarks.store_history import (
    DAY_S,
    HOST_FIGURES,
    T0,
    Hour,
    Month,
    one_hour,
    thirty_days,
)
from benchmarks.timing import down, stats, up
from peerscope.config import Settings
from peerscope.monitor import Monitor
from peerscope.store.history_store import HistoryStore
from peerscope.store.intake import HOST_KEY
from peerscope.store.reader import HistoryReader
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock

PEERS, QUICK_PEERS = 1_000, 50
SECONDS, QUICK_SECONDS = 3_600, 180
NAIVE_PEERS, QUICK_NAIVE_PEERS = 25, 5
DAYS, QUICK_DAYS = 30, 2
# The long history repeats this much of 1 Hz samples (a day of them takes long to make).
POOL_S, QUICK_POOL_S = 6 * 3_600, 3_600
TICK_ROUNDS, QUICK_TICK_ROUNDS = 60, 6
TICK_PAUSE_S = 0.05
TARGET_BYTES = 2.0
TARGET_INGEST = 500_000.0
TARGET_TICK_RATIO = 1.1
TARGET_RAW_MS = 10.0
TARGET_LONG_MS = 50.0


def tick_cost(folder: Path, peers: int, rounds: int) -> tuple[list[float], list[float], int]:
    """Part 3: ms per tick with the store attached and without, interleaved, and the
    samples the store took meanwhile (a run where its queue dropped a tick fails)."""
    start = T0 + 30  # so the rounds cross a minute boundary, where the writer packs rows
    clocks = ManualClock(start), ManualClock(start)
    stored, bare = (Monitor(Settings(enable_system_metrics=False), clock=c) for c in clocks)
    store = HistoryStore(StoreSettings(db=str(folder / "tick.db")))
    store.attach(stored)
    rng = random.Random(3)
    ids = [f"peer-{i:05d}" for i in range(peers)]
    levels = [rng.uniform(20.0, 80.0) for _ in ids]
    for monitor in (stored, bare):
        for peer_id in ids:
            monitor.add_peer(peer_id)
    timed: dict[Monitor, list[float]] = {stored: [], bare: []}
    warmup = 3
    try:
        for round_no in range(warmup + rounds):
            for clock in clocks:
                clock.advance(1.0)
            for peer_id, level in zip(ids, levels, strict=True):
                latency = max(0.1, rng.gauss(level, 2.0))
                stored.record_latency(peer_id, latency)
                bare.record_latency(peer_id, latency)
            for monitor in (stored, bare) if round_no % 2 else (bare, stored):
                time.sleep(TICK_PAUSE_S)
                began = time.perf_counter_ns()
                monitor.tick()
                if round_no >= warmup:
                    timed[monitor].append((time.perf_counter_ns() - began) / 1e6)
        store.flush()
        written, dropped = store.stats.samples, store.stats.dropped
    finally:
        store.close()
    if dropped:
        raise RuntimeError(f"bench_store: the store dropped {dropped} ticks while ticking")
    return timed[stored], timed[bare], written


def _interleaved(cases: dict[str, tuple[Callable[[], object], int]]) -> dict[str, list[float]]:
    """ms per call of each case, ``calls`` times each, in rounds (every case still short of
    its calls runs once a round); the first call of each is dropped (a cold cache)."""
    found: dict[str, list[float]] = {name: [] for name in cases}
    for fn, _ in cases.values():
        fn()
    for round_no in range(max(calls for _, calls in cases.values())):
        for name, (fn, calls) in cases.items():
            if round_no >= calls:
                continue
            began = time.perf_counter_ns()
            fn()
            found[name].append((time.perf_counter_ns() - began) / 1e6)
    return found


def _queries(
    hour: Hour,
    hour_reader: HistoryReader,
    hour_naive: NaiveTable,
    month: Month,
    month_reader: HistoryReader,
    month_naive: NaiveTable,
    quick: bool,
) -> dict[str, list[float]]:
    """Part 4: each query on the store and on the naive table, interleaved."""
    hour_end = T0 + hour.seconds
    peer = "peer-00000"
    end = month.end
    start = end - month.days * DAY_S
    week = end - 7 * DAY_S
    host = list(HOST_FIGURES)
    many, some, few = (3, 3, 3) if quick else (15, 7, 3)
    return _interleaved(
        {
            "raw hour": (
                lambda: hour_reader.samples("peer", peer, hour_end - 3600, hour_end),
                many,
            ),
            "raw hour, naive": (lambda: hour_naive.samples(peer, hour_end - 3600, hour_end), many),
            "30 d at 1 h": (
                lambda: month_reader.buckets(
                    "peer", month.peer_key, start, end, 3600, ["latency_ms"], now=end
                ),
                many,
            ),
            "30 d at 1 h, naive": (
                lambda: month_naive.quantile_buckets(
                    month.peer_key, "latency_ms", start, end, 3600
                ),
                few,
            ),
            "host 7 d at 600 s": (
                lambda: month_reader.buckets("host", HOST_KEY, week, end, 600, host, now=end),
                some,
            ),
            "host 7 d at 600 s, naive": (
                lambda: month_naive.mean_buckets(HOST_KEY, HOST_FIGURES, week, end, 600),
                few,
            ),
            "host 7 d at 3600 s": (
                lambda: month_reader.buckets("host", HOST_KEY, week, end, 3600, host, now=end),
                some,
            ),
            "host 7 d at 3600 s, naive": (
                lambda: month_naive.mean_buckets(HOST_KEY, HOST_FIGURES, week, end, 3600),
                few,
            ),
            "30 d at 600 s (minute tier whole)": (
                lambda: month_reader.buckets(
                    "peer", month.peer_key, start, end, 600, ["latency_ms"], now=end
                ),
                few,
            ),
        }
    )


def _tier_line(name: str, rows: int, data: int, summary: int, per: str, units: float) -> str:
    total = data + summary
    return (
        f"  {name:<4} {rows:>7} rows {total / 1e6:>9.3f} MB (samples {data / 1e6:.3f}, "
        f"summaries {summary / 1e6:.3f}): {up(total / units, 2)} B per {per}"
    )


@dataclass
class Found:
    """Everything one run measured: what the report is made of."""

    hour: Hour
    hour_took: float
    month: Month
    month_took: float
    with_store: list[float]
    without: list[float]
    tick_samples: int
    queries: dict[str, list[float]]


def measure(quick: bool) -> Found:
    """Parts 1 to 5, on files in a temporary folder."""
    peers = QUICK_PEERS if quick else PEERS
    with tempfile.TemporaryDirectory(prefix="peerscope-bench-store-") as name:
        folder = Path(name)
        began = time.perf_counter()
        hour, hour_reader, hour_naive = one_hour(
            folder,
            peers,
            QUICK_SECONDS if quick else SECONDS,
            QUICK_NAIVE_PEERS if quick else NAIVE_PEERS,
        )
        hour_took = time.perf_counter() - began
        began = time.perf_counter()
        month, month_reader, month_naive = thirty_days(
            folder, QUICK_DAYS if quick else DAYS, QUICK_POOL_S if quick else POOL_S
        )
        month_took = time.perf_counter() - began
        with_store, without, tick_samples_written = tick_cost(
            folder, peers, QUICK_TICK_ROUNDS if quick else TICK_ROUNDS
        )
        queries = _queries(hour, hour_reader, hour_naive, month, month_reader, month_naive, quick)
        for closing in (hour_reader, hour_naive, month_reader, month_naive):
            closing.close()
    return Found(
        hour, hour_took, month, month_took, with_store, without, tick_samples_written, queries
    )


def _from_json(data: dict[str, Any]) -> Found:
    def tiers(found: dict[str, list[int]]) -> dict[int, tuple[int, int, int]]:
        return {
            int(tier): (rows, sizes, summaries) for tier, (rows, sizes, summaries) in found.items()
        }

    return Found(
        **{
            **data,
            "hour": Hour(**{**data["hour"], "tiers": tiers(data["hour"]["tiers"])}),
            "month": Month(**{**data["month"], "tiers": tiers(data["month"]["tiers"])}),
        }
    )


def run(quick: bool = False) -> list[Result]:
    # In an interpreter of its own, as bench_alerts: the Monitors' ticks and the queries
    # are not timed on a heap that the benchmarks run before it left large and scattered.
    code = (
        "import dataclasses, json; from benchmarks.bench_store import measure; "
        f"print(json.dumps(dataclasses.asdict(measure({quick}))))"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True
    )
    return _report(quick, _from_json(json.loads(child.stdout.splitlines()[-1])))


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _report(quick: bool, found: Found) -> list[Result]:
    judged = not quick
    hour, month, queries = found.hour, found.month, found.queries
    with_store, without = found.with_store, found.without
    samples = hour.samples
    print(
        f"bench_store: {hour.seconds} s at {hour.peers} peers x 1 Hz, simulated clock "
        f"({found.hour_took:.0f} s); {month.days} days of the host and one peer "
        f"({found.month_took:.0f} s)"
    )
    print(
        f"  samples (figure values, absent figures not counted): {samples:,} "
        f"({hour.slots:,} places counting the absent)"
    )
    per_sample = hour.file_bytes / samples
    print(
        f"  file, WAL checkpointed: {hour.file_bytes / 1e6:.2f} MB = {up(per_sample, 3)} B per "
        f"sample, {up(hour.file_bytes / (hour.peers * hour.seconds), 2)} B per peer-second "
        f"(of it {hour.free_bytes / 1e6:.2f} MB free pages: the open minute's recent rows)"
    )
    raw_rows, raw_data, raw_summary = hour.tiers[0]
    print(_tier_line("raw", raw_rows, raw_data, raw_summary, "sample", samples))
    minute = hour.tiers[1]
    print(_tier_line("1m", *minute, "series-minute bucket", raw_rows))
    print(_tier_line("", *minute, "sample it sums up", samples))
    hours = month.tiers.get(2, (0, 0, 0))
    print(_tier_line("1h", *hours, f"series-hour bucket ({month.days} days)", month.hour_buckets))
    print(_tier_line("", *hours, "sample it sums up", month.hour_buckets * month.samples_per_hour))
    print(f"  file after the rollup: {hour.rolled_file_bytes / 1e6:.2f} MB")
    naive_per_sample = hour.naive_bytes / hour.naive_rows
    print(
        f"  naive table (the same samples, {hour.naive_rows // (hour.seconds + 1):,} a "
        f"second): {hour.naive_rows:,} rows, {hour.naive_bytes / 1e6:.1f} MB = "
        f"{down(naive_per_sample, 1)} B per sample; store / naive = "
        f"{up(per_sample / naive_per_sample, 4)}x"
    )
    rate = samples / hour.ingest_s
    print(
        f"  ingest: {down(rate, 0)} samples/s ({down(hour.slots / hour.ingest_s, 0)} places/s) "
        f"over {hour.ingest_s:.1f} s of writer time; whole minutes slowest "
        f"{down(min(hour.batch_rates), 0)}, median {down(_median(hour.batch_rates), 0)}; "
        f"{hour.dropped} ticks dropped; naive table's inserts "
        f"{down(hour.naive_rows / hour.naive_insert_s, 0)} rows/s"
    )
    tick_with, tick_without = stats(with_store), stats(without)
    median_ratio = tick_with.median / tick_without.median
    mean_ratio = statistics.fmean(with_store) / statistics.fmean(without)
    print(
        f"  tick at {hour.peers} peers, ms: with the store median {up(tick_with.median, 3)} "
        f"(max {up(tick_with.maximum, 3)}), without {down(tick_without.median, 3)} "
        f"(max {down(tick_without.maximum, 3)}); ratio of medians {up(median_ratio, 3)}x, "
        f"of means {up(mean_ratio, 3)}x; the store took {found.tick_samples:,} samples meanwhile"
    )
    print(f"  queries, ms: {'case':<36} {'median':>9} {'min':>9} {'max':>9}  calls")
    for name, times in queries.items():
        found = stats(times)
        print(
            f"  {'':<12} {name:<36} {up(found.median, 3):>9} {up(found.minimum, 3):>9} "
            f"{up(found.maximum, 3):>9}  {found.repeats}"
        )
    results = [
        Result(
            name="bench_store_bytes",
            title=f"History store: bytes per sample on disk after 1 h at {PEERS:,} peers x 1 Hz "
            "(file size / samples)",
            unit="B/sample",
            digits=3,
            target=Target(TARGET_BYTES),
            figure=per_sample if judged else None,
            quick=quick,
            reference=Reference("naive row-per-sample SQLite table", naive_per_sample, floor=False)
            if judged
            else None,
            ratio=per_sample / naive_per_sample if judged else None,
            detail=f"raw tier payload {up((raw_data + raw_summary) / samples, 3)} B/sample; "
            f"{up(hour.file_bytes / (hour.peers * hour.seconds), 2)} B per peer-second",
        ),
        Result(
            name="bench_store_ingest",
            title=f"History store: sustained ingest through the writer thread, {PEERS:,} peers "
            "(submit to commit)",
            unit="samples/s",
            digits=0,
            target=Target(TARGET_INGEST, at_least=True),
            figure=rate if judged else None,
            quick=quick,
            detail=f"{down(hour.slots / hour.ingest_s, 0)} places/s counting absent figures; "
            f"slowest minute {down(min(hour.batch_rates), 0)} samples/s; none dropped",
        ),
        Result(
            name="bench_store_tick",
            title=f"`Monitor.tick()` at {PEERS:,} peers with the history store attached, "
            "against without (the worse of the median and mean ratios)",
            unit="ms",
            digits=3,
            target=Target(TARGET_TICK_RATIO, on="ratio"),
            figure=tick_with.median if judged else None,
            quick=quick,
            reference=Reference("the same tick without the store", tick_without.median, floor=False)
            if judged
            else None,
            ratio=max(median_ratio, mean_ratio) if judged else None,
            detail=f"ratio of medians {up(median_ratio, 3)}x, of means {up(mean_ratio, 3)}x",
        ),
    ]
    for name, title, case, target in (
        (
            "bench_store_raw_hour",
            "one peer's last hour, raw, every figure",
            "raw hour",
            TARGET_RAW_MS,
        ),
        (
            "bench_store_30d",
            "one peer's latency over 30 days at a 1 h step, with quantiles",
            "30 d at 1 h",
            TARGET_LONG_MS,
        ),
        (
            "bench_store_host_7d",
            "the host's 7 days at the dashboard's 1 h step",
            "host 7 d at 3600 s",
            TARGET_LONG_MS,
        ),
    ):
        figure = _median(queries[case])
        naive = _median(queries[f"{case}, naive"])
        results.append(
            Result(
                name=name,
                title=f"History store query: {title} (median)",
                unit="ms",
                digits=3,
                target=Target(target),
                figure=figure if judged else None,
                quick=quick,
                reference=Reference("naive row-per-sample SQLite table", naive, floor=False)
                if judged
                else None,
                ratio=figure / naive if judged else None,
            )
        )
    for result in results:
        print(f"  {result.name}: target {result.target.text(result.unit)}: {result.verdict.label}")
    return results


if __name__ == "__main__":
    run_alone(run)
