"""``peerscope serve`` run as a user runs it: a real process, real signals, real clients."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from peerscope import Monitor, Settings
from peerscope.agent import Agent, serve
from peerscope.config import SettingsError
from tests.server_support import cli_env, start_serve, wait_ready


def drain(ws: ClientConnection) -> None:
    """Read until the server closes the connection (ConnectionClosed)."""
    while True:
        ws.recv(timeout=5)


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_announces_serves_and_exits_cleanly_on_a_signal(
    processes: list[subprocess.Popen[str]], signum: signal.Signals
):
    process = start_serve("--metrics-interval", "0.2")
    processes.append(process)
    line, port = wait_ready(process)
    assert line.startswith(f"peerscope serving on http://127.0.0.1:{port}")
    assert port != 0
    health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["monitor_running"] is True
    # A live WebSocket subscriber does not hold up the shutdown.
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5, close_timeout=2) as ws:
        deadline = time.monotonic() + 5
        while orjson.loads(ws.recv(timeout=5))["type"] != "metrics":
            assert time.monotonic() < deadline
        process.send_signal(signum)
        returncode = process.wait(timeout=15)
        with pytest.raises(ConnectionClosed):
            drain(ws)
    out, err = process.communicate(timeout=5)
    assert returncode == 0, err
    assert "Traceback" not in err
    assert "Traceback" not in out
    assert not port_is_open(port)


def test_serve_takes_a_token_from_the_command_line(processes: list[subprocess.Popen[str]]):
    process = start_serve("--token", "cli-token")
    processes.append(process)
    _, port = wait_ready(process)
    url = f"http://127.0.0.1:{port}/api/metrics/server"
    assert httpx.get(url, timeout=5).status_code == 401
    response = httpx.get(url, headers={"Authorization": "Bearer cli-token"}, timeout=5)
    assert response.status_code == 200
    # A health check that holds no token still learns the agent is up.
    health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
    assert health.json() == {"status": "ok"}
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "0.0.0.0"], {}),
        ([], {"PEERSCOPE_HOST": "0.0.0.0"}),
    ],
    ids=["flag", "environment"],
)
def test_serve_refuses_a_public_address_without_a_token(args: list[str], env: dict[str, str]):
    result = subprocess.run(
        [sys.executable, "-m", "peerscope.cli", "serve", *args, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(**env),
        check=False,
    )
    assert result.returncode == 2
    assert "serving on" not in result.stdout
    assert "refusing to bind 0.0.0.0 without a token" in result.stderr
    # It says how to set one.
    for way in ("--token", "PEERSCOPE_TOKEN", "token = "):
        assert way in result.stderr
    assert "Traceback" not in result.stderr


SERVE_THEN_CANCEL = textwrap.dedent("""
    import asyncio, socket
    import httpx
    from peerscope import Monitor, Settings
    from peerscope.agent import serve

    async def main():
        monitor = Monitor(Settings(enable_system_metrics=False))
        ready = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(monitor, port=0, on_ready=ready.set_result))
        url = await asyncio.wait_for(ready, 10)
        print("url", url)
        async with httpx.AsyncClient(verify=False) as http:
            print("health", (await http.get(url + "/api/health")).status_code)
        print("monitor_running", monitor.is_running)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        print("monitor_running", monitor.is_running)
        with socket.socket() as probe:
            port = int(url.rsplit(":", 1)[1])
            print("port_open", probe.connect_ex(("127.0.0.1", port)) == 0)

    asyncio.run(main())
""")


@pytest.mark.slow
def test_serve_releases_its_port_when_cancelled():
    """serve() runs "until SIGINT/SIGTERM or cancel": after a cancel the port is closed."""
    result = subprocess.run(
        [sys.executable, "-c", SERVE_THEN_CANCEL],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"url http://127\.0\.0\.1:\d+", lines[0])
    assert lines[1:4] == ["health 200", "monitor_running True", "monitor_running False"]
    assert lines[4] == "port_open False", "the listening socket outlived the cancelled serve()"


def test_list_settings_from_the_environment_as_comma_separated_items(
    processes: list[subprocess.Popen[str]],
):
    """PEERSCOPE_ALLOWED_HOSTS=myhost and PEERSCOPE_PEERS=127.0.0.1 ended in a traceback."""
    process = start_serve(
        env=cli_env(
            PEERSCOPE_ALLOWED_HOSTS="myhost,monitor.lan", PEERSCOPE_PEERS="127.0.0.1,10.0.0.2:8702"
        )
    )
    processes.append(process)
    _, port = wait_ready(process)
    url = f"http://127.0.0.1:{port}"
    for host, status in (("myhost", 200), ("monitor.lan", 200), ("evil.example", 400)):
        response = httpx.get(f"{url}/api/health", headers={"Host": host}, timeout=5)
        assert response.status_code == status, host
    peers = httpx.get(f"{url}/api/peers", timeout=5).json()["peers"]
    assert [peer["id"] for peer in peers] == ["twamp:127.0.0.1", "twamp:10.0.0.2:8702"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


async def test_serve_says_which_setting_to_change_when_the_port_is_busy():
    monitor = Monitor(Settings(enable_system_metrics=False, reflector_port=0))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        agent = Agent(monitor, port=port)
        with pytest.raises(SettingsError) as refused:
            await asyncio.wait_for(agent.run(), 10)
    assert str(refused.value) == (
        f"port: {port} is in use (TCP 127.0.0.1:{port}); set "
        "another port (--port or PEERSCOPE_PORT)"
    )
    # Refused before anything started: nothing to stop, nothing left behind.
    assert not monitor.is_running
    assert not agent.prober.is_running
    assert agent.reflector is not None
    assert not agent.reflector.is_running
    assert agent.reflector.port is None  # never bound


async def test_serve_on_ipv6_announces_a_url_that_works():
    """On [::1]: .ci/run turns IPv6 on for loopback where a host had it off."""
    monitor = Monitor(Settings(enable_system_metrics=False, reflector_port=0))
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(monitor, host="::1", port=0, on_ready=ready.set_result))
    try:
        url = await asyncio.wait_for(ready, 10)
        assert re.fullmatch(r"http://\[::1\]:\d+", url), url
        async with httpx.AsyncClient(verify=False) as http:
            assert (await http.get(f"{url}/api/health", timeout=5)).status_code == 200
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- the log on stderr ----------------------------------------------------------------------


def test_serve_with_log_format_json_writes_one_json_object_a_line(
    processes: list[subprocess.Popen[str]],
):
    # At the settings' default level, INFO (cli_env asks for WARNING).
    env = cli_env(PEERSCOPE_LOG_LEVEL="INFO")
    process = start_serve("--log-format", "json", "--metrics-interval", "0.2", env=env)
    processes.append(process)
    _, port = wait_ready(process)  # stdout announces as it always did
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/api/health", timeout=5).status_code == 200
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    entries = [orjson.loads(text) for text in err.splitlines()]  # every line is JSON
    start = entries[0]
    assert (start["level"], start["logger"], start["url"]) == ("INFO", "peerscope.agent", url)
    assert start["message"].startswith(f"serving {url} (metrics at {url}/metrics; reflector on")
    assert (start["metrics_path"], start["peers"], start["history"]) == ("/metrics", 0, None)
    assert isinstance(start["reflector_port"], int)
    assert start["reflector_port"] > 0
    assert [entry["message"] for entry in entries[-2:]] == ["shutting down", "stopped"]
    for entry in entries:
        assert entry["time"].endswith("Z")
        assert isinstance(entry["timestamp"], float)


def test_serve_takes_its_log_settings_from_flags_over_variables_over_the_file(
    processes: list[subprocess.Popen[str]], tmp_path
):
    config = tmp_path / "peerscope.toml"
    config.write_text('log_level = "ERROR"\nlog_format = "plain"\n')
    env = cli_env(PEERSCOPE_LOG_LEVEL="warning", PEERSCOPE_LOG_FORMAT="json")
    process = start_serve("--config", str(config), "--log-level", "info", env=env)
    processes.append(process)
    _, port = wait_ready(process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    # json from the variable (over the file's plain), INFO from the flag (over both).
    (start, *_) = [orjson.loads(text) for text in err.splitlines()]
    assert (start["level"], start["url"]) == ("INFO", f"http://127.0.0.1:{port}")
