"""The history store as the agent and the API see it: open, attach to a Monitor, query.

Attached, it takes every tick and event on the Monitor's loop at the cost of a queue put
(the writer thread does the rest) and answers range queries on a thread of their own
(``asyncio.to_thread``), so neither a slow disk nor a long query stalls the loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from peerscope.alerting.records import AlertEvent
from peerscope.core.rollup import SeriesKind
from peerscope.events import (
    Event,
    MetricsTick,
    PeerAdded,
    PeerPathChanged,
    PeerRemoved,
    PeerStatusChanged,
    SessionEnded,
    SessionStarted,
)
from peerscope.monitor import Monitor
from peerscope.seed_views import game_session
from peerscope.store.database import (
    MEMORY,
    StoreError,
    connect,
    default_path,
    open_database,
)
from peerscope.store.intake import PeerKeys, PeerMeta, StoredEvent
from peerscope.store.maintenance import Retention
from peerscope.store.reader import HistoryReader, RawSamples
from peerscope.store.writer import Writer, WriterStats
from peerscope.store_settings import StoreSettings

__all__ = ["HistoryStore"]

log = logging.getLogger("peerscope.store")
_memory_names = itertools.count(1)


class HistoryStore:
    """A history database at ``settings.db`` (the XDG default when None), its writer
    thread (started here) and a reader. Raises :class:`StoreError` naming the path when
    the file cannot be used; a corrupt file is moved aside first (:attr:`moved_aside`).
    Once closed, a query or a flush is a :class:`StoreError`; ``:memory:`` is gone then."""

    def __init__(self, settings: StoreSettings | None = None) -> None:
        settings = settings or StoreSettings()
        self.settings = settings
        path = settings.db or str(default_path())
        self.path = path
        # A :memory: database is one per connection; a shared-cache one named for this
        # store is seen by the writer's and the reader's connections alike.
        opened = (
            f"file:peerscope-{next(_memory_names)}?mode=memory&cache=shared"
            if (path == MEMORY)
            else path
        )
        connection, self.moved_aside, self._lock = open_database(opened)
        if self.moved_aside is not None:
            log.error(
                "db: %s could not be read as a database; moved aside to %s, starting afresh",
                path,
                self.moved_aside,
            )
        self.retention = Retention(
            settings.raw_retention_s,
            settings.minute_retention_s,
            settings.hour_retention_s,
            settings.max_db_bytes,
        )
        self._read_path = opened if opened.startswith("file:") else str(Path(opened).expanduser())
        try:
            keys = self._keys = PeerKeys(_salt(connection, settings.anonymize_ids))
            self._writer = Writer(
                connection,
                path,
                keys,
                flush_interval_s=settings.flush_interval_s,
                retention=self.retention,
                queue_size=settings.queue_size,
            )
            reader = connect(self._read_path, read_only=True)
        except sqlite3.Error as error:
            connection.close()
            raise StoreError(f"db: cannot open {path}: {error}") from None
        self._reader = HistoryReader(reader, keys, self.retention, path=path)
        self._monitor: Monitor | None = None
        self._detach: Callable[[], None] | None = None
        self._writer.start()

    # --- what it keeps --------------------------------------------------------------------

    def attach(self, monitor: Monitor) -> None:
        """Keep ``monitor``'s ticks and events from now on."""
        self._monitor = monitor
        self._detach = monitor.subscribe(self._on_event)

    def record_alert(self, event: AlertEvent) -> None:
        """Keep an alert event (an Alerting listener)."""
        peer_id = event["peer_id"]
        data: dict[str, Any] = dict(event)
        if peer_id is not None and self._keys.anonymized:
            # The event names the peer in three places; the file must hold none of them.
            key = self._keys.key(peer_id)
            data["peer_id"] = key
            data["labels"] = {**event["labels"], "peer_id": key}
            # Only where it names the peer (" peer <id>", alerting.records.describe): an id
            # may be any run of letters in the rule's or the metric's name too.
            data["message"] = event["message"].replace(f" peer {peer_id}", f" peer {key}")
        self._writer.submit(StoredEvent(event["timestamp"], "alert", peer_id, data))

    def _on_event(self, event: Event) -> None:
        submit = self._writer.submit
        if isinstance(event, MetricsTick):
            submit(event)
        elif isinstance(event, PeerStatusChanged):
            change = {"previous": event.previous, "status": event.status}
            submit(StoredEvent(event.timestamp, "status", event.peer_id, change))
        elif isinstance(event, PeerPathChanged):
            hops = {"previous_ttl": event.previous_ttl, "ttl": event.ttl}
            submit(StoredEvent(event.timestamp, "path_changed", event.peer_id, hops))
        elif isinstance(event, PeerAdded):
            assert self._monitor is not None
            try:
                entry = self._monitor.peer(event.peer_id)
            except KeyError:  # gone again before this handler ran
                return
            submit(
                PeerMeta(
                    event.peer_id,
                    event.timestamp,
                    entry["name"],
                    entry["address"],
                    entry["kind"],
                    entry["labels"],
                )
            )
        elif isinstance(event, PeerRemoved):
            submit(StoredEvent(event.timestamp, "removed", event.peer_id, {"reason": event.reason}))
        elif isinstance(event, SessionStarted | SessionEnded):
            assert self._monitor is not None
            try:
                found = self._monitor.session(event.session_id)
            except KeyError:
                return
            # The seed's shape, and what it takes to rebuild the session after a restart.
            session = {
                **game_session(found),
                "labels": dict(found.labels),
                "count": found.count,
                "total": found.total,
                "samples": list(found.samples),
            }
            kind = "session_started" if isinstance(event, SessionStarted) else "session_ended"
            if self._keys.anonymized:
                session["peers"] = [self._keys.key(peer_id) for peer_id in session["peers"]]
            submit(StoredEvent(event.timestamp, kind, None, session))

    # --- state ----------------------------------------------------------------------------

    @property
    def error(self) -> str | None:
        """Why the last write failed (None once one succeeds again)."""
        return self._writer.error

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    def flush(self) -> None:
        """Commit everything handed over so far (blocks: for tests and shutdown)."""
        self._writer.flush()

    def catch_up(self) -> None:
        """:meth:`flush`, then do every rollup and pruning step that is due (blocks: the
        writer does these a step per flush interval on its own)."""
        self._writer.catch_up()

    def close(self) -> None:
        """Stop taking events, commit what is queued, and close the database (a second
        call does nothing)."""
        if self._detach is not None:
            self._detach()
            self._detach = None
        # The reader first: the writer's is then the last connection, whose close folds
        # the write-ahead log into the file (a read-only one cannot).
        self._reader.close()
        self._writer.stop()
        if self._lock is not None:
            self._lock.release()

    # --- queries, off the loop ------------------------------------------------------------

    async def samples(
        self,
        kind: SeriesKind,
        key: str,
        start: float,
        end: float,
        names: Sequence[str] | None = None,
    ) -> RawSamples | None:
        return await asyncio.to_thread(self._reader.samples, kind, key, start, end, names)

    async def buckets(
        self,
        kind: SeriesKind,
        key: str,
        start: float,
        end: float,
        step: float,
        names: Sequence[str] | None = None,
        *,
        now: float,
    ) -> tuple[str, list[dict[str, Any]]] | None:
        return await asyncio.to_thread(
            lambda: self._reader.buckets(kind, key, start, end, step, names, now=now)
        )

    @property
    def reader(self) -> HistoryReader:
        return self._reader

    def open_connection(self) -> sqlite3.Connection:
        """A new read-only connection to this store's database, for a long read of its own
        (an export) that should not hold the shared reader; the caller closes it."""
        return connect(self._read_path, read_only=True)


def _salt(connection: Any, anonymize: bool) -> bytes | None:
    """The database's salt for peer ids: made when ``anonymize`` first asks for it, and
    kept on from then on (a database that holds hashed ids never mixes in raw ones)."""
    row = connection.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
    if row is not None:
        return bytes.fromhex(row[0])
    if not anonymize:
        return None
    salt = PeerKeys.new_salt()
    connection.execute("INSERT INTO meta VALUES ('salt', ?)", (salt,))
    return bytes.fromhex(salt)
