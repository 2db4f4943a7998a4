"""``peerscope serve`` telling a real Alertmanager that a peer went down, and that it came
back: the peer is another ``peerscope serve`` whose reflector the test stops and restarts."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.alertmanager_support import alertmanager
from tests.server_support import cli_env, start_serve, wait_ready

DEADLINE_S = 30.0


def until(check: Callable[[], Any], what: str, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} within {DEADLINE_S:g} s{logs()}")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(10)


def test_a_peer_whose_reflector_stops_reaches_alertmanager_and_resolves_when_it_is_back(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
):
    reflector_port = free_udp_port()
    peer_env = cli_env(PEERSCOPE_REFLECTOR_PORT=str(reflector_port))
    with alertmanager(tmp_path) as manager:
        config = tmp_path / "peerscope.toml"
        config.write_text(
            f"""
probe_interval = 0.2
probe_timeout = 0.5
metrics_interval = 0.2

[status]
degraded_after_failures = 2
disconnected_after_failures = 4

[[peers]]
id = "peer-b"
address = "127.0.0.1:{reflector_port}"
labels = {{ region = "eu" }}

[alerts]
alertmanager_urls = ["{manager.url}"]
alertmanager_resend_s = 1.0
notify_backoff_s = 0.2
"""
        )
        peer = start_serve(env=peer_env)
        processes.append(peer)
        wait_ready(peer)
        agent = start_serve("--config", str(config))
        processes.append(agent)
        _, port = wait_ready(agent)
        api = f"http://127.0.0.1:{port}/api"

        def peer_status() -> str:
            return str(httpx.get(f"{api}/metrics/peers/peer-b", timeout=5).json()["status"])

        def ours(state: str) -> list[dict[str, Any]]:
            alerts = httpx.get(f"{api}/alerts", timeout=5).json()["alerts"]
            return [a for a in alerts if a["rule"] == "peer_disconnected" and a["state"] == state]

        def held() -> list[dict[str, Any]]:
            return manager.alerts(filter={"alertname": "peer_disconnected", "peer_id": "peer-b"})

        until(lambda: peer_status() == "connected", "the peer measured connected", manager.logs)
        assert held() == []

        stop(peer)  # its reflector stops answering
        (alert,) = until(held, "Alertmanager holding the peer's alert", manager.logs)
        assert alert["labels"] == {
            "alertname": "peer_disconnected",
            "severity": "critical",
            "peer_id": "peer-b",
            "region": "eu",
            "probe_method": "twamp",
        }
        assert alert["status"]["state"] == "active"
        assert "peer-b" in alert["annotations"]["summary"]
        assert peer_status() == "disconnected"
        assert len(ours("firing")) == 1

        peer = start_serve(env=peer_env)  # the same reflector port, answering again
        processes.append(peer)
        wait_ready(peer)
        until(lambda: held() == [], "Alertmanager no longer holding the alert", manager.logs)
        assert peer_status() != "disconnected"
        assert ours("firing") == []
        history = httpx.get(f"{api}/alerts/history", timeout=5).json()["events"]
        told = [
            (event["state"], event["rule"])
            for event in history
            if event["rule"] == "peer_disconnected"
        ]
        assert told == [("firing", "peer_disconnected"), ("resolved", "peer_disconnected")]
        stop(agent)
        stop(peer)
