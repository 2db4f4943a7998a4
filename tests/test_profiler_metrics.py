"""The profiler on /metrics, and the agent profiling itself: a served agent's tick, message,
broadcast, probe batches and store flushes are timed names, read back over REST and parsed
back from the exposition with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from peerscope import Monitor, Settings
from peerscope.agent import Agent
from peerscope.export.metrics_app import render
from peerscope.export.profiler_metrics import ProfilerCollector
from peerscope.export.sliced_exposition import RENDER_SLICE
from peerscope.profiler import Profiler, get_profiler
from peerscope.slices import finish
from peerscope.store_settings import StoreSettings
from tests.server_support import eventually
from tests.test_agent import stop
from tests.test_prometheus_export import stepped

SELF_PROFILED = (
    "peerscope:tick",
    "peerscope:message",
    "peerscope:broadcast",
    "peerscope:probe_batch",
    "peerscope:store_flush",
)


def timed_profiler() -> Profiler:
    profiler = Profiler()

    @profiler.profile(name="handler")
    def handler(fail: bool) -> None:
        time.sleep(0.002)
        if fail:
            raise ValueError("bad input")

    for k in range(10):
        with contextlib.suppress(ValueError):
            handler(k % 5 == 0)
    with profiler.profile_block("load map", cpu=True):
        sum(range(10_000))
    return profiler


def test_each_name_is_a_summary_with_its_errors_and_cpu_as_counters():
    profiler = timed_profiler()
    monitor = Monitor(Settings(enable_system_metrics=False))
    text = render(monitor, profiler=profiler)[0].decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    summary = families["peerscope_profiled_seconds"]
    assert summary.type == "summary"
    samples = {
        (sample.name, sample.labels["name"], sample.labels.get("quantile")): sample.value
        for sample in summary.samples
    }
    stats = {entry.name: entry for entry in profiler.function_stats()}
    handler = stats["handler"]
    assert samples["peerscope_profiled_seconds_count", "handler", None] == 10
    assert samples["peerscope_profiled_seconds_sum", "handler", None] == pytest.approx(
        handler.total_ms / 1000
    )
    assert samples["peerscope_profiled_seconds", "handler", "0.99"] == pytest.approx(
        handler.p99_ms / 1000
    )
    assert samples["peerscope_profiled_seconds", "handler", "0.5"] >= 0.002
    errors = {s.labels["name"]: s.value for s in families["peerscope_profiled_errors"].samples}
    assert errors == {"handler": 2.0, "load map": 0.0}
    cpu = {s.labels["name"]: s.value for s in families["peerscope_profiled_cpu_seconds"].samples}
    assert set(cpu) == {"load map"}  # a sync function's CPU is measured only when asked
    assert cpu["load map"] > 0


def test_many_names_are_written_in_steps_that_join_to_generate_latests_text():
    profiler = Profiler()
    for index in range(2 * RENDER_SLICE + 3):
        with profiler.profile_block(f"block {index:03d}"):
            pass
    collector = ProfilerCollector(profiler)
    pieces, turns = stepped(collector.render_steps())
    assert turns == 3 * 3  # three families, three slices each
    registry = CollectorRegistry()
    registry.register(collector)
    assert b"".join(pieces) == generate_latest(registry)
    assert b"".join(finish(collector.render_steps())) == collector.render()


async def test_a_served_agent_times_its_own_tick_message_broadcast_probes_and_flushes(
    tmp_path: Path,
):
    profiler = get_profiler()
    profiler.reset()
    settings = Settings(
        metrics_interval=0.1,
        enable_system_metrics=False,
        reflector_port=0,
        probe_interval=0.1,
        store=StoreSettings(db=str(tmp_path / "history.db"), flush_interval_s=0.1),
    )
    agent = Agent(Monitor(settings), port=0)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(agent.run(on_ready=ready.set_result))
    base = await asyncio.wait_for(ready, 10)
    try:
        assert agent.reflector is not None
        async with httpx.AsyncClient(base_url=base) as http:
            added = await http.post(
                "/api/peers", json={"address": f"127.0.0.1:{agent.reflector.port}"}
            )
            assert added.status_code == 201, added.text
            async with connect(base.replace("http", "ws") + "/ws", ping_interval=None) as ws:
                await ws.recv()

                def timed() -> set[str]:
                    return {stats.name for stats in profiler.function_stats()}

                await eventually(lambda: set(SELF_PROFILED) <= timed(), timeout=10)
            body = (await http.get("/api/profiler", params={"top": 50})).json()
            metrics = (await http.get("/metrics")).text
    finally:
        await stop(task)
    names = {entry["name"]: entry for entry in body["functions"]}
    for name in SELF_PROFILED:
        assert names[name]["calls"] >= 1, name
        assert names[name]["errors"] == 0, name
    # The tick's, the probe batches' and the flushes' CPU is measured (a syscall each).
    for name in ("peerscope:tick", "peerscope:probe_batch", "peerscope:store_flush"):
        assert names[name]["cpu_calls"] == names[name]["calls"], name
    assert 'peerscope_profiled_seconds_count{name="peerscope:tick"}' in metrics
