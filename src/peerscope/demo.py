"""``peerscope demo``: the Monitor with simulated peers and this host's real metrics.

The peers are simulated in this process (their latency, jitter and loss are drawn from a
profile each); the host, process and message-rate figures are real. Every simulated peer
carries the label ``simulated=true`` and says so in its name.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live

from peerscope.config import Settings
from peerscope.console import render
from peerscope.monitor import Monitor


@dataclass(frozen=True, slots=True)
class PeerProfile:
    peer_id: str
    name: str
    latency_ms: float
    jitter_ms: float
    loss: float  # probability that a probe gets no answer
    labels: dict[str, str]
    outage_every_s: float | None = None  # goes silent for outage_s once per this period
    outage_s: float = 0.0


PROFILES = (
    PeerProfile("sim-lan", "LAN box (simulated)", 0.6, 0.1, 0.0,
                {"connection_type": "direct", "region": "local"}),
    PeerProfile("sim-eu", "Frankfurt (simulated)", 28.0, 2.0, 0.002,
                {"connection_type": "direct", "region": "eu"}),
    PeerProfile("sim-us", "Virginia (simulated)", 95.0, 6.0, 0.01,
                {"connection_type": "relay", "region": "us"}),
    PeerProfile("sim-wifi", "Busy Wi-Fi (simulated)", 45.0, 25.0, 0.04,
                {"connection_type": "direct", "region": "eu"}),
    PeerProfile("sim-flaky", "Flaky link (simulated)", 60.0, 10.0, 0.02,
                {"connection_type": "relay", "region": "ap"},
                outage_every_s=90.0, outage_s=35.0),
)


async def simulate_peer(monitor: Monitor, profile: PeerProfile, rng: random.Random,
                        probe_interval: float) -> None:
    """Record one simulated probe result per interval, plus some message traffic."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        elapsed = loop.time() - started
        silent = (profile.outage_every_s is not None
                  and elapsed % profile.outage_every_s
                  > profile.outage_every_s - profile.outage_s)
        if silent or rng.random() < profile.loss:
            monitor.record_latency(profile.peer_id, None)
        else:
            sample = max(0.05, rng.gauss(profile.latency_ms, profile.jitter_ms))
            monitor.record_latency(profile.peer_id, sample)
            for _ in range(rng.randint(5, 30)):
                monitor.record_message(profile.peer_id, size=rng.randint(40, 1400),
                                       direction=rng.choice(("in", "out")))
        await asyncio.sleep(probe_interval)


async def run_demo(settings: Settings, *, duration: float | None = None,
                   seed: int | None = None, console: Console | None = None) -> None:
    """Run until cancelled (Ctrl-C) or for ``duration`` seconds, redrawing every tick."""
    console = console or Console()
    rng = random.Random(seed)
    async with Monitor(settings) as monitor:
        for profile in PROFILES:
            monitor.add_peer(profile.peer_id, name=profile.name,
                             labels={"simulated": "true", **profile.labels})
        tasks = [asyncio.create_task(simulate_peer(monitor, profile, rng, 1.0))
                 for profile in PROFILES]
        title = "peerscope demo — peers simulated in this process, host metrics real"
        try:
            with Live(console=console, refresh_per_second=4, screen=False) as live:
                loop = asyncio.get_running_loop()
                deadline = None if duration is None else loop.time() + duration
                while deadline is None or loop.time() < deadline:
                    live.update(render(monitor.last_message or monitor.snapshot(), title))
                    await asyncio.sleep(settings.metrics_interval)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
