"""The command line, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "peerscope.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)


def test_demo_shows_simulated_peers_and_real_host():
    result = run_cli("demo", "--duration", "3", "--seed", "7", "--metrics-interval", "0.5")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "peers simulated in this process, host metrics real" in out
    for name in ("LAN box (simulated)", "Frankfurt (simulated)", "Virginia (simulated)",
                 "Busy Wi-Fi (simulated)", "Flaky link (simulated)"):
        assert name in out
    assert "simulated=true" in out
    assert " ms " in out
    assert "connected" in out


def test_invalid_setting_exits_2_with_the_field_named():
    result = run_cli("demo", "--metrics-interval", "0")
    assert result.returncode == 2
    assert "metrics_interval: Input should be greater than 0" in result.stderr


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("peerscope ")
