"""The history store on real SQLite files, fed by a Monitor on a clock the test moves:
what goes in comes back (raw within its resolution, the tiers agreeing with the raw
samples), across restarts and crashes, with names, events and anonymized ids as stated."""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import sqlite3
import threading
from array import array
from pathlib import Path

import orjson
import pytest

from peerscope.config import Settings
from peerscope.core.model import SystemSample
from peerscope.core.rollup import FIGURES
from peerscope.monitor import Monitor
from peerscope.store import HistoryStore, StoreError
from peerscope.store.database import SCHEMA_VERSION
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock
from tests.store_rig import START, jittery, new_rig, rows, used_bytes


def close_to(found: float | None, value: float | None, scale: int) -> bool:
    if value is None or found is None:
        return found is value
    return abs(found - value) <= 0.5 / scale + abs(value) * 1e-12


def crash_image(path: Path, into: Path) -> Path:
    """The database file and its write-ahead log as they are now: what a crash leaves."""
    into.mkdir()
    for suffix in ("", "-wal"):
        if Path(f"{path}{suffix}").exists():
            shutil.copyfile(f"{path}{suffix}", into / f"{path.name}{suffix}")
    return into / path.name


def test_raw_samples_read_back_within_their_resolution(tmp_path):
    rig = new_rig(tmp_path / "h.db")
    peers = ["a", "b", "c"]
    rig.run(150, peers, latency=jittery(1), flush_every=20)  # two closed minutes and an open one
    rig.store.flush()
    reader = rig.store.reader
    series = [("peer", peer, rig.peer_handed(peer)) for peer in peers]
    series.append(("server", "server", rig.handed[("server", "server")]))
    for kind, key, handed in series:
        got = reader.samples(kind, key, START, rig.clock.now)
        assert got is not None
        for k, figure in enumerate(FIGURES[kind]):
            kept = got[figure.name]
            assert [t for t, _ in kept] == [t for t, _ in handed]
            for (_, value), (_, values) in zip(kept, handed, strict=True):
                assert close_to(value, values[k], figure.scale), (figure.name, value, values[k])
    assert reader.samples("peer", "nobody", START, rig.clock.now) is None
    with pytest.raises(ValueError, match="figures: rtt not kept for a peer; one of latency_ms"):
        reader.samples("peer", "a", START, rig.clock.now, ["rtt"])
    rig.store.close()


def test_a_dead_peer_has_no_latency_while_its_buckets_show_the_lost_probes(tmp_path):
    rig = new_rig(tmp_path / "h.db")
    dead = (START + 106, START + 286)  # 22:15:06 .. 22:18:06: all of 22:16 and 22:17

    def latency(peer_id: str, now: float) -> float | None:
        return None if dead[0] < now <= dead[1] else 25.0

    rig.run(420, ["a"], latency=latency)
    rig.store.catch_up()
    reader = rig.store.reader
    got = reader.samples("peer", "a", START, rig.clock.now, ["latency_ms"])
    assert got is not None
    handed = rig.peer_handed("a")
    assert [value for _, value in got["latency_ms"]] == [values[0] for _, values in handed]
    during = [value for t, value in got["latency_ms"] if dead[0] + 10 < t <= dead[1]]
    assert during
    assert set(during) == {None}  # no stale value from before the outage
    end = rig.clock.now + 1
    tier, minutes = reader.buckets("peer", "a", START, end, 60, now=rig.clock.now)
    assert tier == "1m"
    by_start = {bucket["timestamp"]: bucket for bucket in minutes}
    for minute in (START - 20 + 180, START - 20 + 240):  # 22:16 and 22:17
        bucket = by_start[minute]
        assert (bucket["sent"], bucket["lost"], bucket["loss_percent"]) == (60, 60, 100.0)
        assert bucket["outage"] is True
        assert bucket["latency_ms"] is None
    healthy = by_start[START - 20 + 360]  # 22:19
    assert (healthy["sent"], healthy["lost"], healthy["outage"]) == (60, 0, False)
    assert healthy["latency_ms"]["p50"] == pytest.approx(25.0, rel=0.01)
    tier, hours = reader.buckets("peer", "a", START, end, 3600, now=rig.clock.now)
    assert tier == "1h"
    # The first probe's rise is not known: nothing says what its counter was before.
    assert [(b["sent"], b["lost"]) for b in hours] == [(419, 180)]
    rig.store.close()


def true_bucket(samples, counters, start: float, end: float):
    """count/min/max/sum and p50/p95 of ``samples`` in [start, end), and the rise of each
    counter in it (resets count from zero), from the raw values."""
    values = sorted(v for t, v in samples if start <= t < end and v is not None)
    rises = []
    for counter in counters:
        before = [v for t, v in counter if t < start and v is not None]
        previous = before[-1] if before else None
        rise = 0.0
        for t, v in counter:
            if start <= t < end and v is not None:
                if previous is not None:
                    rise += v - previous if v >= previous else v
                previous = v
        rises.append(rise)
    return values, rises


def check_buckets(buckets, samples, counters, span: float) -> int:
    checked = 0
    for bucket in buckets:
        start = bucket["timestamp"]
        values, (sent, lost) = true_bucket(samples, counters, start, start + span)
        figure = bucket["latency_ms"]
        assert figure["count"] == len(values)
        assert (figure["min"], figure["max"]) == (values[0], values[-1])
        assert figure["avg"] * figure["count"] == pytest.approx(math.fsum(values), rel=1e-9)
        for q, name in ((0.5, "p50"), (0.95, "p95")):
            true = values[math.floor(q * (len(values) - 1))]
            assert figure[name] == pytest.approx(true, rel=0.01), (start, name)
        assert (bucket["sent"], bucket["lost"]) == (sent, lost), start
        checked += 1
    return checked


@pytest.mark.slow
def test_the_minute_and_hour_tiers_agree_with_the_raw_samples(tmp_path):
    rig = new_rig(tmp_path / "h.db")
    # 22:13:20 to 00:43:20: a first hour begun mid-hour, two complete ones, a day rolled up.
    rig.run(9000, ["a", "b"], latency=jittery(7), flush_every=600)
    rig.store.catch_up()
    path = tmp_path / "h.db"
    assert rows(path, "SELECT value FROM meta WHERE key = 'rolled_1'") == [("1700006400000",)]
    assert rows(path, "SELECT COUNT(*) FROM chunks WHERE tier = 2") == [(2 + 1,)]  # a, b, server
    now = rig.clock.now
    reader = rig.store.reader
    for peer in ("a", "b"):
        raw = reader.samples("peer", peer, START - 1, now)
        assert raw is not None
        samples = raw["latency_ms"]
        counters = [raw["probes_sent"], raw["probes_lost"]]
        tier, minutes = reader.buckets("peer", peer, START, now + 1, 60, now=now)
        assert tier == "1m"
        assert check_buckets(minutes, samples, counters, 60) == 151  # 22:13 .. 00:43
        tier, hours = reader.buckets("peer", peer, START, now + 1, 3600, now=now)
        assert tier == "1h"
        assert [b["timestamp"] for b in hours] == [START - 800 + 3600 * k for k in range(3)]
        assert check_buckets(hours, samples, counters, 3600) == 3
        # A raw range that begins mid-history counts the rise since the sample before it.
        tier, raw_buckets = reader.buckets("peer", peer, START + 5000, START + 5300, 30, now=now)
        assert tier == "raw"
        assert check_buckets(raw_buckets, samples, counters, 30) == 10
    rig.store.close()


def test_the_tier_follows_the_step_and_the_retention(tmp_path):
    rig = new_rig(tmp_path / "h.db", raw_retention_s=1800, minute_retention_s=7200)
    rig.run(60, ["a"])
    rig.store.flush()
    now = rig.clock.now
    reader = rig.store.reader
    asked = [
        (now - 600, 10),  # raw
        (now - 600, 60),  # 1m
        (now - 600, 3600),  # 1h
        (now - 3600, 10),  # older than raw_retention_s: 1m
        (now - 10000, 10),  # older than minute_retention_s: 1h
        (now - 10000, 60),
    ]
    found = [reader.buckets("peer", "a", start, now + 1, step, now=now) for start, step in asked]
    assert [answer[0] for answer in found if answer] == ["raw", "1m", "1h", "1m", "1h", "1h"]
    raw_count = sum(b["latency_ms"]["count"] for b in found[0][1])
    assert raw_count == 60
    rig.store.close()


def test_a_restart_loses_no_committed_sample_and_takes_none_twice(tmp_path):
    path = tmp_path / "h.db"
    first = new_rig(path)
    first.run(150, ["a", "b"], flush_every=45)  # closes at 22:15:50, mid-minute
    first.store.close()
    second = new_rig(path, ManualClock(first.clock.now))
    second.run(150, ["a", "b"], flush_every=45)
    second.store.catch_up()
    reader = second.store.reader
    for peer in ("a", "b"):
        got = reader.samples("peer", peer, START, second.clock.now, ["latency_ms"])
        assert got is not None
        expected = [t for t, _ in first.peer_handed(peer) + second.peer_handed(peer)]
        assert [t for t, _ in got["latency_ms"]] == expected
        # The minute open at the restart is one chunk, its samples from both runs ...
        minute_ms = round((START - 20 + 180) * 1000)
        assert rows(
            path,
            "SELECT samples FROM chunks c JOIN series s ON s.id = c.series_id "
            "WHERE s.key = ? AND tier = 0 AND start_ms = ?",
            peer,
            minute_ms,
        ) == [(60,)]
        # ... and a probe a tick, before and after it (the new run's counters start at 0).
        end = second.clock.now + 1
        tier, minutes = reader.buckets("peer", peer, START + 40, end, 60, now=end)
        assert tier == "1m"
        assert [b["sent"] for b in minutes] == [60, 60, 60, 60, 21]
    second.store.close()


def test_a_peer_is_last_seen_at_its_newest_sample_in_the_open_minute_and_after_a_crash(tmp_path):
    path = tmp_path / "h.db"
    rig = new_rig(path, flush_interval_s=60)
    rig.run(60, ["a", "b"])
    # b is measured no more (its readings change a while longer, as it goes stale); a is,
    # to 22:15:08, where the flush writes the minute before as chunks, then to 22:15:13.
    rig.run(48, ["a"])
    rig.store.flush()
    rig.run(5, ["a"])
    rig.store.flush()
    last = {peer: rig.peer_handed(peer)[-1][0] for peer in ("a", "b")}
    assert last["a"] > last["b"] + 1
    # The minute's samples are only in ``recent`` yet (series.last_ms is of the last chunk).
    assert rows(path, "SELECT MAX(last_ms) FROM series WHERE key = 'a'")[0][0] < last["a"] * 1000
    image = crash_image(path, tmp_path / "crashed")

    def check(store: HistoryStore) -> None:
        seen = store.reader.peers_seen(START)
        assert [(p["key"], p["last_seen"]) for p in seen] == [("a", last["a"]), ("b", last["b"])]
        assert [p["key"] for p in store.reader.peers_seen(last["b"] + 1)] == ["a"]

    check(rig.store)
    rig.store.close()
    restarted = HistoryStore(StoreSettings(db=str(image)))
    try:
        check(restarted)
    finally:
        restarted.close()


def test_a_crash_after_a_minute_closed_loses_nothing_of_it(tmp_path):
    path = tmp_path / "h.db"
    # No timed flush: the flush below is the one that writes the closed minutes' chunks.
    first = new_rig(path, flush_interval_s=60)
    first.run(100, ["a"])  # 22:13:21 .. 22:15:00: the tick at 22:15:00 closes 22:14
    first.store.flush()
    image = crash_image(path, tmp_path / "crashed")
    first.store.close()
    second = new_rig(image, ManualClock(first.clock.now))
    second.run(90, ["a"])
    second.store.catch_up()
    got = second.store.reader.samples("peer", "a", START, second.clock.now, ["latency_ms"])
    assert got is not None
    expected = [t for t, _ in first.peer_handed("a") + second.peer_handed("a")]
    assert [t for t, _ in got["latency_ms"]] == expected
    assert rows(
        image, "SELECT COUNT(*) FROM recent WHERE t_ms < ?", round(START * 1000) + 150_000
    ) == [(0,)]
    second.store.close()


def test_a_tick_older_than_the_newest_kept_is_counted_not_stored(tmp_path):
    rig = new_rig(tmp_path / "h.db", flush_interval_s=60)
    rig.run(100, ["a"])
    rig.store.flush()
    before = rig.store.reader.samples("peer", "a", START, rig.clock.now)
    rig.clock.advance(-70)  # the wall clock stepped back into a minute already written
    rig.run(5, ["a"])
    rig.clock.advance(70)
    rig.run(5, ["a"])
    rig.store.flush()
    after = rig.store.reader.samples("peer", "a", START, rig.clock.now - 5)
    assert after == before
    assert rig.store.stats.late == 5
    rig.store.close()


def test_names_labels_status_changes_sessions_and_alerts_are_kept(tmp_path):
    path = tmp_path / "h.db"
    rig = new_rig(path)
    monitor = rig.monitor
    monitor.add_peer("eu-1", name="Berlin box", address="198.51.100.7", labels={"region": "eu"})
    monitor.add_peer("quiet", name="never measured", kind="client")
    session = monitor.start_session("match 1", ["eu-1"])
    rig.run(30, ["eu-1"])
    rig.run(120, ["eu-1"], latency=lambda peer_id, now: None)
    monitor.end_session(session)
    rig.run(1, [])
    rig.store.record_alert(alert_event("eu-1", rig.clock.now))
    rig.store.flush()
    assert rows(
        path,
        "SELECT key, name, address, peer_kind, labels, first_ms FROM series "
        "WHERE kind = 'peer' ORDER BY key",
    ) == [
        # first seen: when it was added, before any reading
        ("eu-1", "Berlin box", "198.51.100.7", "peer", '{"region":"eu"}', START * 1000),
        ("quiet", "never measured", None, "client", "{}", START * 1000),
    ]
    events = rows(path, "SELECT type, data FROM events ORDER BY id")
    types = [kind for kind, _ in events]
    assert types[0] == "session_started"
    assert "status" in types
    assert types[-2:] == ["session_ended", "alert"]
    statuses = [data for kind, data in events if kind == "status"]
    assert statuses[0] == '{"previous":"connected","status":"degraded"}'
    ended = next(data for kind, data in events if kind == "session_ended")
    assert '"game_name":"match 1"' in ended
    assert '"peers":["eu-1"]' in ended
    rig.store.close()


def alert_event(peer_id: str, now: float) -> dict[str, object]:
    return {
        "id": 1,
        "state": "firing",
        "repeat": False,
        "rule": "high_loss",
        "metric": "loss_percent",
        "severity": "critical",
        "peer_id": peer_id,
        "labels": {"alertname": "high_loss", "peer_id": peer_id},
        "value": 100.0,
        "threshold": 5.0,
        "started_at": now,
        "timestamp": now,
        "message": f"high_loss: peer {peer_id} loss_percent 100 > 5",
        "silenced": False,
        "reason": None,
    }


def test_anonymized_ids_never_reach_the_file_yet_find_their_history(tmp_path):
    path = tmp_path / "h.db"
    secret_id, name, address = "alice-laptop-7f3a", "Alice Example", "203.0.113.77"
    rig = new_rig(path, anonymize_ids=True)
    rig.monitor.add_peer(secret_id, name=name, address=address, labels={"room": "blue"})
    session = rig.monitor.start_session("lobby", [secret_id])
    rig.run(90, [secret_id])
    rig.run(60, [secret_id], latency=lambda peer_id, now: None)
    rig.monitor.end_session(session)
    rig.run(1, [])
    rig.store.record_alert(alert_event(secret_id, rig.clock.now))
    rig.store.flush()
    stored = b"".join(
        Path(f"{path}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )
    for secret in (secret_id, name, address):
        assert secret.encode() not in stored
    assert b"lobby" in stored  # the events are there, their peers hashed
    got = rig.store.reader.samples("peer", secret_id, START, rig.clock.now, ["latency_ms"])
    assert got is not None
    assert len(got["latency_ms"]) == 150
    assert {e["type"] for e in rig.store.reader.events(peer_id=secret_id)} >= {"status", "alert"}
    rig.store.close()
    closed = path.read_bytes()  # the log folded in at close
    for secret in (secret_id, name, address):
        assert secret.encode() not in closed
    again = HistoryStore(StoreSettings(db=str(path)))  # the salt stays with the file
    assert again.reader.samples("peer", secret_id, START, START + 1e6) is not None
    again.close()


def test_a_schema_newer_than_this_version_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "future.db"
    HistoryStore(StoreSettings(db=str(path))).close()
    rows(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError) as raised:
        HistoryStore(StoreSettings(db=str(path)))
    assert str(raised.value) == (
        f"db: {path} has schema version {SCHEMA_VERSION + 1}, newer than this peerscope's "
        f"{SCHEMA_VERSION}; upgrade peerscope or use another --db"
    )


def test_an_old_file_without_tables_is_migrated_and_another_programs_is_refused(tmp_path):
    old = tmp_path / "old.db"
    rows(old, "CREATE TABLE scratch (x)")
    rows(old, "DROP TABLE scratch")  # a file of version 0 with no tables, not empty
    assert old.stat().st_size > 0
    rig = new_rig(old)
    rig.run(70, ["a"])
    rig.store.flush()
    assert rows(old, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(old, "PRAGMA auto_vacuum") == [(2,)]  # incremental: pruning gives pages back
    assert len(rig.store.reader.samples("peer", "a", START, rig.clock.now)["latency_ms"]) == 70
    rig.store.close()
    other = tmp_path / "other.db"
    rows(other, "CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match=f"db: {other} is a database of something else"):
        HistoryStore(StoreSettings(db=str(other)))
    assert rows(other, "SELECT name FROM sqlite_master") == [("invoices",)]


def test_a_version_1_file_keeps_its_open_minute_through_the_migration(tmp_path):
    """Version 1 packed a ``recent`` row's figures as doubles (NaN for absent); version 2
    keeps JSON. A file left by version 1 mid-minute is converted, its open minute served."""
    path = tmp_path / "v1.db"
    first = new_rig(path, flush_interval_s=60)
    first.run(100, ["a"])  # 22:13:21 .. 22:15:00: the minute 22:15 is open, in `recent`
    first.store.flush()
    first.store.close()
    before = rows(path, "SELECT rowid, data FROM recent")
    assert before
    db = sqlite3.connect(path)
    try:
        for rowid, data in before:
            figures = [math.nan if v is None else v for v in orjson.loads(data)]
            db.execute(
                "UPDATE recent SET data = ? WHERE rowid = ?",
                (array("d", figures).tobytes(), rowid),
            )
        db.execute("PRAGMA user_version = 1")
        db.commit()
    finally:
        db.close()
    second = new_rig(path, ManualClock(first.clock.now))
    try:
        assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        after = rows(path, "SELECT rowid, data FROM recent")  # JSON again, the same figures
        assert [(rowid, orjson.loads(data)) for rowid, data in after] == [
            (rowid, orjson.loads(data)) for rowid, data in before
        ]
        got = second.store.reader.samples("peer", "a", START, second.clock.now)
        assert got is not None
        handed = first.peer_handed("a")
        assert got.times == [t for t, _ in handed]
        # At the raw tier's resolution (1/100 ms), the closed minutes' and the open one's.
        assert got.values["latency_ms"] == pytest.approx(
            [values[0] for _, values in handed], abs=0.005
        )
    finally:
        second.store.close()


def test_memory_store_serves_queries_while_it_writes_and_refuses_them_once_closed(tmp_path):
    rig = new_rig(":memory:")
    stop = threading.Event()
    failures: list[BaseException] = []

    def query() -> None:
        while not stop.is_set():
            try:
                rig.store.reader.samples("server", "server", START, START + 1e6)
            except BaseException as error:
                failures.append(error)

    reader = threading.Thread(target=query)
    reader.start()
    try:
        rig.run(300, [f"p{i}" for i in range(50)], flush_every=5)
        rig.store.flush()
    finally:
        stop.set()
        reader.join()
    assert failures == []
    assert (rig.store.error, rig.store.stats.failed_flushes) == (None, 0)
    got = rig.store.reader.samples("peer", "p7", START, rig.clock.now, ["latency_ms"])
    assert len(got["latency_ms"]) == 300
    rig.store.close()
    rig.store.close()  # a second close does nothing
    with pytest.raises(StoreError, match="db: :memory: is closed"):
        rig.store.reader.samples("peer", "p7", START, rig.clock.now)
    with pytest.raises(StoreError, match="db: :memory: is closed"):
        rig.store.flush()
    rig.monitor.tick()  # the Monitor goes on; the store takes nothing more
    assert rig.store.stats.dropped == 0


# 2023-11-15 00:00 UTC, the first midnight after START, in ms.
NEXT_DAY_MS = 1_700_006_400_000
HOUR_MS = 3_600_000


@pytest.mark.slow
def test_retention_prunes_each_tier_once_the_tier_above_holds_it(tmp_path):
    path = tmp_path / "h.db"
    rig = new_rig(path, raw_retention_s=1800, minute_retention_s=7200, hour_retention_s=3 * 3600)
    end = START + 17_800  # 03:10:00 the next day
    outages = ((START + 300, START + 420), (end - 1200, end - 1080))

    def latency(peer_id: str, now: float) -> float | None:
        dead = peer_id == "b" and any(a < now <= b for a, b in outages)
        return None if dead else 20.0

    for _ in range(10):  # the writer's steps come with real time; here, every half hour
        rig.run(1780, ["a", "b"], step=10, latency=latency)
        rig.store.catch_up()
    assert rig.clock.now == end
    assert rows(path, "SELECT key, value FROM meta WHERE key LIKE 'rolled_%' ORDER BY key") == [
        ("rolled_1", str(NEXT_DAY_MS + 3 * HOUR_MS)),
        ("rolled_2", str(NEXT_DAY_MS)),
    ]
    a = rows(path, "SELECT id FROM series WHERE key = 'a'")[0][0]
    raw = rows(path, "SELECT start_ms FROM chunks WHERE series_id = ? AND tier = 0", a)
    # Raw: the last half hour (02:40 on), every minute of it.
    assert sorted(start for (start,) in raw) == [
        NEXT_DAY_MS + 2 * HOUR_MS + 40 * 60_000 + 60_000 * k for k in range(30)
    ]
    # Minutes: those the day above holds are pruned past two hours; today's are kept.
    minutes = rows(path, "SELECT start_ms FROM chunks WHERE series_id = ? AND tier = 1", a)
    assert sorted(start for (start,) in minutes) == [NEXT_DAY_MS + HOUR_MS * k for k in range(3)]
    # Hours: past three hours, yesterday's row is gone.
    assert rows(path, "SELECT COUNT(*) FROM chunks WHERE tier = 2") == [(0,)]
    kept_events = rows(path, "SELECT MIN(t_ms) FROM events")[0][0]
    assert kept_events > round((end - 3 * 3600) * 1000)
    assert rows(path, "SELECT COUNT(*) FROM events WHERE type = 'status'")[0][0] >= 2
    # What is left still answers, from the tier that holds it.
    reader = rig.store.reader
    tier, hours = reader.buckets("peer", "b", end - 3 * 3600, end, 3600, now=end)
    assert tier == "1h"
    assert [b["timestamp"] * 1000 for b in hours] == [NEXT_DAY_MS + HOUR_MS * k for k in range(4)]
    assert sum(b["lost"] for b in hours) == 12
    rig.store.close()


@pytest.mark.slow
def test_the_size_cap_holds_dropping_rolled_up_raw_minutes_first(tmp_path):
    path = tmp_path / "h.db"
    cap = 512 * 1024
    rig = new_rig(path, max_db_bytes=cap)
    peers = [f"p{i}" for i in range(10)]
    used = []
    for _ in range(18):  # three hours, the writer's steps every ten minutes
        rig.run(600, peers, step=5, latency=jittery(3))
        rig.store.catch_up()
        used.append(used_bytes(path))
    over = [size for size in used if size > cap * 0.9]
    assert over  # it did reach the cap
    assert max(used) <= cap
    assert min(over) >= cap - 64 * 1024  # near it: batches of rows, not whole tiers
    # All the buckets are kept: only raw minutes the hours hold went.
    series = len(peers) + 1  # and the server
    assert rows(path, "SELECT tier, COUNT(*) FROM chunks WHERE tier > 0 GROUP BY tier") == [
        (1, 3 * series),
        (2, series),
    ]
    # The raw minutes kept are the newest, every one of them from the oldest kept on, and
    # all of the hour not rolled up yet.
    for (sid,) in rows(path, "SELECT id FROM series"):
        starts = [
            s
            for (s,) in rows(
                path,
                "SELECT start_ms FROM chunks WHERE series_id = ? AND tier = 0 ORDER BY start_ms",
                sid,
            )
        ]
        assert starts == list(range(starts[0], starts[-1] + 1, 60_000))
        assert starts[0] < NEXT_DAY_MS + HOUR_MS  # 01:00, the hour still open
    rig.store.close()


def test_a_file_whose_recent_rows_span_minutes_gets_a_chunk_for_each(tmp_path):
    """What a writer whose flushes failed at minute ends left behind (this one keeps the
    chunks for the next flush instead): the samples of several minutes in ``recent``."""
    path = tmp_path / "h.db"
    first = new_rig(path)
    first.run(30, ["a"])  # 22:13:21 .. 22:13:50, in recent
    first.store.close()
    for shift in (60_000, 120_000):  # the same again at 22:14 and at 22:15
        rows(
            path,
            "INSERT INTO recent SELECT series_id, t_ms + ?, data FROM recent WHERE t_ms < ?",
            shift,
            round(START * 1000) + 40_000,
        )
    second = new_rig(path, ManualClock(START + 180))  # 22:16:20
    second.run(60, ["a"])
    second.store.catch_up()
    tier, minutes = second.store.reader.buckets(
        "peer", "a", START, second.clock.now + 1, 60, now=second.clock.now
    )
    assert tier == "1m"
    assert [(b["timestamp"] - START, b["latency_ms"]["count"]) for b in minutes] == [
        (-20, 30),
        (40, 30),
        (100, 30),
        (160, 39),  # 22:16:21 .. 22:16:59 ...
        (220, 21),  # ... and the open minute, 22:17:00 .. 22:17:20
    ]
    got = second.store.reader.samples("peer", "a", START, second.clock.now, ["latency_ms"])
    assert len(got["latency_ms"]) == 30 * 3 + 60
    second.store.close()


def test_a_figure_that_is_no_finite_number_is_kept_as_absent_and_the_writer_goes_on(tmp_path):
    rig = new_rig(tmp_path / "h.db", flush_interval_s=60)
    rig.run(10, ["a"])
    writer = rig.store._writer  # a tick made here: the Monitor never hands over such figures
    odd = SystemSample(
        timestamp=rig.clock.advance(1),
        cpu_percent=math.nan,
        memory_percent=math.inf,
        network_sent_rate=12.5,
    )
    last = rig.monitor.tick()
    assert writer.submit(dataclasses.replace(last, timestamp=odd.timestamp + 0.5, system=odd))
    rig.clock.advance(60)
    rig.run(60, ["a"])  # the minute with them closes: its chunk is written
    rig.store.flush()
    assert rig.store.error is None
    got = rig.store.reader.samples("host", "host", START, rig.clock.now)
    assert got is not None
    assert got["cpu_percent"] == [(odd.timestamp + 0.5, None)]
    assert got["memory_percent"] == [(odd.timestamp + 0.5, None)]
    assert got["network_sent_rate"] == [(odd.timestamp + 0.5, 12.5)]
    assert len(stored_latency(rig, "a")) == 10 + 60
    rig.store.close()


def stored_latency(rig, peer: str) -> list[tuple[float, float | None]]:
    got = rig.store.reader.samples("peer", peer, START, rig.clock.now, ["latency_ms"])
    assert got is not None
    return got["latency_ms"]


def test_an_event_no_row_can_hold_is_dropped_and_reported_and_the_writer_goes_on(tmp_path, caplog):
    path = tmp_path / "h.db"
    rig = new_rig(path)
    rig.run(10, ["a"])
    with caplog.at_level(logging.ERROR, logger="peerscope.store"):
        rig.store.record_alert(alert_event("a", 1e300))
        unencodable = {**alert_event("a", rig.clock.now), "value": {1, 2}}
        rig.store.record_alert(unencodable)
        rig.store.flush()
    logged = [record.getMessage() for record in caplog.records]
    assert logged[0] == (
        f"db: {path}: the writer failed: "
        "ValueError('timestamp: 1e+300 is not a time the store can keep')"
    )
    assert logged[1].startswith(f"db: {path}: the writer failed: TypeError(")
    assert len(logged) == 2
    rig.store.record_alert(alert_event("a", rig.clock.now))
    rig.run(10, ["a"])
    rig.store.flush()
    assert rig.store.error is None
    assert len(stored_latency(rig, "a")) == 20
    assert rows(path, "SELECT type, t_ms FROM events") == [
        ("alert", round(rig.clock.now * 1000) - 10_000)
    ]
    rig.store.close()


def test_an_anonymized_alert_names_its_peer_by_key_and_keeps_the_rest_of_its_words(tmp_path):
    rig = new_rig(tmp_path / "h.db", anonymize_ids=True)
    rig.run(5, ["s"])  # an id that is a letter of the rule's name, of the metric's
    rig.store.record_alert(alert_event("s", rig.clock.now))
    rig.store.flush()
    (event,) = rig.store.reader.events(types=["alert"])
    key = event["peer_id"]
    assert key != "s"
    assert event["data"]["message"] == f"high_loss: peer {key} loss_percent 100 > 5"
    assert event["data"]["labels"] == {"alertname": "high_loss", "peer_id": key}
    rig.store.close()


def test_a_minute_that_becomes_a_chunk_during_a_query_is_read_once(tmp_path):
    """samples() reads the chunks, then the recent rows: the writer closing the minute
    between the two must not hide it (nor show it twice): one read transaction."""
    clock = ManualClock(1_700_000_000.0)  # 13 s into a minute
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    store = HistoryStore(StoreSettings(db=str(tmp_path / "h.db"), queue_size=100_000))
    store.attach(monitor)
    try:
        for _ in range(39):  # to the minute's last second: all in recent rows
            clock.advance(1)
            monitor.record_latency("p0", 20.0)
            monitor.tick()
        store.flush()
        connection = store.reader._db
        closed: list[bool] = []

        def close_the_minute(statement: str) -> None:
            if statement.startswith("SELECT t_ms, data FROM recent") and not closed:
                closed.append(True)
                for _ in range(30):
                    clock.advance(1)
                    monitor.record_latency("p0", 20.0)
                    monitor.tick()
                store.flush()

        connection.set_trace_callback(close_the_minute)
        found = store.reader.samples("peer", "p0", 1_700_000_000, 1_700_000_039, ["latency_ms"])
        connection.set_trace_callback(None)
    finally:
        store.close()
    assert closed == [True]
    assert found is not None
    assert [t for t, _ in found["latency_ms"]] == [1_700_000_001.0 + k for k in range(39)]
