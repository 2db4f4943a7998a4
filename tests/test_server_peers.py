"""Probed peers over REST (``/api/peers``), and agents probing each other for real."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from peerscope import Monitor, Settings
from peerscope.probe.reflector import Reflector
from tests.server_support import (
    cli_env,
    live_server,
    start_serve,
    wait_ready,
)


def probing_monitor(**overrides: Any) -> Monitor:
    values: dict[str, Any] = {
        "metrics_interval": 0.1,
        "probe_interval": 0.1,
        "probe_timeout": 0.3,
        "enable_system_metrics": False,
    }
    values.update(overrides)
    return Monitor(Settings(**values))


async def until(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def measured_peer(http: httpx.AsyncClient, peer_id: str) -> dict[str, Any] | None:
    response = await http.get(f"/api/metrics/peers/{peer_id}")
    if response.status_code != 200:
        return None
    peer: dict[str, Any] = response.json()
    return peer if peer["latency_ms"] is not None else None


@pytest.mark.slow
async def test_a_posted_peer_is_probed_for_real_and_deleted():
    async with (
        Reflector() as reflector,
        live_server(probing_monitor()) as live,
        live.http() as http,
    ):
        created = await http.post(
            "/api/peers",
            json={
                "id": "agent-b",
                "name": "Agent B",
                "address": f"127.0.0.1:{reflector.port}",
                "labels": {"region": "eu"},
            },
        )
        assert created.status_code == 201, created.text
        assert created.json() == {
            "id": "agent-b",
            "name": "Agent B",
            "address": f"127.0.0.1:{reflector.port}",
            "method": "twamp",
            "padding": None,
            "dscp": 0,
            "error": None,
        }
        assert (await http.get("/api/peers")).json()["peers"] == [created.json()]

        peer = await until(lambda: measured_peer(http, "agent-b"))
        assert peer is not None, "no measured latency within 5 s"
        assert 0 < peer["latency_ms"] < 50  # loopback
        assert peer["status"] == "connected"
        assert peer["labels"] == {"region": "eu", "probe_method": "twamp"}
        assert reflector.reflected >= 1
        health = (await http.get("/api/health")).json()
        assert health["probed_peers"] == 1
        prober = health["prober"]
        assert prober["sent"] >= 1
        assert (prober["malformed"], prober["unmatched"], prober["errors"]) == (0, 0, 0)

        assert (await http.delete("/api/peers/agent-b")).status_code == 204
        assert (await http.get("/api/peers")).json()["peers"] == []
        assert (await http.get("/api/metrics/peers/agent-b")).status_code == 404
        sent = reflector.reflected
        await asyncio.sleep(0.5)
        assert reflector.reflected <= sent + 1  # at most one probe was already under way
        again = await http.delete("/api/peers/agent-b")
        assert again.status_code == 404
        assert "agent-b" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"address": "127.0.0.1:99999"}, "body.address", "65535"),
        ({"address": "localhost", "method": "tcp"}, "body.address", "need a port"),
        ({"address": "127.0.0.1:80", "method": "icmp"}, "body.address", "no port"),
        ({"address": ""}, "body.address", "address"),
        ({"address": "127.0.0.1", "method": "udp"}, "body.method", "twamp"),
        ({"address": "127.0.0.1", "id": "x" * 200}, "body.id", "128"),
        ({"address": "127.0.0.1", "colour": "red"}, "body.colour", "Extra"),
        ({"name": "no address"}, "body.address", "required"),
        ({"address": "127.0.0.1", "labels": {"bad key": "x"}}, "body.labels", "identifier"),
        ({"address": "127.0.0.1", "method": "stamp", "padding": 3}, "body.padding", "30..1458"),
        ({"address": "127.0.0.1", "dscp": 70}, "body.dscp", "63"),
    ],
)
async def test_a_bad_peer_is_refused_with_422_naming_the_field(
    body: dict[str, Any], field: str, words: str
):
    async with live_server(probing_monitor()) as live, live.http() as http:
        response = await http.post("/api/peers", json=body)
        assert response.status_code == 422
        problems = response.json()["detail"]
        assert [problem["field"] for problem in problems] == [field], problems
        assert words in problems[0]["message"], problems
        assert (await http.get("/api/peers")).json()["peers"] == []


async def test_a_name_that_does_not_resolve_is_shown_on_the_probed_peer():
    async with live_server(probing_monitor()) as live, live.http() as http:
        created = await http.post(
            "/api/peers", json={"id": "gone", "address": "nosuch.invalid:8701"}
        )
        assert created.status_code == 201, created.text
        assert created.json()["error"] is None  # not looked up yet

        async def listed() -> dict[str, Any] | None:
            (peer,) = (await http.get("/api/peers")).json()["peers"]
            return peer if peer["error"] is not None else None

        peer = await until(listed)
        assert peer is not None, "no error shown within 5 s"
        assert peer["error"].startswith("'nosuch.invalid' does not resolve: ")
        assert peer["id"] == "gone"


@pytest.mark.parametrize("address", ["10.0.0.999", "999.1.1.1:8701"])
async def test_an_invalid_ip_address_is_refused(address: str):
    async with live_server(probing_monitor()) as live, live.http() as http:
        response = await http.post("/api/peers", json={"address": address})
        assert response.status_code == 422
        (problem,) = response.json()["detail"]
        assert problem["field"] == "body.address"
        assert "is not a valid IPv4 address" in problem["message"], problem


async def test_an_existing_peer_id_is_a_conflict():
    async with live_server(probing_monitor()) as live, live.http() as http:
        ws = await live.ws("?name=dashboard")
        peers = (await http.get("/api/metrics/peers")).json()["peers"]
        client_id = peers[0]["client_id"]
        response = await http.post("/api/peers", json={"id": client_id, "address": "127.0.0.1"})
        assert response.status_code == 409
        assert client_id in response.json()["detail"]
        await ws.close()


async def test_past_max_peers_a_new_peer_is_a_409_naming_the_limit():
    """It was a plain-text 500 with a traceback, and a reset connection."""
    monitor = probing_monitor(max_peers=2)
    monitor.record_latency("app-peer", 5.0)
    async with live_server(monitor) as live, live.http() as http:
        first = await http.post("/api/peers", json={"id": "one", "address": "127.0.0.1:9"})
        assert first.status_code == 201, first.text
        second = await http.post("/api/peers", json={"id": "two", "address": "127.0.0.1:9"})
        assert second.status_code == 409
        assert second.headers["content-type"] == "application/json"
        assert second.json() == {
            "error": "conflict",
            "detail": "max_peers: the limit of 2 peers is reached; peer_id 'two' was not added",
        }
        # Nothing changed: the probed list and the peers are as they were, and the server
        # goes on answering on the same connection.
        assert [peer["id"] for peer in (await http.get("/api/peers")).json()["peers"]] == ["one"]
        assert sorted(monitor.peer_ids) == ["app-peer", "one"]
        assert (await http.delete("/api/peers/one")).status_code == 204
        again = await http.post("/api/peers", json={"id": "two", "address": "127.0.0.1:9"})
        assert again.status_code == 201, again.text


async def test_with_a_token_adding_and_removing_peers_needs_it():
    async with live_server(probing_monitor(token="s3cret")) as live, live.http() as http:
        body = {"id": "p", "address": "127.0.0.1:9"}
        assert (await http.post("/api/peers", json=body)).status_code == 401
        assert (await http.delete("/api/peers/p")).status_code == 401
        assert (await http.get("/api/peers")).status_code == 401
        authorized = {"Authorization": "Bearer s3cret"}
        assert (await http.post("/api/peers", json=body, headers=authorized)).status_code == 201
        assert (await http.delete("/api/peers/p", headers=authorized)).status_code == 204


# --- two agents -------------------------------------------------------------------------------

FAST = {
    "PEERSCOPE_METRICS_INTERVAL": "0.2",
    "PEERSCOPE_PROBE_INTERVAL": "0.2",
    "PEERSCOPE_PROBE_TIMEOUT": "0.4",
    "PEERSCOPE_ENABLE_SYSTEM_METRICS": "false",
    "PEERSCOPE_STATUS__DEGRADED_AFTER_FAILURES": "3",
    "PEERSCOPE_STATUS__DISCONNECTED_AFTER_FAILURES": "8",
    # Loss % covers the last 20 probes (4 s here), so the outage's losses age out soon
    # after the peer is back: until then its score keeps it degraded, as it should.
    "PEERSCOPE_QUALITY__LOSS_WINDOW": "20",
}


def agent(
    processes: list[subprocess.Popen[str]],
    reflector_port: int = 0,
) -> tuple[subprocess.Popen[str], httpx.Client, int]:
    """A `peerscope serve` process, a client for its API, and its reflector's port."""
    process = start_serve(env=cli_env(**FAST, PEERSCOPE_REFLECTOR_PORT=str(reflector_port)))
    processes.append(process)
    _, port = wait_ready(process)
    url = f"http://127.0.0.1:{port}"
    health = httpx.get(f"{url}/api/health", timeout=5.0).json()
    return process, httpx.Client(base_url=url, timeout=5.0), health["reflector_port"]


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def status_of(http: httpx.Client, peer_id: str, wanted: str) -> dict[str, Any] | None:
    peer: dict[str, Any] = http.get(f"/api/metrics/peers/{peer_id}").json()
    measured = peer["latency_ms"] is not None
    # A connected peer shows its latency; a disconnected one no stale figure.
    return peer if peer["status"] == wanted and measured == (wanted == "connected") else None


def test_two_agents_probe_each_other_and_see_one_go_and_come_back(
    processes: list[subprocess.Popen[str]],
):
    first, first_http, first_reflector = agent(processes)
    second, second_http, second_reflector = agent(processes)
    with first_http, second_http:
        assert first_reflector != second_reflector
        assert (
            first_http.post(
                "/api/peers", json={"id": "second", "address": f"127.0.0.1:{second_reflector}"}
            ).status_code
            == 201
        )
        assert (
            second_http.post(
                "/api/peers", json={"id": "first", "address": f"127.0.0.1:{first_reflector}"}
            ).status_code
            == 201
        )
        for http, other in ((first_http, "second"), (second_http, "first")):
            peer = wait_for(lambda http=http, other=other: status_of(http, other, "connected"))
            assert peer is not None, f"{other} never measured as connected"
            assert 0 < peer["latency_ms"] < 50
            assert peer["packet_loss_percent"] == 0

        second.send_signal(signal.SIGKILL)  # gone without a word
        second.wait(5)
        seen: list[str] = []

        def left_connected() -> str | None:
            seen.append(first_http.get("/api/metrics/peers/second").json()["status"])
            return seen[-1] if seen[-1] != "connected" else None

        assert wait_for(left_connected) == "degraded", seen  # degraded first, then:
        gone = wait_for(lambda: status_of(first_http, "second", "disconnected"))
        assert gone is not None, "never marked disconnected"
        assert gone["packet_loss_percent"] > 0
        assert gone["quality_score"] == 0
        assert gone["grade"] == "F"
        assert gone["status_reason"]["kind"] == "no_reply"
        assert gone["jitter_ms"] is None
        assert gone["mos"] is None
        assert gone["last_measured_at"] is not None

        # Back on the same reflector port: measured as connected again.
        _, back_http, port = agent(processes, second_reflector)
        with back_http:
            assert port == second_reflector
            back = wait_for(lambda: status_of(first_http, "second", "connected"), 20)
            assert back is not None, "never back to connected"
            assert back["latency_ms"] < 50
        first.send_signal(signal.SIGINT)
        assert first.wait(10) == 0


def test_serve_probes_the_peers_of_its_config_file_and_of_peer_flags(
    processes: list[subprocess.Popen[str]], tmp_path: Path
):
    reflector = subprocess.Popen(
        [sys.executable, "-c", REFLECTOR_PROCESS], stdout=subprocess.PIPE, text=True
    )
    processes.append(reflector)
    assert reflector.stdout is not None
    port = int(reflector.stdout.readline())
    config = tmp_path / "peerscope.toml"
    config.write_text(
        f'probe_interval = 0.2\n\n[[peers]]\nid = "from-file"\n'
        f'name = "Listed in TOML"\naddress = "127.0.0.1:{port}"\n'
    )
    process = start_serve("--config", str(config), "--peer", f"127.0.0.1:{port}", env=cli_env())
    processes.append(process)
    _, http_port = wait_ready(process)
    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=5.0) as http:
        probed = http.get("/api/peers").json()["peers"]
        assert probed == [
            {
                "id": "from-file",
                "name": "Listed in TOML",
                "address": f"127.0.0.1:{port}",
                "method": "twamp",
                "padding": None,
                "dscp": 0,
                "error": None,
            },
            {
                "id": f"twamp:127.0.0.1:{port}",
                "name": None,
                "address": f"127.0.0.1:{port}",
                "method": "twamp",
                "padding": None,
                "dscp": 0,
                "error": None,
            },
        ]
        for peer_id in ("from-file", f"twamp:127.0.0.1:{port}"):
            assert wait_for(lambda peer_id=peer_id: status_of(http, peer_id, "connected"))


@pytest.mark.slow
def test_serve_refuses_a_bad_peer_naming_it(tmp_path: Path):
    config = tmp_path / "peerscope.toml"
    config.write_text('[[peers]]\naddress = "127.0.0.1:70000"\n')
    bad_file = subprocess.run(
        [sys.executable, "-m", "peerscope.cli", "serve", "--port", "0", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
        check=False,
    )
    assert bad_file.returncode == 2
    assert bad_file.stderr == (
        f"peerscope: {config}: peers[0].address: port must be "
        "1..65535, got '70000' in '127.0.0.1:70000'\n"
    )
    bad_flag = subprocess.run(
        [sys.executable, "-m", "peerscope.cli", "serve", "--port", "0", "--peer", "[::1"],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
        check=False,
    )
    assert bad_flag.returncode == 2
    assert bad_flag.stderr == ("peerscope: --peer: expected [IPv6] or [IPv6]:PORT, got '[::1'\n")


REFLECTOR_PROCESS = """
import asyncio
from peerscope import Reflector

async def main():
    reflector = Reflector()
    print(await reflector.start("127.0.0.1", 0), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.slow
def test_serve_refuses_a_busy_reflector_port_naming_the_setting():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "peerscope.cli",
                "serve",
                "--port",
                "0",
                "--reflector-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(),
            check=False,
        )
    assert result.returncode == 2
    assert f"UDP 127.0.0.1:{port}" in result.stderr
    assert "reflector_port" in result.stderr
