"""``/api/profiler``: the profiler's figures and switch over HTTP, and pyinstrument sampling
of the live loop, which finds a real busy function by name while the server keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from peerscope import Monitor, Settings
from peerscope.profiler import Profiler
from peerscope.server import create_app
from tests.server_support import live_server

TOKEN = "a-token-long-enough-for-the-check"


def spin_for_the_sampler(seconds: float) -> int:
    """Busy on the loop's thread: what the sample must find by name."""
    end = time.perf_counter() + seconds
    turns = 0
    while time.perf_counter() < end:
        turns += 1
    return turns


async def busy_on_the_loop(stop: asyncio.Event) -> None:
    while not stop.is_set():
        spin_for_the_sampler(0.01)
        await asyncio.sleep(0.005)


def quiet_monitor(**settings: object) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False, **settings))  # type: ignore[arg-type]


async def test_the_figures_of_profiled_functions_are_read_switched_and_reset():
    profiler = Profiler()

    @profiler.profile
    def handle(fail: bool) -> None:
        if fail:
            raise RuntimeError("bad message")

    for k in range(7):
        with pytest.raises(RuntimeError) if k % 3 == 0 else contextlib.nullcontext():
            handle(k % 3 == 0)
    monitor = quiet_monitor()
    async with (
        live_server(monitor, app=create_app(monitor, profiler=profiler)) as live,
        live.http() as http,
    ):
        body = (await http.get("/api/profiler", params={"top": 1, "slow_ms": 0})).json()
        assert body["enabled"] is True
        assert body["sampling"] is False
        (entry,) = body["functions"]
        assert entry["name"].endswith("handle")
        assert (entry["calls"], entry["errors"], entry["kind"]) == (7, 3, "function")
        assert body["hotspots"] == [entry]
        assert body["slow"] == [entry]  # any p95 is above 0 ms
        assert body["slow_threshold_ms"] == 0
        assert body["process"]["rss_bytes"] > 0
        assert body["process"]["threads"] >= 1

        off = (await http.put("/api/profiler", json={"enabled": False})).json()
        assert off["enabled"] is False
        handle(False)  # not timed while off
        assert (await http.get("/api/profiler")).json()["functions"][0]["calls"] == 7

        emptied = (await http.put("/api/profiler", json={"reset": True, "enabled": True})).json()
        assert emptied["enabled"] is True
        assert emptied["functions"] == []
        handle(False)
        assert (await http.get("/api/profiler")).json()["functions"][0]["calls"] == 1

        bad = await http.get("/api/profiler", params={"top": 0})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "query.top"
        bad = await http.put("/api/profiler", json={"enabled": "maybe"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "body.enabled"
        bad = await http.put("/api/profiler", json={"enable": True})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "body.enable"


async def test_a_sample_finds_the_busy_function_by_name_while_the_server_serves():
    monitor = quiet_monitor(metrics_interval=0.2)
    stop = asyncio.Event()
    async with live_server(monitor) as live, live.http() as http:
        busy = asyncio.create_task(busy_on_the_loop(stop))
        try:
            sampling = asyncio.create_task(
                http.post("/api/profiler/sample", params={"seconds": 1.0})
            )
            await asyncio.sleep(0.3)
            # The loop goes on meanwhile: other requests are answered, a second sample not.
            began = time.perf_counter()
            health = await http.get("/api/health")
            assert health.status_code == 200
            assert time.perf_counter() - began < 0.5
            state = (await http.get("/api/profiler")).json()
            assert state["sampling"] is True
            second = await http.post("/api/profiler/sample", params={"seconds": 0.1})
            assert second.status_code == 409
            assert second.json()["error"] == "profiler: busy"
            response = await sampling
            page = await http.post(
                "/api/profiler/sample", params={"seconds": 0.3, "format": "html"}
            )
        finally:
            stop.set()
            await busy
    assert response.status_code == 200, response.text
    report = response.json()
    assert 1.0 <= report["duration_s"] < 1.5
    assert report["sample_count"] > 100
    top = {entry["function"]: entry for entry in report["top"]}
    found = top["spin_for_the_sampler"]
    assert found["file"].endswith("test_server_profiler.py")
    # Busy 10 ms of every ~15: about two thirds of the loop's time, whatever else ran.
    assert 0.3 < found["share"] <= 1.0
    assert report["tree"]  # pyinstrument's own tree
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-disposition"].startswith("attachment; filename=")
    assert "spin_for_the_sampler" in page.text


async def test_a_sample_out_of_range_is_refused_naming_the_parameter():
    monitor = quiet_monitor()
    async with live_server(monitor) as live, live.http() as http:
        for params, field in (
            ({"seconds": 0}, "query.seconds"),
            ({"seconds": 61}, "query.seconds"),
            ({"seconds": "soon"}, "query.seconds"),
            ({"seconds": 1, "interval_ms": 0.01}, "query.interval_ms"),
            ({"seconds": 1, "format": "pdf"}, "query.format"),
        ):
            response = await http.post("/api/profiler/sample", params=params)
            assert response.status_code == 422, params
            assert response.json()["detail"][0]["field"] == field


async def test_the_profiler_is_behind_the_token():
    monitor = quiet_monitor(token=TOKEN)
    async with live_server(monitor) as live, live.http() as http:
        assert (await http.get("/api/profiler")).status_code == 401
        assert (await http.put("/api/profiler", json={"reset": True})).status_code == 401
        assert (await http.post("/api/profiler/sample", params={"seconds": 1})).status_code == 401
        allowed = await http.get("/api/profiler", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
