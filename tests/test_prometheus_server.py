"""A real Prometheus server scrapes a running ``peerscope serve``; the series come back via its API.

Everything runs on loopback on free ports and is stopped at the end: ``peerscope serve`` as a
subprocess, a WebSocket client connected to it (so there is a peer to export), and
``/usr/bin/prometheus`` (Debian package ``prometheus``, installed by ``.ci/run``) with its own
config and storage in ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.process_support import free_ports, running, tail

PROMETHEUS = Path("/usr/bin/prometheus")
TIMEOUT_S = 40.0
PEER_NAME = 'tester "one" \\ <img src=x onerror=alert(1)>'


def answer_pings(ws: ClientConnection) -> None:
    """Play a dashboard: answer the server's RTT pings so the peer gets measured."""
    with contextlib.suppress(ConnectionClosed):
        for frame in ws:
            message = json.loads(frame)
            if message.get("type") == "ping":
                ws.send(json.dumps({"type": "pong", "seq": message["seq"]}))


def query(client: httpx.Client, expr: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/query", params={"query": expr})
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


@pytest.mark.slow
def test_prometheus_scrapes_peerscope_serve(tmp_path: Path) -> None:
    if not (PROMETHEUS.is_file() and os.access(PROMETHEUS, os.X_OK)):
        pytest.fail(
            f"{PROMETHEUS} not found: this test needs a real Prometheus server; install "
            "the Debian package with `apt-get install prometheus` (.ci/run does)"
        )
    peerscope_port, prometheus_port = free_ports(2)
    target = f"127.0.0.1:{peerscope_port}"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: peerscope\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    serve_log, prometheus_log = tmp_path / "serve.log", tmp_path / "prometheus.log"
    # A clean environment: PEERSCOPE_* variables of the caller must not change the agent;
    # and no history kept (conftest.py).
    env = {key: value for key, value in os.environ.items() if not key.startswith("PEERSCOPE_")}
    env["PEERSCOPE_STORE__ENABLED"] = "false"
    # One rule of our own that the test's WebSocket client makes fire at once.
    env["PEERSCOPE_ALERTS__RULES"] = json.dumps(
        [{"name": "someone_connected", "metric": "active_connections", "op": ">", "threshold": 0}]
    )
    serve = [
        sys.executable,
        "-m",
        "peerscope.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(peerscope_port),
        "--reflector-port",
        "0",
    ]
    prometheus = [
        str(PROMETHEUS),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    deadline = time.monotonic() + TIMEOUT_S

    def logs() -> str:
        return (
            f"\n--- peerscope serve ---\n{tail(serve_log)}"
            f"\n--- prometheus ---\n{tail(prometheus_log)}"
        )

    def check_alive(*processes: tuple[str, subprocess.Popen[bytes]]) -> None:
        for name, process in processes:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}{logs()}")

    with (
        running(serve, serve_log, env) as agent,
        running(prometheus, prometheus_log) as server,
        httpx.Client(base_url=f"http://{target}", timeout=5.0) as peerscope,
        httpx.Client(base_url=f"http://127.0.0.1:{prometheus_port}", timeout=5.0) as prom,
    ):
        while True:
            check_alive(("peerscope serve", agent))
            with contextlib.suppress(httpx.TransportError):
                if peerscope.get("/metrics").status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"peerscope serve did not answer on {target}{logs()}")
            time.sleep(0.1)

        with connect(f"ws://{target}/ws?name={quote(PEER_NAME)}", open_timeout=10) as ws:
            pinger = threading.Thread(target=answer_pings, args=(ws,), daemon=True)
            pinger.start()
            found: dict[str, list[dict[str, Any]]] = {}
            wanted = (
                "peerscope_host_cpu_ratio",
                "peerscope_server_uptime_seconds",
                "peerscope_host_memory_total_bytes",
                "peerscope_host_memory_used_bytes",
                "peerscope_server_messages_total",
                'peerscope_peer_rtt_seconds{kind="client"}',
                'peerscope_peer_received_messages_total{kind="client"}',
                'peerscope_alert_firing{rule="someone_connected"}',
            )
            while True:
                check_alive(("peerscope serve", agent), ("prometheus", server))
                with contextlib.suppress(httpx.TransportError):
                    found = {expr: query(prom, expr) for expr in wanted}
                    if all(found.values()):
                        break
                if time.monotonic() > deadline:
                    missing = [expr for expr in wanted if not found.get(expr)]
                    pytest.fail(f"Prometheus returned no {missing} within {TIMEOUT_S:g} s{logs()}")
                time.sleep(0.5)
            targets = prom.get("/api/v1/targets").json()["data"]["activeTargets"]
        pinger.join(timeout=5)

    # Prometheus parsed every scrape: the target is up with no error.
    (scraped,) = targets
    assert scraped["health"] == "up", scraped
    assert scraped["lastError"] == ""

    (cpu,) = found["peerscope_host_cpu_ratio"]
    assert cpu["metric"] == {
        "__name__": "peerscope_host_cpu_ratio",
        "job": "peerscope",
        "instance": target,
    }
    assert 0.0 <= value(cpu) <= 1.0
    (uptime,) = found["peerscope_server_uptime_seconds"]
    assert 0.0 < value(uptime) < TIMEOUT_S + 10
    (total,) = found["peerscope_host_memory_total_bytes"]
    (used,) = found["peerscope_host_memory_used_bytes"]
    assert value(total) > 64 * 1024**2
    assert 0 < value(used) <= value(total)
    (messages,) = found["peerscope_server_messages_total"]
    assert value(messages) >= 1  # the pong, at least

    (rtt,) = found['peerscope_peer_rtt_seconds{kind="client"}']
    labels = rtt["metric"]
    assert labels["name"] == PEER_NAME  # escaped by the exposition, read back intact
    assert labels["peer_id"].startswith("ws-")
    assert 0.0 < value(rtt) < 1.0  # a loopback round trip, in seconds
    (received,) = found['peerscope_peer_received_messages_total{kind="client"}']
    assert received["metric"]["peer_id"] == labels["peer_id"]
    assert value(received) >= 1
    (firing,) = found['peerscope_alert_firing{rule="someone_connected"}']
    assert firing["metric"] == {
        "__name__": "peerscope_alert_firing",
        "job": "peerscope",
        "instance": target,
        "rule": "someone_connected",
        "severity": "warning",
        "alertstate": "firing",  # peer_id "" (a host-wide rule): Prometheus drops empty labels
    }
    assert value(firing) == 1.0
