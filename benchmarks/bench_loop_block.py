"""How long each GET endpoint holds the event loop, at 10,000 peers.

This process serves a Monitor over real uvicorn (configured as ``serve`` configures it) on a
loopback ephemeral port, with ``peerscope.testing.LoopStalls`` on the same loop: a task that
wakes every 5 ms and records how late it woke. The requests come from a child interpreter
(httpx, reading every body), so the client's own work is not on the measured loop.

The Monitor: 10,000 peers (``--quick``: 1,000), named, a third with a ``region`` label, each
probed through ``record_probes_sent`` / ``record_probe_replies`` with sequence numbers, one
round a second for a full 360-sample ring (a clock shifted back while filling), every
seventh peer losing one probe in ten. System metrics off; ``metrics_interval`` 3600 s, so
no tick falls inside a request. Before each request one more probing round leaves every peer
changed since its last refresh (untimed), the realistic case of probing at 1 Hz between ticks.

Every endpoint is read once first (not measured). Then, per endpoint, ``REPEATS`` requests
one at a time: the worst stall during each; printed are
the median and the worst of those, the request's time and body size, and the full garbage
collections that ran meanwhile (a full collection walks every peer's objects: on a slow
machine it stops the process for tens of ms, whoever allocated last). Then four heavy
requests at once (two summaries, ``/metrics``, a 1,000-peer page), and, for reference, a
tick (not a handler; it runs on the loop every ``metrics_interval``). Target: every
endpoint's median worst stall <= 10 ms at 10,000 peers.

Run alone: ``python -m benchmarks.bench_loop_block [--quick]``.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn

from benchmarks.bench_fanout import ShiftedClock
from benchmarks.children import Child, commands_from_parent
from benchmarks.results import Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import up
from peerscope import Monitor, Settings
from peerscope.agent import Agent
from peerscope.server import uvicorn_config
from peerscope.store_settings import StoreSettings
from peerscope.testing import LoopStalls

PEERS = 10_000
QUICK_PEERS = 1_000
REPEATS = 5
QUICK_REPEATS = 1
TARGET_MS = 10.0
LOST_EVERY = 7
ENDPOINTS = (
    "/api/metrics/summary",
    "/api/metrics/peers",
    "/api/metrics/peers?limit=1000&sort=latency",
    "/api/metrics/peers?limit=1000&sort=id&offset=5000",
    "/metrics",
    "/api/metrics/current",
    "/api/metrics/server",
    "/api/health",
    "/api/metrics/peers/peer-00042",
    "/api/metrics/peers/peer-00042?window=60",
    "/api/metrics/peers/peer-00042/latency?step=10",
    "/api/metrics/system",
    "/api/metrics/system/history?step=10",
    "/api/metrics/system/stats",
    "/api/metrics/sessions",
)
BURST = (
    "/api/metrics/summary",
    "/api/metrics/summary",
    "/metrics",
    "/api/metrics/peers?limit=1000&sort=latency",
)


def probed_monitor(peers: int, seed: int = 17) -> tuple[Monitor, Callable[[], None]]:
    """A Monitor with ``peers`` full-ring probed peers, and a function doing one round."""
    # No history store: its Agent would open the user's own history file (the store has
    # benchmarks of its own).
    settings = Settings(
        enable_system_metrics=False,
        metrics_interval=3600.0,
        max_peers=peers + 100,
        store=StoreSettings(enabled=False),
    )
    clock = ShiftedClock(-float(settings.latency_samples))
    monitor = Monitor(settings, clock=clock)
    rng = random.Random(seed)
    ids = [f"peer-{i:05d}" for i in range(peers)]
    base = [rng.uniform(5.0, 150.0) for _ in ids]
    for index, peer_id in enumerate(ids):
        monitor.add_peer(
            peer_id,
            name=f"player {index}",
            labels={"region": "eu-west"} if index % 3 == 0 else None,
        )
    seqs = iter(range(1 << 62))

    def probe_everyone() -> None:
        seq = next(seqs)
        monitor.record_probes_sent((peer_id, seq) for peer_id in ids)
        monitor.record_probe_replies(
            (peer_id, seq, rtt * rng.uniform(0.9, 1.1))
            for index, (peer_id, rtt) in enumerate(zip(ids, base, strict=True))
            if index % LOST_EVERY or seq % 10
        )

    for _ in range(settings.latency_samples):
        clock.offset += 1.0
        probe_everyone()
    clock.offset = 0.0
    monitor.tick()  # refresh everyone and set the network score, as the loop would
    return monitor, probe_everyone


@dataclass
class Found:
    """The worst stall of each request to one endpoint (ms), and what the requests took."""

    stalls: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    size: int = 0
    full_collections: list[float] = field(default_factory=list)  # ms each


class FullCollections:
    """Durations of the garbage collector's full (generation 2) collections, in ms."""

    def __init__(self) -> None:
        self.seen: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seen.append((time.perf_counter() - self._started) * 1000.0)

    def take(self) -> list[float]:
        seen, self.seen = self.seen, []
        return seen


async def request(child: Child, command: str) -> tuple[int, int, float]:
    """Ask the child for ``command``; its answer: statuses all 200, bytes, seconds."""
    child.send(command)
    ok, size, seconds = await asyncio.to_thread(child.expect, "done")
    return int(ok), int(size), float(seconds)


async def measure(quick: bool) -> Result:
    peers = QUICK_PEERS if quick else PEERS
    repeats = QUICK_REPEATS if quick else REPEATS
    monitor, probe_everyone = probed_monitor(peers)
    agent = Agent(monitor, host="127.0.0.1", port=0)
    config = uvicorn_config(agent.app, agent.settings)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    child = Child(
        f"from benchmarks.bench_loop_block import _client_child; _client_child({port})",
        timeout_s=300.0,
    )
    collections = FullCollections()
    gc.callbacks.append(collections)
    try:
        child.expect("ready")
        print(
            f"bench_loop_block: {peers} peers, full rings, every peer changed before each "
            f"request, {repeats} requests per endpoint; worst stall of a 5 ms ticker"
        )
        for path in ENDPOINTS:  # first calls (imports, caches) are not what is measured
            await request(child, f"get {path}")
        async with LoopStalls() as stalls:
            await asyncio.sleep(1.0)
            idle = stalls.reset()
            print(f"  idle (no request): worst {up(max(idle) * 1000, 1)} ms over 1 s")
            print(
                f"  {'endpoint':<52} {'median ms':>9} {'worst ms':>9} {'request ms':>10} "
                f"{'bytes':>10}  full GCs (ms)"
            )
            results: dict[str, Found] = {}
            for path in ENDPOINTS:
                found = results[path] = Found()
                for _ in range(repeats):
                    probe_everyone()
                    await asyncio.sleep(0.05)
                    stalls.reset()
                    collections.take()
                    ok, found.size, seconds = await request(child, f"get {path}")
                    if not ok:
                        raise RuntimeError(f"{path}: not 200")
                    found.stalls.append(max(stalls.reset(), default=0.0) * 1000.0)
                    found.seconds.append(seconds * 1000.0)
                    found.full_collections += collections.take()
                gcs = " ".join(up(ms, 0) for ms in found.full_collections) or "-"
                print(
                    f"  {path:<52} {up(statistics.median(found.stalls), 1):>9} "
                    f"{up(max(found.stalls), 1):>9} "
                    f"{up(statistics.median(found.seconds), 1):>10} {found.size:>10}  {gcs}"
                )
            burst: list[float] = []
            for _ in range(repeats):
                probe_everyone()
                await asyncio.sleep(0.05)
                stalls.reset()
                ok, _, seconds = await request(child, "burst " + " ".join(BURST))
                if not ok:
                    raise RuntimeError("burst: not 200")
                burst.append(max(stalls.reset(), default=0.0) * 1000.0)
            print(
                f"  {len(BURST)} at once ({', '.join(BURST)}): median worst "
                f"{up(statistics.median(burst), 1)} ms, worst {up(max(burst), 1)} ms"
            )
        ticks: list[float] = []
        for _ in range(repeats):
            probe_everyone()
            start = time.perf_counter()
            monitor.tick()
            ticks.append((time.perf_counter() - start) * 1000.0)
        print(
            f"  for reference, one tick with every peer changed (not a handler): median "
            f"{up(statistics.median(ticks), 1)} ms, worst {up(max(ticks), 1)} ms"
        )
        judged = {path: statistics.median(found.stalls) for path, found in results.items()}
        worst_path = max(judged, key=judged.__getitem__)
        # --quick serves 1,000 peers, not the target's 10,000: its figure is not measured.
        result = Result(
            name="bench_loop_block",
            title=f"event-loop stall per GET endpoint at {PEERS:,} peers (worst "
            "endpoint, median of the worst stall per request)",
            unit="ms",
            digits=1,
            target=Target(TARGET_MS),
            figure=None if quick else judged[worst_path],
            quick=quick,
            detail="" if quick else worst_path,
        )
        shown = "" if quick else f" ({up(judged[worst_path], 1)} ms, {worst_path})"
        print(
            f"  target <= {TARGET_MS} ms per endpoint at {PEERS} peers (median of the "
            f"worst stalls, worst endpoint): {result.verdict.label}{shown}"
        )
        return result
    finally:
        gc.callbacks.remove(collections)
        child.close()
        server.should_exit = True
        await serving


def run(quick: bool = False) -> list[Result]:
    return [asyncio.run(measure(quick))]


# --- the client process --------------------------------------------------------------------


def _client_child(port: int) -> None:
    asyncio.run(_client_main(port))


async def _client_main(port: int) -> None:
    import httpx

    commands = commands_from_parent()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=120.0, verify=False
    ) as client:
        print("ready 1", flush=True)
        while (command := await commands.get()) != "quit":
            verb, *paths = command.split()
            if verb not in ("get", "burst"):
                sys.exit(f"unknown command {command!r}")
            start = time.perf_counter()
            responses = await asyncio.gather(*(client.get(path) for path in paths))
            seconds = time.perf_counter() - start
            ok = all(response.status_code == 200 for response in responses)
            size = sum(len(response.content) for response in responses)
            print(f"done {int(ok)} {size} {seconds!r}", flush=True)


if __name__ == "__main__":
    run_alone(run)
