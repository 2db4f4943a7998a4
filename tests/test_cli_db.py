"""``peerscope export`` and ``peerscope db info|vacuum``, run as a user runs them: another
Python process, on real history files (one of them still open by its writer)."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from peerscope.store.database import SCHEMA_VERSION
from peerscope.store.export import COLUMNS
from peerscope.store_command import parse_when
from tests.store_support import (
    T0,
    Filled,
    check_against_recorded,
    csv_rows,
    filled_store,
    query,
    row_key,
)

pytestmark = pytest.mark.slow  # each starts a Python process

NOW = 1_765_000_000.0


def peerscope(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peerscope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "160", **env},
    )


def export_all(path: Path) -> str:
    """Everything from T0 on, as CSV on standard output."""
    result = peerscope("export", "--db", str(path), "--from", str(T0), "--to", "now", "--out", "-")
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal prints, with its exit status checked."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    return line


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """2 peers, the host and the server, 200 s; closed (no writer)."""
    filled = filled_store(tmp_path_factory.mktemp("cli-db") / "history.db", seconds=200, peers=2)
    filled.store.close()
    return filled


# --- db info ----------------------------------------------------------------------------------


def test_db_info_json_counts_what_the_file_holds(history: Filled):
    result = peerscope("db", "info", "--db", str(history.path), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    [(rows, stored, first)] = query(
        history.path,
        "SELECT COUNT(*), SUM(LENGTH(data) + LENGTH(summary)), MIN(start_ms) "
        "FROM chunks WHERE tier = 0",
    )
    raw, minute, hour = info["tiers"]
    assert (raw["tier"], minute["tier"], hour["tier"]) == ("raw", "1m", "1h")
    assert raw["rows"] == rows
    assert raw["data_bytes"] + raw["summary_bytes"] == stored
    assert raw["bytes_per_sample"] == pytest.approx(stored / raw["samples"])
    # Every figure of every tick the writer took is a sample: in a chunk or a recent row.
    assert info["raw_samples"] == history.store.stats.samples
    assert raw["samples"] + info["recent"]["samples"] == history.store.stats.samples
    assert raw["oldest"] == first / 1000
    assert raw["newest"] == T0 + 200  # the newest second, in the recent rows
    assert minute["rows"] == hour["rows"] == 0  # not an hour old: nothing rolled up yet
    assert minute["bytes_per_sample"] is None
    assert info["file_bytes"] == history.path.stat().st_size  # no write-ahead log left
    assert info["file_bytes_per_raw_sample"] == pytest.approx(
        info["file_bytes"] / info["raw_samples"]
    )
    assert info["series"] == {"host": 1, "peer": 2, "server": 1}
    events = query(history.path, "SELECT type, COUNT(*) FROM events GROUP BY type")
    assert info["events"] == dict(events)
    assert info["schema_version"] == SCHEMA_VERSION
    assert info["anonymized"] is False
    assert info["path"] == str(history.path)


def test_db_info_in_words(history: Filled):
    result = peerscope("db", "info", "--db", str(history.path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"file: {history.path}"
    assert f"schema version {SCHEMA_VERSION}; peer ids kept as they are" in lines
    assert "series: 4 (1 host, 2 peer, 1 server)" in lines
    [(rows,)] = query(history.path, "SELECT COUNT(*) FROM chunks WHERE tier = 0")
    [raw] = [line for line in lines if line.startswith("raw ")]
    assert raw.split()[1] == f"{rows:,}"
    assert raw.split()[-1] == "2023-11-14T22:16:40Z"  # T0 + 200
    assert any(line.startswith("whole file: ") for line in lines)


def test_db_info_says_ids_are_anonymized(tmp_path: Path):
    filled = filled_store(tmp_path / "anon.db", seconds=5, peers=1, anonymize_ids=True)
    filled.store.close()
    result = peerscope("db", "info", "--db", str(filled.path), "--json")
    assert json.loads(result.stdout)["anonymized"] is True


# --- export ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["csv", "json", "parquet"])
def test_export_writes_the_recorded_samples(history: Filled, tmp_path: Path, form: str):
    out = tmp_path / f"history.{form}"
    result = peerscope(
        "export",
        "--db",
        str(history.path),
        "--from",
        str(T0),
        "--to",
        "2023-11-14T22:20:00Z",
        "--format",
        form,
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""  # quiet when nobody watches
    if form == "csv":
        rows = csv_rows(out.read_bytes())
    elif form == "json":
        rows = json.loads(out.read_bytes())
    else:
        rows = pq.read_table(pa.BufferReader(out.read_bytes())).to_pylist()
    assert {row_key(row) for row in rows} == set(history.recorded)
    check_against_recorded(history, rows)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_export_to_standard_output_with_a_step(history: Filled):
    result = peerscope(
        "export",
        "--db",
        str(history.path),
        "--from",
        str(T0),
        "--to",
        str(T0 + 100),
        "--step",
        "10",
        "--out",
        "-",
    )
    assert result.returncode == 0, result.stderr
    rows = csv_rows(result.stdout.encode())
    # 22:13:20 to 22:15:00 in 10 s buckets, for each of the four series.
    assert len(rows) == 10 * 4
    assert {float(row["timestamp"]) for row in rows} == {T0 + 10 * k for k in range(10)}


def test_export_to_a_reader_that_stops_ends_quietly(history: Filled):
    """As in ``peerscope export --out - | head -1``."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "peerscope",
            "export",
            "--db",
            str(history.path),
            "--from",
            str(T0),
            "--to",
            str(T0 + 1000),
            "--format",
            "json",
            "--out",
            "-",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline() == b"[\n"
    process.stdout.close()  # far less than the ~200 KB it writes
    assert process.wait(60) == 1
    assert process.stderr.read() == b""
    process.stderr.close()


def test_export_from_a_time_back_from_now(history: Filled):
    """-24h is a day before now: the file's samples (from 2023) are older, none is left."""
    result = peerscope("export", "--db", str(history.path), "--from", "-24h", "--out", "-")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ",".join(COLUMNS) + "\n"


def test_export_while_the_writer_has_the_file_open(tmp_path: Path):
    filled = filled_store(tmp_path / "open.db", seconds=90, peers=2)
    try:
        assert Path(f"{filled.path}-wal").exists()  # the writer's log: it is in use
        result = peerscope(
            "export",
            "--db",
            str(filled.path),
            "--from",
            str(T0),
            "--to",
            str(T0 + 1000),
            "--out",
            "-",
        )
        assert result.returncode == 0, result.stderr
        rows = csv_rows(result.stdout.encode())
        assert {row_key(row) for row in rows} == set(filled.recorded)
        check_against_recorded(filled, rows)
        # The writer goes on as before.
        filled.run(60)
        assert filled.store.error is None
        assert query(filled.path, "SELECT MAX(t_ms) FROM recent") == [(round((T0 + 150) * 1000),)]
    finally:
        filled.store.close()


def test_a_progress_bar_on_a_terminal(history: Filled, tmp_path: Path):
    """Run with stderr on a pseudo-terminal, as a user at a shell would."""
    parent, child = pty.openpty()
    out = tmp_path / "out.csv"
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "peerscope",
                "export",
                "--db",
                str(history.path),
                "--from",
                str(T0),
                "--to",
                str(T0 + 1000),
                "--out",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=child,
            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
        )
        os.close(child)
        child = -1
        output = b""
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(60) == 0
    finally:
        os.close(parent)
        if child >= 0:
            os.close(child)
    text = output.decode(errors="replace")
    assert "exporting" in text  # the bar's label
    assert f"peerscope: wrote {len(history.recorded):,} rows" in text
    assert len(csv_rows(out.read_bytes())) == len(history.recorded)


# --- db vacuum ------------------------------------------------------------------------------


def test_vacuum_gives_pages_back_and_keeps_every_sample(history: Filled, tmp_path: Path):
    path = tmp_path / "copy.db"
    shutil.copy(history.path, path)
    connection = sqlite3.connect(path)
    connection.execute("DELETE FROM events")  # pages to free, as pruning frees them
    connection.execute("CREATE TABLE ballast (data BLOB)")
    connection.execute("INSERT INTO ballast VALUES (zeroblob(2000000))")
    connection.commit()
    connection.execute("DROP TABLE ballast")
    connection.commit()
    connection.close()
    before = path.stat().st_size
    exported = export_all(path)
    result = peerscope("db", "vacuum", "--db", str(path))
    assert result.returncode == 0, result.stderr
    after = path.stat().st_size
    assert after < before - 1_900_000
    assert re.fullmatch(
        rf"vacuumed {re.escape(str(path))} in \d+\.\d s: 2\.\d MiB before, \d+\.\d KiB after "
        r"\(\d\.\d MiB given back\)\n",
        result.stdout,
    ), result.stdout
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    again = export_all(path)
    assert again == exported


def test_vacuum_beside_an_open_writer_empties_its_log(tmp_path: Path):
    filled = filled_store(tmp_path / "open.db", seconds=90, peers=1)
    try:
        wal = Path(f"{filled.path}-wal")
        assert wal.stat().st_size > 0
        result = peerscope("db", "vacuum", "--db", str(filled.path))
        assert result.returncode == 0, result.stderr
        assert wal.stat().st_size == 0  # checkpointed into the file, and truncated
        filled.run(30)
        assert filled.store.error is None
    finally:
        filled.store.close()
    rows = csv_rows(export_all(filled.path).encode())
    assert {row_key(row) for row in rows} == set(filled.recorded)


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["db", "info"], ["db", "vacuum"], ["export", "--out", "-"]],
)
def test_a_missing_file_is_named_and_never_created(tmp_path: Path, command: list[str]):
    path = tmp_path / "nowhere.db"
    line = refused(peerscope(*command, "--db", str(path)))
    assert line == f"peerscope: db: {path}: no such file"
    assert list(tmp_path.iterdir()) == []


def test_the_default_file_is_where_serve_keeps_it(tmp_path: Path):
    line = refused(peerscope("db", "info", XDG_DATA_HOME=str(tmp_path)))
    assert line == f"peerscope: db: {tmp_path}/peerscope/peerscope.db: no such file"
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_no_database_is_named_and_left_alone(tmp_path: Path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the pages you are looking for\n" * 100)
    for command in (["db", "info"], ["db", "vacuum"], ["export", "--out", "-"]):
        line = refused(peerscope(*command, "--db", str(path)))
        assert line == f"peerscope: db: {path}: file is not a database"
    assert path.read_bytes() == b"these are not the pages you are looking for\n" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_another_programs_sqlite_file_is_refused(tmp_path: Path):
    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    line = refused(peerscope("db", "vacuum", "--db", str(path)))
    assert line == f"peerscope: db: {path}: not a peerscope history database"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--from", "yesterday"],
            "peerscope: --from: not a time: 'yesterday'; give epoch seconds (1700000000), "
            "ISO 8601 (2023-11-14T22:13:20Z; local time without an offset), 'now', or back "
            "from now: -90s, -30m, -24h, -7d, -2w",
        ),
        (["--to", "-5y"], "peerscope: --to: not a time: '-5y'; give epoch seconds"),
        (
            ["--from", "2023-11-14T22:00:00Z", "--to", "1699999200"],
            "peerscope: --to: must be after --from (2023-11-14T22:00:00Z to 2023-11-14T22:00:00Z)",
        ),
        (["--step", "0"], "peerscope: --step: must be 1..31622400 seconds, got 0"),
        (["--step", "x"], "peerscope: --step: invalid int value: 'x'"),
        (["--format", "xml"], "peerscope: --format: invalid choice: 'xml'"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(history: Filled, args, line):
    result = peerscope("export", "--db", str(history.path), "--out", "-", *args)
    assert refused(result).startswith(line)


def test_an_unwritable_out_is_named(history: Filled, tmp_path: Path):
    missing = tmp_path / "no" / "such" / "dir.csv"
    line = refused(peerscope("export", "--db", str(history.path), "--out", str(missing)))
    assert line == f"peerscope: --out: {missing}: No such file or directory"
    line = refused(peerscope("export", "--db", str(history.path), "--out", str(tmp_path)))
    assert line == f"peerscope: --out: {tmp_path}: is a directory"
    assert list(tmp_path.iterdir()) == []


def test_parquet_without_its_extra_says_which_to_install(history: Filled, tmp_path: Path):
    # A pyarrow that cannot be imported, first on the path: as if it were not installed.
    fake = tmp_path / "site" / "pyarrow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    path = os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])
    result = peerscope(
        "export",
        "--db",
        str(history.path),
        "--format",
        "parquet",
        "--out",
        "-",
        PYTHONPATH=path,
    )
    assert refused(result) == (
        "peerscope: --format: parquet needs the optional extra peerscope[parquet] "
        "(pip install 'peerscope[parquet]'): pyarrow is not installed"
    )


# --- WHEN -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("now", NOW),
        ("-90s", NOW - 90),
        ("-30m", NOW - 1800),
        ("-24h", NOW - 86_400),
        ("-1.5h", NOW - 5400),
        ("-7d", NOW - 7 * 86_400),
        ("-2w", NOW - 14 * 86_400),
        ("1700000000", 1_700_000_000.0),
        ("1700000000.25", 1_700_000_000.25),
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
        ("2023-11-14", datetime(2023, 11, 14).timestamp()),  # local midnight
        ("2023-11-14T22:13:20", datetime(2023, 11, 14, 22, 13, 20).timestamp()),
    ],
)
def test_when_reads_epoch_iso_and_back_from_now(text: str, seconds: float):
    assert parse_when(text, NOW) == seconds


@pytest.mark.parametrize("text", ["yesterday", "-5y", "24h", "", "2023-13-01", "--1h"])
def test_when_refuses_anything_else_saying_what_it_takes(text: str):
    with pytest.raises(ValueError, match=r"^not a time: .*; give epoch seconds"):
        parse_when(text, NOW)
