"""History over REST from a real history store (a SQLite file in a tmp dir): the tier the
step calls for, the seed's routes reading the store for what memory no longer holds, the
stored events, and the refusals. Time is a ManualClock: every tick is at a known second."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from peerscope import Monitor, Settings
from peerscope.alerting import Alerting
from peerscope.core.alerts import AlertRule
from peerscope.server import create_app
from peerscope.store import HistoryStore
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock

T0 = 1_699_999_200.0  # on the hour (and so on the minute)
RING = 30  # latency samples and host samples memory keeps: far fewer than the store
PEER = "eu/fra-1"  # a "/" in the id: the route reads it from the raw path
PEER_PATH = f"/api/metrics/peers/{quote(PEER, safe='')}"


def latency_at(i: int) -> float:
    return 10.0 + (i % 3)  # 10, 11, 12, ...: mean 11 over any whole minute


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def kept(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[Monitor, HistoryStore]]:
    """A Monitor with small rings, and a history store keeping it."""
    monitor = Monitor(
        Settings(
            enable_system_metrics=False,
            latency_samples=RING,
            system_history_samples=RING,
            # Committed when a test flushes, not before: what is not is known exactly.
            store=StoreSettings(
                enabled=True, db=str(tmp_path / "history.db"), flush_interval_s=60.0
            ),
        ),
        clock=clock,
    )
    store = HistoryStore(monitor.settings.store)
    store.attach(monitor)
    try:
        yield monitor, store
    finally:
        store.close()


def run(
    monitor: Monitor,
    store: HistoryStore | None,
    clock: ManualClock,
    seconds: int,
    each: Callable[[int], None],
    *,
    start: int = 0,
) -> None:
    """A tick a second from T0 + start, ``each(i)`` recording before tick i; committed."""
    for i in range(start, start + seconds):
        clock.now = T0 + i
        each(i)
        monitor.tick()
        if store is not None and i % 500 == 499:
            store.flush()  # the writer's queue holds 600 ticks; a real loop is slower
    if store is not None:
        store.flush()
        assert store.stats.dropped == 0


def answering(monitor: Monitor, peer_id: str = PEER) -> Callable[[int], None]:
    return lambda i: monitor.record_latency(peer_id, latency_at(i))


@contextlib.asynccontextmanager
async def api(
    monitor: Monitor, store: HistoryStore | None, **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(monitor, store=store, **kwargs)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def near(value: float | None, expected: float, rel: float = 0.01) -> bool:
    """Within the store's sketch's relative error (1 %)."""
    return value is not None and math.isclose(value, expected, rel_tol=rel)


# --- a peer's history ----------------------------------------------------------------------


async def test_a_peers_samples_come_from_the_store_far_beyond_its_ring(kept, clock):
    monitor, store = kept
    run(monitor, store, clock, 300, answering(monitor))
    assert len(monitor.latency_history(PEER, 1e9)) == RING  # memory: the last 30 s
    async with api(monitor, store) as client:
        body = await get(
            client,
            f"{PEER_PATH}/history",
            **{"from": T0 - 1, "to": T0 + 299, "figures": "latency_ms,probes_sent"},
        )
    assert body["peer_id"] == PEER
    assert (body["from"], body["to"], body["step"]) == (T0 - 1, T0 + 299, None)
    assert body["tier"] == "raw"
    assert body["figures"] == ["latency_ms", "probes_sent"]
    assert body["timestamps"] == [T0 + i for i in range(300)]
    assert body["values"]["latency_ms"] == [latency_at(i) for i in range(300)]
    assert body["values"]["probes_sent"] == [float(i + 1) for i in range(300)]
    assert set(body["values"]) == {"latency_ms", "probes_sent"}
    assert body["buckets"] is None
    # By default the hour up to now, every figure a peer keeps.
    async with api(monitor, store) as client:
        whole = await get(client, f"{PEER_PATH}/history")
    assert whole["to"] == T0 + 299
    assert whole["from"] == T0 + 299 - 3600
    assert len(whole["timestamps"]) == 300
    assert whole["figures"][:3] == ["latency_ms", "jitter_ms", "loss_percent"]
    assert len(whole["values"]) == 11


async def test_buckets_come_from_the_tier_the_step_calls_for(kept, clock):
    monitor, store = kept
    run(monitor, store, clock, 2 * 3600 + 30, answering(monitor))  # the last minute open
    now = T0 + 2 * 3600 + 29

    async def buckets(step: float, since: float) -> tuple[str, list[dict[str, Any]]]:
        async with api(monitor, store) as client:
            body = await get(
                client,
                f"{PEER_PATH}/history",
                **{"from": since, "to": now, "step": step, "figures": "latency_ms"},
            )
        assert body["step"] == step
        assert body["timestamps"] is None
        assert body["values"] is None
        return body["tier"], body["buckets"]

    # Under a minute: the raw samples, in buckets on multiples of the step (the first one
    # whole, from before from).
    tier, found = await buckets(10, now - 300)
    assert tier == "raw"
    assert [b["timestamp"] for b in found] == [T0 + 6920 + 10 * k for k in range(31)]
    assert [b["latency_ms"]["count"] for b in found] == [10] * 31
    assert all(b["latency_ms"]["min"] == 10.0 and b["latency_ms"]["max"] == 12.0 for b in found)
    # From a minute: the 1-minute tier, then the minute still open (its raw samples).
    tier, found = await buckets(60, T0)
    assert tier == "1m"
    assert [b["timestamp"] for b in found] == [T0 + 60 * k for k in range(121)]
    assert [b["latency_ms"]["count"] for b in found] == [60] * 120 + [30]
    assert all(b["latency_ms"]["avg"] == pytest.approx(11.0) for b in found[:120])
    assert all(b["sent"] == 60 and b["lost"] == 0 and not b["outage"] for b in found[1:120])
    # 15 minutes: minutes merged.
    tier, found = await buckets(900, T0)
    assert tier == "1m"
    assert [b["latency_ms"]["count"] for b in found] == [900] * 8 + [30]
    # From an hour: the 1-hour tier (merged from minutes where not rolled up yet).
    tier, found = await buckets(3600, T0)
    assert tier == "1h"
    assert [b["timestamp"] for b in found] == [T0, T0 + 3600, T0 + 7200]
    assert found[2]["latency_ms"]["count"] == 30
    for bucket in found[:2]:
        latency = bucket["latency_ms"]
        assert latency["count"] == 3600
        assert (latency["min"], latency["max"]) == (10.0, 12.0)
        assert latency["avg"] == pytest.approx(11.0)
        assert near(latency["p50"], 11.0)
        assert near(latency["p99"], 12.0)


async def test_a_dead_minute_is_an_outage_bucket_with_all_its_probes_lost(kept, clock):
    monitor, store = kept

    def each(i: int) -> None:
        monitor.record_latency(PEER, None if 60 <= i < 120 else latency_at(i))

    run(monitor, store, clock, 240, each)
    async with api(monitor, store) as client:
        body = await get(
            client,
            f"{PEER_PATH}/history",
            **{"from": T0, "to": T0 + 239, "step": 60, "figures": "latency_ms,loss_percent"},
        )
    assert body["tier"] == "1m"
    healthy, dead, back, last = body["buckets"]
    assert [b["timestamp"] for b in body["buckets"]] == [T0, T0 + 60, T0 + 120, T0 + 180]
    assert (dead["sent"], dead["lost"], dead["loss_percent"], dead["outage"]) == (
        60,
        60,
        100.0,
        True,
    )
    assert (back["sent"], back["lost"], back["loss_percent"], back["outage"]) == (
        60,
        0,
        0.0,
        False,
    )
    assert not healthy["outage"]
    assert healthy["lost"] == 0
    assert back["latency_ms"]["count"] == 60
    assert (last["latency_ms"]["count"], last["outage"]) == (60, False)  # open, from raw


async def test_a_peer_that_left_keeps_its_history(kept, clock):
    monitor, store = kept
    run(monitor, store, clock, 60, answering(monitor))
    monitor.remove_peer(PEER)
    store.flush()
    async with api(monitor, store) as client:
        body = await get(client, f"{PEER_PATH}/history", **{"from": T0 - 1, "to": T0 + 59})
        latency = await get(client, f"{PEER_PATH}/latency", duration=120, to=T0 + 59)
    assert body["tier"] == "raw"
    assert body["values"]["latency_ms"] == [latency_at(i) for i in range(60)]
    assert latency["tier"] == "raw"
    assert [p["value"] for p in latency["data"]] == [latency_at(i) for i in range(60)]


# --- the seed's routes: memory while it holds the range, else the store ----------------------


async def test_the_seed_latency_route_reads_the_store_for_what_memory_no_longer_holds(kept, clock):
    monitor, store = kept

    def each(i: int) -> None:
        monitor.record_latency(PEER, None if 60 <= i < 120 else latency_at(i))

    run(monitor, store, clock, 240, each)  # committed
    run(monitor, None, clock, 5, each, start=240)  # not yet: only memory has these
    # Now: T0 + 244; memory holds T0 + 215 on.
    async with api(monitor, store) as client:
        held = await get(client, f"{PEER_PATH}/latency", duration=20)
        raw = await get(client, f"{PEER_PATH}/latency", duration=245)
        stepped = await get(client, f"{PEER_PATH}/latency", duration=245, step=60)
    # Memory holds the last 20 s: the ring's own samples.
    assert held["tier"] == "memory"
    assert [p["timestamp"] for p in held["data"]] == [T0 + i for i in range(225, 245)]
    # 245 s: the store's samples (none while the peer was dead), then memory's newer ones.
    assert raw["tier"] == "raw"
    times = [p["timestamp"] for p in raw["data"]]
    assert times[:60] == [T0 + i for i in range(60)]
    assert times[-125:] == [T0 + i for i in range(120, 245)]
    assert raw["stats"]["count"] == len(raw["data"])
    assert raw["stats"]["min"] == 10.0
    assert raw["stats"]["max"] == 12.0
    assert raw["buckets"] is None
    # With a step: the store's minutes, then memory's for what it has not committed, in the
    # seed's shape.
    assert stepped["tier"] == "1m"
    buckets = stepped["buckets"]
    assert [b["timestamp"] for b in buckets] == [T0, T0 + 60, T0 + 120, T0 + 180, T0 + 240]
    first, dead, back, last, newest = buckets
    assert (first["samples"], first["p50"], first["max"]) == (60, pytest.approx(11, rel=0.01), 12)
    assert first["outage"] is False
    assert first["loss_percent"] == 0.0
    assert first["score"] is not None
    assert first["mos"] is not None
    assert dead == {
        "timestamp": T0 + 60,
        "samples": 0,
        "sent": 60,
        "lost": 60,
        "loss_percent": 100.0,
        "outage": True,
        "min": None,
        "p50": None,
        "p95": None,
        "max": None,
        "jitter_ms": None,
        "score": 0.0,
        "mos": None,
    }
    assert (back["samples"], back["outage"]) == (60, False)
    assert (last["samples"], last["outage"]) == (60, False)
    assert (newest["samples"], newest["sent"], newest["lost"]) == (5, 5, 0)
    assert [p["timestamp"] for p in stepped["data"]] == [T0, T0 + 120, T0 + 180, T0 + 240]
    assert [p["value"] for p in stepped["data"]] == pytest.approx(
        [11.0, 11.0, 11.0, sum(latency_at(i) for i in range(240, 245)) / 5]
    )
    assert stepped["stats"] == raw["stats"]


async def test_the_seed_host_history_reads_the_store_for_what_memory_no_longer_holds(
    tmp_path, clock
):
    monitor = Monitor(Settings(system_history_samples=RING, latency_samples=RING), clock=clock)
    store = HistoryStore(StoreSettings(db=str(tmp_path / "history.db")))
    store.attach(monitor)
    try:
        run(monitor, store, clock, 120, lambda i: None)  # psutil's real figures, T0..T0+119
        async with api(monitor, store) as client:
            held = await get(client, "/api/metrics/system/history", duration=10)
            raw = await get(client, "/api/metrics/system/history", duration=100)
            stepped = await get(client, "/api/metrics/system/history", duration=100, step=60)
            aliases = await get(
                client, "/api/metrics/system/history", **{"from": T0 - 1, "to": T0 + 59}
            )
            host = await get(
                client,
                "/api/metrics/host/history",
                **{"from": T0 - 1, "to": T0 + 119, "figures": "cpu_percent,memory_percent"},
            )
    finally:
        store.close()
    assert held["tier"] == "memory"
    assert [p["timestamp"] for p in held["data"]["cpu"]] == [T0 + i for i in range(110, 120)]
    assert raw["tier"] == "raw"
    assert set(raw["data"]) == {"cpu", "memory", "network_sent", "network_received"}
    assert [p["timestamp"] for p in raw["data"]["cpu"]] == [T0 + i for i in range(20, 120)]
    # The store's values are memory's (kept to 1/100 of a percent).
    memory = dict(monitor.system_history("memory_percent", 1e9))
    for point in raw["data"]["memory"][-RING:]:
        assert point["value"] == pytest.approx(memory[point["timestamp"]], abs=0.006)
    # Stepped: the means of the store's minutes (the open one from its raw samples).
    assert stepped["tier"] == "1m"
    assert [p["timestamp"] for p in stepped["data"]["memory"]] == [T0, T0 + 60]
    stored = host["values"]["memory_percent"]
    assert [p["value"] for p in stepped["data"]["memory"]] == [
        pytest.approx(sum(stored[:60]) / 60, rel=1e-9),
        pytest.approx(sum(stored[60:]) / 60, rel=1e-9),
    ]
    # from/to are the duration's aliases.
    assert aliases["tier"] == "raw"
    assert [p["timestamp"] for p in aliases["data"]["cpu"]] == [T0 + i for i in range(60)]
    assert host["tier"] == "raw"
    assert host["timestamps"] == [T0 + i for i in range(120)]
    assert set(host["values"]) == {"cpu_percent", "memory_percent"}


# --- the server's figures, and without a store ---------------------------------------------


async def test_the_servers_figures_come_from_the_store(kept, clock):
    monitor, store = kept

    def each(i: int) -> None:
        for _ in range(i % 5):
            monitor.record_message(size=10)

    run(monitor, store, clock, 120, each)
    async with api(monitor, store) as client:
        raw = await get(client, "/api/metrics/server/history", **{"from": T0 - 1, "to": T0 + 119})
        stepped = await get(
            client,
            "/api/metrics/server/history",
            **{"from": T0, "to": T0 + 119, "step": 60, "figures": "total_messages"},
        )
    assert raw["tier"] == "raw"
    assert "peer_id" not in raw
    totals = raw["values"]["total_messages"]
    assert totals == [float(sum(k % 5 for k in range(i + 1))) for i in range(120)]
    assert stepped["tier"] == "1m"
    minute, still_open = stepped["buckets"]
    assert still_open["total_messages"]["last"] == totals[119]
    # A counter's bucket: how much it rose (from the first sample on: 0 before it).
    assert minute["total_messages"]["increase"] == totals[59] - totals[0]
    assert minute["total_messages"]["last"] == totals[59]


async def test_without_a_store_peers_and_host_answer_from_memory(clock):
    monitor = Monitor(Settings(enable_system_metrics=False, latency_samples=RING), clock=clock)
    run(monitor, None, clock, 100, answering(monitor))
    async with api(monitor, None) as client:
        samples = await get(client, f"{PEER_PATH}/history", **{"from": T0})
        buckets = await get(client, f"{PEER_PATH}/history", step=10, figures="latency_ms,mos")
        host = await get(client, "/api/metrics/host/history")
        health = await get(client, "/api/health")
        server = await client.get("/api/metrics/server/history")
        events = await client.get("/api/history/events")
        export = await client.get("/api/export")
    assert samples["tier"] == "memory"
    assert samples["timestamps"] == [T0 + i for i in range(70, 100)]
    assert samples["values"]["latency_ms"] == [latency_at(i) for i in range(70, 100)]
    assert samples["values"]["jitter_ms"] is None  # memory keeps no history of it
    assert buckets["tier"] == "memory"
    assert [b["timestamp"] for b in buckets["buckets"]] == [T0 + 70, T0 + 80, T0 + 90]
    for bucket in buckets["buckets"]:
        first = round(bucket["timestamp"] - T0)
        assert bucket["latency_ms"] == {
            "count": 10,
            "min": 10.0,
            "max": 12.0,
            "avg": pytest.approx(sum(latency_at(i) for i in range(first, first + 10)) / 10),
            "p50": 11.0,
            "p95": 12.0,
            "p99": 12.0,
        }
        assert bucket["mos"] is None
        assert (bucket["sent"], bucket["lost"], bucket["outage"]) == (10, 0, False)
    assert host == {
        "from": T0 + 99 - 3600,
        "to": T0 + 99,
        "step": None,
        "tier": "memory",
        "figures": [
            "cpu_percent",
            "memory_percent",
            "network_sent_rate",
            "network_recv_rate",
            "process_cpu_percent",
            "process_rss_mb",
        ],
        "timestamps": [],  # the host is not sampled here
        "values": {key: [] for key in host["figures"]},
        "buckets": None,
    }
    assert health["store"] is None
    assert export.status_code == 404
    for response in (server, events):
        assert response.status_code == 404
        assert response.json()["error"] == "history store: not enabled on this server"
        assert response.json()["detail"].startswith("store: this server keeps no history")


# --- refusals --------------------------------------------------------------------------------


async def test_unknown_peers_and_bad_ranges_are_refused_naming_the_field(kept, clock):
    monitor, store = kept
    run(monitor, store, clock, 10, answering(monitor))
    async with api(monitor, store) as client:
        unknown = await client.get("/api/metrics/peers/nope/history")
        assert unknown.status_code == 404
        assert unknown.json() == {"error": "not found", "detail": "peer_id: unknown peer 'nope'"}
        for path in (f"{PEER_PATH}/history", "/api/metrics/host/history"):
            for params, field, words in [
                ({"from": T0 + 5, "to": T0}, "query.from", "must not be after to"),
                ({"from": "nan"}, "query.from", "finite number"),
                ({"to": "inf"}, "query.to", "finite number"),
                ({"step": 0}, "query.step", "greater than or equal to 0.001"),
                ({"step": "soon"}, "query.step", "valid number"),
                ({"figures": "latency,cpu"}, "query.figures", "not kept for a"),
                ({"figures": " , "}, "query.figures", "name at least one of"),
            ]:
                response = await client.get(path, params=params)
                assert response.status_code == 422, (path, params)
                body = response.json()
                assert body["error"] == "unprocessable entity"
                (problem,) = body["detail"]
                assert problem["field"] == field, (path, params, body)
                assert words in problem["message"], (path, params, body)
        figures = (await client.get(f"{PEER_PATH}/history", params={"figures": "cpu"})).json()
        assert figures["detail"][0]["message"] == (
            "'cpu' not kept for a peer; one of latency_ms, jitter_ms, loss_percent, "
            "quality_score, mos, tcp_rtt_ms, bytes_sent, bytes_received, probes_sent, "
            "probes_lost, tcp_total_retrans"
        )
        bad_type = await client.get("/api/history/events", params={"type": "status,nope"})
        assert bad_type.status_code == 422
        assert bad_type.json()["detail"][0]["field"] == "query.type"
        assert "'nope' is no event type" in bad_type.json()["detail"][0]["message"]


async def test_an_id_ending_in_history_is_one_peers_id(kept, clock):
    monitor, store = kept
    monitor.record_latency("x/history", 5.0)
    async with api(monitor, store) as client:
        summary = await get(client, "/api/metrics/peers/x%2Fhistory")
        also = await get(client, "/api/metrics/peers/x%2Fhistory", window=10)
    assert summary["peer_id"] == also["peer_id"] == "x/history"
    assert also["window"]["count"] == 1


# --- events and health -----------------------------------------------------------------------


async def test_stored_events_newest_first_by_type_peer_and_time(kept, clock):
    monitor, store = kept
    alerting = Alerting(monitor, [AlertRule("slow", "latency_ms", ">", 100.0)])
    alerting.listen(store.record_alert)
    clock.now = T0
    monitor.record_latency("a", 10.0)
    monitor.record_latency("b", 10.0)
    monitor.tick()
    clock.now = T0 + 1
    monitor.start_session("Match", ["a", "b"], session_id="m-1")
    monitor.record_latency("b", 1000.0)  # smoothed: 10 + 990 / 8, over 100: fires
    monitor.tick()
    clock.now = T0 + 2
    monitor.end_session("m-1")
    monitor.remove_peer("a")
    monitor.tick()
    store.flush()
    async with api(monitor, store) as client:
        everything = await get(client, "/api/history/events")
        alerts = await get(client, "/api/history/events", type="alert")
        of_a = await get(client, "/api/history/events", peer_id="a")
        sessions = await get(
            client, "/api/history/events", type="session_started,session_ended", limit=1
        )
        early = await get(client, "/api/history/events", **{"from": T0, "to": T0 + 1})
        unknown = await get(client, "/api/history/events", peer_id="nobody")
    await alerting.stop()
    events = everything["events"]
    assert [e["timestamp"] for e in events] == sorted(
        (e["timestamp"] for e in events), reverse=True
    )
    assert {e["type"] for e in events} >= {
        "alert",
        "session_started",
        "session_ended",
        "removed",
    }
    (fired,) = alerts["events"]
    assert fired["peer_id"] == "b"
    assert fired["timestamp"] == T0 + 1
    assert fired["data"]["rule"] == "slow"
    assert fired["data"]["state"] == "firing"
    assert fired["data"]["value"] == 133.75
    assert [e["type"] for e in of_a["events"]] == ["removed"]
    assert of_a["events"][0]["data"] == {"reason": "removed"}
    assert of_a["events"][0]["timestamp"] == T0 + 2
    (newest,) = sessions["events"]
    assert newest["type"] == "session_ended"
    assert newest["data"]["game_id"] == "m-1"
    assert newest["data"]["peers"] == ["a", "b"]
    assert {e["timestamp"] for e in early["events"]} <= {T0, T0 + 1}
    assert "removed" not in {e["type"] for e in early["events"]}
    assert unknown == {"events": []}


async def test_health_says_how_the_store_writes(kept, clock):
    monitor, store = kept
    run(monitor, store, clock, 5, answering(monitor))
    async with api(monitor, store) as client:
        health = await get(client, "/api/health")
    assert health["store"] == {
        "path": str(Path(monitor.settings.store.db or "")),
        "error": None,
        "samples": store.stats.samples,
        "flushes": store.stats.flushes,
        "failed_flushes": 0,
        "dropped": 0,
    }
    assert health["store"]["samples"] > 0
    assert health["store"]["flushes"] >= 1


async def test_the_export_is_served_with_a_store(kept, clock):
    monitor, store = kept
    run(monitor, store, clock, 5, answering(monitor))
    async with api(monitor, store) as client:
        response = await client.get(
            "/api/export", params={"from": T0, "to": T0 + 5, "format": "json"}
        )
    assert response.status_code == 200
    rows = [row for row in response.json() if row["series"] == "peer"]
    assert [(row["peer_id"], row["latency_ms"]) for row in rows] == [
        (PEER, latency_at(i)) for i in range(5)
    ]
