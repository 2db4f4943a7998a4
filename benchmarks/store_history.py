"""The two histories ``bench_store`` measures, made on disk through the store's own code.

*The hour*: N peers of ``benchmarks.store_workload`` for an hour of a simulated clock,
handed to the store's ``Writer`` a minute at a time (the ingest is timed, submit to
commit), a naive row-per-sample table filled beside it; the file's size and each tier's
payload, before and after the writer's own rollup. *The thirty days* of the host and one
peer: raw rows written as the writer writes them, a day at a time, each day rolled up and
pruned by the writer's own ``catch_up``; and the naive rows the long queries read.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from benchmarks.naive_store import NaiveTable, Row
from benchmarks.store_workload import Fleet
from peerscope.core.chunk import encode_chunk, quantized
from peerscope.core.rollup import FIGURES, SeriesKind, summarize, summary_to_list
from peerscope.seed_views import SYSTEM_HISTORY_KEYS
from peerscope.store.database import connect, open_database
from peerscope.store.intake import HOST_KEY, PeerKeys, tick_samples
from peerscope.store.reader import HistoryReader
from peerscope.store.writer import Retention, Writer

DAY_S = 86_400
T0 = 1_799_971_200.0  # a UTC midnight
END_OF_DAY_S = 13 * 3_600 + 1_800  # the long range ends at 13:30 UTC
HOST_FIGURES = tuple(SYSTEM_HISTORY_KEYS.values())  # what the host's history carries


@dataclass
class Hour:
    """What the hour at N peers measured."""

    peers: int
    seconds: int
    samples: int = 0
    slots: int = 0
    ingest_s: float = 0.0
    batch_rates: list[float] = field(default_factory=list)  # per whole minute
    dropped: int = 0
    file_bytes: int = 0
    free_bytes: int = 0
    tiers: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # rows, data, summary
    rolled_file_bytes: int = 0
    naive_rows: int = 0
    naive_bytes: int = 0
    naive_insert_s: float = 0.0


def _writer(path: Path) -> tuple[Writer, HistoryReader]:
    """The store's writer thread and reader on ``path``, as ``HistoryStore`` builds them."""
    # The writer lock is held to the process's end: nothing else writes this file.
    connection, _, _lock = open_database(str(path))
    keys = PeerKeys(None)
    writer = Writer(connection, str(path), keys, queue_size=100)
    writer.start()
    return writer, HistoryReader(connect(str(path)), keys, Retention())


def _sizes(path: Path) -> tuple[int, int, dict[int, tuple[int, int, int]]]:
    """The file's size (its WAL checkpointed), its free pages' bytes, and per tier its
    rows and the bytes of their samples and summaries."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = db.execute("PRAGMA page_size").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0] * page
        tiers = {
            tier: (rows, data, summary)
            for tier, rows, data, summary in db.execute(
                "SELECT tier, COUNT(*), SUM(LENGTH(data)), SUM(LENGTH(summary)) FROM chunks "
                "GROUP BY tier"
            )
        }
    finally:
        db.close()
    return os.path.getsize(path), free, tiers


def _naive_rows(
    tick_rows: list[tuple[SeriesKind, str, tuple[float | None, ...]]], t: float
) -> list[Row]:
    return [
        (key, figure.name, t, value)
        for kind, key, values in tick_rows
        for figure, value in zip(FIGURES[kind], values, strict=True)
        if value is not None
    ]


def one_hour(
    folder: Path, peers: int, seconds: int, naive_peers: int
) -> tuple[Hour, HistoryReader, NaiveTable]:
    """Part 1: the hour through the writer, the naive table beside it, sizes, rollup."""
    path = folder / "hour.db"
    writer, reader = _writer(path)
    naive = NaiveTable(folder / "hour-naive.db")
    fleet = Fleet(peers)
    hour = Hour(peers, seconds)
    keys, measured = PeerKeys(None), {}
    start = 0
    while start <= seconds:
        # A minute of ticks, and the first tick of the minute after the hour, which closes it.
        times = [T0 + s for s in range(start, min(start + 60, seconds + 1))]
        present = fleet.present
        ticks = [fleet.tick(t) for t in times]
        samples = fleet.present - present
        rows: list[Row] = []
        for tick in ticks:
            few = dataclasses.replace(tick, changed=tick.changed[:naive_peers])
            rows += _naive_rows(list(tick_samples(few, keys, measured)), tick.timestamp)
        began = time.perf_counter()
        for tick in ticks:
            writer.submit(tick)
        writer.flush()
        took = time.perf_counter() - began
        hour.ingest_s += took
        hour.samples += samples
        if len(ticks) == 60:  # the closing tick's batch is mostly packing the minute before
            hour.batch_rates.append(samples / took)
        began = time.perf_counter()
        naive.insert(rows)
        hour.naive_insert_s += time.perf_counter() - began
        start += 60
    hour.slots = writer.stats.samples
    hour.dropped = writer.stats.dropped
    if hour.dropped:
        raise RuntimeError(
            f"bench_store: the writer's queue dropped {hour.dropped} ticks: the ingest run "
            "is invalid"
        )
    hour.file_bytes, hour.free_bytes, hour.tiers = _sizes(path)
    writer.catch_up()
    hour.rolled_file_bytes, _, rolled = _sizes(path)
    hour.tiers[1] = rolled.get(1, (0, 0, 0))
    hour.naive_rows = naive.rows
    hour.naive_bytes = naive.size()
    writer.stop()
    return hour, reader, naive


@dataclass
class Month:
    """What the 30 days of the host and one peer hold."""

    days: int
    end: float
    peer_key: str
    tiers: dict[int, tuple[int, int, int]]
    hour_buckets: int  # series-hours held in the 1-hour tier's rows
    samples_per_hour: float  # samples of a series in an hour, on average
    naive_rows: int


Minutes = list[list[list[float | None]]]  # per minute, per figure, the minute's values


def _pool(fleet: Fleet, seconds: int, first: float) -> dict[SeriesKind, Minutes]:
    """``seconds`` of 1 Hz figures of the host and the peer, cut into minutes."""
    keys, measured = PeerKeys(None), {}
    minutes: dict[SeriesKind, Minutes] = {"host": [], "peer": []}
    for second in range(seconds):
        tick = fleet.tick(first + second)
        for kind, _key, values in tick_samples(tick, keys, measured):
            if kind == "server":
                continue
            if second % 60 == 0:
                minutes[kind].append([[] for _ in values])
            for column, value in zip(minutes[kind][-1], values, strict=True):
                column.append(value)
    return minutes


def _summaries(kind: SeriesKind, minutes: Minutes) -> list[bytes]:
    """Each minute's summary as the writer stores it: of the values as the raw row keeps
    them, its counters going on from the minute before (the first minute's from nothing)."""
    figures = FIGURES[kind]
    before: list[float | None] = [None] * len(figures)
    out = []
    for columns in minutes:
        kept = [quantized(column, f.scale) for column, f in zip(columns, figures, strict=True)]
        out.append(orjson.dumps(summary_to_list(summarize(figures, kept, before))))
        for k, column in enumerate(kept):
            last = next((v for v in reversed(column) if v is not None), None)
            if figures[k].kind == "counter" and last is not None:
                before[k] = last
    return out


def thirty_days(folder: Path, days: int, pool_s: int) -> tuple[Month, HistoryReader, NaiveTable]:
    """Part 2: the raw tier written directly a day at a time, the tiers above by the
    writer's own rollup after each day, as they grow in use."""
    path = folder / "month.db"
    end = T0 + END_OF_DAY_S
    start = end - days * DAY_S
    fleet = Fleet(1)
    peer_key = fleet.peers[0].peer_id
    pool = _pool(fleet, pool_s, start)
    present = fleet.present - 7 * pool_s  # the server's figures are not kept here
    summaries = {kind: _summaries(kind, minutes) for kind, minutes in pool.items()}
    series: dict[SeriesKind, tuple[int, str]] = {"host": (1, HOST_KEY), "peer": (2, peer_key)}
    connection, _, lock = open_database(str(path))
    connection.executemany(
        "INSERT INTO series (id, kind, key, first_ms, last_ms) VALUES (?, ?, ?, ?, ?)",
        [
            (sid, kind, key, round(start * 1000), round(end * 1000))
            for kind, (sid, key) in series.items()
        ],
    )
    connection.close()
    assert lock is not None
    lock.release()
    keys = PeerKeys(None)
    for day_start in range(round(start), round(end), DAY_S):
        rows = []
        for minute_start in range(day_start, min(day_start + DAY_S, round(end)), 60):
            minute = (minute_start - round(start)) // 60 % len(pool["host"])
            for kind, (sid, _key) in series.items():
                times = [(minute_start + s) * 1000 for s in range(60)]
                # Raw rows older than a day are pruned once rolled up, never read: only
                # the last day's need their samples.
                data = b""
                if minute_start >= end - DAY_S:
                    scales = [figure.scale for figure in FIGURES[kind]]
                    data = encode_chunk(times, pool[kind][minute], scales)
                summary = summaries[kind][minute]
                rows.append((sid, 0, times[0], times[-1], 60, data, summary))
        connection, _, lock = open_database(str(path))
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO chunks (series_id, tier, start_ms, end_ms, samples, data, summary) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        connection.execute("COMMIT")
        writer = Writer(connection, str(path), keys)
        writer.start()
        writer.catch_up()
        writer.stop()
        assert lock is not None
        lock.release()
    _, _, tiers = _sizes(path)
    check = sqlite3.connect(path)
    rolled_until = check.execute("SELECT MAX(start_ms) FROM chunks WHERE tier = 2").fetchone()[0]
    hour_buckets = check.execute(
        "SELECT COUNT(*) FROM chunks WHERE tier = 1 AND start_ms < ?",
        (rolled_until + DAY_S * 1000,),
    ).fetchone()[0]
    check.close()
    naive = NaiveTable(folder / "month-naive.db")
    host = [figure.name for figure in FIGURES["host"]]
    for kind, figure, since in sorted(
        [("peer", "latency_ms", start)]
        + [("host", name, end - 7 * DAY_S) for name in HOST_FIGURES],
        key=lambda wanted: (series[wanted[0]][1], wanted[1]),
    ):
        k = host.index(figure) if kind == "host" else 0
        values = [value for columns in pool[kind] for value in columns[k]]
        naive.fill(series[kind][1], figure, values, start, since, end)
    return (
        Month(days, end, peer_key, tiers, hour_buckets, present / 2 / pool_s * 3600, naive.rows),
        HistoryReader(connect(str(path)), keys, Retention()),
        naive,
    )
