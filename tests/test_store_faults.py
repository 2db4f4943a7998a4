"""The history store when things go wrong: killed mid-ingest, a path it cannot write, a
full disk, a corrupt file, a writer that stalls. Each time: a clear error naming the path,
monitoring goes on, and nothing already stored is lost or damaged.

Root ignores permission bits, so a read-only place is a read-only tmpfs mounted here when
the tests run as root (as in CI), and a directory without write permission otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

import peerscope
from peerscope.store import HistoryStore, StoreError
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock
from tests.store_rig import START, integrity, jittery, new_rig, rig_on, steady

ROOT = os.geteuid() == 0
CHILD = Path(__file__).with_name("store_child.py")


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``where`` (root only) for the block."""
    where.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def stored_times(store: HistoryStore, peer: str, end: float) -> list[float]:
    got = store.reader.samples("peer", peer, START, end, ["latency_ms"])
    assert got is not None
    return [t for t, _ in got["latency_ms"]]


# --- kill -9 ---------------------------------------------------------------------------------


def _lines(stream: IO[str]) -> queue.Queue[list[str] | None]:
    """The lines ``stream`` gives, split, as they come (None at its end)."""
    lines: queue.Queue[list[str] | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.split())
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.slow
def test_kill_9_during_heavy_ingest_loses_at_most_what_was_not_committed(tmp_path, processes):
    """The child reports, after each tick, that tick's time and that of the newest tick
    committed; it is killed between two flushes. Everything committed must be there,
    once, in order, and the file sound."""
    path = tmp_path / "h.db"
    start = START + 2500  # 22:55: the hour ends, and is rolled up, while it ingests
    env = {**os.environ, "PYTHONPATH": str(Path(peerscope.__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(start), "250"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    processes.append(child)
    assert child.stdout is not None
    reports = _lines(child.stdout)
    last: list[str] = []
    past = None  # ticks since it committed 6 simulated minutes, past the hour
    deadline = time.monotonic() + 120
    while past is None or past <= 37:  # flushes are about 40 ticks apart: kill mid-way
        report = reports.get(timeout=max(0.0, deadline - time.monotonic()))
        assert report is not None, f"the child ended: {child.stderr and child.stderr.read()}"
        last = report
        if past is None and last[1] != "None" and float(last[1]) >= start + 360:
            past = 0
        if past is not None:
            past += 1
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    while (report := reports.get(timeout=10)) is not None:
        if len(report) == 3:  # not a line cut short by the kill
            last = report
    handed, committed, dropped = float(last[0]), float(last[1]), last[2]
    assert dropped == "0"

    assert integrity(path) == "ok"
    store = HistoryStore(StoreSettings(db=str(path)))
    ticks = [start + 1 + k for k in range(int(handed - start))]
    for peer in ("peer-0", "peer-123", "peer-249"):
        kept = stored_times(store, peer, handed + 1)
        # Every tick committed before the kill, once each, in order; what is missing is
        # only the end that had not been committed yet.
        assert kept == ticks[: len(kept)]
        assert kept[-1] >= committed
    tier, minutes = store.reader.buckets("peer", "peer-7", start, committed, 60, now=committed)
    assert tier == "1m"
    assert [b["latency_ms"]["count"] for b in minutes[1:-1]] == [60] * (len(minutes) - 2)
    # The restarted writer goes on from there, taking nothing twice.
    rig = rig_on(store, ManualClock(kept[-1]))
    rig.run(120, ["peer-0"])
    store.flush()
    after = stored_times(store, "peer-0", rig.clock.now)
    assert after == [start + 1 + k for k in range(len(after))]
    assert after[-1] == rig.clock.now
    store.close()


# --- a place that cannot be written ---------------------------------------------------------


@contextlib.contextmanager
def read_only(where: Path) -> Iterator[str]:
    """``where`` made read-only for the block (for root too); yields what the error says."""
    if ROOT:
        remount(where, "ro")
        try:
            yield f"db: {where} is on a read-only file system"
        finally:
            remount(where, "rw")
    else:
        where.chmod(0o500)
        try:
            yield f"db: cannot write in {where} (permission denied)"
        finally:
            where.chmod(0o700)


@pytest.fixture
def place(tmp_path: Path) -> Iterator[Path]:
    """A directory the test may make read-only: a tmpfs of its own when root."""
    if ROOT:
        with tmpfs(tmp_path / "mnt", "size=8m") as where:
            yield where
    else:
        where = tmp_path / "dir"
        where.mkdir()
        yield where


def test_a_read_only_place_is_refused_naming_it_and_what_is_there_is_untouched(place):
    path = place / "h.db"
    rig = new_rig(path)
    rig.run(90, ["a"])
    rig.store.close()
    before = path.read_bytes()
    with read_only(place) as message:
        with pytest.raises(StoreError) as raised:
            HistoryStore(StoreSettings(db=str(path)))
        assert str(raised.value) == message
        with pytest.raises(StoreError, match=f"db: cannot create {place / 'sub'}: "):
            HistoryStore(StoreSettings(db=str(place / "sub" / "h.db")))
        rig.monitor.tick()  # monitoring goes on without it
        assert rig.monitor.peer("a")["latency_ms"] == pytest.approx(steady("a", START + 90))
    assert path.read_bytes() == before
    again = HistoryStore(StoreSettings(db=str(path)))
    assert len(stored_times(again, "a", START + 90)) == 90
    again.close()


def test_a_file_where_a_directory_should_be_is_refused_naming_it(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=f"^db: {blocker} is not a directory$"):
        HistoryStore(StoreSettings(db=str(blocker / "h.db")))
    with pytest.raises(StoreError, match=f"^db: {tmp_path} is a directory, not a database file$"):
        HistoryStore(StoreSettings(db=str(tmp_path)))
    assert blocker.read_text() == "not a directory"


# --- a full disk -----------------------------------------------------------------------------


class PageCap:
    """A full disk as SQLite sees one: the writer's connection may not grow the file."""

    name = "page cap"

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "h.db"
        self.store: HistoryStore | None = None

    def fill(self) -> None:
        assert self.store is not None
        writer = self.store._writer  # the one connection that writes
        writer.call(lambda: writer._db.execute("PRAGMA max_page_count = 1"))

    def free(self) -> None:
        assert self.store is not None
        writer = self.store._writer
        writer.call(lambda: writer._db.execute("PRAGMA max_page_count = 1073741823"))


class SmallDisk:
    """A real full disk: a small tmpfs, the rest of it taken by a file (root only)."""

    name = "small tmpfs"

    def __init__(self, tmp_path: Path) -> None:
        self._mount = tmpfs(tmp_path / "mnt", "size=4m")
        self.path = self._mount.__enter__() / "h.db"
        self._filler = self.path.with_name("filler")
        self.store: HistoryStore | None = None

    def fill(self) -> None:
        block = b"\0" * 65536
        # Unbuffered, and the suppress outside the file: a close that flushed what would
        # not fit would raise ENOSPC again on the way out.
        with contextlib.suppress(OSError), self._filler.open("wb", buffering=0) as out:
            while True:
                out.write(block)

    def free(self) -> None:
        self._filler.unlink()

    def close(self) -> None:
        self._mount.__exit__(None, None, None)


@pytest.fixture(params=["page cap", "small tmpfs"])
def disk(request, tmp_path):
    if request.param == "page cap":
        yield PageCap(tmp_path)
        return
    # Fails, never skips, without root (as the nftables tests do): CI runs as root.
    assert ROOT, "mounting a tmpfs takes root: run the suite as root (CI does)"
    small = SmallDisk(tmp_path)
    try:
        yield small
    finally:
        if small.store is not None:
            small.store.close()
        small.close()


def test_a_full_disk_is_reported_monitoring_goes_on_and_writing_resumes(disk):
    rig = new_rig(disk.path)
    disk.store = rig.store
    store = rig.store
    rig.run(150, ["a", "b"], latency=jittery(5), flush_every=10)
    store.flush()
    committed = stored_times(store, "a", rig.clock.now)
    disk.fill()
    rig.run(200, ["a", "b"], latency=jittery(6), flush_every=10)  # three minutes close
    with contextlib.suppress(StoreError, TimeoutError):
        store.flush()
    assert store.error is not None
    assert store.error.startswith(f"db: cannot write {disk.path}: ")
    assert store.error.endswith("; going on in memory")
    assert store.stats.failed_flushes > 0
    assert rig.monitor.peer("a")["probes"]["sent"] == 350  # the Monitor goes on
    assert integrity(disk.path) == "ok"
    # What was stored is there still (and maybe a little more: SQLite writes on into
    # pages it already has while it can).
    during = stored_times(store, "a", rig.clock.now)
    assert during[: len(committed)] == committed
    assert during == [t for t, _ in rig.peer_handed("a")][: len(during)]
    disk.free()
    rig.run(30, ["a", "b"], latency=jittery(7))
    store.flush()
    assert store.error is None
    # Nothing was lost: the minutes that closed while it was full were kept for this flush.
    assert stored_times(store, "a", rig.clock.now) == [t for t, _ in rig.peer_handed("a")]
    assert store.stats.lost_chunks == 0
    assert integrity(disk.path) == "ok"
    store.close()
    disk.store = None


def test_a_long_full_disk_gives_up_the_oldest_minutes_and_counts_them(tmp_path):
    disk = PageCap(tmp_path)
    rig = new_rig(disk.path)
    disk.store = rig.store
    rig.run(60, ["a"])
    rig.store.flush()
    disk.fill()
    rig.run(25 * 60, ["a"], flush_every=30)  # 25 minutes close while full
    disk.free()
    rig.run(30, ["a"])
    rig.store.flush()
    lost = rig.store.stats.lost_chunks
    kept = stored_times(rig.store, "a", rig.clock.now)
    handed = [t for t, _ in rig.peer_handed("a")]
    missing = sorted(set(handed) - set(kept))
    # Whole minutes went, counted for each series (the peer and the server) ...
    minutes = sorted({t - t % 60 for t in missing})
    assert lost == 2 * len(minutes) > 0
    assert len(missing) == 60 * len(minutes)
    # ... none of what was committed before the disk filled (the first minute kept holds
    # it), nor of the newest 14 minutes that closed while it was full, nor after.
    assert missing[0] > START + 60
    assert missing[-1] < rig.clock.now - 30 - 14 * 60
    assert integrity(disk.path) == "ok"
    rig.store.close()


# --- a corrupt file --------------------------------------------------------------------------


def test_random_bytes_are_moved_aside_never_deleted_and_a_new_store_starts(tmp_path, caplog):
    path = tmp_path / "h.db"
    junk = os.urandom(20_000)
    path.write_bytes(junk)
    with caplog.at_level(logging.ERROR, logger="peerscope.store"):
        rig = new_rig(path)
    aside = rig.store.moved_aside
    assert aside is not None
    assert aside.parent == tmp_path
    assert aside.name.startswith("h.db.corrupt-")
    assert aside.read_bytes() == junk
    assert [r.getMessage() for r in caplog.records] == [
        f"db: {path} could not be read as a database; moved aside to {aside}, starting afresh"
    ]
    rig.run(70, ["a"])
    rig.store.flush()
    assert len(stored_times(rig.store, "a", rig.clock.now)) == 70
    rig.store.close()


def test_a_truncated_database_is_moved_aside_and_two_in_a_second_both_kept(tmp_path):
    path = tmp_path / "h.db"
    rig = new_rig(path)
    rig.run(600, [f"p{i}" for i in range(5)])
    rig.store.close()
    asides = []
    for _ in range(2):
        if asides:  # a second corrupt file within the second: the fresh one, cut short too
            again = new_rig(path, ManualClock(START))
            again.run(600, [f"p{i}" for i in range(5)])
            again.store.close()
        whole = path.read_bytes()
        cut = whole[: len(whole) // 2]
        path.write_bytes(cut)
        store = HistoryStore(StoreSettings(db=str(path)))
        assert store.moved_aside is not None
        assert store.moved_aside.read_bytes() == cut
        asides.append(store.moved_aside)
        store.close()
    assert asides[0] != asides[1]
    assert asides[0].exists()
    assert integrity(path) == "ok"


# --- a writer that stalls ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_stalled_writer_drops_and_counts_ticks_and_never_blocks_the_loop(tmp_path):
    path = tmp_path / "h.db"
    rig = new_rig(path, queue_size=20, flush_interval_s=0.05)
    rig.run(5, ["a"])
    rig.store.flush()
    # Another process holds the database (a backup, a vacuum): the writer's next flush
    # waits for it (5 s) and takes nothing off its queue meanwhile.
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        rig.run(1, ["a"])
        time.sleep(0.5)  # the writer is in its flush, waiting
        burst = threading.Thread(target=rig.run, args=(500, ["a"]))
        burst.start()
        burst.join(30)
        # Done while the database was still held: no tick waited for the writer.
        assert not burst.is_alive()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rig.store.stats.dropped >= 500 - 20 - 1
    rig.store.flush()
    rig.run(5, ["a"])
    rig.store.flush()
    assert rig.store.error is None
    kept = stored_times(rig.store, "a", rig.clock.now)
    assert len(kept) == len(rig.peer_handed("a")) - rig.store.stats.dropped
    assert integrity(path) == "ok"
    rig.store.close()


def test_a_second_writer_of_one_file_is_refused_naming_the_holder(tmp_path):
    """Two processes writing one file would number their series alike (seen when several
    `peerscope serve` shared the XDG default): the second is refused until the first closes."""
    path = tmp_path / "history.db"
    first = HistoryStore(StoreSettings(db=str(path)))
    try:
        with pytest.raises(StoreError) as refused:
            HistoryStore(StoreSettings(db=str(path)))
        assert str(refused.value) == (
            f"db: {path} is written by another peerscope process (pid {os.getpid()}); give "
            "this one its own --db, or --no-db"
        )
    finally:
        first.close()
    second = HistoryStore(StoreSettings(db=str(path)))  # free again once the first closed
    second.close()
    # In another process too: the lock is the file's, not this interpreter's.
    script = (
        "import sys; from peerscope.store import HistoryStore, StoreError\n"
        "from peerscope.store_settings import StoreSettings\n"
        f"try: HistoryStore(StoreSettings(db={str(path)!r}))\n"
        "except StoreError as error: print(error); sys.exit(3)\n"
    )
    holder = HistoryStore(StoreSettings(db=str(path)))
    try:
        child = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")},
        )
    finally:
        holder.close()
    assert child.returncode == 3, child.stderr
    assert f"(pid {os.getpid()})" in child.stdout
