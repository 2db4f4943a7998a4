"""The REST API on a real uvicorn, read with httpx, checked against what was recorded."""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

import orjson
import pytest
import pytest_asyncio

from peerscope import Monitor, Settings, __version__
from peerscope.testing import ManualClock
from tests.server_support import (
    ALPHA_JITTER,
    ALPHA_LOSS,
    ALPHA_SAMPLES,
    ALPHA_SMOOTHED,
    BRAVO_LATENCY,
    CHARLIE_LATENCY,
    CLIENT_KEYS,
    MESSAGE_KEYS,
    NETWORK_KEYS,
    SERVER_KEYS,
    SYSTEM_KEYS,
    T0,
    LiveServer,
    close_to,
    live_server,
    mos,
    quality_score,
    seeded_monitor,
)

ALPHA_SCORE = quality_score(ALPHA_SMOOTHED, ALPHA_LOSS, ALPHA_JITTER)  # about 73.6
BRAVO_SCORE = 68.0  # 0.4 * (100 - 120 / 1.5) + 35 + 25
CHARLIE_SCORE = 92.0  # 0.4 * (100 - 30 / 1.5) + 35 + 25


# One event loop for the module, so the read-only tests share one seeded server.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded() -> AsyncIterator[LiveServer]:
    """The seeded Monitor, served; tests that use it only read (the clock stays at T0+5)."""
    async with live_server(seeded_monitor(ManualClock())) as live:
        yield live


async def get_json(live: LiveServer, path: str, **params: Any) -> Any:
    async with live.http() as http:
        response = await http.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def by_id(peers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {peer["peer_id"]: peer for peer in peers}


def f32(value: float) -> float:
    """What a float32 ring gives back for ``value``."""
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


# --- peers --------------------------------------------------------------------------------


async def test_summary_has_the_seed_shape_and_the_recorded_figures(seeded: LiveServer):
    body = await get_json(seeded, "/api/metrics/summary")
    assert set(body) == {"peers", "system", "network_quality", "network"}
    peers = by_id(body["peers"])
    assert set(peers) == {"alpha", "bravo", "charlie", "delta"}
    alpha = peers["alpha"]
    # The LANrage seed's peer summary, field for field.
    assert alpha["peer_id"] == "alpha"
    assert alpha["peer_name"] == "Alpha"
    assert alpha["status"] == "connected"
    assert alpha["latency"] == {"current": 40.0, "average": 25.0, "min": 10.0, "max": 40.0}
    assert alpha["bandwidth"] == {"sent": 1500 + 2 * 50, "received": 3000 + 3 * 100}
    assert alpha["packets"] == {"sent": 10, "received": 20}
    assert alpha["uptime"] == 5.0
    assert alpha["last_seen"] == T0 + 4.5
    assert peers["delta"]["latency"] == {"current": None, "average": None, "min": None, "max": None}
    assert peers["bravo"]["latency"]["current"] == BRAVO_LATENCY
    # Network score: 0.9 * mean peer score + 0.1 * (100 - CPU%); host sampling is off (CPU 0).
    expected = 0.9 * (ALPHA_SCORE + BRAVO_SCORE + CHARLIE_SCORE) / 3 + 0.1 * 100
    assert close_to(body["network_quality"], expected)
    assert body["network"]["score"] == body["network_quality"]
    assert body["network"]["grade"] == "B"  # 70 <= ~81.3 < 90
    assert body["network"]["peers_by_status"] == {"connected": 4, "degraded": 0, "disconnected": 0}
    assert set(body["system"]) == {"cpu", "memory", "network", "current"}
    assert body["system"]["current"]["available"] is False


async def test_peer_figures_are_exactly_what_was_recorded(seeded: LiveServer):
    alpha = await get_json(seeded, "/api/metrics/peers/alpha")
    assert alpha["window"] is None  # only with ?window=
    expected = {
        "client_id": "alpha",
        "peer_id": "alpha",
        "name": "Alpha",
        "peer_name": "Alpha",
        "address": "10.0.0.2:8701",
        "kind": "peer",
        "labels": {"region": "eu", "connection_type": "direct"},
        "connected_at": T0,
        "uptime": 5.0,
        "connection_duration": 5.0,
        "messages_received": 3,
        "messages_sent": 2,
        "message_count": 5,
        "bytes_sent": 1600,
        "bytes_received": 3300,
        "packets_sent": 10,
        "packets_received": 20,
        "last_message_time": T0 + 4.5,
        "last_seen": T0 + 4.5,
        "idle_seconds": 0.5,
        "latency_ms": 40.0,
        "average_latency_ms": 25.0,
        "smoothed_latency_ms": ALPHA_SMOOTHED,
        "jitter_ms": ALPHA_JITTER,
        "packet_loss_percent": ALPHA_LOSS,
        "band": "fair",
        "grade": "C",
        "trend": "stable",
        "fps": None,
        "frame_time_ms": None,
        "status": "connected",
    }
    assert {key: alpha[key] for key in expected} == expected
    assert close_to(alpha["quality_score"], ALPHA_SCORE)
    assert close_to(alpha["mos"], mos(ALPHA_SMOOTHED, ALPHA_JITTER, ALPHA_LOSS))

    bravo = await get_json(seeded, "/api/metrics/peers/bravo")
    assert close_to(bravo["quality_score"], BRAVO_SCORE)
    assert (bravo["band"], bravo["grade"]) == ("fair", "C")  # one scale: fair is C
    assert close_to(bravo["mos"], mos(BRAVO_LATENCY, 0.0, 0.0))
    assert bravo["jitter_ms"] == 0.0

    delta = await get_json(seeded, "/api/metrics/peers/delta")
    # Never measured: unknown, not perfect.
    assert (delta["quality_score"], delta["grade"], delta["mos"], delta["latency_ms"]) == (
        None,
        None,
        None,
        None,
    )


async def test_a_recording_shows_in_the_next_request(clock: ManualClock):
    async with live_server(seeded_monitor(clock)) as live:
        clock.advance(2)
        live.monitor.record_latency("delta", 45.0)
        live.monitor.record_fps("delta", 59.5, 16.75)
        delta = await get_json(live, "/api/metrics/peers/delta")
        assert delta["latency_ms"] == 45.0
        assert delta["smoothed_latency_ms"] == 45.0
        assert close_to(delta["quality_score"], quality_score(45.0, 0.0, 0.0))
        assert (delta["fps"], delta["frame_time_ms"]) == (59.5, 16.75)
        assert delta["last_seen"] == T0 + 7
        assert delta["idle_seconds"] == 0.0
        live.monitor.remove_peer("delta")
        async with live.http() as http:
            assert (await http.get("/api/metrics/peers/delta")).status_code == 404
        assert (await get_json(live, "/api/metrics/peers"))["total"] == 3


async def test_peer_window_adds_the_aggregate(seeded: LiveServer):
    alpha = await get_json(seeded, "/api/metrics/peers/alpha", window=60)
    assert alpha["window"] == {
        "count": 4,
        "min": 10.0,
        "max": 40.0,
        "avg": 25.0,
        "sum": 100.0,
        "p50": 30.0,
        "p95": 40.0,
        "p99": 40.0,
    }
    # now - 2.5 < t <= now: the samples at T0+3 and T0+4.
    alpha = await get_json(seeded, "/api/metrics/peers/alpha", window=2.5)
    assert alpha["window"] == {
        "count": 2,
        "min": 30.0,
        "max": 40.0,
        "avg": 35.0,
        "sum": 70.0,
        "p50": 40.0,
        "p95": 40.0,
        "p99": 40.0,
    }
    delta = await get_json(seeded, "/api/metrics/peers/delta", window=60)
    assert delta["window"] == {
        "count": 0,
        "min": None,
        "max": None,
        "avg": None,
        "sum": 0.0,
        "p50": None,
        "p95": None,
        "p99": None,
    }


async def test_latency_history_honours_duration(seeded: LiveServer):
    body = await get_json(seeded, "/api/metrics/peers/alpha/latency", duration=2.5)
    assert body["peer_id"] == "alpha"
    assert body["duration"] == 2.5
    assert body["data"] == [
        {"timestamp": T0 + 3, "value": 30.0},
        {"timestamp": T0 + 4, "value": 40.0},
    ]
    assert body["stats"]["count"] == 2
    assert body["stats"]["avg"] == 35.0
    everything = await get_json(seeded, "/api/metrics/peers/alpha/latency")
    assert everything["duration"] == 3600.0
    assert everything["data"] == [
        {"timestamp": T0 + 1 + i, "value": value} for i, value in enumerate(ALPHA_SAMPLES)
    ]
    assert everything["stats"]["sum"] == 100.0


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("quality", ["bravo", "alpha", "charlie", "delta"]),  # worst first, unscored last
        ("latency", ["bravo", "charlie", "alpha", "delta"]),  # slowest first, unmeasured last
        ("id", ["alpha", "bravo", "charlie", "delta"]),
    ],
)
async def test_peers_are_sorted(seeded: LiveServer, sort: str, order: list[str]):
    body = await get_json(seeded, "/api/metrics/peers", sort=sort)
    assert [peer["peer_id"] for peer in body["peers"]] == order
    assert (body["total"], body["limit"], body["offset"], body["sort"]) == (4, 200, 0, sort)


async def test_peers_are_paged(seeded: LiveServer):
    body = await get_json(seeded, "/api/metrics/peers", sort="id", limit=2, offset=1)
    assert [peer["peer_id"] for peer in body["peers"]] == ["bravo", "charlie"]
    assert (body["total"], body["limit"], body["offset"]) == (4, 2, 1)
    body = await get_json(seeded, "/api/metrics/peers", sort="id", limit=2, offset=3)
    assert [peer["peer_id"] for peer in body["peers"]] == ["delta"]
    body = await get_json(seeded, "/api/metrics/peers", offset=4)
    assert body["peers"] == []
    assert body["total"] == 4
    # Each listed peer carries the full summary, the same as its own path gives.
    listed = by_id((await get_json(seeded, "/api/metrics/peers"))["peers"])
    assert listed["alpha"] == await get_json(seeded, "/api/metrics/peers/alpha")


async def test_unknown_peer_is_a_404_json_error(seeded: LiveServer):
    async with seeded.http() as http:
        for path in ("/api/metrics/peers/nope", "/api/metrics/peers/nope/latency"):
            response = await http.get(path)
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {
                "error": "not found",
                "detail": "peer_id: unknown peer 'nope'",
            }
        # A long unknown id is named by a short prefix, not echoed back whole.
        for path in ("/api/metrics/peers/{}", "/api/metrics/peers/{}/latency", "/api/peers/{}"):
            response = await http.request(
                "DELETE" if path.startswith("/api/peers") else "GET", path.format("z" * 60_000)
            )
            assert response.status_code == 404, path
            assert len(response.content) < 200, (path, len(response.content))
            assert "'zzzzzzzzzz" in response.json()["detail"]


@pytest.mark.parametrize("query", ["window=nan", "window=inf", "window=-inf"])
async def test_a_number_that_is_not_finite_is_named_as_such(seeded: LiveServer, query: str):
    """It was reported as "less than or equal to 2592000"."""
    async with seeded.http() as http:
        for path in (
            "/api/metrics/peers/alpha",
            "/api/metrics/system/stats",
            "/api/metrics/peers/x%2Flatency",
        ):
            response = await http.get(f"{path}?{query}")
            assert response.status_code == 422, path
            (problem,) = response.json()["detail"]
            assert problem["field"] == "query.window", path
            assert "finite" in problem["message"], (path, problem)
        for name in ("duration", "from", "to", "step"):
            value = query.partition("=")[2]
            response = await http.get(f"/api/metrics/system/history?{name}={value}")
            assert response.status_code == 422, name
            assert response.json()["detail"] == [
                {"field": f"query.{name}", "message": "Input should be a finite number"}
            ]


# --- sessions, server, current message, health ---------------------------------------------


async def test_sessions_list_ended_sessions_with_their_latency(seeded: LiveServer):
    body = await get_json(seeded, "/api/metrics/sessions")
    assert body == {
        "sessions": [
            {
                "game_id": "match-1",
                "game_name": "Match 1",
                "started_at": T0,
                "ended_at": T0 + 3.5,
                "duration": 3.5,
                "peers": ["alpha", "bravo"],
                "latency": {
                    "average": (10.0 + 20.0 + 30.0 + BRAVO_LATENCY) / 4,
                    "min": 10.0,
                    "max": BRAVO_LATENCY,
                    "p95": BRAVO_LATENCY,
                },
            },
            {
                "game_id": "match-2",
                "game_name": "Match 2",
                "started_at": T0 + 4,
                "ended_at": T0 + 5,
                "duration": 1.0,
                "peers": ["charlie"],
                "latency": {"average": None, "min": None, "max": None, "p95": None},
            },
        ]
    }
    latest = await get_json(seeded, "/api/metrics/sessions", limit=1)
    assert [s["game_id"] for s in latest["sessions"]] == ["match-2"]


async def test_server_stats_count_connections_and_messages(seeded: LiveServer):
    body = await get_json(seeded, "/api/metrics/server")
    # The Monitor runs on the server's loop, whose lag its ticks measure (test_loop_lag.py).
    lag, p99 = body.pop("loop_lag_ms"), body.pop("loop_lag_p99_ms")
    assert lag >= 0.0
    assert p99 is None or p99 >= 0.0
    assert body == {
        "uptime_seconds": 0.0,  # the Monitor started at T0+5, and the clock stands there
        "active_connections": 4,
        "total_connections": 4,
        "total_messages": 5,
        "messages_per_second": 5.0,
        "messages_in_per_second": 3.0,
        "messages_out_per_second": 2.0,
        "average_latency_ms": pytest.approx(
            (ALPHA_SMOOTHED + BRAVO_LATENCY + CHARLIE_LATENCY) / 3, rel=1e-12
        ),
    }


async def test_current_is_the_metrics_message(seeded: LiveServer):
    body = await get_json(seeded, "/api/metrics/current")
    last = seeded.monitor.last_message
    assert last is not None
    assert body == orjson.loads(orjson.dumps(last))
    assert set(body) >= MESSAGE_KEYS
    assert body["type"] == "metrics"
    assert body["timestamp"] == T0 + 5
    assert set(body["system"]) >= SYSTEM_KEYS
    assert set(body["server"]) >= SERVER_KEYS
    assert set(body["network"]) >= NETWORK_KEYS
    assert all(set(client) >= CLIENT_KEYS for client in body["clients"])
    # Worst quality first, unscored last.
    assert [c["client_id"] for c in body["clients"]] == ["bravo", "alpha", "charlie", "delta"]
    assert body["clients_total"] == 4
    assert body["alerts"] == []


async def test_health(seeded: LiveServer):
    body = await get_json(seeded, "/api/health")
    # Mounted as live_server runs it, not through serve(): no reflector, nothing probed.
    assert body == {
        "status": "ok",
        "version": __version__,
        "monitor_running": True,
        "uptime_seconds": 0.0,
        "peers": 4,
        "websocket_subscribers": 0,
        "probed_peers": 0,
        "prober": {"sent": 0, "malformed": 0, "unmatched": 0, "errors": 0},
        "reflector_port": None,
        "reflector": None,
        "store": None,  # no history store (tests/test_server_history.py has one)
    }


# --- the host -----------------------------------------------------------------------------


async def test_system_endpoints_report_the_samples_taken(clock: ManualClock):
    monitor = Monitor(Settings(metrics_interval=3600.0), clock=clock)
    async with live_server(monitor) as live:
        first = monitor.last_message
        assert first is not None  # the start tick sampled the host at T0
        assert first["system"]["available"] is True
        clock.advance(1)
        second = monitor.sample_system()
        clock.advance(1)
        third = monitor.sample_system()
        samples = [first["system"], asdict(second), asdict(third)]
        cpu = [f32(s["cpu_percent"]) for s in samples]
        memory = [f32(s["memory_percent"]) for s in samples]

        body = await get_json(live, "/api/metrics/system")
        current = asdict(third)
        del current["timestamp"]
        assert body["current"] == current
        assert body["cpu"] == {
            "current": third.cpu_percent,
            "average": pytest.approx(sum(cpu) / 3, rel=1e-6),
            "max": pytest.approx(max(cpu), rel=1e-6),
        }
        assert body["memory"] == {
            "current": third.memory_percent,
            "average": pytest.approx(sum(memory) / 3, rel=1e-6),
            "max": pytest.approx(max(memory), rel=1e-6),
        }
        assert body["network"] == {
            "sent_rate": third.network_sent_rate,
            "recv_rate": third.network_recv_rate,
            "total_sent": pytest.approx(third.network_sent_mb * 1024 * 1024, rel=1e-12),
            "total_recv": pytest.approx(third.network_recv_mb * 1024 * 1024, rel=1e-12),
        }

        history = await get_json(live, "/api/metrics/system/history", duration=1.5)
        assert history["duration"] == 1.5
        assert set(history["data"]) == {"cpu", "memory", "network_sent", "network_received"}
        assert history["data"]["cpu"] == [
            {"timestamp": T0 + 1, "value": pytest.approx(cpu[1], rel=1e-6)},
            {"timestamp": T0 + 2, "value": pytest.approx(cpu[2], rel=1e-6)},
        ]
        assert [p["timestamp"] for p in history["data"]["network_sent"]] == [T0 + 1, T0 + 2]
        everything = await get_json(live, "/api/metrics/system/history")
        assert [p["timestamp"] for p in everything["data"]["memory"]] == [T0, T0 + 1, T0 + 2]

        stats = await get_json(live, "/api/metrics/system/stats", window=10)
        assert stats["window"] == 10.0
        assert set(stats["stats"]) == {
            "cpu_percent",
            "memory_percent",
            "network_sent_rate",
            "network_recv_rate",
            "process_cpu_percent",
            "process_rss_mb",
        }
        cpu_stats = stats["stats"]["cpu_percent"]
        assert cpu_stats["count"] == 3
        assert cpu_stats["min"] == pytest.approx(min(cpu), rel=1e-6)
        assert cpu_stats["max"] == pytest.approx(max(cpu), rel=1e-6)
        assert cpu_stats["sum"] == pytest.approx(sum(cpu), rel=1e-6)
        assert cpu_stats["p50"] == pytest.approx(sorted(cpu)[1], rel=1e-6)
        rss = [f32(s["process_rss_mb"]) for s in samples]
        assert stats["stats"]["process_rss_mb"]["max"] == pytest.approx(max(rss), rel=1e-6)
        recent = await get_json(live, "/api/metrics/system/stats", window=1.5)
        assert recent["stats"]["memory_percent"]["count"] == 2


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/metrics/peers?limit=0", "query.limit"),
        ("/api/metrics/peers?limit=1001", "query.limit"),
        ("/api/metrics/peers?limit=ten", "query.limit"),
        ("/api/metrics/peers?offset=-1", "query.offset"),
        ("/api/metrics/peers?sort=fastest", "query.sort"),
        ("/api/metrics/peers/alpha?window=0", "query.window"),
        ("/api/metrics/peers/alpha/latency?duration=-5", "query.duration"),
        ("/api/metrics/system/history?duration=nan", "query.duration"),
        ("/api/metrics/system/history?duration=inf", "query.duration"),
        ("/api/metrics/system/stats?window=0", "query.window"),
        ("/api/metrics/sessions?limit=0", "query.limit"),
    ],
)
async def test_invalid_parameters_are_422_naming_the_field(
    seeded: LiveServer, path: str, field: str
):
    async with seeded.http() as http:
        response = await http.get(path)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "unprocessable entity"
    assert [problem["field"] for problem in body["detail"]] == [field]
    assert body["detail"][0]["message"]


async def test_every_valid_peer_id_is_reachable_by_its_path():
    """An id is 1-128 printable characters (DESIGN.md); percent-encoded in the path, each
    must reach its own peer, never another one."""
    monitor = Monitor(Settings(metrics_interval=3600.0, enable_system_metrics=False))
    ids = ["héllo wörld", "a?b#c", "100%", "10.0.0.2:8701", "eu/fra-1", "x/latency"]
    monitor.record_latency("x", 99.0)  # a peer the last id must not be confused with
    for n, peer_id in enumerate(ids):
        monitor.record_latency(peer_id, 10.0 + n)
    async with live_server(monitor) as live, live.http() as http:
        wrong = []
        for n, peer_id in enumerate(ids):
            encoded = quote(peer_id, safe="")
            peer = await http.get(f"/api/metrics/peers/{encoded}")
            latency = await http.get(f"/api/metrics/peers/{encoded}/latency")
            if (
                peer.status_code != 200
                or peer.json().get("client_id") != peer_id
                or peer.json().get("latency_ms") != 10.0 + n
            ):
                wrong.append((peer_id, "peer", peer.status_code, peer.text[:80]))
            if latency.status_code != 200 or latency.json().get("peer_id") != peer_id:
                wrong.append((peer_id, "latency", latency.status_code, latency.text[:80]))
    assert wrong == []


async def test_unknown_paths_and_methods_are_json_errors(seeded: LiveServer):
    async with seeded.http() as http:
        missing = await http.get("/api/metrics/nothing-here")
        wrong_method = await http.delete("/api/health")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not found", "detail": "Not Found"}
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {
        "error": "method not allowed",
        "detail": "method: DELETE is not served at this path; it serves GET",
    }
    assert wrong_method.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/peers", "GET, POST"),
        ("POST", "/api/metrics/summary", "GET"),
        ("PATCH", "/api/metrics/peers/alpha", "GET"),
        ("GET", "/api/peers/alpha", "DELETE"),
        ("POST", "/metrics", "GET"),
    ],
)
async def test_every_405_names_the_methods_the_path_serves(
    seeded: LiveServer, method: str, path: str, allowed: str
):
    """FastAPI keeps included routers as routes of their own with no list of methods: the
    Allow header was empty on every API path."""
    async with seeded.http() as http:
        response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["detail"].endswith(f"it serves {allowed}")


@pytest.mark.slow
async def test_listing_survives_peers_removed_by_another_thread():
    """DESIGN: recording calls may come from any thread. A peer removed between the
    listing and its summary must not turn the whole listing into a 404."""
    monitor = Monitor(Settings(metrics_interval=3600.0, enable_system_metrics=False))
    for i in range(20):
        monitor.record_latency(f"steady-{i}", 10.0 + i)
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            monitor.record_latency(f"churn-{n % 4}", 5.0)
            monitor.remove_peer(f"churn-{(n + 2) % 4}")
            n += 1

    failures: list[tuple[str, int, str]] = []
    async with live_server(monitor) as live, live.http() as http:
        worker = threading.Thread(target=churn, daemon=True)
        worker.start()
        try:
            for _ in range(25):
                for path in ("/api/metrics/peers", "/api/metrics/summary"):
                    response = await http.get(path)
                    if response.status_code != 200:
                        failures.append((path, response.status_code, response.text))
                if failures:
                    break
                await asyncio.sleep(0)
        finally:
            stop.set()
            worker.join()
    assert failures == []


async def test_latency_and_system_history_take_from_to_and_step(clock: ManualClock):
    monitor = Monitor(Settings(metrics_interval=3600.0, enable_system_metrics=False), clock=clock)
    start = clock.now
    for k, value in enumerate([10.0, 20.0, 30.0, 40.0, 50.0, 60.0]):
        clock.now = start + 10 * k  # samples at +0, +10, ..., +50 s
        monitor.record_latency("p", value)
    clock.now = start + 60
    async with live_server(monitor) as live, live.http() as http:
        ranged = (
            await http.get(
                "/api/metrics/peers/p/latency", params={"from": start + 5, "to": start + 40}
            )
        ).json()
        assert ranged["from"] == start + 5
        assert ranged["to"] == start + 40
        # (from, to]: +10, +20, +30 and +40 s
        assert [p["value"] for p in ranged["data"]] == [20.0, 30.0, 40.0, 50.0]
        assert (ranged["stats"]["count"], ranged["stats"]["avg"]) == (4, 35.0)
        stepped = (
            await http.get("/api/metrics/peers/p/latency", params={"duration": 60, "step": 20})
        ).json()
        # Buckets aligned to multiples of 20 s; start is a multiple of 20 (1_700_000_000).
        assert stepped["step"] == 20.0
        # (now - 60, now] leaves the +0 sample out: +10 | +20, +30 | +40, +50
        assert [(p["timestamp"] - start, p["value"]) for p in stepped["data"]] == [
            (0.0, 20.0),
            (20.0, 35.0),
            (40.0, 55.0),
        ]
        # The spread of each bucket: +20 and +30 s hold 30 and 40 ms.
        assert [
            (b["timestamp"] - start, b["samples"], b["min"], b["p50"], b["p95"], b["max"])
            for b in stepped["buckets"]
        ] == [
            (0.0, 1, 20.0, 20.0, 20.0, 20.0),
            (20.0, 2, 30.0, 40.0, 40.0, 40.0),
            (40.0, 2, 50.0, 60.0, 60.0, 60.0),
        ]
        assert all(b["sent"] == b["samples"] and b["lost"] == 0 for b in stepped["buckets"])
        assert ranged["buckets"] is None
        empty = (
            await http.get(
                "/api/metrics/peers/p/latency", params={"from": start + 40, "to": start + 5}
            )
        ).json()
        assert (empty["data"], empty["stats"]["count"]) == ([], 0)
        bad = await http.get("/api/metrics/peers/p/latency", params={"step": 0})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "query.step"
        system = (
            await http.get("/api/metrics/system/history", params={"from": start, "step": 30})
        ).json()
        assert set(system["data"]) == {"cpu", "memory", "network_sent", "network_received"}
        assert system["step"] == 30.0


async def test_an_offset_past_every_peer_is_an_empty_page_and_a_huge_one_is_refused(
    seeded: LiveServer,
):
    """Found by schemathesis: an offset over 64 bits reached the JSON encoder (500)."""
    async with seeded.http() as http:
        far = await http.get("/api/metrics/peers", params={"offset": 2**53})
        huge = await http.get("/api/metrics/peers", params={"offset": 2**70})
    assert far.status_code == 200
    assert (far.json()["peers"], far.json()["offset"], far.json()["total"]) == ([], 2**53, 4)
    assert huge.status_code == 422
    assert huge.json()["detail"][0]["field"] == "query.offset"
