"""The Prober feeding a real Monitor over real loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import statistics
import time

import pytest

from peerscope import Monitor, PeerStatusChanged, Settings
from peerscope.core.probe_target import ProbeTarget
from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from tests.server_support import eventually


def make_monitor(disconnected_after_failures: int = 5) -> Monitor:
    return Monitor(
        Settings(
            enable_system_metrics=False,
            metrics_interval=0.05,
            status=StatusRules(
                degraded_after_failures=2, disconnected_after_failures=disconnected_after_failures
            ),
            quality=QualityConfig(loss_window=10),
        )
    )


async def wait_for(monitor: Monitor, peer_id: str, status: str, timeout_s: float = 5.0) -> dict:
    async with asyncio.timeout(timeout_s):
        while (peer := monitor.peer(peer_id))["status"] != status:
            await asyncio.sleep(0.02)
    return peer


def replied(monitor: Monitor, peer_id: str, replies: int) -> dict | None:
    """The peer once it is registered with ``replies`` replies recorded, else None."""
    peer = monitor.peer(peer_id) if peer_id in monitor else None
    return peer if peer is not None and peer["probes"]["received"] >= replies else None


def answering(monitor: Monitor, peer_id: str, replies: int) -> dict | None:
    """:func:`replied`, connected, and no probe lost.

    Lost counts every probe ever lost, less those a late reply took back: a probe that one
    stall of the machine held past its timeout is lost only until its reply is read.
    """
    peer = replied(monitor, peer_id, replies)
    if peer is None or peer["status"] != "connected" or peer["probes"]["lost"]:
        return None
    return peer


@pytest.mark.slow
async def test_a_peer_answering_then_silent_then_back():
    # Degraded from the 2nd lost probe to the 12th: 0.5 s at 20 probes a second. A stall of
    # the machine lets every probe it held up expire at once, and a shorter stretch (3
    # probes, 0.15 s) could pass unseen between two looks.
    monitor = make_monitor(disconnected_after_failures=12)
    statuses = []
    monitor.subscribe(
        lambda event: isinstance(event, PeerStatusChanged) and statuses.append(event.status)
    )
    reflector = Reflector(network_delay_ms=3.0)
    port = await reflector.start(port=0)
    target = ProbeTarget.parse(f"127.0.0.1:{port}", peer_id="vpn-1", name="VPN one")
    try:
        async with monitor, Prober(monitor, interval_s=0.05, timeout_s=0.2) as prober:
            prober.add(target)
            # Ten answers (0.5 s at 20 probes a second) and not one probe lost.
            peer = await eventually(lambda: answering(monitor, "vpn-1", 10), 10)
            assert 3.0 <= peer["latency_ms"] < 10.0
            assert peer["name"] == "VPN one"
            assert peer["address"] == f"127.0.0.1:{port}"
            assert peer["labels"] == {"probe_method": "twamp"}
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
        async with (
            Reflector() as reflector,
            Prober(monitor, interval_s=0.05, timeout_s=0.5) as prober,
        ):
            targets = [
                ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=f"t{i}") for i in range(20)
            ]
            targets.append(ProbeTarget.parse(f"127.0.0.1:{tcp_port}", method="tcp"))
            targets.append(ProbeTarget.parse("127.0.0.1", method="icmp"))
            for target in targets:
                prober.add(target)
            # Three answers each: 0.15 s at 20 probes a second, unless the machine stalls.
            await eventually(lambda: all(replied(monitor, t.peer_id, 3) for t in targets), 10)
            for target in targets:
                assert monitor.peer(target.peer_id)["latency_ms"] is not None, target
            assert prober.remove("t0")
            assert not prober.remove("t0")
            assert "t0" not in monitor
            sent = prober.sent
            await asyncio.sleep(0.2)
            assert "t0" not in monitor  # late replies do not bring it back
            assert prober.sent > sent
        assert len(prober.targets()) == 21


@pytest.mark.slow
async def test_a_name_that_does_not_resolve_is_logged_once_per_target(caplog):
    monitor = make_monitor()
    caplog.set_level(logging.WARNING, logger="peerscope")
    async with Reflector() as reflector, Prober(monitor, interval_s=0.05, timeout_s=0.3) as prober:
        prober.add(ProbeTarget.parse("nosuch-a.invalid", peer_id="a"))
        prober.add(ProbeTarget.parse("nosuch-b.invalid:80", method="tcp", peer_id="b"))
        prober.add(ProbeTarget.parse(f"localhost:{reflector.port}", peer_id="named"))
        # Ten rounds or more, each a look-up of both names.
        await eventually(lambda: prober.sent >= 30 and prober.error("a") and prober.error("b"))
        for peer_id, host in (("a", "nosuch-a.invalid"), ("b", "nosuch-b.invalid")):
            error = prober.error(peer_id)
            assert error is not None
            assert error.startswith(f"{host!r} does not resolve: ")
            said = [
                (record.getMessage(), getattr(record, "peer_id", None))
                for record in caplog.records
                if f"peer {peer_id!r}:" in record.getMessage()
            ]
            assert said == [
                (
                    f"peer {peer_id!r}: {error}; no probes go to "
                    f"{prober_address(prober, peer_id)} until it does",
                    peer_id,
                )
            ]
        assert await eventually(lambda: replied(monitor, "named", 2))
        assert prober.error("named") is None
        assert prober.error("unknown") is None
        # Its target replaced by one that resolves: the error goes with the old one.
        prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="a"))
        assert prober.error("a") is None
        await eventually(lambda: replied(monitor, "a", 1))


def prober_address(prober: Prober, peer_id: str) -> str:
    return next(target.address for target in prober.targets() if target.peer_id == peer_id)


def failed(monitor: Monitor, peer_id: str, failures: int) -> dict | None:
    """The peer once ``failures`` of its probes are lost, else None."""
    peer = monitor.peer(peer_id) if peer_id in monitor else None
    return peer if peer is not None and peer["probes"]["lost"] >= failures else None


async def test_a_name_that_does_not_resolve_is_the_peers_reason_not_silent_loss():
    monitor = make_monitor()
    # A timeout of a minute: a probe counted lost within the test was reported, not timed out.
    async with Prober(monitor, interval_s=0.05, timeout_s=60.0) as prober:
        for method, address in (("twamp", "nosuch-a.invalid"), ("tcp", "nosuch-b.invalid:80")):
            prober.add(ProbeTarget.parse(address, method=method, peer_id=method))
        prober.add(ProbeTarget.parse("nosuch-c.invalid", method="icmp", peer_id="icmp"))
        for method, host in (("twamp", "a"), ("tcp", "b"), ("icmp", "c")):
            peer = await eventually(lambda method=method: failed(monitor, method, 2), 10)
            detail = peer["status_reason"]["detail"]
            assert detail.startswith(f"'nosuch-{host}.invalid' does not resolve: "), peer
            assert len(detail) > len(f"'nosuch-{host}.invalid' does not resolve: ")
            assert peer["status_reason"] == {
                "kind": "unresolved",
                "value": None,
                "threshold": None,
                "detail": detail,
            }
            assert peer["status_text"] == detail
            assert detail == prober.error(method)  # what GET /api/peers shows as its error
            assert peer["probes"]["received"] == 0
            assert peer["probes"]["in_flight"] <= 1  # reported at once, not left to time out
            assert peer["quality_score"] == 0.0  # no_reply_after_failures (2) reached


async def test_a_peer_removed_from_the_monitor_alone_is_registered_again():
    monitor = make_monitor()
    async with Reflector() as reflector, Prober(monitor, interval_s=0.02, timeout_s=0.5) as prober:
        prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="p", name="P"))
        await asyncio.sleep(0.1)
        assert monitor.remove_peer("p")
        # Back at its next probe (20 ms on), with the reply to it.
        peer = await eventually(lambda: replied(monitor, "p", 1))
    assert peer["name"] == "P"
    assert peer["labels"] == {"probe_method": "twamp"}


async def test_a_reply_after_removal_replacement_or_a_monitor_drop_is_not_recorded():
    monitor = make_monitor()
    prober = Prober(monitor)  # not started: the replies below are handed over directly
    for peer_id in ("removed", "dropped", "replaced"):
        prober.add(ProbeTarget.parse("127.0.0.1:8701", peer_id=peer_id))
    handlers = {peer_id: entry.on_reply for peer_id, entry in prober._entries.items()}
    assert prober.remove("removed")
    assert monitor.remove_peer("dropped")  # by the Monitor alone (e.g. pruned)
    prober.add(ProbeTarget.parse("127.0.0.1:8701", peer_id="replaced", name="new"))
    for handler in handlers.values():
        handler(0, 1.0)
    prober._entries["replaced"].on_reply(1, 1.0)  # the new target's: recorded
    await asyncio.sleep(0)  # the replies are handed over after the callback that read them
    assert "removed" not in monitor
    assert "dropped" not in monitor
    # Neither seq was sent, so a recorded reply counts as unknown: only the new target's is.
    assert monitor.peer("replaced")["probes"]["unknown"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval_s": 0.0}, "interval_s"),
        ({"count": 0}, "count"),
        ({"timeout_s": -1.0}, "timeout_s"),
        ({"tcp_refused": "ignore"}, "tcp_refused"),
    ],
)
def test_bad_settings_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Prober(make_monitor(), **kwargs)


def test_add_refuses_what_is_not_a_target():
    with pytest.raises(ValueError, match="target"):
        Prober(make_monitor()).add("127.0.0.1:8701")  # type: ignore[arg-type]


# --- the schedule -------------------------------------------------------------------------


class SendLog:
    """A probe sink over a Monitor that notes when the Prober announced each probe:
    (loop time, peer id). Everything is handed on to the Monitor."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.sends: list[tuple[float, str]] = []
        self.batches: list[tuple[float, int]] = []  # (loop time, probes) per wake-up

    def add_peer(self, peer_id, **details):
        self.monitor.add_peer(peer_id, **details)

    def remove_peer(self, peer_id):
        return self.monitor.remove_peer(peer_id)

    def __contains__(self, peer_id):
        return peer_id in self.monitor

    def record_probes_sent(self, probes, *, timeout_s=None):
        probes = list(probes)
        now = asyncio.get_running_loop().time()
        self.sends.extend((now, peer_id) for peer_id, _ in probes)
        self.batches.append((now, len(probes)))
        self.monitor.record_probes_sent(probes, timeout_s=timeout_s)

    def record_probe_replies(self, replies, *, known_only=False):
        return self.monitor.record_probe_replies(replies, known_only=known_only)

    def record_probe_failures(self, failures, *, known_only=False):
        self.monitor.record_probe_failures(failures, known_only=known_only)

    def times(self, peer_id: str) -> list[float]:
        return [at for at, sent_to in self.sends if sent_to == peer_id]

    def times_after(self, peer_id: str, after: float) -> list[float]:
        return [at for at in self.times(peer_id) if at > after]


@pytest.mark.slow
async def test_each_target_goes_out_once_per_spacing_at_its_own_offset():
    monitor = make_monitor()
    log = SendLog(monitor)
    async with (
        Reflector() as reflector,
        Prober(log, interval_s=0.2, count=2, timeout_s=1.0) as prober,
    ):
        for i in range(20):
            prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=f"t{i}"))
        end = asyncio.get_running_loop().time() + 1.05
        await asyncio.sleep(1.05)
    for i in range(20):
        times = [at for at in log.times(f"t{i}") if at <= end]
        # 1 s at a probe every 0.1 s: 10 or 11. A stall of the machine skips the slots it
        # covers (one probe on resuming stands for them all), so fewer is no fault; more is.
        assert 6 <= len(times) <= 11, times
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # One spacing apart, give or take the 20 % batch and a loaded machine's slack. A stall
        # moves two gaps at most: the one across it, and the one from the probe on resuming
        # to the target's own slot.
        assert sum(not 0.06 <= gap <= 0.16 for gap in gaps) <= 2, gaps
    firsts = sorted(log.times(f"t{i}")[0] - log.sends[0][0] for i in range(20))
    # Staggered over the spacing, not one burst: a batch takes what falls due within 20 %
    # of it, so the first sends spread over at most 80 ms of the 100.
    assert firsts[-1] - firsts[0] > 0.06, firsts


@pytest.mark.slow
async def test_a_stalled_loop_sends_each_target_once_and_keeps_its_place():
    monitor = make_monitor()
    log = SendLog(monitor)
    async with Reflector() as reflector, Prober(log, interval_s=0.1, timeout_s=1.0) as prober:
        for i in range(10):
            prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=f"t{i}"))
        await asyncio.sleep(0.3)
        time.sleep(0.45)  # the loop is blocked for 4.5 spacings
        resumed = asyncio.get_running_loop().time()
        await eventually(
            lambda: all(len(log.times_after(f"t{i}", resumed)) >= 6 for i in range(10))
        )
    # The first wake-up after the block sends each target once for the 4.5 spacings missed
    # (no catching up on each missed slot): all ten, in one batch.
    resuming, size = next((at, size) for at, size in log.batches if at > resumed)
    assert size == 10, log.batches
    for i in range(10):
        after = log.times_after(f"t{i}", resumed)
        assert after[0] == resuming, after
        # Then at its own offset: 3 more slots in 0.3 s, the first of them possibly within
        # the resuming batch itself. (Another stall of the machine could only skip some.)
        assert len([at for at in after if at <= resumed + 0.3]) <= 4, after
        gaps = [later - earlier for earlier, later in itertools.pairwise(after[1:6])]
        # The median: another stall would stretch one gap and may shorten the next.
        assert 0.06 <= statistics.median(gaps) <= 0.16, gaps


@pytest.mark.slow
async def test_targets_added_and_removed_while_running():
    monitor = make_monitor()
    log = SendLog(monitor)
    async with Reflector() as reflector, Prober(log, interval_s=0.2, timeout_s=1.0) as prober:
        prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="first"))
        await asyncio.sleep(0.1)
        added = asyncio.get_running_loop().time()
        prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="second"))
        await asyncio.sleep(0.5)
        assert log.times("second")
        # At the Prober's next wake-up (at most a spacing away), or later by one stall of a
        # busy machine (~0.3 s), not a cycle or more later.
        assert log.times("second")[0] - added < 0.6
        assert prober.remove("first")
        removed = asyncio.get_running_loop().time()
        # Replacing a target keeps its place in the schedule and its numbering.
        prober.add(
            ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id="second", name="renamed")
        )
        await asyncio.sleep(0.5)
        # Two or three in those 0.5 s; a stall of the machine skips the slots it covers.
        await eventually(lambda: len(log.times_after("second", removed)) >= 2)
    assert not log.times_after("first", removed)
    after = [at for at in log.times_after("second", removed) if at <= removed + 0.5]
    assert len(after) <= 3, after
    assert monitor.peer("second")["name"] == "renamed"
    assert monitor.peer("second")["probes"]["sent"] == len(log.times("second"))


@pytest.mark.slow
async def test_a_wake_up_sends_at_most_200_probes_so_their_replies_fit_the_socket():
    monitor = Monitor(Settings(enable_system_metrics=False))
    log = SendLog(monitor)
    # 2,500 probes a second from one address: above the reflector's default limit per
    # source (2,000 a second after a burst of 2,000), which a stall of a few seconds would
    # reach; this test is about the sender's batches, not the reflector's limit.
    async with (
        Reflector(rate_limit=10_000) as reflector,
        Prober(log, interval_s=1.0, timeout_s=2.0) as prober,
    ):
        for i in range(2500):  # 20 % of the spacing would be 500 probes a wake-up
            prober.add(ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=f"t{i}"))
        await asyncio.sleep(2.0)
    sizes = [size for _, size in log.batches]
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(log.batches)]
    # A wake-up far later than usual (a stall of a busy machine) sends all that fell due
    # meanwhile at once, by design, and so many replies may overflow the socket. Judge the
    # others (the first one included): 200 due within the window, plus those due while the
    # loop was a little late to wake.
    usual = statistics.median(gaps)
    stalled = [size for gap, size in zip(gaps, sizes[1:], strict=True) if gap > 2 * usual]
    assert len(stalled) <= 2, log.batches
    assert sizes[0] <= 230, log.batches[:3]
    # A wake-up a little late (a busy machine: tens of ms) also sends those that fell due
    # while it was late, 2,500 a second: no more than that.
    over = [
        (round(gap - usual, 4), size)
        for gap, size in zip(gaps, sizes[1:], strict=True)
        if gap <= 2 * usual and size > 230 + 2500 * max(0.0, gap - usual)
    ]
    assert over == [], over
    assert sum(sizes) >= 2500 * 1.5
    probes = [monitor.peer(f"t{i}")["probes"] for i in range(2500)]
    assert sum(p["lost"] for p in probes) == 0
    # Short by the last in flight, and by what a stalled wake-up's batch overflowed.
    assert sum(p["received"] for p in probes) >= sum(sizes) - 300 - sum(stalled)
