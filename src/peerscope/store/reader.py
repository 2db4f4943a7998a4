"""Range queries over the history database, on a connection of their own.

The tier is chosen from the step: under a minute, raw samples (the finest kept); from a
minute, the 1-minute buckets; from an hour, the 1-hour buckets. A range older than a
tier's retention falls back to the next coarser tier that still covers it, and the part
of a range a tier has not rolled up yet (the current hour, the current day) is built from
the tier below: each row's summary is one bucket of the tier above it, so that costs a
merge, not a rescan.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import truediv
from typing import Any

import orjson

from peerscope.core.chunk import decode_chunk, quantized
from peerscope.core.rollup import (
    FIGURES,
    CounterSummary,
    Figure,
    FigureSummary,
    SeriesKind,
    merge_lists,
    summarize,
    summary_from_list,
    summary_to_list,
)
from peerscope.core.sketch import QuantileSketch
from peerscope.store.database import StoreError
from peerscope.store.intake import PeerKeys
from peerscope.store.maintenance import MINUTE_MS, TIER_SPANS, Retention
from peerscope.store.writer import unpacked

__all__ = ["HistoryReader", "RawSamples", "figure_names"]

Summary = list[FigureSummary]
Stored = Sequence[Sequence[float] | None]  # a summary as stored (summary_to_list)
_QUANTILES = (0.5, 0.95, 0.99)
# What a peer's buckets carry beside the figures asked for (sent, lost, outage).
_PEER_EXTRAS = tuple(
    k
    for k, figure in enumerate(FIGURES["peer"])
    if figure.name in ("latency_ms", "probes_sent", "probes_lost")
)


@dataclass(frozen=True, slots=True)
class RawSamples:
    """A series' raw samples, oldest first: the times (s) and, per figure, a column of its
    values at those times (None where it was not measured). Kept as columns, as they are
    stored and as the history routes answer: a day of 1 Hz is 86,400 per figure, and
    pairing them costs more than decoding them."""

    times: list[float]
    values: dict[str, list[float | None]]

    def __getitem__(self, name: str) -> list[tuple[float, float | None]]:
        """One figure's samples as (time, value) pairs."""
        return list(zip(self.times, self.values[name], strict=True))

    def present(self, name: str) -> list[tuple[float, float]]:
        """One figure's samples where it was measured."""
        return [(t, v) for t, v in zip(self.times, self.values[name], strict=True) if v is not None]


def figure_names(kind: SeriesKind) -> list[str]:
    return [figure.name for figure in FIGURES[kind]]


def _selected(kind: SeriesKind, names: Sequence[str] | None) -> list[int]:
    figures = FIGURES[kind]
    if names is None:
        return list(range(len(figures)))
    known = {figure.name: k for k, figure in enumerate(figures)}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"figures: {', '.join(unknown)} not kept for a {kind}; one of {', '.join(known)}"
        )
    return [known[name] for name in names]


def _bucket_figure(figure: Figure, part: FigureSummary, seconds: float) -> dict[str, Any] | None:
    if part is None:
        return None
    if isinstance(part, CounterSummary):
        return {"increase": part.increase, "rate": part.increase / seconds, "last": part.last}
    assert isinstance(part, QuantileSketch)
    p50, p95, p99 = part.quantiles(_QUANTILES)
    return {
        "count": part.count,
        "min": part.minimum,
        "max": part.maximum,
        "avg": part.mean,
        "p50": p50,
        "p95": p95,
        "p99": p99,
    }


class HistoryReader:
    """Queries on ``connection`` (used by one thread at a time: calls take a lock). After
    :meth:`close` a query is a :class:`StoreError` naming ``path``."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        keys: PeerKeys,
        retention: Retention,
        *,
        path: str = "the history database",
    ) -> None:
        self._db = connection
        self._keys = keys
        self._retention = retention
        self._path = path
        self._closed = False
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()

    @contextlib.contextmanager
    def _open(self) -> Iterator[None]:
        """Hold the connection for a query: one thread at a time, only while open, and in
        one read transaction, so that a minute the writer turns from recent rows into a
        chunk between two statements is read once, not never or twice."""
        with self._lock:
            if self._closed:
                raise StoreError(f"db: {self._path} is closed")
            if self._db.in_transaction:  # the caller's own (an export's window)
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("COMMIT")

    def _series_id(self, kind: SeriesKind, key: str) -> int | None:
        if kind == "peer":
            key = self._keys.key(key)
        row = self._db.execute(
            "SELECT id FROM series WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return None if row is None else int(row[0])

    def peers_seen(self, since: float) -> list[dict[str, Any]]:
        """The peers with samples or events at or after ``since``, newest first: their
        stored key (the id, or its hash with anonymize_ids), name, address, kind, labels
        and the first and last times seen."""
        with self._open():
            # series.last_ms is written with each minute's chunk; the open minute's newest
            # sample is in ``recent``.
            rows = self._db.execute(
                "SELECT key, name, address, peer_kind, labels, first_ms, "
                "MAX(last_ms, IFNULL((SELECT MAX(t_ms) FROM recent WHERE series_id = id), 0)) "
                "AS seen_ms FROM series WHERE kind = 'peer' AND seen_ms >= ? "
                "ORDER BY seen_ms DESC",
                (round(since * 1000),),
            ).fetchall()
        return [
            {
                "key": key,
                "name": name,
                "address": address,
                "kind": peer_kind or "peer",
                "labels": orjson.loads(labels) if labels else {},
                "first_seen": first_ms / 1000.0,
                "last_seen": last_ms / 1000.0,
            }
            for key, name, address, peer_kind, labels, first_ms, last_ms in rows
        ]

    def events(
        self,
        *,
        start: float | None = None,
        end: float | None = None,
        types: Sequence[str] | None = None,
        peer_id: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Stored events newest first: their time, type (``status``, ``removed``,
        ``session_started``, ``session_ended``, ``alert``), peer (its stored key) and data."""
        where = ["e.t_ms >= ?", "e.t_ms <= ?"]
        params: list[Any] = [
            -(2**62) if start is None else round(start * 1000),
            2**62 if end is None else round(end * 1000),
        ]
        if types:
            where.append(f"e.type IN ({', '.join('?' * len(types))})")
            params += types
        if peer_id is not None:
            where.append("s.kind = 'peer' AND s.key = ?")
            params.append(self._keys.key(peer_id))
        params.append(limit)
        with self._open():
            rows = self._db.execute(
                "SELECT e.t_ms, e.type, s.key, e.data FROM events e "
                "LEFT JOIN series s ON s.id = e.series_id "
                f"WHERE {' AND '.join(where)} ORDER BY e.t_ms DESC, e.id DESC LIMIT ?",
                params,
            ).fetchall()
        return [
            {"timestamp": t_ms / 1000.0, "type": kind, "peer_id": key, "data": orjson.loads(data)}
            for t_ms, kind, key, data in rows
        ]

    @property
    def anonymized(self) -> bool:
        return self._keys.anonymized

    # --- raw samples ----------------------------------------------------------------------

    def samples(
        self,
        kind: SeriesKind,
        key: str,
        start: float,
        end: float,
        names: Sequence[str] | None = None,
    ) -> RawSamples | None:
        """The raw samples of ``start < t <= end`` of the figures ``names`` (all when None);
        None: no such series."""
        with self._open():
            sid = self._series_id(kind, key)
            if sid is None:
                return None
            picked = _selected(kind, names)
            times, columns = self._raw(
                sid, kind, round(start * 1000), round(end * 1000), set(picked)
            )
        figures = FIGURES[kind]
        seconds = list(map(truediv, times, repeat(1000.0, len(times))))
        return RawSamples(seconds, {figures[k].name: columns[k] for k in picked})

    def _raw(
        self, sid: int, kind: SeriesKind, start_ms: int, end_ms: int, wanted: Collection[int]
    ) -> tuple[list[int], list[list[float | None]]]:
        """The raw samples of ``start_ms < t <= end_ms``: times, and per figure its values
        (None for the figures not ``wanted``, which are not decoded)."""
        figures = FIGURES[kind]
        scales = [figure.scale for figure in figures]
        times: list[int] = []
        columns: list[list[float | None]] = [[] for _ in figures]
        rows = self._db.execute(
            "SELECT data FROM chunks WHERE series_id = ? AND tier = 0 AND start_ms <= ? "
            "AND end_ms > ? ORDER BY start_ms",
            (sid, end_ms, start_ms),
        )
        newest = start_ms
        for (data,) in rows:
            chunk_times, chunk_columns = decode_chunk(data, scales, wanted)
            self._keep(chunk_times, chunk_columns, start_ms, end_ms, times, columns)
            newest = max(newest, chunk_times[-1])
        recent = self._db.execute(
            "SELECT t_ms, data FROM recent WHERE series_id = ? AND t_ms > ? AND t_ms <= ? "
            "ORDER BY t_ms",
            (sid, max(start_ms, newest), end_ms),
        ).fetchall()
        if recent:
            # The open minute, as its chunk will keep it.
            times += [t_ms for t_ms, _ in recent]
            values = [unpacked(data) for _, data in recent]
            for k, column in enumerate(columns):
                if k in wanted:
                    column += quantized([v[k] if k < len(v) else None for v in values], scales[k])
                else:
                    column += [None] * len(values)
        return times, columns

    @staticmethod
    def _keep(
        chunk_times: list[int],
        chunk_columns: list[list[float | None]],
        start_ms: int,
        end_ms: int,
        times: list[int],
        columns: list[list[float | None]],
    ) -> None:
        if start_ms < chunk_times[0] and chunk_times[-1] <= end_ms:
            times += chunk_times
            for column, values in zip(columns, chunk_columns, strict=True):
                column += values
            return
        kept = [i for i, t in enumerate(chunk_times) if start_ms < t <= end_ms]
        times += [chunk_times[i] for i in kept]
        for column, values in zip(columns, chunk_columns, strict=True):
            column += [values[i] for i in kept]

    # --- buckets --------------------------------------------------------------------------

    def buckets(
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
        """``step``-second buckets over ``[start, end)``: the tier read (``raw``, ``1m`` or
        ``1h``) and, per bucket, each figure's count/min/max/avg/p50/p95/p99 (a gauge) or
        increase/rate/last (a counter); a peer's buckets also carry probes ``sent`` and
        ``lost``, ``loss_percent`` and ``outage`` (probes went out and none came back).
        Empty buckets are left out. None: no such series."""
        start_ms, end_ms, step_ms = round(start * 1000), round(end * 1000), round(step * 1000)
        level = 2 if step_ms >= TIER_SPANS[1] else 1 if step_ms >= MINUTE_MS else 0
        # Coarser where the finer tier's retention no longer reaches the range's start.
        while level < 2 and start < now - self._retention.of_tier(level):
            level += 1
        if level:
            # Buckets of a tier start on its own boundaries (UTC minutes or hours): the
            # range and the step are widened to them, never split.
            grain = TIER_SPANS[level - 1]
            start_ms -= start_ms % grain
            step_ms = max(grain, step_ms - step_ms % grain)
        figures = FIGURES[kind]
        picked = _selected(kind, names)
        # Only the figures the answer shows are decoded and merged: a bucket of a week
        # merges thousands of stored ones.
        wanted = sorted({*picked, *(_PEER_EXTRAS if kind == "peer" else ())})
        with self._open():
            sid = self._series_id(kind, key)
            if sid is None:
                return None
            if level == 0:
                grouped = self._raw_buckets(sid, kind, wanted, start_ms, end_ms, step_ms)
            else:
                entries = self._entries(sid, kind, wanted, level, start_ms, end_ms)
                grouped = self._group(figures, wanted, entries, start_ms, step_ms)
        tier = ("raw", "1m", "1h")[level]
        return tier, [
            self._bucket(kind, figures, picked, bucket_start, summary, step_ms / 1000.0)
            for bucket_start, summary in grouped
        ]

    def _raw_buckets(
        self,
        sid: int,
        kind: SeriesKind,
        wanted: Collection[int],
        start_ms: int,
        end_ms: int,
        step_ms: int,
    ) -> list[tuple[int, Summary]]:
        figures = FIGURES[kind]
        # From the start of start_ms's minute: the samples before start_ms only tell the
        # counters' values before the range (its first bucket counts their rise, as the
        # 1-minute tier does), and that minute's chunk is read anyway.
        minute = start_ms - start_ms % MINUTE_MS
        times, columns = self._raw(sid, kind, minute - 1, end_ms - 1, wanted)
        before = self._counters_before(sid, figures, minute)
        i = 0
        while i < len(times) and times[i] < start_ms:
            for k, figure in enumerate(figures):
                value = columns[k][i]
                if figure.kind == "counter" and value is not None:
                    before[k] = value
            i += 1
        out: list[tuple[int, Summary]] = []
        while i < len(times):
            index = (times[i] - start_ms) // step_ms
            j = i
            while j < len(times) and (times[j] - start_ms) // step_ms == index:
                j += 1
            part = [column[i:j] for column in columns]
            out.append((start_ms + index * step_ms, summarize(figures, part, before)))
            for k, figure in enumerate(figures):
                if figure.kind == "counter":
                    last = next((v for v in reversed(part[k]) if v is not None), None)
                    if last is not None:
                        before[k] = last
            i = j
        return out

    def _counters_before(
        self, sid: int, figures: Sequence[Figure], before_ms: int
    ) -> list[float | None]:
        """Each counter's last value in the raw minutes before ``before_ms`` (a minute)."""
        row = self._db.execute(
            "SELECT summary FROM chunks WHERE series_id = ? AND tier = 0 AND start_ms < ? "
            "ORDER BY start_ms DESC LIMIT 1",
            (sid, before_ms),
        ).fetchone()
        if row is None:
            return [None] * len(figures)
        summary = summary_from_list(figures, orjson.loads(row[0]))
        return [part.last if isinstance(part, CounterSummary) else None for part in summary]

    def _entries(
        self,
        sid: int,
        kind: SeriesKind,
        wanted: Sequence[int],
        level: int,
        start_ms: int,
        end_ms: int,
    ) -> dict[int, Stored]:
        """Buckets of TIER_SPANS[level - 1] over the range, by start, as stored: from the
        tier's rows, then the summaries of the tier below, then for what neither covers
        yet the tier below's own entries, merged (above minutes), or the raw samples (the
        minute still open); of those made here, only the ``wanted`` figures."""
        span = TIER_SPANS[level - 1]
        out: dict[int, Stored] = {}
        for (data,) in self._db.execute(
            "SELECT data FROM chunks WHERE series_id = ? AND tier = ? AND start_ms < ? "
            "AND end_ms >= ? ORDER BY start_ms",
            (sid, level, end_ms, start_ms),
        ):
            for t, flat in orjson.loads(zlib.decompress(data)):
                if start_ms <= t < end_ms:
                    out[t] = flat
        covered = max(out) + span if out else start_ms
        for t, flat in self._db.execute(
            "SELECT start_ms, summary FROM chunks WHERE series_id = ? AND tier = ? "
            "AND start_ms >= ? AND start_ms < ? ORDER BY start_ms",
            (sid, level - 1, max(start_ms - start_ms % span, covered), end_ms),
        ):
            if t not in out:
                out[t] = orjson.loads(flat)
        covered = max(out) + span if out else start_ms
        if covered < end_ms:
            figures = FIGURES[kind]
            if level >= 2:
                finer = self._entries(sid, kind, wanted, level - 1, covered, end_ms)
                made = self._group(figures, wanted, finer, covered - covered % span, span)
            else:
                made = self._raw_buckets(sid, kind, wanted, covered, end_ms, span)
            for t, summary in made:
                out.setdefault(t, summary_to_list(summary))
        return out

    @staticmethod
    def _group(
        figures: Sequence[Figure],
        wanted: Sequence[int],
        entries: dict[int, Stored],
        start_ms: int,
        step_ms: int,
    ) -> list[tuple[int, Summary]]:
        groups: dict[int, list[Stored]] = {}
        for t in sorted(entries):
            index = (t - start_ms) // step_ms
            groups.setdefault(start_ms + index * step_ms, []).append(entries[t])
        return [(t, merge_lists(figures, parts, wanted)) for t, parts in groups.items()]

    @staticmethod
    def _bucket(
        kind: SeriesKind,
        figures: Sequence[Figure],
        picked: Iterable[int],
        start_ms: int,
        summary: Summary,
        step: float,
    ) -> dict[str, Any]:
        bucket: dict[str, Any] = {"timestamp": start_ms / 1000.0}
        for k in picked:
            bucket[figures[k].name] = _bucket_figure(figures[k], summary[k], step)
        if kind == "peer":
            names = [figure.name for figure in figures]
            sent_part = summary[names.index("probes_sent")]
            lost_part = summary[names.index("probes_lost")]
            latency = summary[names.index("latency_ms")]
            sent = int(sent_part.increase) if isinstance(sent_part, CounterSummary) else 0
            lost = int(lost_part.increase) if isinstance(lost_part, CounterSummary) else 0
            bucket["sent"] = sent
            bucket["lost"] = lost
            # In a bucket, loss is what its probes say (lost / sent), whatever its size: it
            # stands in for the loss_percent figure's summary, a spread of sliding-window
            # percentages no sum of buckets could make into the loss of their union.
            bucket["loss_percent"] = 100.0 * lost / sent if sent else None
            bucket["outage"] = sent > 0 and (latency is None or lost >= sent)
        return bucket
