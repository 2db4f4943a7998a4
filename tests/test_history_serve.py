"""``peerscope serve`` and ``demo`` keeping history where they are told (``--db``, the
variables, the XDG default, ``--no-db``), serving a peer's history after a restart, and going
on without history when the database cannot be written."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from peerscope.probe.reflector import Reflector
from tests.server_support import cli_env, wait_ready

DEADLINE_S = 20.0


def serve(*args: str) -> list[str]:
    return [sys.executable, "-m", "peerscope.cli", "serve", "--port", "0", *args]


def started(
    command: list[str], processes: list[subprocess.Popen[str]], env: dict[str, str]
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    processes.append(process)
    return process


def stopped(process: subprocess.Popen[str]) -> str:
    """SIGTERM, then what it wrote on stderr; it must end cleanly."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    return err


async def until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} within {DEADLINE_S:g} s")


async def test_a_peers_history_from_before_a_restart_is_served(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
):
    reflector = Reflector()
    reflector_port = await reflector.start("127.0.0.1", 0)
    db = tmp_path / "history.db"
    env = cli_env(PEERSCOPE_PROBE_INTERVAL="0.2")
    try:
        first = started(
            serve(
                "--db",
                str(db),
                "--peer",
                f"127.0.0.1:{reflector_port}",
                "--metrics-interval",
                "0.2",
            ),
            processes,
            env,
        )
        _, port = await asyncio.to_thread(wait_ready, first)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            (probed,) = (await http.get("/api/peers")).json()["peers"]
            path = f"/api/metrics/peers/{quote(probed['id'], safe='')}"

            async def answered() -> dict[str, Any] | None:
                body = (await http.get(f"{path}/history", params={"figures": "latency_ms"})).json()
                kept = [v for v in body["values"]["latency_ms"] if v is not None]
                return body if body["tier"] == "raw" and len(kept) >= 5 else None

            before = await until(answered, "five answered probes in the store")
        assert stopped(first) == ""
    finally:
        reflector.stop()
    seen = dict(zip(before["timestamps"], before["values"]["latency_ms"], strict=True))

    # Restarted on the same file, the peer no longer probed: its history is the store's.
    second = started(serve("--db", str(db)), processes, env)
    _, port = await asyncio.to_thread(wait_ready, second)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        after = (
            await http.get(
                f"{path}/history",
                params={"from": min(seen) - 1, "figures": "latency_ms"},
            )
        ).json()
        latency = (await http.get(f"{path}/latency", params={"duration": 3600})).json()
        health = (await http.get("/api/health")).json()
    assert stopped(second) == ""
    assert after["tier"] == "raw"
    kept = dict(zip(after["timestamps"], after["values"]["latency_ms"], strict=True))
    assert {t: kept.get(t) for t in seen} == seen
    assert max(kept) >= max(seen)  # and what came after, up to its last tick
    assert latency["tier"] == "raw"
    assert {p["timestamp"] for p in latency["data"]} >= {t for t, v in seen.items() if v}
    assert health["store"]["path"] == str(db)
    assert health["store"]["error"] is None


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "read-only"
    where.mkdir()
    where.chmod(0o555)
    try:
        yield where
    finally:
        where.chmod(0o755)


def as_a_user(command: list[str]) -> list[str]:
    """``command``, bound by file modes: as root (CI), without the capabilities that let
    root write anywhere."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")  # util-linux, essential on Debian
    assert setpriv is not None, "setpriv (util-linux) is needed to drop the capabilities"
    dropped = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={dropped}", f"--bounding-set={dropped}", *command]


async def test_a_database_in_a_read_only_directory_is_one_line_and_serving_goes_on(
    read_only_dir: Path, processes: list[subprocess.Popen[str]]
):
    db = read_only_dir / "history.db"
    process = started(as_a_user(serve("--db", str(db))), processes, cli_env())
    _, port = await asyncio.to_thread(wait_ready, process)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        health = await http.get("/api/health")
        system = await http.get("/api/metrics/system/history", params={"duration": 60})
    assert health.status_code == 200
    assert health.json()["store"] is None
    assert system.json()["tier"] == "memory"
    (line,) = stopped(process).splitlines()  # a log record of the configured format
    assert re.fullmatch(
        r"\S+Z ERROR peerscope\.store: "
        + re.escape(
            f"db: cannot write in {read_only_dir} (permission denied); going on in memory, "
            "without history"
        ),
        line,
    ), line
    assert list(read_only_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "variables", "kept_at"),
    [
        (["--db", "{tmp}/flag.db"], {}, "{tmp}/flag.db"),
        (["--db", ":memory:"], {}, ":memory:"),
        ([], {"PEERSCOPE_STORE__DB": "{tmp}/variable.db"}, "{tmp}/variable.db"),
        ([], {}, "{tmp}/data/peerscope/peerscope.db"),
        (["--no-db"], {}, None),
    ],
    ids=["--db", "memory", "variable", "xdg-default", "--no-db"],
)
async def test_where_serve_keeps_history(
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
    args: list[str],
    variables: dict[str, str],
    kept_at: str | None,
):
    def here(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path))

    env = cli_env(
        PEERSCOPE_STORE__ENABLED="true",
        XDG_DATA_HOME=str(tmp_path / "data"),
        **{name: here(value) for name, value in variables.items()},
    )
    process = started(serve(*(here(arg) for arg in args)), processes, env)
    _, port = await asyncio.to_thread(wait_ready, process)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        store = (await http.get("/api/health")).json()["store"]
    assert stopped(process) == ""
    expected = None if kept_at is None else here(kept_at)
    assert (store and store["path"]) == expected
    files = sorted(str(path) for path in tmp_path.rglob("*.db"))
    assert files == ([] if expected in (None, ":memory:") else [expected])


async def test_the_demo_keeps_its_history_in_memory_unless_told(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
):
    env = cli_env(
        PEERSCOPE_STORE__ENABLED="true", XDG_DATA_HOME=str(tmp_path / "data"), COLUMNS="160"
    )
    demo = [
        sys.executable,
        "-m",
        "peerscope.cli",
        "demo",
        "--duration",
        "1",
        "--port",
        "0",
        "--reflector-port",
        "0",
    ]
    default = await asyncio.to_thread(
        subprocess.run, demo, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    told = await asyncio.to_thread(
        subprocess.run,
        [*demo, "--db", str(tmp_path / "demo.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert default.returncode == 0, default.stderr
    assert "History is kept in memory only, for this run (--db FILE keeps it)." in default.stdout
    assert told.returncode == 0, told.stderr
    assert f"History is kept in {tmp_path / 'demo.db'}." in told.stdout
    assert sorted(tmp_path.rglob("*.db")) == [tmp_path / "demo.db"]


async def test_kill_9_of_a_serving_process_loses_at_most_its_last_flush(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
):
    """`peerscope serve` probing 40 peers five times a second, killed with SIGKILL: the file
    passes SQLite's integrity check, what the store served before the kill is all there
    after it, the newest sample is within a flush (1 s) and a few ticks of the kill, and a
    restarted serve answers with the history from before."""
    reflector = Reflector()
    reflector_port = await reflector.start("0.0.0.0", 0)  # the peers are 127.0.0.1..40
    db = tmp_path / "history.db"
    env = cli_env(PEERSCOPE_PROBE_INTERVAL="0.2")
    peers = [arg for k in range(1, 41) for arg in ("--peer", f"127.0.0.{k}:{reflector_port}")]
    try:
        first = started(serve("--db", str(db), "--metrics-interval", "0.2", *peers), processes, env)
        _, port = await asyncio.to_thread(wait_ready, first)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            probed = (await http.get("/api/peers")).json()["peers"]
            assert len(probed) == 40
            path = f"/api/metrics/peers/{quote(probed[0]['id'], safe='')}/history"

            async def stored() -> dict[str, Any] | None:
                body = (await http.get(path, params={"figures": "latency_ms"})).json()
                kept = [v for v in body["values"]["latency_ms"] if v is not None]
                return body if len(kept) >= 25 else None  # five seconds of answers

            before = await until(stored, "five seconds of answers in the store")
        killed_at = time.time()
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=15)
        assert first.returncode == -signal.SIGKILL
    finally:
        reflector.stop()
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sqlite3; print(sqlite3.connect({str(db)!r})"
            ".execute('PRAGMA integrity_check').fetchone()[0])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "ok", check.stderr

    second = started(serve("--db", str(db)), processes, env)
    _, port = await asyncio.to_thread(wait_ready, second)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        after = (
            await http.get(path, params={"from": killed_at - 600, "figures": "latency_ms"})
        ).json()
    assert stopped(second) == ""
    kept = dict(zip(after["timestamps"], after["values"]["latency_ms"], strict=True))
    served = dict(zip(before["timestamps"], before["values"]["latency_ms"], strict=True))
    assert {t: kept.get(t) for t in served} == served  # served once: committed, kept
    # A flush every second; a tick every 0.2 s; the rest is this busy machine's slack.
    assert max(kept) >= killed_at - 3.0
