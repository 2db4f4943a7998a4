"""The command line, run as a user would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "peerscope.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)


def test_demo_serves_and_measures_simulated_peers_for_real():
    result = run_cli("demo", "--duration", "4", "--seed", "7", "--metrics-interval", "0.5",
                     "--port", "0", "--reflector-port", "0")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    url = re.search(r"dashboard at (http://127\.0\.0\.1:\d+)/", out)
    assert url is not None, out
    assert "simulated on this machine" in out
    assert "measured for real" in out
    for name in ("LAN box (simulated)", "Frankfurt (simulated)", "Virginia (simulated)",
                 "Busy Wi-Fi (simulated)", "Flaky link (simulated)"):
        assert name in out
    assert "probe_method=twamp" in out
    # Virginia's reflector holds each reply 95 ± 6 ms: its measured latency shows that.
    virginia = next(line for line in out.splitlines()[::-1] if "Virginia" in line)
    latency = float(re.search(r"(\d+\.\d+) ms", virginia)[1])  # type: ignore[index]
    assert 85 < latency < 110, virginia
    assert "connected" in out


def test_invalid_setting_exits_2_with_the_field_named():
    result = run_cli("demo", "--metrics-interval", "0")
    assert result.returncode == 2
    assert "metrics_interval: Input should be greater than 0" in result.stderr


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("peerscope ")
