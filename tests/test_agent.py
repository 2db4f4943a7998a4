"""The composition root (``peerscope.agent``) and the app ``create_app`` makes without it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from peerscope import Monitor, Settings
from peerscope.agent import Agent
from peerscope.alert_settings import AlertSettings
from peerscope.config import SettingsError
from peerscope.core.alerts import AlertRule
from peerscope.export.metrics_app import MetricsApp, render
from peerscope.export.prometheus import CONTENT_TYPE
from peerscope.server import create_app
from peerscope.store import HistoryStore
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock
from tests.server_support import eventually, live_server, seeded_monitor


def quiet(**overrides):
    return Monitor(Settings(metrics_interval=3600.0, enable_system_metrics=False, **overrides))


def test_the_agent_builds_its_parts_from_the_settings():
    settings = Settings(
        enable_system_metrics=False,
        probe_interval=0.5,
        probe_count=2,
        probe_timeout=0.25,
        reflector_rate_limit=10.0,
        reflector_burst=3,
        tcp_refused="reachable",
    )
    agent = Agent.from_settings(settings)
    assert agent.monitor.settings is settings
    assert (agent.prober.interval_s, agent.prober.count, agent.prober.timeout_s) == (0.5, 2, 0.25)
    assert agent.prober.tcp_refused == "reachable"
    assert agent.prober.sink is agent.monitor
    assert agent.reflector is not None
    assert not agent.reflector.is_running  # built, not started: run() starts it
    assert not agent.prober.is_running
    assert not agent.monitor.is_running
    assert Agent(quiet(reflector_enabled=False)).reflector is None


def test_host_and_port_override_the_settings_and_the_bind_is_checked_first():
    monitor = quiet()
    agent = Agent(monitor, host="::1", port=0)
    assert (agent.settings.host, agent.settings.port) == ("::1", 0)
    assert (monitor.settings.host, monitor.settings.port) == ("127.0.0.1", 8700)
    with pytest.raises(SettingsError, match=r"refusing to bind 0\.0\.0\.0 without a token"):
        Agent(monitor, host="0.0.0.0")


async def test_the_agents_app_serves_the_prober_and_metrics_and_refuses_head():
    clock = ManualClock()
    monitor = seeded_monitor(clock)
    async with live_server(monitor) as live, live.http() as http:
        assert (await http.get("/api/peers")).json() == {"peers": []}
        health = (await http.get("/api/health")).json()
        # The reflector was built but live_server does not start it: not answering.
        assert (health["probed_peers"], health["reflector_port"], health["reflector"]) == (
            0,
            None,
            None,
        )
        scrape = await http.get("/metrics")
        assert scrape.status_code == 200
        assert scrape.headers["content-type"] == CONTENT_TYPE
        # The Monitor's series, then those of the agent's alerting (its log notifier).
        monitors = render(monitor)[0]
        assert scrape.content.startswith(monitors)
        alerting = scrape.content[len(monitors) :]
        assert b'peerscope_alert_notifications_total{notifier="log",outcome="sent"} 0.0' in alerting
        assert int(scrape.headers["content-length"]) == len(scrape.content)
        # GET only, as every route of the API: HEAD is refused, naming what is served.
        head = await http.head("/metrics")
        assert head.status_code == 405
        assert head.headers["allow"] == "GET"
        assert "/metrics" not in (await http.get("/openapi.json")).json()["paths"]


async def test_create_app_alone_serves_no_probed_peers_and_no_metrics():
    """What a user mounting the API gets from ``create_app(monitor)`` with nothing else."""
    monitor = quiet()
    async with live_server(monitor, app=create_app(monitor)) as live, live.http() as http:
        assert (await http.get("/api/metrics/peers")).status_code == 200
        missing = await http.get("/api/peers")
        assert missing.status_code == 404
        assert missing.json() == {"error": "not found", "detail": "Not Found"}
        assert (await http.get("/metrics")).status_code == 404
        health = (await http.get("/api/health")).json()
        assert (health["probed_peers"], health["reflector"]) == (0, None)
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert "/api/peers" not in paths
        assert "/api/metrics/summary" in paths


async def test_metrics_app_serves_the_exposition_by_itself():
    """The exporter's own ASGI app, outside the API: what ``render`` makes, as Prometheus
    reads it, in the exporter's content type."""
    clock = ManualClock()
    monitor = seeded_monitor(clock)
    async with live_server(monitor, app=MetricsApp(monitor)) as live, live.http() as http:
        for path in ("/metrics", "/anything"):  # the mount point is the caller's choice
            scrape = await http.get(path)
            assert scrape.status_code == 200
            assert scrape.headers["content-type"] == CONTENT_TYPE
            assert scrape.content == render(monitor)[0]


# --- the history store --------------------------------------------------------------------


def stored_settings(db: Path, **overrides: Any) -> Settings:
    return Settings(
        enable_system_metrics=False,
        reflector_enabled=False,
        store=StoreSettings(enabled=True, db=str(db)),
        **overrides,
    )


async def serving(agent: Agent) -> asyncio.Task[None]:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(agent.run(on_ready=ready.set_result))
    await asyncio.wait_for(ready, 10)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_the_agent_keeps_history_to_its_last_tick_and_its_alert_events(tmp_path: Path):
    db = tmp_path / "history.db"
    busy = AlertRule("busy", "active_connections", ">=", 0.0)  # fires at the first tick
    settings = stored_settings(
        db,
        metrics_interval=0.05,
        alerts=AlertSettings(default_rules=False, log=False, rules=[busy]),
    )
    agent = Agent(Monitor(settings), port=0)
    assert agent.store is not None
    assert agent.store.path == str(db)
    assert agent.store_error is None
    task = await serving(agent)
    await eventually(lambda: agent.store is not None and agent.store.stats.flushes >= 2)
    await stop(task)
    # Closed on the way out, after the Monitor stopped: its writer thread is gone, and the
    # Monitor's very last tick is in the file.
    assert "peerscope-store" not in {thread.name for thread in threading.enumerate()}
    last = agent.monitor.last_message
    assert last is not None
    reopened = HistoryStore(StoreSettings(db=str(db)))
    try:
        found = reopened.reader.samples("server", "server", 0, 1e11, ["total_connections"])
        assert found is not None
        assert found["total_connections"][-1][0] == pytest.approx(last["timestamp"], abs=0.001)
        fired = reopened.reader.events(types=["alert"])
        assert fired[-1]["data"]["rule"] == "busy"
        assert fired[-1]["data"]["state"] == "firing"
    finally:
        reopened.close()


async def test_a_restarted_agent_picks_up_its_peers_and_alerts_from_the_store(tmp_path: Path):
    db = tmp_path / "history.db"
    busy = AlertRule("busy", "active_connections", ">=", 0.0)
    settings = stored_settings(
        db,
        metrics_interval=0.05,
        alerts=AlertSettings(default_rules=False, log=False, rules=[busy]),
    )
    first = Agent(Monitor(settings), port=0)
    task = await serving(first)
    first.monitor.add_peer("eu-1", name="Frankfurt", labels={"region": "eu"})
    first.monitor.record_latency("eu-1", 12.5)
    assert first.alerting is not None
    await eventually(lambda: first.alerting is not None and first.alerting.count() == 1)
    started_at = first.alerting.firing()[0]["started_at"]
    await eventually(lambda: first.store is not None and first.store.stats.flushes >= 2)
    await stop(task)

    second = Agent(Monitor(settings), port=0)
    assert "eu-1" not in second.monitor
    task = await serving(second)
    try:
        # Refilled before the first tick: the peer with its sample, the alert still firing
        # since it began in the first run.
        peer = second.monitor.peer("eu-1")
        assert (peer["name"], peer["labels"]) == ("Frankfurt", {"region": "eu"})
        assert [v for _, v in second.monitor.latency_history("eu-1", 3600)] == [12.5]
        assert second.alerting is not None
        (alert,) = second.alerting.firing()
        assert (alert["rule"], alert["started_at"]) == ("busy", started_at)
    finally:
        await stop(task)


def test_a_database_that_cannot_be_used_leaves_the_agent_serving_without_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    db = not_a_dir / "sub" / "history.db"
    with caplog.at_level(logging.ERROR, logger="peerscope.store"):
        agent = Agent(Monitor(stored_settings(db)), port=0)
    assert agent.store is None
    expected = (
        f"db: cannot create {db.parent}: Not a directory; going on in memory, without history"
    )
    assert agent.store_error == expected
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("peerscope.store", expected)]


def test_no_store_with_store_enabled_off(tmp_path: Path):
    settings = Settings(
        enable_system_metrics=False,
        store=StoreSettings(enabled=False, db=str(tmp_path / "history.db")),
    )
    agent = Agent(Monitor(settings))
    assert (agent.store, agent.store_error) == (None, None)
    assert not (tmp_path / "history.db").exists()
