"""A Monitor on a clock the test moves, a real HistoryStore on a real file attached to it,
and what each tick handed over, so stored history can be checked against it."""

from __future__ import annotations

import math
import random
import sqlite3
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerscope.config import Settings
from peerscope.events import Event, MetricsTick
from peerscope.monitor import Monitor
from peerscope.store import HistoryStore
from peerscope.store.intake import PeerKeys, tick_samples
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock

# 2023-11-14 22:13:20 UTC: 800 s into an hour, 13 s into a minute, so the first chunk and
# the first rollup land mid-period.
START = 1_700_000_000.0

_RAW_IDS = PeerKeys(None)

LatencyOf = Callable[[str, float], float | None]


def steady(peer_id: str, now: float) -> float | None:
    """A latency that wanders (a few distinct values per minute, a spike now and then)."""
    base = 20.0 + 5.0 * (zlib.crc32(peer_id.encode()) % 4)
    return base + 3.0 * math.sin(now / 97.0) + (40.0 if int(now) % 601 == 0 else 0.0)


@dataclass
class Rig:
    """``monitor`` ticking on ``clock`` with ``store`` attached; ``handed`` holds every
    series' figures each tick handed over, by kind and raw id: [(t, values), ...]."""

    clock: ManualClock
    monitor: Monitor
    store: HistoryStore
    handed: dict[tuple[str, str], list[tuple[float, tuple[float | None, ...]]]] = field(
        default_factory=dict
    )
    ticks: list[float] = field(default_factory=list)
    measured: dict[str, float] = field(default_factory=dict)

    def run(
        self,
        seconds: float,
        peers: list[str],
        *,
        step: float = 1.0,
        latency: LatencyOf = steady,
        flush_every: float | None = None,
    ) -> None:
        """Tick every ``step`` s for ``seconds``, each peer measured once per tick."""
        end = self.clock.now + seconds
        since_flush = 0.0
        while self.clock.now + step <= end + 1e-9:
            now = self.clock.advance(step)
            for peer_id in peers:
                self.monitor.record_latency(peer_id, latency(peer_id, now))
            self.monitor.tick()
            since_flush += step
            if flush_every is not None and since_flush >= flush_every:
                self.store.flush()
                since_flush = 0.0

    def keep(self, event: Event) -> None:
        if isinstance(event, MetricsTick):
            self.ticks.append(event.timestamp)
            for kind, key, values in tick_samples(event, _RAW_IDS, self.measured):
                self.handed.setdefault((kind, key), []).append((event.timestamp, values))

    def peer_handed(self, peer_id: str) -> list[tuple[float, tuple[float | None, ...]]]:
        return self.handed[("peer", peer_id)]


def rig_on(store: HistoryStore, clock: ManualClock) -> Rig:
    """A new Monitor on ``clock`` with ``store`` attached (a restart)."""
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    rig = Rig(clock, monitor, store)
    monitor.subscribe(rig.keep)
    store.attach(monitor)
    return rig


def new_rig(path: Path | str, clock: ManualClock | None = None, **settings: Any) -> Rig:
    store = HistoryStore(StoreSettings(db=str(path), **settings))
    return rig_on(store, clock or ManualClock(START))


def rows(path: Path | str, query: str, *args: object) -> list[tuple[Any, ...]]:
    """``query`` on a connection of the test's own (the store's stay as they are)."""
    connection = sqlite3.connect(path)
    try:
        with connection:  # committed
            return connection.execute(query, args).fetchall()
    finally:
        connection.close()


def integrity(path: Path | str) -> str:
    return str(rows(path, "PRAGMA integrity_check")[0][0])


def used_bytes(path: Path | str) -> int:
    page = rows(path, "PRAGMA page_size")[0][0]
    return int(
        (rows(path, "PRAGMA page_count")[0][0] - rows(path, "PRAGMA freelist_count")[0][0]) * page
    )


def jittery(seed: int) -> LatencyOf:
    """Latencies from a seeded generator, a probe lost now and then."""
    generator = random.Random(seed)

    def latency(peer_id: str, now: float) -> float | None:
        if generator.random() < 0.03:
            return None
        return max(0.5, generator.gauss(30.0, 8.0))

    return latency
