"""The one thread that writes the history database.

The event loop only puts items on a bounded queue (a full queue drops the item and counts
it: the loop never waits on the disk). The thread folds ticks into each series' open minute,
and at every flush, in one transaction, writes the minute's new samples to ``recent``, any
minute that ended as a compressed chunk (deleting its ``recent`` rows) and the events. Then,
in small steps between flushes, it rolls complete hours and days up into the tiers above
and prunes what retention and the size cap no longer allow. A write that fails (a full
disk, a file gone read-only) is reported by :attr:`Writer.error` and dropped; the rows
already committed stay as they were.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import sqlite3
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from peerscope.core.chunk import encode_chunk
from peerscope.core.rollup import (
    FIGURES,
    Figure,
    SeriesKind,
    merge_summaries,
    summarize,
    summary_from_list,
    summary_to_list,
)
from peerscope.events import MetricsTick
from peerscope.store.intake import PeerKeys, PeerMeta, StoredEvent, tick_samples

__all__ = ["TIER_SPANS", "Retention", "Writer"]

log = logging.getLogger("peerscope.store")

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# A tier-k row spans TIER_SPANS[k]; its entries are buckets of TIER_SPANS[k - 1]'s rows'
# span (raw rows hold samples; their summary is a 1-minute bucket).
TIER_SPANS = (MINUTE_MS, HOUR_MS, DAY_MS)
_ROLLUP_SLICE = 200  # series rolled per step: a step stays a few milliseconds
_PRUNE_SLICE = 2_000  # rows deleted per step


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each tier is kept (seconds), and the database's size cap (0: none)."""

    raw_s: float = 86_400.0
    minute_s: float = 30 * 86_400.0
    hour_s: float = 365 * 86_400.0
    max_bytes: int = 0

    def of_tier(self, tier: int) -> float:
        return (self.raw_s, self.minute_s, self.hour_s)[tier]


@dataclass(slots=True)
class _OpenMinute:
    times: list[int] = field(default_factory=list)
    columns: list[list[float | None]] = field(default_factory=list)


@dataclass(slots=True)
class _Series:
    series_id: int
    kind: SeriesKind
    figures: tuple[Figure, ...]
    counters_before: list[float | None]
    last_ms: int


@dataclass(slots=True)
class _Rollup:
    tier: int
    start_ms: int
    series: list[int]


@dataclass(slots=True)
class WriterStats:
    samples: int = 0
    chunks: int = 0
    flushes: int = 0
    dropped: int = 0
    failed_flushes: int = 0
    last_flush_at: float | None = None


_STOP = object()


def _packed(values: Sequence[float | None]) -> bytes:
    return array("d", [math.nan if v is None else v for v in values]).tobytes()


def unpacked(data: bytes) -> list[float | None]:
    """A ``recent`` row's figures (None where absent)."""
    values = array("d")
    values.frombytes(data)
    return [None if math.isnan(v) else v for v in values]


class Writer:
    """Owns ``connection`` (the writer's) and the thread that uses it."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: str,
        keys: PeerKeys,
        *,
        flush_interval_s: float = 1.0,
        retention: Retention | None = None,
        queue_size: int = 600,
    ) -> None:
        self._db = connection
        self._path = path
        self._keys = keys
        self._flush_interval = flush_interval_s
        self._retention = retention or Retention()
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self.stats = WriterStats()
        self.error: str | None = None
        self._series: dict[tuple[str, str], _Series] = {}
        self._by_id: dict[int, _Series] = {}
        self._next_id = 1
        self._open: dict[int, _OpenMinute] = {}
        self._minute: int | None = None
        self._closing: list[tuple[_Series, _OpenMinute]] = []
        self._closed_until: int | None = None  # minutes before this are chunks (or empty)
        self._new_series: list[tuple[_Series, str]] = []
        self._metas: list[PeerMeta] = []
        self._recent: list[tuple[int, int, bytes]] = []
        self._events: list[tuple[int, str, int | None, bytes]] = []
        self._rollup: _Rollup | None = None
        self._measured: dict[str, float] = {}  # per peer, when its newest kept sample was taken
        self._thread = threading.Thread(target=self._run, name="peerscope-store", daemon=True)
        self._load()

    # --- the loop's side ----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: MetricsTick | PeerMeta | StoredEvent) -> bool:
        """Queue ``item`` for the thread; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.dropped += 1
            return False
        return True

    def call(self, job: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``job`` on the writer thread after everything queued before it (blocking)."""
        done = threading.Event()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, job()))
            except BaseException as error:  # handed back to the caller, raised there
                outcome.append((False, error))
            finally:
                done.set()

        self._queue.put(run, timeout=timeout)
        if not done.wait(timeout):
            raise TimeoutError(f"db: the writer did not answer within {timeout} s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def flush(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, and wait until it is committed."""
        self.call(self._flush, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what is queued, then end the thread and close the connection."""
        if self._thread.is_alive():
            self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
        self._db.close()

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        deadline = time.monotonic() + self._flush_interval
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                self._flush()
                return
            if item is not None:
                self._take(item)
            if time.monotonic() >= deadline:
                self._flush()
                self._step()
                deadline = time.monotonic() + self._flush_interval

    def _take(self, item: object) -> None:
        if isinstance(item, MetricsTick):
            self._ingest(item)
        elif isinstance(item, PeerMeta):
            self._metas.append(item)
        elif isinstance(item, StoredEvent):
            series = None if item.peer_id is None else self._peer_series(item.peer_id, item)
            self._events.append(
                (
                    round(item.timestamp * 1000),
                    item.type,
                    None if series is None else series.series_id,
                    orjson.dumps(dict(item.data)),
                )
            )
        elif callable(item):
            item()

    def _peer_series(self, peer_id: str, item: StoredEvent) -> _Series:
        return self._series_of("peer", self._keys.key(peer_id), round(item.timestamp * 1000))

    def _series_of(self, kind: SeriesKind, key: str, t_ms: int) -> _Series:
        found = self._series.get((kind, key))
        if found is None:
            figures = FIGURES[kind]
            found = _Series(self._next_id, kind, figures, [None] * len(figures), t_ms)
            self._next_id += 1
            self._series[(kind, key)] = found
            self._by_id[found.series_id] = found
            self._new_series.append((found, key))
        return found

    def _ingest(self, tick: MetricsTick) -> None:
        t_ms = round(tick.timestamp * 1000)
        minute = t_ms - t_ms % MINUTE_MS
        if self._minute is not None and minute > self._minute:
            self._close_minute(minute)
        if self._minute is None or minute > self._minute:
            self._minute = minute
        recent = self._recent.append
        samples = 0
        for kind, key, values in tick_samples(tick, self._keys, self._measured):
            series = self._series_of(kind, key, t_ms)
            series.last_ms = t_ms
            self._append(series.series_id, t_ms, values)
            recent((series.series_id, t_ms, _packed(values)))
            samples += len(values)
        self.stats.samples += samples

    def _append(self, sid: int, t_ms: int, values: Sequence[float | None]) -> None:
        open_minute = self._open.get(sid)
        if open_minute is None:
            open_minute = self._open[sid] = _OpenMinute([], [[] for _ in values])
        open_minute.times.append(t_ms)
        for column, value in zip(open_minute.columns, values, strict=True):
            column.append(value)

    def _close_minute(self, next_minute: int) -> None:
        """Every open minute becomes a chunk at the next flush."""
        self._closing.extend((self._by_id[sid], minute) for sid, minute in self._open.items())
        self._open = {}
        self._closed_until = next_minute

    # --- flush --------------------------------------------------------------------------

    def _flush(self) -> None:
        chunks = [self._chunk_row(series, minute) for series, minute in self._closing]
        new_series = self._new_series
        metas, recent, events = self._metas, self._recent, self._events
        self._closing, self._new_series = [], []
        self._metas, self._recent, self._events = [], [], []
        if not (chunks or new_series or metas or recent or events):
            return
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO series (id, kind, key, first_ms, last_ms) VALUES (?, ?, ?, ?, ?)",
                [
                    (series.series_id, series.kind, key, series.last_ms, series.last_ms)
                    for series, key in new_series
                ],
            )
            db.executemany(
                "UPDATE series SET name = ?, address = ?, peer_kind = ?, labels = ? "
                "WHERE kind = 'peer' AND key = ?",
                [self._meta_row(meta) for meta in metas],
            )
            db.executemany(
                "INSERT OR REPLACE INTO chunks "
                "(series_id, tier, start_ms, end_ms, samples, data, summary) "
                "VALUES (?, 0, ?, ?, ?, ?, ?)",
                chunks,
            )
            if self._closed_until is not None and chunks:
                db.execute("DELETE FROM recent WHERE t_ms < ?", (self._closed_until,))
            db.executemany("INSERT OR REPLACE INTO recent VALUES (?, ?, ?)", recent)
            db.executemany(
                "INSERT INTO events (t_ms, type, series_id, data) VALUES (?, ?, ?, ?)", events
            )
            touched = {sid: None for sid, _, _ in recent}
            db.executemany(
                "UPDATE series SET last_ms = ? WHERE id = ?",
                [(self._by_id[sid].last_ms, sid) for sid in touched],
            )
            db.execute("COMMIT")
        except sqlite3.Error as error:
            self._failed(error)
            return
        self.stats.flushes += 1
        self.stats.chunks += len(chunks)
        self.stats.last_flush_at = time.time()
        self.error = None

    def _failed(self, error: sqlite3.Error) -> None:
        with contextlib.suppress(sqlite3.Error):  # none is open when BEGIN itself failed
            self._db.execute("ROLLBACK")
        message = f"db: cannot write {self._path}: {error}; going on in memory"
        if message != self.error:
            log.error("%s", message)
        self.error = message
        self.stats.failed_flushes += 1

    def _meta_row(self, meta: PeerMeta) -> tuple[Any, ...]:
        anonymous = self._keys.anonymized
        return (
            None if anonymous else meta.name,
            None if anonymous else meta.address,
            meta.kind,
            orjson.dumps(dict(meta.labels)).decode(),
            self._keys.key(meta.peer_id),
        )

    def _chunk_row(self, series: _Series, minute: _OpenMinute) -> tuple[Any, ...]:
        figures = series.figures
        data = encode_chunk(minute.times, minute.columns, [f.scale for f in figures])
        summary = summarize(figures, minute.columns, series.counters_before)
        for k, column in enumerate(minute.columns):
            if figures[k].kind == "counter":
                last = next((v for v in reversed(column) if v is not None), None)
                if last is not None:
                    series.counters_before[k] = last
        start = minute.times[0] - minute.times[0] % MINUTE_MS
        return (
            series.series_id,
            start,
            minute.times[-1],
            len(minute.times),
            data,
            orjson.dumps(summary_to_list(summary)),
        )

    # --- rollup, retention, size cap, in small steps ---------------------------------------

    def _step(self) -> None:
        try:
            if not self._roll_step():
                self._prune_step()
        except sqlite3.Error as error:
            self._failed(error)

    def _watermark(self, tier: int) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (f"rolled_{tier}",))
        found = row.fetchone()
        if found is not None:
            return int(found[0])
        first = self._db.execute(
            "SELECT MIN(start_ms) FROM chunks WHERE tier = ?", (tier - 1,)
        ).fetchone()[0]
        span = TIER_SPANS[tier]
        return None if first is None else first - first % span

    def _complete_until(self, tier: int) -> int | None:
        """Lower-tier rows before this are all written: the periods before it may roll."""
        if tier == 1:
            return self._closed_until
        return self._watermark(1)

    def _roll_step(self) -> bool:
        """Roll up to _ROLLUP_SLICE series of the next complete period; True if it did."""
        job = self._rollup
        if job is None:
            for tier in (1, 2):
                start = self._watermark(tier)
                until = self._complete_until(tier)
                span = TIER_SPANS[tier]
                if start is None or until is None or start + span > until:
                    continue
                ids = [
                    sid
                    for (sid,) in self._db.execute(
                        "SELECT DISTINCT series_id FROM chunks "
                        "WHERE tier = ? AND start_ms >= ? AND start_ms < ?",
                        (tier - 1, start, start + span),
                    )
                ]
                if not ids:
                    self._skip_empty(tier, start, until)
                    return True
                job = self._rollup = _Rollup(tier, start, ids)
                break
            else:
                return False
        batch, job.series = job.series[:_ROLLUP_SLICE], job.series[_ROLLUP_SLICE:]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for sid in batch:
                row = self._rolled_row(sid, job.tier, job.start_ms)
                if row is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO chunks "
                        "(series_id, tier, start_ms, end_ms, samples, data, summary) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
            if not job.series:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    (f"rolled_{job.tier}", str(job.start_ms + TIER_SPANS[job.tier])),
                )
                self._rollup = None
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._rollup = None
            raise
        return True

    def _skip_empty(self, tier: int, start: int, until: int) -> None:
        """Move the watermark over a gap (the agent was off) to the next period with rows."""
        span = TIER_SPANS[tier]
        following = self._db.execute(
            "SELECT MIN(start_ms) FROM chunks WHERE tier = ? AND start_ms >= ?",
            (tier - 1, start + span),
        ).fetchone()[0]
        mark = until - until % span if following is None else following - following % span
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            (f"rolled_{tier}", str(max(mark, start + span))),
        )

    def _rolled_row(self, sid: int, tier: int, start: int) -> tuple[Any, ...] | None:
        rows = self._db.execute(
            "SELECT start_ms, end_ms, samples, summary FROM chunks "
            "WHERE series_id = ? AND tier = ? AND start_ms >= ? AND start_ms < ? "
            "ORDER BY start_ms",
            (sid, tier - 1, start, start + TIER_SPANS[tier]),
        ).fetchall()
        if not rows:
            return None
        kind = self._db.execute("SELECT kind FROM series WHERE id = ?", (sid,)).fetchone()[0]
        figures = FIGURES[kind]
        entries = [[row[0], orjson.loads(row[3])] for row in rows]
        merged = merge_summaries([summary_from_list(figures, entry[1]) for entry in entries])
        return (
            sid,
            tier,
            start,
            max(row[1] for row in rows),
            sum(row[2] for row in rows),
            zlib.compress(orjson.dumps(entries)),
            orjson.dumps(summary_to_list(merged)),
        )

    def _prune_step(self) -> None:
        db = self._db
        now_ms = self._closed_until or round(time.time() * 1000)
        deleted = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for tier in (0, 1, 2):
                cutoff = now_ms - round(self._retention.of_tier(tier) * 1000)
                deleted += db.execute(
                    "DELETE FROM chunks WHERE rowid IN (SELECT rowid FROM chunks "
                    "WHERE tier = ? AND end_ms < ? LIMIT ?)",
                    (tier, cutoff, _PRUNE_SLICE),
                ).rowcount
            cutoff = now_ms - round(self._retention.hour_s * 1000)
            deleted += db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE t_ms < ? LIMIT ?)",
                (cutoff, _PRUNE_SLICE),
            ).rowcount
            if self._retention.max_bytes and self._used_bytes() > self._retention.max_bytes:
                deleted += self._drop_oldest()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if deleted:
            db.execute("PRAGMA incremental_vacuum(1000)")

    def _used_bytes(self) -> int:
        db = self._db
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * page

    def _drop_oldest(self) -> int:
        """Over the size cap: drop the oldest rows of the finest tier that holds any, raw
        rows already rolled up first (their minutes live on in the tier above)."""
        db = self._db
        for tier in (0, 1, 2):
            rolled = self._watermark(tier + 1) if tier < 2 else None
            bound = "AND start_ms < ?" if rolled is not None else ""
            params: tuple[int, ...] = (tier, rolled) if rolled is not None else (tier,)
            count = db.execute(
                "DELETE FROM chunks WHERE rowid IN (SELECT rowid FROM chunks WHERE tier = ? "
                f"{bound} ORDER BY start_ms LIMIT {_PRUNE_SLICE})",
                params,
            ).rowcount
            if count:
                return int(count)
        return 0

    # --- start: pick up where the last run stopped ----------------------------------------

    def _load(self) -> None:
        db = self._db
        for sid, kind, key, last_ms in db.execute("SELECT id, kind, key, last_ms FROM series"):
            figures = FIGURES[kind]
            series = _Series(sid, kind, figures, [None] * len(figures), last_ms)
            self._series[(kind, key)] = series
            self._by_id[sid] = series
            self._next_id = max(self._next_id, sid + 1)
        # The minute that was open when the last run stopped (or crashed) goes on from its
        # recent rows.
        for sid, t_ms, data in db.execute("SELECT series_id, t_ms, data FROM recent ORDER BY t_ms"):
            self._append(sid, t_ms, unpacked(data))
            minute = t_ms - t_ms % MINUTE_MS
            self._minute = minute if self._minute is None else max(self._minute, minute)
        newest = db.execute("SELECT MAX(start_ms) FROM chunks WHERE tier = 0").fetchone()[0]
        if newest is not None:
            self._closed_until = newest + MINUTE_MS
