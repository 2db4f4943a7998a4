"""Idle overhead: CPU time of a serving peerscope process with 100 peers, per second of wall.

Each case is a fresh interpreter that builds a ``Monitor`` with the default settings (system
metrics on, a tick every second, the RTT echo to WebSocket clients every 5 s, the history
store on: in a file of the case's own, as the cases run side by side) and runs until told to
stop. This process starts them, waits for a warm-up, then reads each one's CPU time
at the start and end of a window of wall time and reports CPU seconds / wall seconds as a
percentage of one core. The CPU time is read twice: by the process itself on request
(``time.process_time()``, user + system of all its threads, ns resolution; the figure used)
and from outside (``psutil.Process(pid).cpu_times()`` user + system, counted in 10 ms clock
ticks, so only good to ~0.02 % over 60 s; printed as a cross-check).

The 100 peers are fed by an asyncio task in the measured process: every second it records
one latency per peer with ``record_latency`` (what probing would report; no packets are
sent). The CPU time of its rounds (``time.thread_time`` around each round's 100 calls into
peerscope) is measured and printed; it is part of the total, as probing would be.

Cases, all running at once (each is a separate process; they are idle enough not to contend
for the 2 CPUs):

- ``serve, 100 peers, 1 dashboard``: ``peerscope.agent.serve(monitor, host="127.0.0.1",
  port=0)`` (uvicorn, REST, /ws), the feeding task, and one WebSocket client in this process
  that reads every frame and answers the RTT pings as the dashboard does. Judged;
- ``serve, 100 peers``: the same without a client;
- ``serve, 0 peers``: the server with nothing to monitor but the host;
- ``serve, 100 peers, --no-db``: ``serve, 100 peers`` with the history store off: the
  difference is what keeping history costs;
- ``no server, 100 peers``: the Monitor ticking (``async with monitor``) and the feeding
  task, no HTTP server: the difference to ``serve, 100 peers`` is what serving costs;
- ``serve, 100 peers, no lag timer``: ``serve, 100 peers`` with ``loop_lag_interval_s = 0``:
  the difference is what the event-loop lag's timer (ten wake-ups a second) costs.

Target: <= 0.5 % of one core for ``serve`` with 100 peers, judged on the larger of the two
100-peer serve cases.

Run alone: ``python -m benchmarks.bench_idle [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass

import psutil

from benchmarks.children import Child, commands_from_parent
from benchmarks.results import Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import up
from peerscope.agent import serve as serve_monitor
from peerscope.config import Settings
from peerscope.monitor import Monitor
from peerscope.store_settings import StoreSettings

PEERS = 100
WINDOW_S = 60.0
QUICK_WINDOW_S = 10.0
WARMUP_S = 5.0
QUICK_WARMUP_S = 3.0
TARGET_PERCENT = 0.5
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Case:
    name: str
    peers: int
    serve: bool
    dashboard: bool
    judged: bool
    history: bool = True  # the history store on (the default), in a file of its own
    loop_lag: bool = True  # the event-loop lag's 100 ms timer on (the default)


CASES = (
    Case("serve, 100 peers, 1 dashboard", PEERS, serve=True, dashboard=True, judged=True),
    Case("serve, 100 peers", PEERS, serve=True, dashboard=False, judged=True),
    Case("serve, 0 peers", 0, serve=True, dashboard=False, judged=False),
    Case("no server, 100 peers", PEERS, serve=False, dashboard=False, judged=False),
    # What keeping history costs: the judged case's server with the store off (--no-db).
    Case(
        "serve, 100 peers, --no-db", PEERS, serve=True, dashboard=False, judged=False, history=False
    ),
    # What measuring the event-loop lag costs: its timer wakes the loop ten times a second.
    Case(
        "serve, 100 peers, no lag timer",
        PEERS,
        serve=True,
        dashboard=False,
        judged=False,
        loop_lag=False,
    ),
)


# --- the measured process -------------------------------------------------------------------


async def _feed(monitor: Monitor, peers: int, spent: list[float], seed: int = 5) -> None:
    """Every second, one latency per peer, as 1 Hz probing would report them."""
    rng = random.Random(seed)
    ids = [f"peer-{i:03d}" for i in range(peers)]
    base = [rng.uniform(5.0, 120.0) for _ in ids]
    record = monitor.record_latency
    for peer_id in ids:
        monitor.add_peer(peer_id)
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        start = time.thread_time()
        for peer_id, rtt in zip(ids, base, strict=True):
            record(peer_id, rtt * rng.uniform(0.9, 1.1))
        spent[0] += time.thread_time() - start
        next_at += 1.0
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def _idle_main(peers: int, serve: bool, history: bool, loop_lag: bool) -> None:
    # Defaults, but the probe reflector on a free port and the history store in a file of
    # the case's own: the cases run at the same time (one file has one writer).
    folder = tempfile.mkdtemp(prefix="peerscope-idle-")
    monitor = Monitor(
        Settings(
            reflector_port=0,
            loop_lag_interval_s=0.1 if loop_lag else 0.0,
            store=StoreSettings(db=os.path.join(folder, "history.db"), enabled=history),
        )
    )
    commands = commands_from_parent()
    spent = [0.0]
    feeder = asyncio.create_task(_feed(monitor, peers, spent)) if peers else None
    if serve:

        def ready(url: str) -> None:
            print(f"ready {url.replace('http://', 'ws://')}/ws", flush=True)

        runner = asyncio.create_task(
            serve_monitor(monitor, host="127.0.0.1", port=0, on_ready=ready)
        )
    else:
        await monitor.start()
        print("ready -", flush=True)
    while (command := await commands.get()) != "quit":
        if command == "mark":
            print(f"mark {time.process_time()!r} {spent[0]!r}", flush=True)
    if feeder is not None:
        feeder.cancel()
    if serve:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    else:
        await monitor.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _idle_child(peers: int, serve: bool, history: bool, loop_lag: bool) -> None:
    asyncio.run(_idle_main(peers, serve, history, loop_lag))


# --- this process ---------------------------------------------------------------------------


class Dashboard:
    """One WebSocket client in a thread: reads every frame, answers the RTT pings."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.frames = 0
        self.pongs = 0
        self.bytes = 0
        self._connection = connect(url, proxy=None, max_size=2**24)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for frame in self._connection:
                self.frames += 1
                self.bytes += len(frame)
                message = json.loads(frame)
                if message.get("type") == "ping":
                    self._connection.send(json.dumps({"type": "pong", "seq": message["seq"]}))
                    self.pongs += 1
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self._connection.close()
        self._thread.join(10)


@dataclass(frozen=True)
class Measured:
    case: Case
    wall_s: float
    cpu_s: float  # time.process_time() in the process
    psutil_cpu_s: float  # psutil cpu_times() user + system, from outside
    feeder_s: float
    rss_bytes: int
    frames: int  # received by the dashboard during the window

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s


def _psutil_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _mark(child: Child, process: psutil.Process) -> tuple[float, float, float, float]:
    """(wall, CPU by the process, CPU by psutil, feeding task's CPU), read together."""
    outside = _psutil_cpu(process)
    wall = time.monotonic()
    child.send("mark")
    inside, feeder = (float(field) for field in child.expect("mark"))
    return wall, inside, outside, feeder


def run(quick: bool = False) -> list[Result]:
    window, warmup = (QUICK_WINDOW_S, QUICK_WARMUP_S) if quick else (WINDOW_S, WARMUP_S)
    print(
        f"bench_idle: default settings (system metrics on, 1 s ticks), {window:g} s window "
        f"after {warmup:g} s warm-up, the cases' processes running side by side"
    )
    print(
        f"  the {PEERS} peers get one latency each per second from an asyncio task in the "
        "measured process (no probe packets); its CPU is part of the total"
    )
    children: list[tuple[Case, Child]] = []
    dashboards: dict[str, Dashboard] = {}
    try:
        for case in CASES:
            children.append(
                (
                    case,
                    Child(
                        "from benchmarks.bench_idle import _idle_child; "
                        f"_idle_child({case.peers}, {case.serve}, {case.history}, "
                        f"{case.loop_lag})",
                        TIMEOUT_S,
                    ),
                )
            )
        for case, child in children:
            (url,) = child.expect("ready")
            if case.dashboard:
                dashboards[case.name] = Dashboard(url)
        time.sleep(warmup)
        processes = [psutil.Process(child.process.pid) for _, child in children]
        starts = [
            (_mark(child, process), dashboards[case.name].frames if case.dashboard else 0)
            for (case, child), process in zip(children, processes, strict=True)
        ]
        time.sleep(window)
        results = []
        for (case, child), process, (start, frames) in zip(
            children, processes, starts, strict=True
        ):
            end = _mark(child, process)
            results.append(
                Measured(
                    case,
                    wall_s=end[0] - start[0],
                    cpu_s=end[1] - start[1],
                    psutil_cpu_s=end[2] - start[2],
                    feeder_s=end[3] - start[3],
                    rss_bytes=process.memory_info().rss,
                    frames=dashboards[case.name].frames - frames if case.dashboard else 0,
                )
            )
    finally:
        for dashboard in dashboards.values():
            dashboard.close()
        for _, child in children:
            child.close()
    return [_report(results, quick)]


def _report(results: list[Measured], quick: bool) -> Result:
    print(
        f"  {'case':<31} {'CPU s':>8} {'wall s':>7} {'% of a core':>12} "
        f"{'(psutil)':>9} {'feeding task s':>15} {'RSS MiB':>8}"
    )
    for result in results:
        print(
            f"  {result.case.name:<31} {up(result.cpu_s, 4):>8} {result.wall_s:>7.2f} "
            f"{up(result.percent, 3):>12} "
            f"{up(100.0 * result.psutil_cpu_s / result.wall_s, 2):>9} "
            f"{up(result.feeder_s, 4):>15} {up(result.rss_bytes / 2**20):>8}"
        )
    for result in results:
        if result.case.dashboard:
            print(f"  the dashboard received {result.frames} frames in {result.wall_s:.2f} s")
    judged = [result for result in results if result.case.judged]
    worst = max(judged, key=lambda result: result.percent)
    outcome = Result(
        name="bench_idle",
        title=f"idle CPU of `serve` with {PEERS} peers, the "
        "worse of with and without one dashboard",
        unit="% of one core",
        digits=3,
        target=Target(TARGET_PERCENT),
        figure=worst.percent,
        quick=quick,
        detail=worst.case.name,
    )
    print(
        f"  target <= {TARGET_PERCENT:g} % of one core with {PEERS} peers: "
        f"{outcome.verdict.label} (worse case {worst.case.name!r}: {up(worst.percent, 3)} %)"
    )
    return outcome


if __name__ == "__main__":
    run_alone(run)
