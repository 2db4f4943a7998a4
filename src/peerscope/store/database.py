"""Where the history database lives, opening it safely, and its schema and migrations.

Opening never loses what is stored: a file SQLite cannot read as a database, or one that
fails its quick check, is moved aside (``<name>.corrupt-<time>``, with its ``-wal`` and
``-shm``), never deleted, and a new one started in its place. A path that cannot be written
(a read-only directory, a missing mount) is a :class:`StoreError` naming the path, and the
caller goes on without a store.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import sqlite3
import time
from array import array
from collections.abc import Callable
from pathlib import Path

import orjson

__all__ = [
    "MEMORY",
    "SCHEMA_VERSION",
    "StoreError",
    "WriterLock",
    "connect",
    "default_path",
    "open_database",
]

MEMORY = ":memory:"
SCHEMA_VERSION = 2
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


class StoreError(Exception):
    """The history store cannot be used: the message names the path and what failed."""


class WriterLock:
    """The one-writer lock of a database file: ``<file>.lock``, held (``flock``) while a
    store writes it. The writer numbers new series itself, so a second process writing the
    same file would collide with it; it is refused instead, naming the holder."""

    def __init__(self, file: Path) -> None:
        self.path = Path(f"{file}.lock")
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StoreError(f"db: cannot create {self.path}: {error.strerror or error}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise StoreError(
                f"db: {file} is written by another peerscope process (pid {holder}); give "
                "this one its own --db, or --no-db"
            ) from None
        # Who holds it, for the message of the next one to try; on a full disk it stays
        # unsaid (the lock holds all the same).
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


def default_path() -> Path:
    """``$XDG_DATA_HOME/peerscope/peerscope.db`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "peerscope" / "peerscope.db"


# Version 1. Samples are not rows: a row of ``chunks`` is a stretch of one series (tier 0:
# a minute of raw samples, tier 1: an hour of 1-minute buckets, tier 2: a day of 1-hour
# buckets) with ``summary``, its whole stretch as one bucket of the tier above. ``recent``
# holds the samples of the minute still open, written at every flush, so a crash loses at
# most one flush; they are deleted as their minute becomes a chunk. Its rows go in in time
# order (a rowid table) and are found by an index: keyed by (series, time) instead, every
# flush's thousand rows would land on as many pages, and its commit write them all
# (355,000 against 509,000 samples/s of ingest measured here).
_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT,
    address TEXT,
    peer_kind TEXT,
    labels TEXT,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    UNIQUE (kind, key)
);
CREATE TABLE chunks (
    series_id INTEGER NOT NULL,
    tier INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    data BLOB NOT NULL,
    summary BLOB NOT NULL,
    UNIQUE (series_id, tier, start_ms)
);
CREATE INDEX chunks_by_age ON chunks (tier, end_ms);
CREATE TABLE recent (
    series_id INTEGER NOT NULL,
    t_ms INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX recent_by_series ON recent (series_id, t_ms);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    t_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    series_id INTEGER,
    data TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (t_ms);
CREATE INDEX events_by_series ON events (series_id, t_ms);
"""


def _recent_rows_as_json(connection: sqlite3.Connection) -> None:
    """Version 2: a ``recent`` row's figures are a JSON array (null where absent), no longer
    packed doubles with NaN for absent (orjson writes one in a third of the time). The
    open minute a version 1 file holds is rewritten, not lost."""
    rows = connection.execute("SELECT rowid, data FROM recent").fetchall()
    converted = []
    for rowid, data in rows:
        values = array("d")
        values.frombytes(data)
        figures = [None if math.isnan(value) else value for value in values]
        converted.append((orjson.dumps(figures), rowid))
    connection.executemany("UPDATE recent SET data = ? WHERE rowid = ?", converted)


# Each entry takes the schema from the version before it to its own (SQL statements, or a
# function of the connection); applied in order at start, each in its own transaction.
_MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {
    1: _SCHEMA_V1,
    2: _recent_rows_as_json,
}


def connect(path: str, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection with the store's settings. A ``file:`` URI (``:memory:``, see
    HistoryStore) is a shared-cache database, one per name in this process."""
    if path.startswith("file:"):
        connection = sqlite3.connect(path, uri=True, check_same_thread=False, timeout=5.0)
        if read_only:
            # Shared-cache connections lock tables, not the file, and busy_timeout does not
            # wait on those locks: a query would fail the writer's flush ("database table
            # is locked"). A reader that takes no read locks never does; it may see a flush
            # half done, which the reader's queries allow for (a minute's recent rows count
            # only past its newest chunk).
            connection.execute("PRAGMA read_uncommitted = 1")
    else:
        mode = "ro" if read_only else "rwc"
        uri = f"{Path(path).resolve().as_uri()}?mode={mode}"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5.0)
    connection.isolation_level = None  # transactions are begun and ended explicitly
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


def _schema_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def _tables(connection: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    ]


def _migrate(connection: sqlite3.Connection, path: str) -> None:
    version = _schema_version(connection)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"db: {path} has schema version {version}, newer than this peerscope's "
            f"{SCHEMA_VERSION}; upgrade peerscope or use another --db"
        )
    if version == 0:
        tables = _tables(connection)
        if tables:
            raise StoreError(
                f"db: {path} is a database of something else (tables {', '.join(tables)}); "
                "use another --db"
            )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            migration = _MIGRATIONS[target]
            if callable(migration):
                migration(connection)
            else:
                for statement in migration.split(";"):
                    if statement.strip():
                        connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {target}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while any(Path(f"{aside}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
        # A second corrupt file within the second must not replace the first.
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{aside}{suffix}"))
    return aside


def _prepare(connection: sqlite3.Connection, path: str) -> None:
    if not _tables(connection):
        # Only a database without tables can take it: incremental vacuum lets the store
        # give pages back to the file system after pruning, in small steps, instead of a
        # whole VACUUM. A file that had tables once needs a VACUUM to take it (instant
        # with none left).
        connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if connection.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
            connection.execute("VACUUM")
    if path != MEMORY and not path.startswith("file:"):
        connection.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL is safe from corruption; a power cut may lose the last
        # commits, which the store allows for (a flush).
        connection.execute("PRAGMA synchronous = NORMAL")
    _migrate(connection, path)


def open_database(path: str) -> tuple[sqlite3.Connection, Path | None, WriterLock | None]:
    """The writer's connection to ``path``, migrated to the current schema; the path a
    corrupt file found there was moved to (None if none was); the file's writer lock, to
    release once the connection is closed (None for a database in memory)."""
    if path == MEMORY or path.startswith("file:"):
        connection = connect(path)
        _prepare(connection, path)
        return connection, None, None
    file = Path(path).expanduser()
    _check_place(file)
    lock = WriterLock(file)
    try:
        connection, moved = _open_file(file)
    except BaseException:
        lock.release()
        raise
    return connection, moved, lock


def _open_file(file: Path) -> tuple[sqlite3.Connection, Path | None]:
    moved: Path | None = None
    try:
        connection = connect(str(file))
        if file.stat().st_size > 0 and not _readable(connection):
            connection.close()
            moved = _move_aside(file)
            connection = connect(str(file))
    except (sqlite3.Error, OSError) as error:
        raise StoreError(f"db: cannot open {file}: {error}") from None
    try:
        _prepare(connection, str(file))
    except sqlite3.Error as error:
        connection.close()
        raise StoreError(f"db: cannot write {file}: {error}") from None
    except StoreError:
        connection.close()
        raise
    return connection, moved


def _check_place(file: Path) -> None:
    """A StoreError naming the path unless ``file`` can be a database this user writes."""
    parent = file.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"db: {parent} is not a directory") from None
    except OSError as error:
        raise StoreError(f"db: cannot create {parent}: {error.strerror or error}") from None
    if not parent.is_dir():
        raise StoreError(f"db: {parent} is not a directory")
    if file.is_dir():
        raise StoreError(f"db: {file} is a directory, not a database file")
    if os.statvfs(parent).f_flag & os.ST_RDONLY:
        raise StoreError(f"db: {parent} is on a read-only file system")
    if file.exists() and not os.access(file, os.R_OK | os.W_OK):
        raise StoreError(f"db: {file} is not readable and writable by this user")
    if not os.access(parent, os.W_OK):
        raise StoreError(f"db: cannot write in {parent} (permission denied)")


def _readable(connection: sqlite3.Connection) -> bool:
    """Whether SQLite reads the file as a sound database (its quick check)."""
    try:
        return bool(connection.execute("PRAGMA quick_check").fetchone()[0] == "ok")
    except sqlite3.DatabaseError:  # "file is not a database", "database disk image is malformed"
        return False
