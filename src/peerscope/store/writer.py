"""The one thread that writes the history database.

The event loop only puts items on a bounded queue (a full queue drops the item and counts
it: the loop never waits on the disk). The thread folds ticks into each series' open minute,
and at every flush, in one transaction, writes the minute's new samples to ``recent``, any
minute that ended as a compressed chunk (deleting its ``recent`` rows) and the events.
Between flushes it rolls up and prunes in small steps (:mod:`peerscope.store.maintenance`).

A write that fails (a full disk, a file gone read-only) is reported by :attr:`Writer.error`
and nothing committed before is touched; what it could not write is kept for the next
flush: the open minute's samples, new series, names and events, and the chunks of up to
``_KEPT_MINUTES`` minutes that ended: the first (part of it may be in ``recent`` already,
which its chunk replaces) and the newest. The ones between are given up and counted, so
memory stays bounded however long the disk stays full.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from peerscope.core.chunk import encode_chunk, quantized
from peerscope.core.rollup import (
    FIGURES,
    CounterSummary,
    Figure,
    SeriesKind,
    summarize,
    summary_from_list,
    summary_to_list,
)
from peerscope.events import MetricsTick
from peerscope.profiler import profile
from peerscope.store.database import StoreError
from peerscope.store.intake import PeerKeys, PeerMeta, StoredEvent, tick_samples
from peerscope.store.maintenance import MINUTE_MS, TIER_SPANS, Maintenance, Retention

__all__ = ["TIER_SPANS", "Retention", "Writer", "WriterStats"]

log = logging.getLogger("peerscope.store")

_KEPT_MINUTES = 15  # closed minutes' chunks kept through failed flushes
_KEPT_EVENTS = 10_000  # events kept through failed flushes
_CATCH_UP_STEPS = 100_000  # a bound on catch_up(), far above any real backlog
_MAX_MS = 2**62  # SQLite's integers (and a chunk's times) are 64-bit


@dataclass(slots=True)
class _OpenMinute:
    """A series' samples in the minute still open: its times, and every sample's figures
    one after the other (one extend per sample; split into columns when the minute ends)."""

    width: int
    times: list[int] = field(default_factory=list)
    flat: list[float | None] = field(default_factory=list)

    @property
    def columns(self) -> list[list[float | None]]:
        flat, width = self.flat, self.width
        return [flat[k::width] for k in range(width)]


@dataclass(slots=True)
class _Series:
    series_id: int
    kind: SeriesKind
    figures: tuple[Figure, ...]
    counters_before: list[float | None]
    first_ms: int
    last_ms: int


@dataclass(slots=True)
class WriterStats:
    """What the writer did. ``dropped``: items refused by a full queue; ``late``: ticks not
    after the newest one kept (the clock stepped back), not stored; ``lost_chunks`` and
    ``lost_events``: what failed flushes gave up beyond what is kept for the next one;
    ``committed_until``: the time of the newest tick whose samples are committed."""

    samples: int = 0
    chunks: int = 0
    flushes: int = 0
    dropped: int = 0
    late: int = 0
    failed_flushes: int = 0
    lost_chunks: int = 0
    lost_events: int = 0
    last_flush_at: float | None = None
    committed_until: float | None = None


_STOP = object()


def unpacked(data: bytes) -> list[float | None]:
    """A ``recent`` row's figures (None where absent): a JSON array, written by orjson
    (three times faster than packing doubles with NaN for absent; it keeps every float's
    shortest round-trip form, so nothing is lost)."""
    values: list[float | None] = orjson.loads(data)
    return values


def _ms(timestamp: float) -> int:
    """``timestamp`` (epoch seconds) in ms; ValueError naming it if no row can hold it
    (checked as it comes in: a flush that failed on it would fail again every time)."""
    try:
        t_ms = round(timestamp * 1000)
    except (ValueError, OverflowError):  # NaN, infinities
        t_ms = _MAX_MS
    if not -_MAX_MS < t_ms < _MAX_MS:
        raise ValueError(f"timestamp: {timestamp!r} is not a time the store can keep")
    return t_ms


def _finite(values: tuple[float | None, ...]) -> tuple[float | None, ...]:
    """``values`` with NaN and infinities as absent: a chunk keeps finite numbers only."""
    total = sum(filter(None, values))
    if total - total == 0.0:  # a NaN or an infinity anywhere makes the sum one, and this NaN
        return values
    return tuple(None if v is None or not math.isfinite(v) else v for v in values)


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
        self._maintenance = Maintenance(connection, retention or Retention())
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self.stats = WriterStats()
        self.error: str | None = None
        self._series: dict[tuple[str, str], _Series] = {}
        self._by_id: dict[int, _Series] = {}
        self._next_id = 1
        self._open: dict[int, _OpenMinute] = {}
        self._minute: int | None = None
        self._last_ms: int | None = None  # the newest tick taken
        self._closed_until: int | None = None  # minutes before this are closed
        self._committed_until: int | None = None  # ... and their chunks committed
        self._pending: deque[list[tuple[Any, ...]]] = deque()  # closed minutes' chunk rows
        self._new_series: list[tuple[_Series, str]] = []
        self._metas: dict[str, tuple[Any, ...]] = {}
        self._recent: list[tuple[int, int, bytes]] = []
        self._events: list[tuple[int, str, int | None, str]] = []
        self._measured: dict[str, float] = {}  # per peer, when its newest kept sample was taken
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="peerscope-store", daemon=True)
        self._load()

    # --- the loop's side ----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: MetricsTick | PeerMeta | StoredEvent) -> bool:
        """Queue ``item`` for the thread; False when the queue is full (counted in
        ``stats.dropped``) or the writer stopped."""
        if self._stopped:
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.dropped += 1
            return False
        return True

    def call(self, job: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``job`` on the writer thread after everything queued before it (blocking).
        :class:`StoreError` once the writer stopped; TimeoutError if it does not answer."""
        if self._stopped or not self._thread.is_alive():
            raise StoreError(f"db: {self._path} is closed")
        done = threading.Event()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, job()))
            except BaseException as error:  # handed back to the caller, raised there
                outcome.append((False, error))
            finally:
                done.set()

        try:
            self._queue.put(run, timeout=timeout)
        except queue.Full:
            raise TimeoutError(f"db: the writer did not answer within {timeout} s") from None
        if not done.wait(timeout):
            raise TimeoutError(f"db: the writer did not answer within {timeout} s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def flush(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, and wait until it is committed (or failed:
        see :attr:`error`)."""
        self.call(self._flush, timeout)

    def catch_up(self, timeout: float = 60.0) -> None:
        """:meth:`flush`, then roll up and prune until nothing more is due (blocking: for
        tests, maintenance commands and shutdown)."""

        def run() -> None:
            self._flush()
            for _ in range(_CATCH_UP_STEPS):
                if not self._step():
                    return

        self.call(run, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what is queued, then end the thread and close the connection. A second
        call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):  # stalled past it: join() tells
                self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Closing a connection another thread is using is not safe: it is left to
                # the (daemon) thread, and what it still holds is lost with the process.
                log.error("db: the writer of %s did not stop within %s s", self._path, timeout)
                return
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
                self._guarded(self._flush)
                return
            if item is not None:
                self._guarded(self._take, item)
            if time.monotonic() >= deadline:
                self._guarded(self._flush)
                self._guarded(self._step)
                deadline = time.monotonic() + self._flush_interval

    def _guarded(self, work: Callable[..., object], *args: object) -> None:
        """Run ``work``; a bug in it is logged and reported, never the end of the thread
        (which would leave the queue to fill and every later flush undone)."""
        try:
            work(*args)
        except Exception as error:
            if self._db.in_transaction:  # else every later BEGIN fails
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            message = f"db: {self._path}: the writer failed: {error!r}"
            if message != self.error:
                log.exception("%s", message)
            self.error = message

    def _take(self, item: object) -> None:
        if isinstance(item, MetricsTick):
            self._ingest(item)
        elif isinstance(item, PeerMeta):
            key = self._keys.key(item.peer_id)
            self._series_of("peer", key, _ms(item.timestamp))
            self._metas[key] = self._meta_row(item, key)
        elif isinstance(item, StoredEvent):
            self._take_event(item)
        elif callable(item):
            item()

    def _take_event(self, item: StoredEvent) -> None:
        t_ms = _ms(item.timestamp)
        sid = None
        if item.peer_id is not None:
            sid = self._series_of("peer", self._keys.key(item.peer_id), t_ms).series_id
        self._events.append((t_ms, item.type, sid, orjson.dumps(dict(item.data)).decode()))

    def _series_of(self, kind: SeriesKind, key: str, t_ms: int) -> _Series:
        found = self._series.get((kind, key))
        if found is None:
            figures = FIGURES[kind]
            found = _Series(self._next_id, kind, figures, [None] * len(figures), t_ms, t_ms)
            self._next_id += 1
            self._series[(kind, key)] = found
            self._by_id[found.series_id] = found
            self._new_series.append((found, key))
        return found

    def _ingest(self, tick: MetricsTick) -> None:
        t_ms = _ms(tick.timestamp)
        if self._last_ms is not None and t_ms <= self._last_ms:
            # Its minute may already be a chunk, which a second one would replace.
            self.stats.late += 1
            return
        self._last_ms = t_ms
        self._advance(t_ms)
        recent = self._recent.append
        dumps = orjson.dumps
        samples = 0
        for kind, key, values in tick_samples(tick, self._keys, self._measured):
            values = _finite(values)
            series = self._series_of(kind, key, t_ms)
            series.last_ms = t_ms
            self._append(series.series_id, t_ms, values)
            recent((series.series_id, t_ms, dumps(values)))
            samples += len(values)
        self.stats.samples += samples

    def _advance(self, t_ms: int) -> None:
        """Enter ``t_ms``'s minute, closing the open one if this is a later one."""
        minute = t_ms - t_ms % MINUTE_MS
        if self._minute is not None and minute > self._minute:
            self._close_minute(minute)
        if self._minute is None or minute > self._minute:
            self._minute = minute

    def _append(self, sid: int, t_ms: int, values: Sequence[float | None]) -> None:
        open_minute = self._open.get(sid)
        if open_minute is None:
            open_minute = self._open[sid] = _OpenMinute(len(values))
        elif len(values) != open_minute.width:
            raise ValueError(f"values: {len(values)} figures for a series of {open_minute.width}")
        open_minute.times.append(t_ms)
        open_minute.flat.extend(values)

    def _close_minute(self, next_minute: int) -> None:
        """Every open minute becomes a chunk, written at the next flush."""
        rows = []
        for sid, minute in self._open.items():
            try:
                rows.append(self._chunk_row(self._by_id[sid], minute))
            except (ValueError, OverflowError) as error:  # beyond what a chunk holds
                self.stats.lost_chunks += 1
                log.error("db: %s: a minute of series %d is not kept: %s", self._path, sid, error)
        if rows:
            self._pending.append(rows)
        self._open = {}
        self._closed_until = next_minute

    def _chunk_row(self, series: _Series, minute: _OpenMinute) -> tuple[Any, ...]:
        figures = series.figures
        scales = [figure.scale for figure in figures]
        columns = minute.columns
        data = encode_chunk(minute.times, columns, scales)
        # The summary is of the values as the chunk keeps them: a tier above says what
        # the raw samples say, to the last digit.
        kept = [quantized(column, scale) for column, scale in zip(columns, scales, strict=True)]
        summary = summarize(figures, kept, series.counters_before)
        for k, column in enumerate(kept):
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

    def _meta_row(self, meta: PeerMeta, key: str) -> tuple[Any, ...]:
        anonymous = self._keys.anonymized
        return (
            None if anonymous else meta.name,
            None if anonymous else meta.address,
            meta.kind,
            orjson.dumps(dict(meta.labels)).decode(),
            key,
        )

    # --- flush --------------------------------------------------------------------------

    @profile(name="peerscope:store_flush", cpu=True)
    def _flush(self) -> None:
        closed = self._closed_until
        recent = self._recent
        if closed is not None and recent and recent[0][1] < closed:
            # Samples of closed minutes are in their chunks; written to ``recent`` again
            # they would outlive the DELETE below, and a restart would read them twice.
            recent = [row for row in recent if row[1] >= closed]
        self._recent = recent
        chunks = [row for rows in self._pending for row in rows]
        new_series, metas, events = self._new_series, self._metas, self._events
        if not (chunks or new_series or metas or recent or events):
            return
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO series (id, kind, key, first_ms, last_ms) VALUES (?, ?, ?, ?, ?)",
                [(s.series_id, s.kind, key, s.first_ms, s.last_ms) for s, key in new_series],
            )
            db.executemany(
                "UPDATE series SET name = ?, address = ?, peer_kind = ?, labels = ? "
                "WHERE kind = 'peer' AND key = ?",
                list(metas.values()),
            )
            db.executemany(
                "INSERT OR REPLACE INTO chunks "
                "(series_id, tier, start_ms, end_ms, samples, data, summary) "
                "VALUES (?, 0, ?, ?, ?, ?, ?)",
                chunks,
            )
            if chunks:
                db.execute("DELETE FROM recent WHERE t_ms < ?", (closed,))
            db.executemany("INSERT OR REPLACE INTO recent VALUES (?, ?, ?)", recent)
            db.executemany(
                "INSERT INTO events (t_ms, type, series_id, data) VALUES (?, ?, ?, ?)", events
            )
            # Once a minute, not every flush (a third of a flush's cost): until then the
            # open minute's newest sample, in ``recent``, says when a series was last seen.
            db.executemany(
                "UPDATE series SET last_ms = ? WHERE id = ?",
                [(self._by_id[sid].last_ms, sid) for sid in dict.fromkeys(r[0] for r in chunks)],
            )
            db.execute("COMMIT")
        except sqlite3.Error as error:
            self._failed(error)
            self._trim()
            return
        self._recent, self._new_series, self._metas, self._events = [], [], {}, []
        self._pending.clear()
        if chunks:
            self._committed_until = closed
        stats = self.stats
        stats.flushes += 1
        stats.chunks += len(chunks)
        stats.last_flush_at = time.time()
        if self._last_ms is not None:
            stats.committed_until = self._last_ms / 1000.0
        self.error = None

    def _failed(self, error: sqlite3.Error) -> None:
        with contextlib.suppress(sqlite3.Error):  # none is open when BEGIN itself failed
            self._db.execute("ROLLBACK")
        message = f"db: cannot write {self._path}: {error}; going on in memory"
        if message != self.error:
            log.error("%s", message)
        self.error = message
        self.stats.failed_flushes += 1

    def _trim(self) -> None:
        """After a failed flush: keep what the next one should write, within bounds."""
        while len(self._pending) > _KEPT_MINUTES:
            # Not the first: only it can have samples committed (in ``recent``, before
            # writing failed), which the flush that writes the others would delete.
            self.stats.lost_chunks += len(self._pending[1])
            del self._pending[1]
        excess = len(self._events) - _KEPT_EVENTS
        if excess > 0:
            del self._events[:excess]
            self.stats.lost_events += excess

    # --- maintenance --------------------------------------------------------------------

    def _step(self) -> bool:
        """One step of rollup and pruning; True if it changed anything."""
        try:
            return self._maintenance.step(self._committed_until, self._committed_until)
        except sqlite3.Error as error:
            self._failed(error)
            return False

    # --- start: pick up where the last run stopped ----------------------------------------

    def _load(self) -> None:
        db = self._db
        for sid, kind, key, first_ms, last_ms in db.execute(
            "SELECT id, kind, key, first_ms, last_ms FROM series"
        ):
            figures = FIGURES[kind]
            series = _Series(sid, kind, figures, [None] * len(figures), first_ms, last_ms)
            self._series[(kind, key)] = series
            self._by_id[sid] = series
            self._next_id = max(self._next_id, sid + 1)
        newest = db.execute("SELECT MAX(start_ms) FROM chunks WHERE tier = 0").fetchone()[0]
        if newest is not None:
            self._closed_until = self._committed_until = newest + MINUTE_MS
        ends = [
            end
            for tier in range(len(TIER_SPANS))
            for (end,) in db.execute("SELECT MAX(end_ms) FROM chunks WHERE tier = ?", (tier,))
            if end is not None
        ]
        self._last_ms = max(ends, default=None)
        self._load_counters()
        # The minutes still in ``recent`` when the last run stopped (or crashed) go on:
        # the newest stays open, any before it (flushes failed) close as their chunks.
        committed = self._committed_until
        for sid, t_ms, data in db.execute(
            "SELECT series_id, t_ms, data FROM recent ORDER BY t_ms, series_id"
        ).fetchall():
            if sid not in self._by_id or (committed is not None and t_ms < committed):
                continue  # already in a chunk (or of no series): not taken twice
            self._advance(t_ms)
            values = unpacked(data)
            # A row written before a figure was added lacks it: absent.
            values += [None] * (len(self._by_id[sid].figures) - len(values))
            self._append(sid, t_ms, _finite(tuple(values)))
            series = self._by_id[sid]
            series.last_ms = max(series.last_ms, t_ms)
            self._last_ms = t_ms if self._last_ms is None else max(self._last_ms, t_ms)
        if committed is not None:
            db.execute("DELETE FROM recent WHERE t_ms < ?", (committed,))
        self.stats.committed_until = None if self._last_ms is None else self._last_ms / 1000.0

    def _load_counters(self) -> None:
        """Each counter's last value before the open minute, from its series' newest chunk,
        so the rise across a restart (the new run's counters start again from zero: a
        reset) is counted in the first minute after it."""
        db = self._db
        for series in self._by_id.values():
            if not any(figure.kind == "counter" for figure in series.figures):
                continue
            row = db.execute(
                "SELECT summary FROM chunks WHERE series_id = ? AND tier = 0 "
                "ORDER BY start_ms DESC LIMIT 1",
                (series.series_id,),
            ).fetchone()
            if row is None:
                continue
            for k, part in enumerate(summary_from_list(series.figures, orjson.loads(row[0]))):
                if isinstance(part, CounterSummary):
                    series.counters_before[k] = part.last
