"""``peerscope demo``'s simulated peers: labelled as simulated wherever they are shown, and
honest while down (no made-up application traffic from a peer whose reflector is stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

from peerscope import Monitor, Settings
from peerscope.demo import PeerProfile, SimulatedPeer, app_traffic
from peerscope.probe.prober import Prober
from tests.server_support import eventually


def quiet_monitor() -> Monitor:
    return Monitor(Settings(enable_system_metrics=False, metrics_interval=3600.0))


@contextlib.asynccontextmanager
async def simulated(*peer_ids: str) -> AsyncIterator[list[SimulatedPeer]]:
    peers = [
        SimulatedPeer(PeerProfile(peer_id, peer_id.title(), 1.0, 0.0, 0.0), seed=k)
        for k, peer_id in enumerate(peer_ids)
    ]
    try:
        for peer in peers:
            await peer.start()
        yield peers
    finally:
        for peer in peers:
            peer.stop()


async def test_app_messages_stop_while_a_simulated_peer_is_down_and_resume_after():
    monitor = quiet_monitor()
    async with simulated("sim-down", "sim-up") as (down, up):
        for peer in (down, up):
            monitor.add_peer(peer.profile.peer_id)

        def count(peer_id: str) -> int:
            return monitor.peer(peer_id)["message_count"]

        traffic = asyncio.create_task(
            app_traffic(monitor, [down, up], random.Random(3), interval_s=0.02)
        )
        try:
            await eventually(lambda: count("sim-down") > 0 and count("sim-up") > 0)
            port = down.port
            down.go_down()
            assert down.down
            held, seen = count("sim-down"), monitor.peer("sim-down")["last_seen"]
            # Three more rounds of traffic (each adds 5-30 messages to the peer still up).
            rounds = [count("sim-up")]

            def three_rounds() -> bool:
                if count("sim-up") != rounds[-1]:
                    rounds.append(count("sim-up"))
                return len(rounds) > 3

            await eventually(three_rounds, interval=0.005)
            assert count("sim-down") == held
            assert monitor.peer("sim-down")["last_seen"] == seen
            await down.come_back()
            assert not down.down
            assert down.port == port  # back where the prober sends its probes
            await eventually(lambda: count("sim-down") > held)
        finally:
            traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await traffic


async def test_simulated_peers_are_probed_with_the_label_simulated_true():
    monitor = quiet_monitor()
    async with simulated("sim-eu") as (peer,):
        spec = peer.spec()
        assert spec.labels == {"simulated": "true"}
        Prober(monitor).add(spec.target())
        # The prober's own label beside the spec's.
        assert monitor.peer("sim-eu")["labels"] == {"simulated": "true", "probe_method": "twamp"}
