"""Rollups, retention and the size cap: the writer thread's work between flushes.

Each :meth:`Maintenance.step` is small (a few milliseconds): it rolls one period of up to
``_ROLLUP_SLICE`` series into the tier above, then deletes at most ``_PRUNE_SLICE`` rows
that retention or the size cap no longer allow. A row is pruned for age only once the tier
above holds its period (``rolled_<tier>`` in ``meta`` is the end of what it holds), so a
short retention never loses a minute before it is rolled up. Over the size cap, rows
already rolled up go first (raw minutes, then 1-minute buckets: their periods live on in
the tier above), then the oldest rows of any tier.
"""

from __future__ import annotations

import sqlite3
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from peerscope.core.rollup import (
    FIGURES,
    SeriesKind,
    merge_summaries,
    summary_from_list,
    summary_to_list,
)

__all__ = ["MINUTE_MS", "TIER_SPANS", "Maintenance", "Retention"]

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# A tier-k row spans TIER_SPANS[k]; its entries are buckets of TIER_SPANS[k - 1]'s rows'
# span (raw rows hold samples; their summary is a 1-minute bucket).
TIER_SPANS = (MINUTE_MS, HOUR_MS, DAY_MS)
_ROLLUP_SLICE = 200  # series rolled per step: a step stays a few milliseconds
_PRUNE_SLICE = 2_000  # rows deleted per step
# Over the size cap rows go this many at a time, the size read again after each batch:
# the cap holds to within a batch, not a whole slice.
_CAP_BATCH = 50


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
class _Rollup:
    tier: int
    start_ms: int
    series: list[tuple[int, SeriesKind]]


class Maintenance:
    """Rollup and pruning on the writer's ``connection`` (its thread only)."""

    def __init__(self, connection: sqlite3.Connection, retention: Retention) -> None:
        self._db = connection
        self._retention = retention
        self._job: _Rollup | None = None

    def step(self, complete_until: int | None, now_ms: int | None) -> bool:
        """One step of rollup and one of pruning; True if either changed anything.

        ``complete_until``: raw minutes before it are all committed (None: none yet);
        ``now_ms``: the time retention counts back from (the data's own clock, so a
        simulated one works; the wall clock when None)."""
        rolled = self._roll_step(complete_until)
        pruned = self._prune_step(round(time.time() * 1000) if now_ms is None else now_ms)
        return rolled or pruned

    def rolled_until(self, tier: int) -> int | None:
        """The end of the periods rolled up into ``tier`` (None: none yet)."""
        found = self._db.execute(
            "SELECT value FROM meta WHERE key = ?", (f"rolled_{tier}",)
        ).fetchone()
        return None if found is None else int(found[0])

    # --- rollup ---------------------------------------------------------------------------

    def _roll_start(self, tier: int) -> int | None:
        """Where ``tier``'s rollup goes on: after what it rolled, or at the start of the
        period of the oldest row below it (a first row mid-hour rolls from the hour)."""
        rolled = self.rolled_until(tier)
        if rolled is not None:
            return rolled
        # MIN(end_ms) is read from the (tier, end_ms) index; a row ends in its own period.
        first = self._db.execute(
            "SELECT MIN(end_ms) FROM chunks WHERE tier = ?", (tier - 1,)
        ).fetchone()[0]
        span = TIER_SPANS[tier]
        return None if first is None else int(first) - int(first) % span

    def _roll_step(self, complete_until: int | None) -> bool:
        """Roll up to _ROLLUP_SLICE series of the next complete period; True if it did."""
        job = self._job
        if job is None:
            for tier in (1, 2):
                start = self._roll_start(tier)
                until = complete_until if tier == 1 else self.rolled_until(1)
                span = TIER_SPANS[tier]
                if start is None or until is None or start + span > until:
                    continue
                series = self._db.execute(
                    "SELECT DISTINCT c.series_id, s.kind FROM chunks AS c "
                    "JOIN series AS s ON s.id = c.series_id "
                    "WHERE c.tier = ? AND c.start_ms >= ? AND c.start_ms < ?",
                    (tier - 1, start, start + span),
                ).fetchall()
                if not series:
                    self._skip_empty(tier, start, until)
                    return True
                job = self._job = _Rollup(tier, start, series)
                break
            else:
                return False
        batch, job.series = job.series[:_ROLLUP_SLICE], job.series[_ROLLUP_SLICE:]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for sid, kind in batch:
                row = self._rolled_row(sid, kind, job.tier, job.start_ms)
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
                self._job = None
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._job = None
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

    def _rolled_row(
        self, sid: int, kind: SeriesKind, tier: int, start: int
    ) -> tuple[Any, ...] | None:
        rows = self._db.execute(
            "SELECT start_ms, end_ms, samples, summary FROM chunks "
            "WHERE series_id = ? AND tier = ? AND start_ms >= ? AND start_ms < ? "
            "ORDER BY start_ms",
            (sid, tier - 1, start, start + TIER_SPANS[tier]),
        ).fetchall()
        if not rows:
            return None
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

    # --- retention and the size cap -------------------------------------------------------

    def _prune_step(self, now_ms: int) -> bool:
        db = self._db
        retention = self._retention
        deleted = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for tier in (0, 1, 2):
                cutoff = now_ms - round(retention.of_tier(tier) * 1000)
                if tier < 2:
                    rolled = self.rolled_until(tier + 1)
                    if rolled is None:
                        continue
                    cutoff = min(cutoff, rolled)
                deleted += db.execute(
                    "DELETE FROM chunks WHERE rowid IN (SELECT rowid FROM chunks "
                    "WHERE tier = ? AND end_ms < ? ORDER BY end_ms LIMIT ?)",
                    (tier, cutoff, _PRUNE_SLICE),
                ).rowcount
            cutoff = now_ms - round(retention.hour_s * 1000)
            deleted += db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE t_ms < ? LIMIT ?)",
                (cutoff, _PRUNE_SLICE),
            ).rowcount
            if retention.max_bytes:
                deleted += self._cap(retention.max_bytes)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if deleted:
            # Give the freed pages back to the file system (auto_vacuum = INCREMENTAL).
            db.execute("PRAGMA incremental_vacuum")
        return deleted > 0

    def _used_bytes(self) -> int:
        """The bytes of the file's pages in use (the size cap's measure)."""
        db = self._db
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * page

    def _cap(self, max_bytes: int) -> int:
        deleted = 0
        while deleted < _PRUNE_SLICE and self._used_bytes() > max_bytes:
            count = self._drop_oldest(_CAP_BATCH)
            if not count:
                break
            deleted += count
        return deleted

    def _drop_oldest(self, limit: int) -> int:
        """Delete up to ``limit`` rows: rolled-up raw minutes first, then rolled-up minute
        buckets (the tier above holds their periods), then the oldest rows of any tier."""
        db = self._db
        for tier in (0, 1):
            rolled = self.rolled_until(tier + 1)
            if rolled is None:
                continue
            count = db.execute(
                "DELETE FROM chunks WHERE rowid IN (SELECT rowid FROM chunks "
                "WHERE tier = ? AND end_ms < ? ORDER BY end_ms LIMIT ?)",
                (tier, rolled, limit),
            ).rowcount
            if count:
                return int(count)
        oldest = min(
            (
                (end, tier)
                for tier in (0, 1, 2)
                for (end,) in db.execute("SELECT MIN(end_ms) FROM chunks WHERE tier = ?", (tier,))
                if end is not None
            ),
            default=None,
        )
        if oldest is None:
            return 0
        return int(
            db.execute(
                "DELETE FROM chunks WHERE rowid IN (SELECT rowid FROM chunks "
                "WHERE tier = ? ORDER BY end_ms LIMIT ?)",
                (oldest[1], limit),
            ).rowcount
        )
