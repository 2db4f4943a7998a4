"""History stores filled as the agent fills them, for the export and ``db`` tests.

A Monitor on a clock the test moves hands its ticks to a HistoryStore on a real SQLite file;
what each tick gave the store is kept beside it (``recorded``), so a test checks what comes
back out against what went in.
"""

from __future__ import annotations

import csv
import io
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerscope import Monitor, Settings
from peerscope.core.rollup import FIGURES
from peerscope.events import Event, MetricsTick
from peerscope.store import HistoryStore
from peerscope.store.export import COLUMNS
from peerscope.store.intake import PeerKeys, tick_samples
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
GAUGE_RESOLUTION = 0.01
FIGURE_NAMES = {kind: [figure.name for figure in figures] for kind, figures in FIGURES.items()}
COUNTERS = {
    figure.name for figures in FIGURES.values() for figure in figures if figure.kind == "counter"
}


@dataclass
class Filled:
    path: Path
    store: HistoryStore
    monitor: Monitor
    clock: ManualClock
    peers: int
    # (kind, key, t_ms) → the figures the store was given, in FIGURES order
    recorded: dict[tuple[str, str, int], tuple[float | None, ...]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(14))
    lock: threading.Lock = field(default_factory=threading.Lock)  # run() may be on a thread

    def run(self, seconds: int) -> None:
        """``seconds`` ticks, a second apart: every peer measured each second (peer 1 loses
        its replies for a stretch), traffic and messages counted."""
        monitor, clock = self.monitor, self.clock
        for _ in range(seconds):
            clock.advance(1.0)
            second = int(clock.now - T0)
            for i in range(self.peers):
                lost = i == 1 and 30 <= second % 600 < 50
                monitor.record_latency(
                    f"p{i}", None if lost else 20.0 + 5 * i + self.rng.random() * 3
                )
                monitor.record_traffic(f"p{i}", bytes_sent=100 + i, bytes_received=40)
            monitor.record_message(size=64)
            monitor.tick()
        self.store.flush()

    def rows(self, kind: str | None = None) -> dict[tuple[str, str, int], dict[str, Any]]:
        """What was recorded, by (kind, key, t_ms), as a row's figures by name."""
        with self.lock:
            recorded = list(self.recorded.items())
        return {
            key: dict(zip(FIGURE_NAMES[key[0]], values, strict=True))
            for key, values in recorded
            if kind is None or key[0] == kind
        }


def filled_store(
    path: Path, *, seconds: int, peers: int = 3, system: bool = True, **store: Any
) -> Filled:
    """A store at ``path`` after ``seconds`` ticks from T0 (left open: close it)."""
    clock = ManualClock(T0)
    monitor = Monitor(Settings(enable_system_metrics=system), clock=clock)
    settings = StoreSettings(db=str(path), queue_size=100_000, **store)
    history = HistoryStore(settings)
    history.attach(monitor)
    filled = Filled(path, history, monitor, clock, peers)
    keys = PeerKeys(None)
    measured: dict[str, float] = {}  # the store keeps a latency once per measurement

    def keep(event: Event) -> None:
        if isinstance(event, MetricsTick):
            t_ms = round(event.timestamp * 1000)
            with filled.lock:
                for kind, key, values in tick_samples(event, keys, measured):
                    filled.recorded[(kind, key, t_ms)] = values

    monitor.subscribe(keep)
    for i in range(peers):
        monitor.add_peer(f"p{i}", name=f"peer {i}", address=f"10.0.0.{i + 1}")
    filled.run(seconds)
    return filled


def close_enough(got: Any, want: float | None, name: str) -> bool:
    """An exported figure against the recorded one: counters exact, gauges within their
    resolution."""
    if want is None:
        return got is None
    if got is None:
        return False
    if name in COUNTERS:
        return int(got) == int(want)
    return abs(float(got) - want) <= GAUGE_RESOLUTION


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def query(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """``sql`` on a read-only connection of its own."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


def row_key(row: dict[str, Any]) -> tuple[str, str, int]:
    key = row["peer_id"] if row["series"] == "peer" else row["series"]
    return row["series"], key, round(float(row["timestamp"]) * 1000)


def csv_rows(data: bytes) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(data.decode()))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return [{name: (value or None) for name, value in row.items()} for row in reader]


def check_against_recorded(filled: Filled, rows: list[dict[str, Any]]) -> None:
    """Every row is a recorded sample, its figures within their resolution, and no other
    figure is there."""
    recorded = filled.rows()
    for row in rows:
        want = recorded[row_key(row)]
        for name in COLUMNS[4:]:
            if name in want:
                assert close_enough(row[name], want[name], name), (row_key(row), name)
            else:
                assert row.get(name) is None, (row_key(row), name)
        if row["series"] == "peer":
            assert row["name"] == f"peer {row['peer_id'][1:]}"
        else:
            assert row["peer_id"] is None
            assert row["name"] is None
