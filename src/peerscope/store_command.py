"""``peerscope export`` and ``peerscope db info|vacuum``: the history file, offline.

They work on the file alone, no agent needed, and beside a ``peerscope serve`` writing it
(WAL lets a reader in while the writer commits). None of them creates a file that is not
there: a wrong ``--db`` is said as such, never answered with an empty database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TypeVar

import orjson

from peerscope.store.database import MEMORY, SCHEMA_VERSION, connect, default_path
from peerscope.store.export import FORMATS, Export, ExportRange, check_format, encode
from peerscope.store.inspect import DatabaseInfo, inspect_database

__all__ = ["COMMANDS", "add_commands", "parse_when", "run"]

COMMANDS = ("export", "db")
Parser = TypeVar("Parser", bound=argparse.ArgumentParser)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_RELATIVE = re.compile(r"-(\d+(?:\.\d+)?)([smhdw])")
_EPOCH = re.compile(r"\d+(?:\.\d+)?")
WHEN_HELP = (
    "epoch seconds (1700000000), ISO 8601 (2023-11-14T22:13:20Z; local time without an "
    "offset), 'now', or back from now: -90s, -30m, -24h, -7d, -2w"
)


class _CommandError(Exception):
    """What the command cannot do, as its one line: ``where: what``."""


def parse_when(text: str, now: float) -> float:
    """``text`` as epoch seconds (see WHEN_HELP); ValueError saying what it accepts."""
    text = text.strip()
    if text == "now":
        return now
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - float(relative[1]) * _UNITS[relative[2]]
    if _EPOCH.fullmatch(text):
        return float(text)
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        pass
    raise ValueError(f"not a time: {text[:40]!r}; give {WHEN_HELP}")


# --- arguments -------------------------------------------------------------------------------


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH",
        help=f"the history file (default {default_path()}, where serve keeps it)",
    )


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """``export`` and ``db`` on the ``peerscope`` command line."""
    export = commands.add_parser(
        "export",
        help="write a time range of the history file as CSV, JSON or Parquet",
        description="One row per series (peer, host, server) and sample time. "
        f"WHEN is {WHEN_HELP}.",
    )
    export.add_argument(
        "--from", dest="since", metavar="WHEN", default="-1h", help="start, included (default -1h)"
    )
    export.add_argument(
        "--to", dest="until", metavar="WHEN", default="now", help="end, excluded (default now)"
    )
    export.add_argument(
        "--format",
        choices=FORMATS,
        default="csv",
        help="csv (default), json, or parquet (needs peerscope[parquet])",
    )
    export.add_argument(
        "--out", required=True, metavar="FILE", help="the file to write ('-': standard output)"
    )
    export.add_argument(
        "--step",
        type=int,
        metavar="S",
        help="buckets of S seconds instead of raw samples (from 60 rounded down to whole "
        "minutes, from 3600 to whole hours): a gauge's mean, a counter's last value; "
        "reaches back as far as the 1-minute and 1-hour tiers",
    )
    _db_argument(export)
    # argparse takes an argument that starts with "-" for an option unless it reads as a
    # negative number: anything from "-" and a digit on is a value ("--from -24h").
    export._negative_number_matcher = re.compile(r"^-\d[\w.]*$")
    db = commands.add_parser("db", help="inspect or compact the history file")
    actions = db.add_subparsers(dest="db_command", required=True)
    info = actions.add_parser(
        "info", help="size, bytes per sample, rows and time span of each tier, series, events"
    )
    _db_argument(info)
    info.add_argument("--json", action="store_true", help="print it as one JSON object")
    vacuum = actions.add_parser(
        "vacuum",
        help="rebuild the file to give free pages back to the file system (best with the "
        "agent stopped)",
    )
    _db_argument(vacuum)


def run(args: argparse.Namespace) -> int:
    """Exit status 0, or 2 with one line on stderr saying what is wrong."""
    try:
        if args.command == "export":
            return _export(args)
        if args.db_command == "info":
            return _info(args)
        return _vacuum(args)
    except _CommandError as error:
        print(f"peerscope: {error}", file=sys.stderr)
        return 2


# --- the file --------------------------------------------------------------------------------


def _path(args: argparse.Namespace) -> Path:
    if args.db == MEMORY:
        raise _CommandError("--db: ':memory:' lives in the process that made it; give a file")
    path = default_path() if args.db is None else Path(args.db).expanduser()
    if not path.exists():
        raise _CommandError(f"db: {path}: no such file")
    if not path.is_file():
        raise _CommandError(f"db: {path}: not a file")
    return path


@contextlib.contextmanager
def _database(path: Path, *, read_only: bool) -> Iterator[sqlite3.Connection]:
    """A connection to the history file at ``path`` (which exists), checked to be one this
    version reads; any SQLite error inside is refused as ``db: path: error``."""
    try:
        connection = connect(str(path), read_only=read_only)
    except sqlite3.Error as error:
        raise _CommandError(f"db: {path}: {error}") from None
    try:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version == 0:
            raise _CommandError(f"db: {path}: not a peerscope history database")
        if version > SCHEMA_VERSION:
            raise _CommandError(
                f"db: {path}: schema version {version} is newer than this peerscope's "
                f"{SCHEMA_VERSION}; upgrade peerscope"
            )
        yield connection
    except sqlite3.Error as error:
        raise _CommandError(f"db: {path}: {error}") from None
    finally:
        connection.close()


def _disk_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _when(t: float | None) -> str:
    return "–" if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# --- export ----------------------------------------------------------------------------------


def _range(args: argparse.Namespace) -> ExportRange:
    now = time.time()
    times: dict[str, float] = {}
    for option, text in (("--from", args.since), ("--to", args.until)):
        try:
            times[option] = parse_when(text, now)
        except ValueError as error:
            raise _CommandError(f"{option}: {error}") from None
    start, end = times["--from"], times["--to"]
    if end <= start:  # an empty file, surely not what was meant
        raise _CommandError(f"--to: must be after --from ({_when(start)} to {_when(end)})")
    try:
        return ExportRange(start, end, args.step)
    except ValueError as error:
        name, _, message = str(error).partition(": ")
        raise _CommandError(f"--{name}: {message}") from None


@contextlib.contextmanager
def _output(out: str) -> Iterator[IO[bytes]]:
    """Standard output, or a file written beside ``out`` and renamed to it at the end, so
    a failed export leaves no half-written file under the name asked for."""
    if out == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(out).expanduser()
    if target.is_dir():
        raise _CommandError(f"--out: {target}: is a directory")
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed or removed below)
            dir=target.parent, prefix=f".{target.name}.", suffix=".partial", delete=False
        )
    except OSError as error:
        raise _CommandError(f"--out: {target}: {error.strerror or error}") from None
    try:
        with handle:
            # As open() would have made it: the temporary file's own mode is 0600.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(handle.fileno(), 0o666 & ~umask)
            yield handle
        os.replace(handle.name, target)
    except OSError as error:
        raise _CommandError(f"--out: {target}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)


def _export(args: argparse.Namespace) -> int:
    wanted = _range(args)
    try:
        form = check_format(args.format)
    except ValueError as error:
        raise _CommandError(f"--{error}") from None
    path = _path(args)
    try:
        with _database(path, read_only=True) as connection, _output(args.out) as out:
            export = Export(connection, wanted)
            pieces = encode(export, form)
            if sys.stderr.isatty():
                _with_progress(export, pieces, out)
            else:
                for piece in pieces:
                    out.write(piece)
    except BrokenPipeError:
        # The reader of standard output stopped (| head): nothing more to say to it, and
        # no traceback when Python flushes it on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def _with_progress(export: Export, pieces: Iterator[bytes], out: IO[bytes]) -> None:
    """A progress bar on stderr (a terminal): windows of series read, rows written."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as progress:
        task = progress.add_task("export", total=None, rows=0)
        for piece in pieces:
            out.write(piece)
            progress.update(task, total=export.total, completed=export.done, rows=export.rows)
    print(f"peerscope: wrote {export.rows:,} rows", file=sys.stderr)


# --- db info and vacuum ------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    path = _path(args)
    with _database(path, read_only=True) as connection:
        found = inspect_database(connection, path)
    if args.json:
        sys.stdout.write(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print("\n".join(info_lines(found)))
    return 0


def _per(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def info_lines(found: DatabaseInfo) -> list[str]:
    """``db info`` in words: a few lines and a table of the tiers."""
    series = found["series"]
    events = found["events"]
    lines = [
        f"file: {found['path']}",
        f"size: {_size(found['file_bytes'] or found['database_bytes'])} on disk "
        f"(write-ahead log {_size(found['wal_bytes'] or 0)}); "
        f"{_size(found['free_bytes'])} of free pages",
        f"schema version {found['schema_version']}; peer ids "
        + ("anonymized (salted hashes)" if found["anonymized"] else "kept as they are"),
        f"series: {sum(series.values())} ("
        + ", ".join(f"{count} {kind}" for kind, count in series.items())
        + ")",
        f"events: {sum(events.values())}"
        + (
            " (" + ", ".join(f"{count} {kind}" for kind, count in events.items()) + ")"
            if events
            else ""
        ),
        "",
        f"{'tier':<5} {'rows':>10} {'samples':>14} {'stored':>10} {'B/sample':>9}  "
        f"{'oldest':<20}  {'newest':<20}",
    ]
    for tier in found["tiers"]:
        stored = tier["data_bytes"] + tier["summary_bytes"]
        lines.append(
            f"{tier['tier']:<5} {tier['rows']:>10,} {tier['samples']:>14,} {_size(stored):>10} "
            f"{_per(tier['bytes_per_sample']):>9}  {_when(tier['oldest']):<20}  "
            f"{_when(tier['newest']):<20}"
        )
    recent = found["recent"]
    lines += [
        "",
        f"recent rows: {recent['samples']:,} samples in {recent['rows']:,} rows, "
        f"{_size(recent['bytes'])} (uncompressed until their minute is written as a chunk)",
        f"whole file: {_per(found['file_bytes_per_raw_sample'])} bytes per raw sample "
        f"({found['raw_samples']:,} raw samples)",
    ]
    return lines


def _vacuum(args: argparse.Namespace) -> int:
    path = _path(args)
    before = _disk_bytes(path)
    with _database(path, read_only=False) as connection:
        started = time.monotonic()
        connection.execute("VACUUM")
        # VACUUM writes the new file through the write-ahead log; the checkpoint copies it
        # back and empties the log, so the file system gets the space at once.
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        seconds = time.monotonic() - started
    after = _disk_bytes(path)
    print(
        f"vacuumed {path} in {seconds:.1f} s: {_size(before)} before, {_size(after)} after "
        f"({_size(max(0, before - after))} given back)"
    )
    return 0
