"""The Prober feeding a real Monitor over real loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time

import pytest

from peerscope import Monitor, PeerStatusChanged, Settings
from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.probe.target import ProbeTarget


def make_monitor() -> Monitor:
    return Monitor(Settings(
        enable_system_metrics=False, metrics_interval=0.05,
        status=StatusRules(degraded_after_failures=2, disconnected_after_failures=5),
        quality=QualityConfig(loss_window=10)))


async def wait_for(monitor: Monitor, peer_id: str, status: str, timeout_s: float = 5.0) -> dict:
    async with asyncio.timeout(timeout_s):
        while (peer := monitor.peer(peer_id))["status"] != status:
            await asyncio.sleep(0.02)
    return peer


async def test_a_peer_answering_then_silent_then_back():
    monitor = make_monitor()
    statuses = []
    monitor.subscribe(lambda event: isinstance(event, PeerStatusChanged)
                      and statuses.append(event.status))
    reflector = Reflector(network_delay_ms=3.0)
    port = await reflector.start(port=0)
    target = ProbeTarget.parse(f"127.0.0.1:{port}", peer_id="vpn-1", name="VPN one")
    try:
        async with monitor, Prober(monitor, interval_s=0.05, timeout_s=0.2) as prober:
            prober.add(target)
            await asyncio.sleep(0.5)
            peer = await wait_for(monitor, "vpn-1", "connected")
            assert 3.0 <= peer["latency_ms"] < 10.0
            assert peer["name"] == "VPN one"
            assert peer["address"] == f"127.0.0.1:{port}"
            assert peer["labels"] == {"probe_method": "twamp"}
            assert peer["probes"]["received"] >= 5
            assert peer["packet_loss_percent"] == 0.0

            reflector.stop()
            await wait_for(monitor, "vpn-1", "degraded")
            peer = await wait_for(monitor, "vpn-1", "disconnected")
            assert peer["packet_loss_percent"] >= 50.0

            await reflector.start(port=port)
            peer = await wait_for(monitor, "vpn-1", "connected")
            assert peer["probes"]["lost"] >= 5
            assert prober.targets() == [target]
            await asyncio.sleep(0.15)  # events go out at the next tick
    finally:
        reflector.stop()
    # Back from disconnected it may pass through degraded while the lost probes are still
    # in the loss window.
    assert statuses[:2] == ["degraded", "disconnected"]
    assert statuses[-1] == "connected", statuses


async def test_many_targets_each_methods_and_removal():
    monitor = make_monitor()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        tcp_port = listener.getsockname()[1]
        async with Reflector() as reflector, Prober(monitor, interval_s=0.05,
                                                    timeout_s=0.5) as prober:
            targets = [ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=f"t{i}")
                       for i in range(20)]
            targets.append(ProbeTarget.parse(f"127.0.0.1:{tcp_port}", method="tcp"))
            targets.append(ProbeTarget.parse("127.0.0.1", method="icmp"))
            for target in targets:
                prober.add(target)
            await asyncio.sleep(0.5)
            for target in targets:
                peer = monitor.peer(target.peer_id)
                assert peer["probes"]["received"] >= 3, (target, peer["probes"])
                assert peer["latency_ms"] is not None
            assert prober.remove("t0")
            assert not prober.remove("t0")
            assert "t0" not in monitor
            sent = prober.sent
            await asyncio.sleep(0.2)
            assert "t0" not in monitor  # late replies do not bring it back
            assert prober.sent > sent
        assert len(prober.targets()) == 21


async def test_a_peer_removed_from_the_monitor_alone_is_registered_again():
    monitor = make_monitor()
    async with Reflector() as reflector, Prober(monitor, interval_s=0.02,
                                                timeout_s=0.5) as prober:
        prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="p", name="P"))
        await asyncio.sleep(0.1)
        assert monitor.remove_peer("p")
        await asyncio.sleep(0.1)
        peer = monitor.peer("p")
    assert peer["name"] == "P"
    assert peer["labels"] == {"probe_method": "twamp"}
    assert peer["probes"]["received"] >= 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"interval_s": 0.0}, "interval_s"), ({"count": 0}, "count"),
    ({"timeout_s": -1.0}, "timeout_s"),
])
def test_bad_settings_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Prober(make_monitor(), **kwargs)


def test_add_refuses_what_is_not_a_target():
    with pytest.raises(ValueError, match="target"):
        Prober(make_monitor()).add("127.0.0.1:8701")  # type: ignore[arg-type]


# --- the schedule -------------------------------------------------------------------------


class SendLog:
    """When the Prober announced each probe to the Monitor: (loop time, peer id)."""

    def __init__(self, monitor: Monitor) -> None:
        self.sends: list[tuple[float, str]] = []
        self.batches: list[int] = []  # probes per wake-up
        record = monitor._record_probes_sent

        def logged(probes, timeout_s):
            probes = list(probes)
            now = asyncio.get_running_loop().time()
            self.sends.extend((now, peer_id) for peer_id, _ in probes)
            self.batches.append(len(probes))
            record(probes, timeout_s)

        monitor._record_probes_sent = logged  # type: ignore[method-assign]

    def times(self, peer_id: str) -> list[float]:
        return [at for at, sent_to in self.sends if sent_to == peer_id]


async def test_each_target_goes_out_once_per_spacing_at_its_own_offset():
    monitor = make_monitor()
    log = SendLog(monitor)
    async with Reflector() as reflector, Prober(monitor, interval_s=0.2, count=2,
                                                timeout_s=1.0) as prober:
        for i in range(20):
            prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=f"t{i}"))
        await asyncio.sleep(1.05)
    for i in range(20):
        times = log.times(f"t{i}")
        assert len(times) in (10, 11), times  # 1 s at a probe every 0.1 s
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # One spacing apart, give or take the 5 % batch and a loaded machine's slack.
        assert all(0.06 <= gap <= 0.16 for gap in gaps), gaps
    firsts = sorted(log.times(f"t{i}")[0] - log.sends[0][0] for i in range(20))
    assert firsts[-1] - firsts[0] > 0.08  # staggered over the spacing, not one burst


async def test_a_stalled_loop_sends_each_target_once_and_keeps_its_place():
    monitor = make_monitor()
    log = SendLog(monitor)
    async with Reflector() as reflector, Prober(monitor, interval_s=0.1,
                                                timeout_s=1.0) as prober:
        for i in range(10):
            prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=f"t{i}"))
        await asyncio.sleep(0.3)
        time.sleep(0.45)  # the loop is blocked for 4.5 spacings
        resumed = asyncio.get_running_loop().time()
        await asyncio.sleep(0.3)
    for i in range(10):
        after = [at for at in log.times(f"t{i}") if at >= resumed]
        # Once at once for the 4.5 spacings missed (no catching up on each missed slot),
        # then at its own offset: 3 more slots in 0.3 s, the first of them possibly within
        # the resuming batch itself.
        assert len(after) in (3, 4), after
        assert after[0] - resumed < 0.05, after
        gaps = [later - earlier for earlier, later in itertools.pairwise(after[1:])]
        assert all(0.06 <= gap <= 0.16 for gap in gaps), gaps


async def test_targets_added_and_removed_while_running():
    monitor = make_monitor()
    log = SendLog(monitor)
    async with Reflector() as reflector, Prober(monitor, interval_s=0.2,
                                                timeout_s=1.0) as prober:
        prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="first"))
        await asyncio.sleep(0.1)
        added = asyncio.get_running_loop().time()
        prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="second"))
        await asyncio.sleep(0.5)
        assert log.times("second")
        assert log.times("second")[0] - added < 0.45
        assert prober.remove("first")
        removed = asyncio.get_running_loop().time()
        # Replacing a target keeps its place in the schedule and its numbering.
        prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="second",
                                     name="renamed"))
        await asyncio.sleep(0.5)
    assert not [at for at in log.times("first") if at > removed]
    after = [at for at in log.times("second") if at > removed]
    assert len(after) in (2, 3), after
    assert monitor.peer("second")["name"] == "renamed"
    assert monitor.peer("second")["probes"]["sent"] == len(log.times("second"))


async def test_a_wake_up_sends_at_most_200_probes_so_their_replies_fit_the_socket():
    monitor = Monitor(Settings(enable_system_metrics=False))
    log = SendLog(monitor)
    async with Reflector() as reflector, Prober(monitor, interval_s=1.0,
                                                timeout_s=2.0) as prober:
        for i in range(2500):  # 10 % of the spacing would be 250 probes a wake-up
            prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=f"t{i}"))
        await asyncio.sleep(2.0)
    # 200 due within the window, plus those due while the loop was late to wake.
    assert max(log.batches) <= 230, sorted(log.batches)[-5:]
    assert sum(log.batches) >= 2500 * 1.5
    probes = [monitor.peer(f"t{i}")["probes"] for i in range(2500)]
    assert sum(p["lost"] for p in probes) == 0
    assert sum(p["received"] for p in probes) >= sum(log.batches) - 300  # the last in flight
