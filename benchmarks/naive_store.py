"""The comparison for ``bench_store``: one SQLite row per sample, as Uptime Kuma-style
monitors keep their history, and the same queries answered from it.

The table is ``samples(series TEXT, figure TEXT, t REAL, value REAL)`` with an index on
``(series, figure, t)``, in WAL mode with ``synchronous = NORMAL`` like the store. Its
queries are the straightforward ones: a range of rows; buckets with quantiles by fetching
the rows and sorting each bucket (SQLite has no percentile function); buckets of counts,
extremes and means by SQL's GROUP BY, computed inside SQLite.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

Row = tuple[str, str, float, float]
QUANTILES = (0.5, 0.95, 0.99)


class NaiveTable:
    """A row-per-sample history in the SQLite file at ``path`` (created afresh)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("CREATE TABLE samples (series TEXT, figure TEXT, t REAL, value REAL)")
        self._db.execute("CREATE INDEX samples_by_series ON samples (series, figure, t)")
        self.rows = 0

    def insert(self, rows: Iterable[Row]) -> None:
        """One transaction of rows (a batch, as a monitor committing every so often)."""
        self._db.execute("BEGIN")
        before = self._db.total_changes
        self._db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")
        self.rows += self._db.total_changes - before

    def fill(
        self,
        series: str,
        figure: str,
        values: Sequence[float | None],
        first: float,
        since: float,
        until: float,
    ) -> None:
        """One figure's samples: ``values`` one a second from ``first`` (None: absent),
        repeated to ``until``, the rows of ``since <= t < until`` kept; made inside SQLite
        in the index's order, so a month goes in in seconds."""
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS pool (offset INTEGER PRIMARY KEY, value)")
        self._db.execute("DELETE FROM pool")
        self._db.executemany(
            "INSERT INTO pool VALUES (?, ?)",
            [(offset, value) for offset, value in enumerate(values) if value is not None],
        )
        period = len(values)
        self._db.execute("BEGIN")
        before = self._db.total_changes
        self._db.execute(
            "INSERT INTO samples WITH RECURSIVE turn (k) AS (SELECT 0 UNION ALL "
            "SELECT k + 1 FROM turn WHERE k < ?) "
            "SELECT ?, ?, ? + turn.k * ? + pool.offset AS t, pool.value FROM turn, pool "
            "WHERE t >= ? AND t < ? ORDER BY turn.k, pool.offset",
            (math.ceil((until - first) / period), series, figure, first, period, since, until),
        )
        self._db.execute("COMMIT")
        self.rows += self._db.total_changes - before

    def size(self) -> int:
        """The file's bytes once the WAL is folded into it."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return os.path.getsize(self.path)

    def close(self) -> None:
        self._db.close()

    # --- the queries ----------------------------------------------------------------------

    def samples(
        self, series: str, start: float, end: float
    ) -> dict[str, list[tuple[float, float]]]:
        """Every figure's rows of ``start < t <= end``, oldest first."""
        out: dict[str, list[tuple[float, float]]] = {}
        for figure, t, value in self._db.execute(
            "SELECT figure, t, value FROM samples WHERE series = ? AND t > ? AND t <= ? "
            "ORDER BY figure, t",
            (series, start, end),
        ):
            out.setdefault(figure, []).append((t, value))
        return out

    def quantile_buckets(
        self, series: str, figure: str, start: float, end: float, step: float
    ) -> list[dict[str, float]]:
        """``step``-second buckets of one figure with count, min, max, mean and quantiles
        (the value at rank ``floor(q * (n - 1))``, as the store's sketch reads them)."""
        groups: dict[int, list[float]] = {}
        for t, value in self._db.execute(
            "SELECT t, value FROM samples WHERE series = ? AND figure = ? AND t >= ? AND t < ?",
            (series, figure, start, end),
        ):
            groups.setdefault(int((t - start) // step), []).append(value)
        out: list[dict[str, float]] = []
        for index in sorted(groups):
            values = sorted(groups[index])
            n = len(values)
            bucket = {
                "timestamp": start + index * step,
                "count": n,
                "min": values[0],
                "max": values[-1],
                "avg": math.fsum(values) / n,
            }
            for q in QUANTILES:
                bucket[f"p{round(q * 100)}"] = values[math.floor(q * (n - 1))]
            out.append(bucket)
        return out

    def mean_buckets(
        self, series: str, figures: Sequence[str], start: float, end: float, step: float
    ) -> list[tuple[str, int, int, float, float, float]]:
        """``step``-second buckets of each figure: count, min, max and mean, by GROUP BY."""
        marks = ", ".join("?" * len(figures))
        return self._db.execute(
            "SELECT figure, CAST((t - ?) / ? AS INTEGER) AS bucket, COUNT(*), MIN(value), "
            f"MAX(value), AVG(value) FROM samples WHERE series = ? AND figure IN ({marks}) "
            "AND t >= ? AND t < ? GROUP BY figure, bucket ORDER BY figure, bucket",
            (start, step, series, *figures, start, end),
        ).fetchall()
