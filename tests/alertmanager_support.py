"""A real Prometheus Alertmanager for the tests, started on a free loopback port with its own
config and storage, and stopped after.

``/usr/bin/prometheus-alertmanager`` is the Debian package ``prometheus-alertmanager``
(``.ci/run`` installs it). Clustering is off (``--cluster.listen-address=``), so it opens
no other port and waits for no peers. Alerts are routed to ``webhook_url`` when one is
given (a :class:`tests.receiver_support.Receiver`, say) at once and then every second:
``group_wait: 0s``, ``group_interval: 1s``, resolved ones too.

    with alertmanager(tmp_path, webhook_url=receiver.url + "/hook") as am:
        notifier = AlertmanagerNotifier(am.url, resend_s=1.0)
        ...
        am.alerts(filter={"alertname": "peer_slow"}, active=True)
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.process_support import free_ports, running, tail

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Alertmanager:
    url: str  # http://127.0.0.1:PORT
    log: Path

    def logs(self) -> str:
        return f"\n--- alertmanager ---\n{tail(self.log)}"

    def alerts(
        self, *, filter: dict[str, str] | None = None, active: bool | None = None
    ) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts it holds whose labels equal ``filter``'s
        (resolved ones are never listed; ``active=True`` leaves out silenced and inhibited
        ones too)."""
        params: list[tuple[str, str]] = [
            ("filter", f'{name}="{value}"') for name, value in (filter or {}).items()
        ]
        if active is not None:
            params.append(("active", str(active).lower()))
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=10.0)
        assert response.status_code == 200, f"{response.status_code} {response.text}{self.logs()}"
        alerts: list[dict[str, Any]] = response.json()
        return alerts


def config_text(webhook_url: str | None) -> str:
    hook = (
        f"    webhook_configs:\n      - url: '{webhook_url}'\n        send_resolved: true\n"
        if webhook_url is not None
        else ""
    )
    return (
        "route:\n"
        "  receiver: test\n"
        "  group_by: ['alertname', 'peer_id']\n"
        "  group_wait: 0s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: test\n" + hook
    )


@contextlib.contextmanager
def alertmanager(directory: Path, *, webhook_url: str | None = None) -> Iterator[Alertmanager]:
    """A running Alertmanager whose config, storage and log are in ``directory``; ready
    (``/-/ready``) when the block begins, stopped when it ends."""
    if not (ALERTMANAGER.is_file() and os.access(ALERTMANAGER, os.X_OK)):
        pytest.fail(
            f"{ALERTMANAGER} not found: this test needs a real Alertmanager; install the "
            "Debian package with `apt-get install prometheus-alertmanager` (.ci/run does)"
        )
    (port,) = free_ports(1)
    config = directory / "alertmanager.yml"
    config.write_text(config_text(webhook_url))
    log = directory / "alertmanager.log"
    command = [
        str(ALERTMANAGER),
        f"--config.file={config}",
        f"--storage.path={directory / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=debug",
    ]
    manager = Alertmanager(f"http://127.0.0.1:{port}", log)
    with running(command, log) as process:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"alertmanager exited with {process.returncode}{manager.logs()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{manager.url}/-/ready", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"alertmanager was not ready within {START_TIMEOUT_S:g} s{manager.logs()}"
                )
            time.sleep(0.1)
        yield manager


def parse_time(text: str) -> float:
    """An RFC 3339 time as Alertmanager writes it (nanoseconds, ``Z``) in epoch seconds."""
    head, _, fraction = text.removesuffix("Z").partition(".")
    moment = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)
