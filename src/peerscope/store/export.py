"""A time range of the history store as rows, for a file (``peerscope export``) or a
download (``GET /api/export``): CSV, JSON or Parquet, streamed.

A row is one series at one time: ``timestamp`` (epoch seconds), ``series`` (``peer``,
``host`` or ``server``), ``peer_id`` (the key the store keeps: with ``anonymize_ids``, the
hash), ``name``, then the series' figures (:data:`~peerscope.core.rollup.FIGURES`), each at
its resolution (0.01 for a gauge, whole numbers for a counter). The series come one after
another (the host, the server, then the peers by key), each oldest first.

Without a step the rows are the raw samples (kept a day by default); with one they are the
buckets of the finest tier that covers the range: a gauge's mean over the bucket, a
counter's value at its end, and a peer's ``loss_percent`` its probes' lost / sent in the
bucket. From a minute on the step is rounded down to whole minutes, from an hour on to
whole hours (the buckets the tiers keep). Buckets lie on multiples of the step, so the
first may begin before ``from``.

Reading goes one series and one window of time at a time (an hour of raw samples, about a
thousand buckets), each in a read transaction of its own: memory stays bounded however
long the range, and a minute the writer turns from recent rows into a chunk meanwhile is
read once, never twice or not at all.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson

from peerscope.core.rollup import FIGURES, Figure, SeriesKind
from peerscope.store.intake import PeerKeys
from peerscope.store.maintenance import HOUR_MS, Retention
from peerscope.store.reader import HistoryReader

__all__ = [
    "COLUMNS",
    "FORMATS",
    "MEDIA_TYPES",
    "Batch",
    "Export",
    "ExportRange",
    "Format",
    "check_format",
    "encode",
]

Format = Literal["csv", "json", "parquet"]
FORMATS: tuple[Format, ...] = get_args(Format)
MEDIA_TYPES: dict[Format, str] = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
MAX_STEP_S = 366 * 86_400
MAX_TIME_S = 1e11  # epoch seconds: the year 5138, past anything a clock gives
_KEYS = ("timestamp", "series", "peer_id", "name")
# Every figure of every kind, once, in FIGURES order: the CSV's and Parquet's columns.
_FIGURES: dict[str, Figure] = {
    figure.name: figure for figures in FIGURES.values() for figure in figures
}
COLUMNS: tuple[str, ...] = (*_KEYS, *_FIGURES)
_KIND_ORDER = {"host": 0, "server": 1, "peer": 2}
_RAW_WINDOW_MS = HOUR_MS
_BUCKETS_PER_WINDOW = 1_000
# Rows per Parquet row group: fewer, larger groups keep its footer small and its columns
# compressed well; this many rows of ~25 columns stay a few MiB in memory.
_ROW_GROUP = 65_536

Value = float | int | None


def check_format(name: str) -> Format:
    """``name`` as a format this installation writes; ValueError naming ``format`` if it is
    none, or is Parquet without its optional extra."""
    for known in FORMATS:
        if name == known:
            if known == "parquet":
                try:
                    import pyarrow.parquet  # noqa: F401
                except ImportError:
                    raise ValueError(
                        "format: parquet needs the optional extra peerscope[parquet] "
                        "(pip install 'peerscope[parquet]'): pyarrow is not installed"
                    ) from None
            return known
    raise ValueError(f"format: one of {', '.join(FORMATS)}, got {name!r}")


@dataclass(frozen=True, slots=True)
class ExportRange:
    """``[start, end)`` in epoch seconds (empty when ``end`` is not after ``start``, as the
    API's other ranges are) and, for buckets instead of raw samples, ``step`` in whole
    seconds. Invalid values raise ValueError naming ``from``, ``to`` or ``step``."""

    start: float
    end: float
    step: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("from", self.start), ("to", self.end)):
            if not (math.isfinite(value) and 0 <= value <= MAX_TIME_S):
                raise ValueError(f"{name}: must be epoch seconds within 0..1e11, got {value!r}")
        if self.step is not None and not 1 <= self.step <= MAX_STEP_S:
            raise ValueError(f"step: must be 1..{MAX_STEP_S} seconds, got {self.step}")

    @property
    def bucket_s(self) -> int | None:
        """The step as the tiers keep buckets: from a minute on, rounded down to whole
        minutes; from an hour on, to whole hours (the reader would widen it so anyway)."""
        step = self.step
        if step is None:
            return None
        grain = 3600 if step >= 3600 else 60 if step >= 60 else 1
        return step - step % grain


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows of one series over one window: ``times`` and each figure's values at them."""

    kind: SeriesKind
    peer_id: str | None
    name: str | None
    times: list[float]
    values: dict[str, list[Value]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Series:
    """A series and the span of its points in the tiers read (ms)."""

    kind: SeriesKind
    key: str
    name: str | None
    first_ms: int
    last_ms: int


class Export:
    """The rows of ``wanted`` in the database of ``connection`` (a connection of its own:
    reads run in transactions on it; the caller closes it). ``total`` (known from the first
    batch on) and ``done`` count the windows to read and read, for a progress bar; ``rows``
    counts the rows given."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        wanted: ExportRange,
        retention: Retention | None = None,
    ) -> None:
        self._db = connection
        # Keys pass through as stored: the rows carry the stored key, hashed or not.
        self._reader = HistoryReader(connection, PeerKeys(None), retention or Retention())
        self.range = wanted
        self.total = 0
        self.done = 0
        self.rows = 0

    def batches(self) -> Iterator[Batch]:
        """Each series' rows, a window at a time (a window without rows gives none)."""
        listed = self._listing()
        # Retention counts back from the store's newest point, as the writer prunes.
        now = max((series.last_ms for series in listed), default=0) / 1000.0
        plans = [(series, self._windows(series)) for series in listed]
        self.total = sum(len(windows) for _, windows in plans)
        for series, windows in plans:
            for start_ms, end_ms in windows:
                batch = self._read(series, start_ms, end_ms, now)
                self.done += 1
                if batch.times:
                    self.rows += len(batch.times)
                    yield batch

    def _listing(self) -> list[_Series]:
        """Every series with points in the tiers read, and the span of those points."""
        tiers = (0,) if self.range.bucket_s is None else (0, 1, 2)
        listed: list[_Series] = []
        with _snapshot(self._db) as db:
            for sid, kind, key, name in db.execute("SELECT id, kind, key, name FROM series"):
                span = _span(db, sid, tiers)
                if span is not None and kind in FIGURES:  # else nothing this version wrote
                    listed.append(_Series(kind, key, name, *span))
        listed.sort(key=lambda series: (_KIND_ORDER[series.kind], series.key))
        return listed

    def _windows(self, series: _Series) -> list[tuple[int, int]]:
        """``[start, end)`` windows (ms) over the range and the series' points; their
        bounds past the first lie on multiples of the window's length, itself a multiple
        of the step and of an hour, so buckets never straddle two."""
        start_ms = max(round(self.range.start * 1000), series.first_ms)
        end_ms = min(round(self.range.end * 1000), series.last_ms + 1)
        step = self.range.bucket_s
        if step is None:
            length = _RAW_WINDOW_MS
        else:
            step_ms = step * 1000
            start_ms -= start_ms % step_ms
            whole = math.lcm(step_ms, HOUR_MS)
            length = whole * max(1, _BUCKETS_PER_WINDOW * step_ms // whole)
        windows: list[tuple[int, int]] = []
        while start_ms < end_ms:
            bound = min(end_ms, start_ms - start_ms % length + length)
            windows.append((start_ms, bound))
            start_ms = bound
        return windows

    def _read(self, series: _Series, start_ms: int, end_ms: int, now: float) -> Batch:
        figures = FIGURES[series.kind]
        peer_id = series.key if series.kind == "peer" else None
        batch = Batch(series.kind, peer_id, series.name, [])
        with _snapshot(self._db):
            step = self.range.bucket_s
            if step is None:
                # samples() reads (start, end]: a millisecond earlier makes it [start, end).
                found = self._reader.samples(
                    series.kind, series.key, (start_ms - 1) / 1000.0, (end_ms - 1) / 1000.0
                )
                if found is not None:
                    batch.times.extend(found.times)
                    for figure in figures:
                        batch.values[figure.name] = _at_resolution(
                            figure, found.values[figure.name]
                        )
                return batch
            bucketed = self._reader.buckets(
                series.kind,
                series.key,
                start_ms / 1000.0,
                end_ms / 1000.0,
                float(step),
                now=now,
            )
        buckets = [] if bucketed is None else bucketed[1]
        batch.times.extend(bucket["timestamp"] for bucket in buckets)
        for figure in figures:
            batch.values[figure.name] = _at_resolution(
                figure, [_bucket_value(figure, bucket[figure.name]) for bucket in buckets]
            )
        return batch


def _span(db: sqlite3.Connection, sid: int, tiers: Sequence[int]) -> tuple[int, int] | None:
    """The first and last time (ms) series ``sid`` has points in ``tiers`` or the recent
    rows, from the rows themselves (each a seek on an index); None: it has none."""
    firsts: list[int] = []
    lasts: list[int] = []
    for tier in tiers:
        query = (
            "SELECT {} FROM chunks WHERE series_id = ? AND tier = ? ORDER BY start_ms {} LIMIT 1"
        )
        first = db.execute(query.format("start_ms", "ASC"), (sid, tier)).fetchone()
        if first is not None:
            firsts.append(first[0])
            lasts.append(db.execute(query.format("end_ms", "DESC"), (sid, tier)).fetchone()[0])
    query = "SELECT {}(t_ms) FROM recent WHERE series_id = ?"
    first = db.execute(query.format("MIN"), (sid,)).fetchone()[0]
    if first is not None:
        firsts.append(first)
        lasts.append(db.execute(query.format("MAX"), (sid,)).fetchone()[0])
    return (min(firsts), max(lasts)) if firsts else None


@contextlib.contextmanager
def _snapshot(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: what the block reads is one state of the file, whatever the
    writer commits meanwhile."""
    db.execute("BEGIN")
    try:
        yield db
    finally:
        with contextlib.suppress(sqlite3.Error):  # a failed read may have ended it already
            db.execute("COMMIT")


def _at_resolution(figure: Figure, values: Iterable[float | None]) -> list[Value]:
    """``values`` at the figure's resolution: the chunks hold them so, but the recent rows
    and a bucket's mean as they came."""
    if figure.kind == "counter":
        return [None if value is None else int(value) for value in values]
    decimals = len(str(figure.scale)) - 1
    return [None if value is None else round(value, decimals) for value in values]


def _bucket_value(figure: Figure, part: dict[str, float | None] | float | None) -> float | None:
    """A gauge's mean, a counter's last value; a number as it is (the reader's own figure
    for the bucket: a peer's loss_percent, from its probes)."""
    if isinstance(part, dict):
        return part["last"] if figure.kind == "counter" else part["avg"]
    return part


# --- formats --------------------------------------------------------------------------------


def encode(export: Export, form: Format) -> Generator[bytes]:
    """The export as ``form``, a piece per window read (never an empty piece)."""
    if form == "csv":
        return _csv(export.batches())
    if form == "json":
        return _json(export.batches())
    return _parquet(export.batches())


def _rows(batch: Batch) -> Iterator[list[Any]]:
    """The batch's rows as CSV rows, every column, None where a figure is absent or not
    one of this series."""
    template: list[Any] = [None] * len(COLUMNS)
    template[1:4] = [batch.kind, batch.peer_id, batch.name]
    at = [COLUMNS.index(name) for name in batch.values]
    columns = list(batch.values.values())
    for i, t in enumerate(batch.times):
        row = template.copy()
        row[0] = t
        for index, column in zip(at, columns, strict=True):
            row[index] = column[i]
        yield row


def _csv(batches: Iterator[Batch]) -> Generator[bytes]:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for batch in batches:
        writer.writerows(_rows(batch))
        yield text.getvalue().encode()
        text.seek(0)
        text.truncate()
    if text.tell():  # the header of an export without rows
        yield text.getvalue().encode()


def _json(batches: Iterator[Batch]) -> Generator[bytes]:
    """A JSON array of objects, each with its series' figures only (null where absent),
    one a line."""
    opening = True
    for batch in batches:
        keys = (*_KEYS, *batch.values)
        fixed = (batch.kind, batch.peer_id, batch.name)
        # Written one by one into one buffer: a list of the window's objects would cost
        # some thirty times their size at once.
        piece = io.BytesIO()
        for t, *values in zip(batch.times, *batch.values.values(), strict=True):
            piece.write(b"[\n" if opening else b",\n")
            piece.write(orjson.dumps(dict(zip(keys, (t, *fixed, *values), strict=True))))
            opening = False
        yield piece.getvalue()
    yield b"[]\n" if opening else b"\n]\n"


class _Sink:
    """A file for pyarrow to write into, whose bytes are taken away as they come: the
    Parquet file goes out a row group at a time, never held whole."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:  # pyarrow records row groups' offsets from it
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts = []
        return data


def _parquet(batches: Iterator[Batch]) -> Generator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("timestamp", pa.float64()),
            ("series", pa.string()),
            ("peer_id", pa.string()),
            ("name", pa.string()),
            *(
                (name, pa.int64() if figure.kind == "counter" else pa.float64())
                for name, figure in _FIGURES.items()
            ),
        ]
    )

    def arrow(batch: Batch) -> Any:
        count = len(batch.times)
        absent = [None] * count
        columns = [
            batch.times,
            [batch.kind] * count,
            [batch.peer_id] * count,
            [batch.name] * count,
            *(batch.values.get(name, absent) for name in _FIGURES),
        ]
        return pa.record_batch(columns, schema=schema)

    sink = _Sink()
    group: list[Any] = []  # Arrow's own columns: 8 bytes a value, not a Python float's 32
    rows = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in batches:
            group.append(arrow(batch))
            rows += len(batch.times)
            if rows >= _ROW_GROUP:
                writer.write_table(pa.Table.from_batches(group, schema=schema))
                group, rows = [], 0
                yield sink.take()
        if group:
            writer.write_table(pa.Table.from_batches(group, schema=schema))
    yield sink.take()
