"""What a history database holds and what it costs: ``peerscope db info``, and the API
could serve the same.

A sample is one figure's value at one time (as Prometheus counts them, and the writer's
``samples``): a tick of a peer is eleven. A tier's bytes are what its rows store (each
row's compressed data and its summary, the bucket the tier above is built from), SQLite's
own pages and indexes aside; the whole file's cost shows as its size over the raw samples.
A bucket tier's samples are the raw samples its buckets summarise.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TypedDict

from peerscope.core.rollup import FIGURES

__all__ = ["DatabaseInfo", "RecentInfo", "TierInfo", "inspect_database"]

TIER_NAMES = ("raw", "1m", "1h")


class TierInfo(TypedDict):
    tier: str  # raw, 1m or 1h
    rows: int
    samples: int
    data_bytes: int
    summary_bytes: int
    bytes_per_sample: float | None  # (data + summary) / samples; None without samples
    oldest: float | None  # epoch seconds of its first point; None when empty
    newest: float | None


class RecentInfo(TypedDict):
    """The ``recent`` rows: samples as they came (eight bytes a figure), kept until their
    minute is written as a chunk of the raw tier."""

    rows: int
    samples: int  # those not yet in a chunk
    bytes: int


class DatabaseInfo(TypedDict):
    path: str | None
    file_bytes: int | None  # the file and its -wal on disk (None without a path)
    wal_bytes: int | None
    database_bytes: int  # SQLite's pages
    free_bytes: int  # pages free for reuse (a vacuum gives them back)
    schema_version: int
    anonymized: bool  # peer ids kept as salted hashes
    series: dict[str, int]  # by kind: peer, host, server
    events: dict[str, int]  # by type: status, removed, session_started, alert, ...
    tiers: list[TierInfo]
    recent: RecentInfo
    raw_samples: int  # the raw tier's and the open minute's
    file_bytes_per_raw_sample: float | None


def _per_sample(size: int, samples: int) -> float | None:
    return size / samples if samples else None


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


def inspect_database(connection: sqlite3.Connection, path: Path | None = None) -> DatabaseInfo:
    """What the database of ``connection`` holds; with its ``path``, the file's size on disk
    too. Reads in one transaction: one state of the file, whatever a writer does."""
    db = connection
    db.execute("BEGIN")
    try:
        return _inspect(db, path)
    finally:
        db.execute("COMMIT")


def _inspect(db: sqlite3.Connection, path: Path | None) -> DatabaseInfo:
    widths = {kind: len(figures) for kind, figures in FIGURES.items()}
    page = int(db.execute("PRAGMA page_size").fetchone()[0])
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    tiers = [
        TierInfo(
            tier=name,
            rows=0,
            samples=0,
            data_bytes=0,
            summary_bytes=0,
            bytes_per_sample=None,
            oldest=None,
            newest=None,
        )
        for name in TIER_NAMES
    ]
    oldest: list[int | None] = [None] * len(tiers)
    newest: list[int | None] = [None] * len(tiers)
    for tier, kind, rows, times, data, summary, first, last in db.execute(
        "SELECT c.tier, s.kind, COUNT(*), SUM(c.samples), SUM(LENGTH(c.data)), "
        "SUM(LENGTH(c.summary)), MIN(c.start_ms), MAX(c.end_ms) "
        "FROM chunks c JOIN series s ON s.id = c.series_id GROUP BY c.tier, s.kind"
    ):
        if not 0 <= tier < len(tiers) or kind not in widths:
            continue  # not something this version writes
        info = tiers[tier]
        info["rows"] += rows
        info["samples"] += times * widths[kind]
        info["data_bytes"] += data
        info["summary_bytes"] += summary
        oldest[tier] = first if oldest[tier] is None else min(first, oldest[tier])
        newest[tier] = last if newest[tier] is None else max(last, newest[tier])
    recent = RecentInfo(rows=0, samples=0, bytes=0)
    # A recent row at or before its series' newest chunk is already in that chunk (the
    # writer deletes such rows when the next minute ends): stored, but not a sample more.
    for kind, rows, pending, size, first, last in db.execute(
        "SELECT s.kind, COUNT(*), SUM(r.t_ms > COALESCE((SELECT c.end_ms FROM chunks c "
        "WHERE c.series_id = r.series_id AND c.tier = 0 ORDER BY c.start_ms DESC LIMIT 1), "
        "-1)), SUM(LENGTH(r.data)), MIN(r.t_ms), MAX(r.t_ms) "
        "FROM recent r JOIN series s ON s.id = r.series_id GROUP BY s.kind"
    ):
        if kind not in widths:
            continue
        recent["rows"] += rows
        recent["samples"] += pending * widths[kind]
        recent["bytes"] += size
        # Samples of the raw tier, not yet compressed.
        oldest[0] = first if oldest[0] is None else min(first, oldest[0])
        newest[0] = last if newest[0] is None else max(last, newest[0])
    for k, info in enumerate(tiers):
        info["bytes_per_sample"] = _per_sample(
            info["data_bytes"] + info["summary_bytes"], info["samples"]
        )
        info["oldest"] = _seconds(oldest[k])
        info["newest"] = _seconds(newest[k])
    file_bytes = wal_bytes = None
    if path is not None:
        wal = Path(f"{path}-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        file_bytes = path.stat().st_size + wal_bytes
    raw_samples = tiers[0]["samples"] + recent["samples"]
    salt = db.execute("SELECT 1 FROM meta WHERE key = 'salt'").fetchone()
    return DatabaseInfo(
        path=None if path is None else str(path),
        file_bytes=file_bytes,
        wal_bytes=wal_bytes,
        database_bytes=pages * page,
        free_bytes=free * page,
        schema_version=int(db.execute("PRAGMA user_version").fetchone()[0]),
        anonymized=salt is not None,
        series=dict(db.execute("SELECT kind, COUNT(*) FROM series GROUP BY kind ORDER BY kind")),
        events=dict(db.execute("SELECT type, COUNT(*) FROM events GROUP BY type ORDER BY type")),
        tiers=tiers,
        recent=recent,
        raw_samples=raw_samples,
        file_bytes_per_raw_sample=_per_sample(
            pages * page if file_bytes is None else file_bytes, raw_samples
        ),
    )
