"""Exporting the history store (peerscope.store.export) and GET /api/export, over real
SQLite files filled by a Monitor on a clock the test moves."""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import statistics
import sys
import tracemalloc
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from peerscope import Monitor, Settings
from peerscope.server.app import create_app
from peerscope.server.export_route import export_router
from peerscope.store import export as export_module
from peerscope.store.database import connect
from peerscope.store.export import (
    COLUMNS,
    Export,
    ExportRange,
    Format,
    check_format,
    encode,
)
from peerscope.testing import LoopStalls
from tests.server_support import live_server
from tests.store_support import (
    COUNTERS,
    FIGURE_NAMES,
    T0,
    Filled,
    check_against_recorded,
    close_enough,
    csv_rows,
    filled_store,
    query,
    row_key,
    wait_for,
)

KEYS = ("timestamp", "series", "peer_id", "name")  # then the series' own figures


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    """3 peers, the host and the server, 200 s: three minutes in chunks, one still open."""
    filled = filled_store(tmp_path_factory.mktemp("export") / "history.db", seconds=200)
    yield filled
    filled.store.close()


@pytest.fixture(scope="module")
def long_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    """One peer and the server for 2.5 h: many windows of an hour to read."""
    path = tmp_path_factory.mktemp("export-long") / "history.db"
    filled = filled_store(path, seconds=9000, peers=1, system=False)
    yield filled
    filled.store.close()


def exported(path: Path, start: float, end: float, form: Format, step: int | None = None) -> bytes:
    connection = connect(str(path), read_only=True)
    try:
        return b"".join(encode(Export(connection, ExportRange(start, end, step)), form))
    finally:
        connection.close()


# --- rows and formats ---------------------------------------------------------------------


def test_csv_holds_every_recorded_sample_at_its_resolution(history: Filled):
    rows = csv_rows(exported(history.path, T0, T0 + 1000, "csv"))
    assert {row_key(row) for row in rows} == set(history.recorded)
    assert len(rows) == len(history.recorded)  # each once
    check_against_recorded(history, rows)
    # The open minute is there too (recent rows, not yet a chunk): the last second recorded.
    assert max(float(row["timestamp"]) for row in rows) == T0 + 200
    # Series one after another (host, server, peers by id), each oldest first.
    order = [(row["series"], row["peer_id"]) for row in rows]
    assert list(dict.fromkeys(order)) == [
        ("host", None),
        ("server", None),
        ("peer", "p0"),
        ("peer", "p1"),
        ("peer", "p2"),
    ]
    for series in dict.fromkeys(order):
        times = [float(r["timestamp"]) for r in rows if (r["series"], r["peer_id"]) == series]
        assert times == sorted(times)
        assert len(times) == 200
    # Peer 1 lost its replies for 20 s: no latency then, and the export says so.
    lost = [r for r in rows if r["peer_id"] == "p1" and r["latency_ms"] is None]
    recorded = history.rows("peer")
    assert len(lost) == sum(
        1 for k, v in recorded.items() if k[1] == "p1" and v["latency_ms"] is None
    )
    assert len(lost) >= 15


def test_the_range_includes_from_and_excludes_to(history: Filled):
    rows = csv_rows(exported(history.path, T0 + 50, T0 + 120, "csv"))
    times = sorted({float(row["timestamp"]) for row in rows})
    assert times[0] == T0 + 50
    assert times[-1] == T0 + 119
    assert len(times) == 70
    assert len(rows) == 70 * 5


def test_json_is_an_array_of_objects_with_their_series_figures(history: Filled):
    rows = json.loads(exported(history.path, T0, T0 + 1000, "json"))
    assert len(rows) == len(history.recorded)
    for row in rows:
        assert tuple(row) == (*KEYS, *FIGURE_NAMES[row["series"]])
    check_against_recorded(history, rows)
    assert json.loads(exported(history.path, T0 + 5000, T0 + 6000, "json")) == []


def test_parquet_holds_the_same_rows_with_typed_columns(history: Filled):
    table = pq.read_table(pa.BufferReader(exported(history.path, T0, T0 + 1000, "parquet")))
    assert tuple(table.column_names) == COLUMNS
    assert table.schema.field("timestamp").type == pa.float64()
    assert table.schema.field("bytes_sent").type == pa.int64()
    assert table.schema.field("latency_ms").type == pa.float64()
    rows = table.to_pylist()
    assert len(rows) == len(history.recorded)
    check_against_recorded(history, rows)


def test_parquet_goes_out_a_row_group_at_a_time(
    long_history: Filled, monkeypatch: pytest.MonkeyPatch
):
    # Row groups of 5,000 rows rather than 65,536, to see several in a small store.
    monkeypatch.setattr(export_module, "_ROW_GROUP", 5000)
    connection = connect(str(long_history.path), read_only=True)
    try:
        pieces = list(encode(Export(connection, ExportRange(T0, T0 + 9001)), "parquet"))
    finally:
        connection.close()
    # Windows of 2799, 3600, 2601 rows a series: a group is written once 5,000 are held.
    groups = [6399, 5400, 6201]
    assert len(pieces) == len(groups) + 1  # each group as it is written, then the footer
    file = pq.ParquetFile(pa.BufferReader(b"".join(pieces)))
    assert [file.metadata.row_group(k).num_rows for k in range(file.num_row_groups)] == groups
    rows = file.read().to_pylist()
    assert {row_key(row) for row in rows} == set(long_history.recorded)
    check_against_recorded(long_history, rows)


def test_an_empty_range_is_a_header_alone(history: Filled):
    assert exported(history.path, T0 - 5000, T0, "csv").decode() == ",".join(COLUMNS) + "\n"
    # A range that ends before it starts is empty, as the API's other ranges are.
    assert exported(history.path, T0 + 100, T0 + 50, "csv").decode() == ",".join(COLUMNS) + "\n"
    assert exported(history.path, T0 + 100, T0 + 100, "json") == b"[]\n"
    table = pq.read_table(pa.BufferReader(exported(history.path, T0 - 5000, T0, "parquet")))
    assert table.num_rows == 0
    assert tuple(table.column_names) == COLUMNS


def test_anonymized_ids_are_exported_as_stored_and_nothing_else_of_the_peer(tmp_path: Path):
    filled = filled_store(tmp_path / "anon.db", seconds=70, peers=1, anonymize_ids=True)
    filled.store.close()
    [(stored,)] = query(filled.path, "SELECT key FROM series WHERE kind = 'peer'")
    assert stored != "p0"
    for form in ("csv", "json", "parquet"):
        data = exported(filled.path, T0, T0 + 100, form)
        assert b"p0" not in data
        assert b"peer 0" not in data
        assert b"10.0.0.1" not in data
    rows = [
        r for r in csv_rows(exported(filled.path, T0, T0 + 100, "csv")) if r["series"] == "peer"
    ]
    assert len(rows) == 70
    assert {row["peer_id"] for row in rows} == {stored}
    assert {row["name"] for row in rows} == {None}
    recorded = filled.rows("peer")
    for row in rows:
        want = recorded[("peer", "p0", round(float(row["timestamp"]) * 1000))]
        for name in FIGURE_NAMES["peer"]:
            assert close_enough(row[name], want[name], name)


# --- buckets --------------------------------------------------------------------------------


def expected_buckets(
    filled: Filled, step: int, kind: str
) -> dict[tuple[str, int], dict[str, list[Any]]]:
    """The recorded values of each (key, bucket start in ms), per figure."""
    out: dict[tuple[str, int], dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for (_, key, t_ms), values in filled.rows(kind).items():
        bucket = t_ms - t_ms % (step * 1000)
        for name, value in values.items():
            out[(key, bucket)][name].append(value)
    return out


@pytest.mark.parametrize("step", [10, 60])
def test_buckets_hold_a_gauges_mean_and_a_counters_last_value(history: Filled, step: int):
    rows = csv_rows(exported(history.path, T0, T0 + 1000, "csv", step=step))
    assert rows
    for kind in ("host", "server", "peer"):
        expected = expected_buckets(history, step, kind)
        got = [row for row in rows if row["series"] == kind]
        keys = {(row_key(row)[1], row_key(row)[2]) for row in got}
        # From a minute on, buckets come from the minutes written as chunks, and the open
        # one from its raw samples: every bucket is there either way.
        assert keys == set(expected)
        for row in got:
            want = expected[(row_key(row)[1], row_key(row)[2])]
            for name in FIGURE_NAMES[kind]:
                values = [v for v in want[name] if v is not None]
                if kind == "peer" and name == "loss_percent":
                    continue  # the probes' loss in the bucket: below
                if not values:
                    assert row[name] is None
                elif name in COUNTERS:
                    assert int(row[name]) == values[-1], (row_key(row), name)
                else:
                    assert abs(float(row[name]) - statistics.fmean(values)) <= 0.01, name
    # A peer's loss in a bucket is its probes' lost / sent there: peer 1's 20 s outage.
    lossy = [row for row in rows if row["peer_id"] == "p1" and float(row["loss_percent"] or 0)]
    assert lossy
    assert all(float(row["loss_percent"]) == 0 for row in rows if row["peer_id"] == "p0")


@pytest.mark.slow
def test_buckets_reach_back_past_the_raw_tiers_retention(tmp_path: Path):
    filled = filled_store(
        tmp_path / "tiers.db",
        seconds=3 * 3600 + 300,
        peers=1,
        system=False,
        raw_retention_s=3600,
        flush_interval_s=0.02,
    )
    try:
        newest_ms = round(filled.clock.now * 1000)

        def pruned() -> bool:
            [(oldest,)] = query(filled.path, "SELECT MIN(end_ms) FROM chunks WHERE tier = 0")
            return oldest is not None and oldest >= newest_ms - 3_660_000

        wait_for(pruned, what="the raw tier pruned to its retention")
        raw = csv_rows(exported(filled.path, T0, T0 + 20_000, "csv"))
        assert min(float(row["timestamp"]) for row in raw) >= filled.clock.now - 3660
        hourly = [
            row
            for row in csv_rows(exported(filled.path, T0, T0 + 20_000, "csv", step=3600))
            if row["series"] == "peer"
        ]
        expected = expected_buckets(filled, 3600, "peer")
        assert [row_key(row)[2] for row in hourly] == sorted(bucket for _, bucket in expected)
        assert row_key(hourly[0])[2] == 1_699_999_200_000  # 22:00, before T0: the hour's start
        for row in hourly:
            values = [v for v in expected[("p0", row_key(row)[2])]["latency_ms"] if v is not None]
            assert abs(float(row["latency_ms"]) - statistics.fmean(values)) <= 0.01
    finally:
        filled.store.close()


# --- bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "buckets"),
    [(None, None), (1, 1), (59, 59), (60, 60), (90, 60), (3599, 3540), (5400, 3600)],
)
def test_a_step_is_rounded_to_the_buckets_the_tiers_keep(step, buckets):
    assert ExportRange(T0, T0 + 10, step).bucket_s == buckets


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        (float("nan"), T0, None, "from: must be epoch seconds"),
        (-1.0, T0, None, "from: must be epoch seconds"),
        (T0, float("inf"), None, "to: must be epoch seconds"),
        (T0, T0 + 10, 0, "step: must be 1..31622400 seconds"),
        (T0, T0 + 10, 31_622_401, "step: must be 1..31622400 seconds"),
    ],
)
def test_a_bad_range_is_refused_naming_the_field(start, end, step, message):
    with pytest.raises(ValueError, match=message):
        ExportRange(start, end, step)


def test_a_format_is_one_of_three_and_parquet_needs_its_extra(monkeypatch: pytest.MonkeyPatch):
    assert check_format("csv") == "csv"
    assert check_format("parquet") == "parquet"
    with pytest.raises(ValueError, match="format: one of csv, json, parquet, got 'xml'"):
        check_format("xml")
    # As if pyarrow were not installed: an import of it fails.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(
        ValueError,
        match=r"format: parquet needs the optional extra "
        r"peerscope\[parquet\]",
    ):
        check_format("parquet")


def test_reads_go_a_series_and_an_hour_at_a_time(long_history: Filled):
    connection = connect(str(long_history.path), read_only=True)
    try:
        export = Export(connection, ExportRange(T0, T0 + 9001))
        batches = list(export.batches())
    finally:
        connection.close()
    # From 22:13:21 to 00:43:20, each series in windows that end on the hour.
    assert [(batch.kind, len(batch.times)) for batch in batches] == [
        ("server", 2799),
        ("server", 3600),
        ("server", 2601),
        ("peer", 2799),
        ("peer", 3600),
        ("peer", 2601),
    ]
    assert export.total == export.done == 6
    assert export.rows == 2 * 9000


def peak_memory(path: Path, start: float, end: float, form: Format) -> int:
    """The most the Python heap held above its start while the export ran (Arrow's own
    buffers are not counted: tracemalloc sees Python's allocations only)."""
    connection = connect(str(path), read_only=True)
    tracemalloc.start()
    try:
        for _ in encode(Export(connection, ExportRange(start, end)), form):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        connection.close()


@pytest.mark.slow
@pytest.mark.parametrize("form", ["csv", "json"])
def test_memory_does_not_grow_with_the_range(long_history: Filled, form: Format):
    one_hour = peak_memory(long_history.path, T0 + 2800, T0 + 6400, form)  # 23:00 to 00:00
    whole = peak_memory(long_history.path, T0, T0 + 9001, form)  # 2.5 times the rows
    assert whole < 1.2 * one_hour
    # An hour of one series at a time: the reader's samples and their rows, some 6 MiB.
    assert one_hour < 10 * 2**20


def test_a_minute_written_as_a_chunk_mid_read_is_read_once(tmp_path: Path):
    """The writer commits between a window's two reads (its chunks, then its recent rows),
    turning the minute read from recent rows into a chunk: the window still reads that
    minute, once, as the file was when the window began."""
    filled = filled_store(tmp_path / "busy.db", seconds=39, peers=1)  # to 22:13:59
    connection = connect(str(filled.path), read_only=True)
    committed: list[float] = []

    def between_reads(statement: str) -> None:
        if statement.startswith("SELECT t_ms, data FROM recent") and not committed:
            filled.run(30)  # 22:14:00 ends the minute: it becomes a chunk, its rows go
            committed.append(filled.clock.now)

    connection.set_trace_callback(between_reads)
    try:
        pieces = encode(Export(connection, ExportRange(T0, T0 + 100)), "csv")
        rows = csv_rows(b"".join(pieces))
    finally:
        connection.close()
        filled.store.close()
    assert committed  # the writer did commit mid-read
    [(chunk_start,)] = query(filled.path, "SELECT MIN(start_ms) FROM chunks WHERE tier = 0")
    assert chunk_start == 1_699_999_980_000  # 22:13, now a chunk
    keys = [row_key(row) for row in rows]
    assert len(keys) == len(set(keys))
    # Every series (the host read first, across the commit) has its 39 seconds.
    assert {key for key in filled.recorded if key[2] < (T0 + 40) * 1000} <= set(keys)
    check_against_recorded(filled, rows)


# --- GET /api/export ------------------------------------------------------------------------


def served(filled: Filled) -> tuple[Monitor, Any]:
    monitor = Monitor(Settings(enable_system_metrics=False))
    app = create_app(monitor)
    app.include_router(export_router(filled.store))
    return monitor, app


async def http_chunks(port: int, target: str) -> tuple[bytes, list[bytes]]:
    """A GET over a plain socket: the response head and each chunk of its body as the
    server framed them (Transfer-Encoding: chunked)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        if size == 0:
            break
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    writer.close()
    await writer.wait_closed()
    return head, chunks


async def test_the_download_streams_in_pieces_without_holding_the_loop(long_history: Filled):
    monitor, app = served(long_history)
    async with live_server(monitor, app=app) as server, LoopStalls() as stalls:
        head, chunks = await http_chunks(
            server.port, f"/api/export?from={T0:.0f}&to={T0 + 9001:.0f}&format=csv"
        )
    text = head.decode().lower()
    assert text.startswith("http/1.1 200")
    assert "transfer-encoding: chunked" in text
    assert "content-length" not in text
    assert "content-type: text/csv; charset=utf-8" in text
    assert (
        'content-disposition: attachment; filename="peerscope-20231114t221320z-'
        '20231115t004321z.csv"' in text
    )
    assert len(chunks) == 6  # a window of a series each: two series, three hours
    assert b"".join(chunks) == exported(long_history.path, T0, T0 + 9001, "csv")
    assert stalls.worst < 0.5


@pytest.mark.parametrize("form", ["json", "parquet"])
async def test_the_download_in_json_and_parquet(history: Filled, form: str):
    monitor, app = served(history)
    async with live_server(monitor, app=app) as server, server.http() as http:
        response = await http.get(
            "/api/export", params={"from": T0, "to": T0 + 1000, "format": form}
        )
    assert response.status_code == 200
    if form == "json":
        assert response.headers["content-type"] == "application/json"
        rows = json.loads(response.content)
    else:
        assert response.headers["content-type"] == "application/vnd.apache.parquet"
        rows = pq.read_table(pa.BufferReader(response.content)).to_pylist()
    assert len(rows) == len(history.recorded)
    check_against_recorded(history, rows)
    assert response.headers["content-disposition"].endswith(f'.{form}"')


def open_connections() -> int:
    """How many SQLite connections of this process are open."""
    count = 0
    for thing in gc.get_objects():
        if isinstance(thing, sqlite3.Connection):
            try:
                thing.total_changes  # noqa: B018 (refused by a closed connection)
            except sqlite3.ProgrammingError:
                continue
            count += 1
    return count


async def test_each_download_reads_on_a_connection_it_closes(history: Filled):
    """Several downloads at once, and one whose client goes away after the first piece:
    each read on a connection of its own, every one closed after."""
    monitor, app = served(history)
    baseline = open_connections()
    async with live_server(monitor, app=app) as server, server.http() as http:
        responses = await asyncio.gather(
            *(http.get("/api/export", params={"from": T0, "to": T0 + 1000 + n}) for n in range(4))
        )
        assert {len(csv_rows(r.content)) for r in responses} == {len(history.recorded)}
        assert open_connections() == baseline
        async with http.stream("GET", "/api/export", params={"from": T0, "to": T0 + 1000}) as r:
            async for _ in r.aiter_raw():
                assert open_connections() == baseline + 1  # its own, while it runs
                break
        deadline = asyncio.get_running_loop().time() + 10
        while open_connections() != baseline:
            assert asyncio.get_running_loop().time() < deadline, "left open"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": T0, "to": 1e12}, "query.to", "less than or equal to 100000000000"),
        ({"from": "yesterday"}, "query.from", "valid number"),
        ({"from": T0, "to": T0 + 10, "format": "xml"}, "query.format", "'csv', 'json'"),
        ({"from": T0, "to": T0 + 10, "step": 0}, "query.step", "greater than or equal to 1"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    history: Filled, params: dict[str, Any], field: str, message: str
):
    monitor, app = served(history)
    async with live_server(monitor, app=app) as server, server.http() as http:
        response = await http.get("/api/export", params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unprocessable entity"
    [problem] = body["detail"]
    assert problem["field"] == field
    assert message in problem["message"]


async def test_a_range_that_ends_before_it_starts_is_an_empty_download(history: Filled):
    monitor, app = served(history)
    async with live_server(monitor, app=app) as server, server.http() as http:
        response = await http.get("/api/export", params={"from": T0 + 100, "to": T0})
        default = await http.get("/api/export", params={"to": 0})  # from: an hour before, 0
    for answer in (response, default):
        assert answer.status_code == 200
        assert answer.text == ",".join(COLUMNS) + "\n"


async def test_parquet_without_its_extra_is_422_naming_it(
    history: Filled, monkeypatch: pytest.MonkeyPatch
):
    monitor, app = served(history)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    async with live_server(monitor, app=app) as server, server.http() as http:
        response = await http.get(
            "/api/export", params={"from": T0, "to": T0 + 10, "format": "parquet"}
        )
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "query.format"
    assert "peerscope[parquet]" in problem["message"]


def test_an_export_of_a_store_in_memory_never_holds_up_its_writer():
    """A :memory: store lives in SQLite's shared cache, where a reader's table locks make
    the writer fail at once: an export's connection, mid-read, must not take them."""
    filled = filled_store(Path(":memory:"), seconds=30, peers=1)
    connection = filled.store.open_connection()
    try:
        rows = csv_rows(b"".join(encode(Export(connection, ExportRange(T0, T0 + 100)), "csv")))
        assert len(rows) == len(filled.recorded)
        connection.execute("BEGIN")  # as an export holds its window's read
        connection.execute("SELECT COUNT(*) FROM chunks").fetchone()
        filled.run(60)  # a minute ends: the writer writes a chunk meanwhile
        assert filled.store.error is None
        assert filled.store.stats.failed_flushes == 0
        connection.execute("COMMIT")
        rows = csv_rows(b"".join(encode(Export(connection, ExportRange(T0, T0 + 100)), "csv")))
        assert {row_key(row) for row in rows} == set(filled.recorded)
    finally:
        connection.close()
        filled.store.close()


def test_export_uses_sqlite_read_only_on_a_file_it_never_changes(history: Filled):
    """The connection an export gets from the store cannot write."""
    connection = history.store.open_connection()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            connection.execute("DELETE FROM events")
    finally:
        connection.close()
