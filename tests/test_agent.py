"""The composition root (``peerscope.agent``) and the app ``create_app`` makes without it."""

from __future__ import annotations

import pytest

from peerscope import Monitor, Settings
from peerscope.agent import Agent
from peerscope.config import SettingsError
from peerscope.export.metrics_app import MetricsApp, render
from peerscope.export.prometheus import CONTENT_TYPE
from peerscope.server import create_app
from peerscope.testing import ManualClock
from tests.server_support import live_server, seeded_monitor


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
