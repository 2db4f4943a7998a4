"""``peerscope demo``: the agent, measuring peers simulated on this machine for real.

Each simulated peer is a TWAMP Light reflector on loopback that holds every reply for a
delay drawn from its profile (path delay ± jitter) and drops a share of probes. The agent
probes them as it would probe real agents, so latency, jitter, loss, score, MOS and status
are measured, not invented. One peer goes silent for a while now and then (its reflector
stops), to show degraded, disconnected and back. The host and server figures are real; the
application messages counted for each peer are made up (there is no game here to send any),
and stop while its reflector is down, as a real peer's would. Every simulated peer carries
the label ``simulated=true``, so the table and the dashboard say so. Its history is kept in
memory (``:memory:``) unless a database is named (``--db``, ``[store] db``): a demo's made-up
peers do not belong in the user's own history file.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live

from peerscope.agent import Agent
from peerscope.config import PeerSpec, Settings
from peerscope.console import SIMULATED, render
from peerscope.monitor import Monitor
from peerscope.probe.reflector import Reflector
from peerscope.store.database import MEMORY

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class PeerProfile:
    peer_id: str
    name: str
    delay_ms: float  # added to every reply: the round trip of the simulated path
    jitter_ms: float  # ± this much, uniformly
    loss_percent: float  # probes the reflector drops
    outage_every_s: float | None = None  # goes silent for outage_s once per this period
    outage_s: float = 0.0


PROFILES = (
    PeerProfile("sim-lan", "LAN box", 0.5, 0.1, 0.0),
    PeerProfile("sim-eu", "Frankfurt", 28.0, 2.0, 0.2),
    PeerProfile("sim-us", "Virginia", 95.0, 6.0, 1.0),
    PeerProfile("sim-wifi", "Busy Wi-Fi", 45.0, 25.0, 4.0),
    PeerProfile("sim-flaky", "Flaky link", 60.0, 10.0, 2.0, outage_every_s=90.0, outage_s=35.0),
)
TITLE = (
    "peerscope demo — peers simulated on this machine (local reflectors adding delay, "
    "jitter and loss), measured for real; host metrics real"
)


class SimulatedPeer:
    """A profile's reflector on a loopback port that stays the same across outages."""

    def __init__(self, profile: PeerProfile, seed: int | None) -> None:
        self.profile = profile
        self._seed = seed
        self.reflector = self._new_reflector()
        self.port = 0
        self.down = False  # its reflector stopped for an outage

    def _new_reflector(self) -> Reflector:
        profile = self.profile
        return Reflector(
            network_delay_ms=profile.delay_ms,
            jitter_ms=profile.jitter_ms,
            loss_percent=profile.loss_percent,
            seed=self._seed,
            keep_delays=1,
        )

    async def start(self) -> None:
        self.port = await self.reflector.start(LOOPBACK, self.port)

    def spec(self) -> PeerSpec:
        return PeerSpec(
            id=self.profile.peer_id,
            name=self.profile.name,
            address=f"{LOOPBACK}:{self.port}",
            labels=dict([SIMULATED]),
        )

    def go_down(self) -> None:
        """Stop answering (an outage begins)."""
        self.down = True
        self.reflector.stop()

    async def come_back(self) -> None:
        """Answer again, on the same port."""
        self.reflector = self._new_reflector()
        await self.start()
        self.down = False

    async def outages(self) -> None:
        """Stop answering for ``outage_s`` once per ``outage_every_s``, forever."""
        every, silent = self.profile.outage_every_s, self.profile.outage_s
        if every is None:
            return
        while True:
            await asyncio.sleep(every - silent)
            self.go_down()
            await asyncio.sleep(silent)
            await self.come_back()

    def stop(self) -> None:
        self.reflector.stop()


async def app_traffic(
    monitor: Monitor,
    simulated: list[SimulatedPeer],
    rng: random.Random,
    interval_s: float = 1.0,
) -> None:
    """Made-up application messages to and from the simulated peers, so the message-rate
    figures have something to show; none for a peer that is down (a real one would send
    nothing, and a message makes a peer "seen")."""
    while True:
        for peer in simulated:
            peer_id = peer.profile.peer_id
            if not peer.down and peer_id in monitor:
                for _ in range(rng.randint(5, 30)):
                    monitor.record_message(
                        peer_id,
                        size=rng.randint(40, 1400),
                        direction=rng.choice(("in", "out")),
                    )
        await asyncio.sleep(interval_s)


async def run_demo(
    settings: Settings,
    *,
    duration: float | None = None,
    seed: int | None = None,
    console: Console | None = None,
) -> None:
    """Run the agent until cancelled (Ctrl-C) or for ``duration`` seconds, redrawing a table
    of the peers in the terminal every tick."""
    console = console or Console()
    simulated = [
        SimulatedPeer(profile, None if seed is None else seed + i)
        for i, profile in enumerate(PROFILES)
    ]
    async with contextlib.AsyncExitStack() as stack:
        for peer in simulated:
            await peer.start()
            stack.callback(peer.stop)
        store = settings.store
        settings = settings.model_copy(
            update={
                "peers": [*settings.peers, *(peer.spec() for peer in simulated)],
                "store": store if store.db is not None else store.model_copy(update={"db": MEMORY}),
            }
        )
        agent = Agent.from_settings(settings)
        monitor = agent.monitor
        url: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        tasks = [
            asyncio.create_task(agent.run(on_ready=url.set_result)),
            asyncio.create_task(app_traffic(monitor, simulated, random.Random(seed))),
            *(asyncio.create_task(peer.outages()) for peer in simulated),
        ]
        stack.push_async_callback(_cancel, tasks)
        await _wait_ready(url, tasks[0])
        base = url.result()
        console.print(
            f"peerscope demo: dashboard at {base}/  (API docs at {base}/docs, "
            f"metrics at {base}/metrics)"
        )
        console.print(
            f"The {len(simulated)} peers below are simulated on this machine: "
            "TWAMP reflectors on 127.0.0.1 that add delay, jitter and loss before "
            "answering. peerscope probes them for real. Ctrl-C stops."
        )
        if agent.store is not None:
            console.print(f"History is kept in {_history_place(agent.store.path)}.")
        await _show(monitor, console, duration, settings.metrics_interval, tasks[0].done)


def _history_place(path: str) -> str:
    return "memory only, for this run (--db FILE keeps it)" if path == MEMORY else path


async def _wait_ready(url: asyncio.Future[str], server: asyncio.Task[None]) -> None:
    waiting: list[asyncio.Future[Any]] = [url, server]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if not url.done():
        server.result()  # raises why the server stopped
        raise RuntimeError("the server stopped before it was ready")


async def _show(
    monitor: Monitor,
    console: Console,
    duration: float | None,
    interval: float,
    stopped: Callable[[], bool],
) -> None:
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    with Live(console=console, refresh_per_second=4, screen=False) as live:
        while (deadline is None or loop.time() < deadline) and not stopped():
            live.update(render(monitor.last_message or monitor.snapshot(), TITLE))
            await asyncio.sleep(interval)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            raise result
