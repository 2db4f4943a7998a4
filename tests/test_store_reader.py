"""Range queries say what the raw samples say: buckets read from the 1-minute and 1-hour
tiers (with the current hour merged from minutes) carry the raw samples' count, min and max
exactly and their quantiles within the sketch's error, whichever figures are asked for."""

from __future__ import annotations

import math
import random
import sqlite3
import time

import pytest

from peerscope.config import Settings
from peerscope.monitor import Monitor
from peerscope.store import HistoryStore
from peerscope.store.reader import HistoryReader
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock

START = 1_800_000_000.0 - 1_800_000_000.0 % 3600  # on an hour
SECONDS = 2 * 3600 + 25 * 60  # two whole hours, then 25 minutes of the third


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the writer did not roll the hours up in time"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """Two peers probed at 1 Hz for 2 h 25 min, their first two hours rolled up."""
    path = tmp_path_factory.mktemp("reader") / "history.db"
    clock = ManualClock(START)
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    store = HistoryStore(StoreSettings(db=str(path), queue_size=100_000, flush_interval_s=0.05))
    store.attach(monitor)
    rng = random.Random(4)
    for peer_id in ("a", "b"):
        monitor.add_peer(peer_id)
    for _ in range(SECONDS):
        clock.advance(1)
        monitor.record_latency("a", max(0.1, rng.gauss(40.0, 4.0)))
        if rng.random() > 0.05:  # b misses a probe now and then
            monitor.record_latency("b", rng.uniform(5.0, 300.0))
        monitor.tick()
    store.flush()
    db = sqlite3.connect(path)
    try:
        wait_for(
            lambda: db.execute("SELECT COUNT(*) FROM chunks WHERE tier = 1").fetchone()[0] >= 6
        )
    finally:
        db.close()
    yield store, clock.now
    store.close()


def raw_latency(
    reader: HistoryReader, peer: str, start: float, end: float
) -> list[tuple[float, float]]:
    found = reader.samples("peer", peer, start - 0.001, end - 0.001, ["latency_ms"])
    assert found is not None
    return found.present("latency_ms")


@pytest.mark.parametrize(("step", "tier"), [(60, "1m"), (600, "1m"), (3600, "1h"), (86_400, "1h")])
@pytest.mark.parametrize("peer", ["a", "b"])
def test_buckets_carry_the_raw_samples_figures(store, step, tier, peer) -> None:
    history, now = store
    reader = history.reader
    start = now - SECONDS
    found = reader.buckets("peer", peer, start, now, step, ["latency_ms"], now=now)
    assert found is not None
    read_tier, buckets = found
    assert read_tier == tier
    samples = raw_latency(reader, peer, start, now)
    assert sum(bucket["latency_ms"]["count"] for bucket in buckets) == len(samples)
    for bucket in buckets:
        t0 = bucket["timestamp"]
        values = sorted(v for t, v in samples if t0 <= t < t0 + step)
        figure = bucket["latency_ms"]
        assert (figure["count"], figure["min"], figure["max"]) == (
            len(values),
            values[0],
            values[-1],
        )
        assert figure["avg"] == pytest.approx(math.fsum(values) / len(values))
        for q in (0.5, 0.95, 0.99):
            exact = values[math.floor(q * (len(values) - 1))]
            assert figure[f"p{round(q * 100)}"] == pytest.approx(exact, rel=0.0101)


@pytest.mark.parametrize("step", [60, 900, 3600])
def test_asking_for_some_figures_reads_them_as_asking_for_all(store, step) -> None:
    history, now = store
    reader = history.reader
    start = now - SECONDS
    some = reader.buckets("peer", "b", start, now, step, ["jitter_ms", "probes_sent"], now=now)
    every = reader.buckets("peer", "b", start, now, step, now=now)
    assert some is not None
    assert every is not None
    assert some[0] == every[0]
    assert len(some[1]) == len(every[1])
    for one, all_ in zip(some[1], every[1], strict=True):
        assert set(one) == {
            "timestamp",
            "jitter_ms",
            "probes_sent",
            "sent",
            "lost",
            "loss_percent",
            "outage",
        }
        assert {key: all_[key] for key in one} == one
    raw_some = reader.samples("peer", "b", start, now, ["latency_ms", "mos"])
    raw_all = reader.samples("peer", "b", start, now)
    assert raw_some is not None
    assert raw_all is not None
    assert raw_some.times == raw_all.times
    assert raw_some.values == {name: raw_all.values[name] for name in ("latency_ms", "mos")}
