"""Both directions of a path (peerscope.core.path), and the sender against reflectors that
number, lay out and time their replies as other implementations do.

The stand-in reflectors below answer on real loopback sockets with the layouts RFC 5357,
RFC 8762 and other implementations send: 41-octet replies, 44-octet STAMP replies, 38-octet
ones without the trailing MBZ and TTL (as nokia's twampy sends), 36-octet ones, dirty MBZ,
PTP timestamps; numbering per session from 0, copied (stateless) or from one counter for
all senders.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope import Monitor, Settings
from peerscope.core.path import PathSample, PathState
from peerscope.core.probe_target import ProbeTarget
from peerscope.events import PeerPathChanged
from peerscope.probe.twamp import PTP_FORMAT, SYNCHRONIZED, ntp_from_unix_ns
from peerscope.probe.twamp_sender import TwampSender

_HEADER = struct.Struct("!IQH")


def sample(
    sent: int, reached: int | None, answered: int, *, epoch: int = 0, ttl: int | None = 64
) -> PathSample:
    return PathSample(epoch, sent, reached, answered, 5.0, 7.0, False, 2.0, ttl)


def test_losses_split_by_direction_between_the_oldest_and_newest_sample():
    path = PathState()
    path.add(sample(1, 1, 1), 0.0)
    # 100 more probes: 10 never reached the reflector, 5 of the 90 it answered came not back.
    path.add(sample(101, 91, 86), 1.0)
    assert path.directions == (10.0, 5.0)


def test_direction_is_unknown_for_a_stateless_reflector_or_a_single_sample():
    path = PathState()
    path.add(sample(1, None, 1), 0.0)
    assert path.directions is None
    path.add(sample(50, None, 40), 1.0)
    assert path.directions is None
    fresh = PathState()
    fresh.add(sample(1, 1, 1), 0.0)
    assert fresh.directions is None


def test_a_new_session_starts_the_counts_again():
    path = PathState()
    path.add(sample(1, 1, 1), 0.0)
    path.add(sample(100, 50, 50), 1.0)  # half lost on the way out
    path.add(sample(1, 1, 1, epoch=1), 2.0)
    path.add(sample(11, 11, 11, epoch=1), 3.0)
    assert path.directions == (0.0, 0.0)


def test_a_new_ttl_is_a_path_change_and_the_first_is_not():
    path = PathState()
    assert path.add(sample(1, 1, 1, ttl=61), 10.0) is None
    assert path.add(sample(2, 2, 2, ttl=61), 11.0) is None
    change = path.add(sample(3, 3, 3, ttl=59), 12.0)
    assert change is not None
    assert (change.at, change.previous_ttl, change.ttl) == (12.0, 61, 59)
    assert path.add(sample(4, 4, 4, ttl=None), 13.0) is None  # a reply without the field
    assert (path.ttl, path.changes) == (59, 1)


def test_delays_are_smoothed_and_say_which_clock_they_trust():
    path = PathState()
    path.add(PathSample(0, 1, 1, 1, 10.0, 20.0, True, 0.5, 64), 0.0)
    assert (path.forward_ms, path.return_ms, path.delay_clock) == (10.0, 20.0, "synchronized")
    path.add(PathSample(0, 2, 2, 2, 26.0, 20.0, False, 1.0, 64), 1.0)
    assert path.forward_ms == pytest.approx(11.0)  # 10 + (26 - 10) / 16
    assert path.delay_clock == "offset-affected"


@given(
    st.integers(2, 2000),
    st.integers(0, 100),
    st.integers(0, 100),
)
def test_the_two_directions_add_up_to_the_loss_over_the_span(sent, forward_pct, return_pct):
    reached = sent - sent * forward_pct // 100
    answered = reached - reached * return_pct // 100
    path = PathState()
    path.add(sample(1, 1, 1), 0.0)
    path.add(sample(1 + sent, 1 + reached, 1 + answered), 1.0)
    directions = path.directions
    assert directions is not None
    forward, back = directions
    assert forward >= 0
    assert back >= 0
    assert forward + back == pytest.approx((sent - answered) * 100.0 / sent)


# --- the sender against stand-in reflectors ---------------------------------------------------

Answer = Callable[[bytes, int, int], bytes | None]
"""(probe, reflector seq of this session, now in Unix ns) -> the reply, or None to drop it."""


class StandIn:
    """A reflector on a loopback socket that answers as ``answer`` says."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StandIn:
        self._task = asyncio.get_running_loop().create_task(self._serve())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.sock.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, address = await loop.sock_recvfrom(self.sock, 2048)
            reply = self.answer(data, self.received, time.time_ns())
            self.received += 1
            if reply is not None:
                self.sock.sendto(reply, address)


def rfc_reply(
    probe: bytes,
    seq: int,
    now_ns: int,
    *,
    size: int = 41,
    error: int = 0x0001,
    ttl: int = 64,
    mbz: int = 0,
    stamps: tuple[int, int] | None = None,
) -> bytes:
    """A reply laid out as RFC 5357 §4.2.1 shows it, cut or padded to ``size``."""
    t = ntp_from_unix_ns(now_ns) if stamps is None else stamps[0]
    t2 = t if stamps is None else stamps[1]
    head = struct.pack("!IQHHQ", seq, t, error, mbz, t2) + probe[:14]
    full = head + struct.pack("!HB", mbz, ttl)
    return (full + bytes(max(0, size - len(full))))[:size]


async def probe_through(
    stand_in: StandIn, count: int, *, padding: int | None = None, method: str = "twamp"
) -> tuple[list[tuple[int, float]], list[PathSample | None], TwampSender]:
    got: list[tuple[int, float]] = []
    paths: list[PathSample | None] = []

    def on_reply(seq: int, rtt_ms: float, path: PathSample | None = None, /) -> None:
        got.append((seq, rtt_ms))
        paths.append(path)

    sender = TwampSender(read_wait_s=0.01)
    target = ProbeTarget.parse(
        f"127.0.0.1:{stand_in.port}",
        method=method,
        padding=padding,  # type: ignore[arg-type]
    )
    try:
        for seq in range(count):
            sender.send(target, seq, 1.0, on_reply)
            await asyncio.sleep(0.002)
        deadline = asyncio.get_running_loop().time() + 2.0
        while asyncio.get_running_loop().time() < deadline and stand_in.received < count:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        sender._schedule._timed_read()
    finally:
        await sender.close()
    return got, paths, sender


@pytest.mark.parametrize(("size", "ttl"), [(41, 64), (44, 64), (38, None), (36, None), (141, 64)])
async def test_every_reply_layout_that_carries_the_timestamps_is_read(size, ttl):
    async with StandIn(lambda probe, seq, now: rfc_reply(probe, seq, now, size=size)) as stand_in:
        got, paths, sender = await probe_through(stand_in, 5)
    assert [seq for seq, _ in got] == [0, 1, 2, 3, 4]
    assert all(0 <= rtt < 100 for _, rtt in got)
    assert [path.ttl for path in paths if path is not None] == [ttl] * 5
    assert sender.malformed == 0


async def test_dirty_mbz_and_a_zero_error_estimate_are_forgiven():
    def answer(probe: bytes, seq: int, now: int) -> bytes:
        return rfc_reply(probe, seq, now, error=0x0000, mbz=0xFFFF)

    async with StandIn(answer) as stand_in:
        got, _, sender = await probe_through(stand_in, 3)
    assert len(got) == 3
    assert sender.malformed == 0


async def test_a_reply_that_does_not_echo_the_probes_timestamp_is_malformed():
    def answer(probe: bytes, seq: int, now: int) -> bytes:
        echo = bytearray(probe)
        echo[11] ^= 1  # t1's last octet
        return rfc_reply(bytes(echo), seq, now)

    async with StandIn(answer) as stand_in:
        got, _, sender = await probe_through(stand_in, 3)
    assert got == []
    assert sender.malformed == 3


async def test_too_short_replies_are_malformed_and_others_unmatched():
    def answer(probe: bytes, seq: int, now: int) -> bytes:
        if seq == 0:
            return rfc_reply(probe, seq, now)[:35]
        if seq == 1:  # the sender seq of no probe of ours
            wrong = bytearray(probe)
            wrong[0] ^= 0x80
            return rfc_reply(bytes(wrong), seq, now)
        return rfc_reply(probe, seq, now)

    async with StandIn(answer) as stand_in:
        got, _, sender = await probe_through(stand_in, 3)
    assert [seq for seq, _ in got] == [2]
    assert (sender.malformed, sender.unmatched) == (1, 1)


async def test_ptp_timestamps_are_read_by_the_z_bit():
    def answer(probe: bytes, seq: int, now: int) -> bytes:
        # PTPv2 truncated: TAI seconds since 1970 and ns; held 5 ms between t2 and t3.
        tai_s, ns = divmod(now, 10**9)
        t2 = ((tai_s + 37) << 32) | ns
        later_s, later_ns = divmod(now + 5_000_000, 10**9)
        t3 = ((later_s + 37) << 32) | later_ns
        return rfc_reply(probe, seq, now, error=PTP_FORMAT | 0x0001, stamps=(t3, t2))

    async with StandIn(answer) as stand_in:
        got, paths, _ = await probe_through(stand_in, 3)
    assert len(got) == 3
    # The reflector's 5 ms hold is subtracted: loopback round trips stay well under it.
    assert all(rtt < 4.0 for _, rtt in got)
    assert all(path is not None and abs(path.forward_ms) < 50 for path in paths)


def per_session_losing(forward: set[int], back: set[int]) -> Answer:
    """RFC 5357 Appendix I: seq from 0 per session, counting only probes that arrived;
    probes numbered in ``forward`` lost before it, replies in ``back`` after it."""
    counter = iter(range(10**6))
    state = {"sent": -1}

    def answer(probe: bytes, _received: int, now: int) -> bytes | None:
        state["sent"] += 1
        if state["sent"] in forward:
            return None
        seq = next(counter)
        if state["sent"] in back:
            return None
        return rfc_reply(probe, seq, now)

    return answer


async def test_the_sender_splits_losses_by_direction_against_a_per_session_reflector():
    forward = {3, 10, 11, 40}
    back = {5, 20, 21, 22, 23, 45}
    async with StandIn(per_session_losing(forward, back)) as stand_in:
        got, paths, _ = await probe_through(stand_in, 50)
    assert len(got) == 50 - len(forward) - len(back)
    path = PathState()
    for each in paths:
        assert each is not None
        path.add(each, 0.0)
    directions = path.directions
    assert directions is not None
    # From the first reply (probe 0) to the last (probe 49): 49 probes.
    assert directions == pytest.approx((4 * 100 / 49, 6 * 100 / 49))


async def test_a_stateless_reflector_says_nothing_of_direction():
    def answer(probe: bytes, _seq: int, now: int) -> bytes:
        return rfc_reply(probe, _HEADER.unpack_from(probe)[0], now)  # copies the sender's seq

    async with StandIn(answer) as stand_in:
        got, paths, _ = await probe_through(stand_in, 5)
    assert len(got) == 5
    assert all(path is not None and path.reached is None for path in paths)


async def test_one_counter_for_every_sender_is_noticed_and_not_split():
    # As peerscope's reflector numbered before 0.9: other senders' probes move the count.
    def answer(probe: bytes, seq: int, now: int) -> bytes:
        return rfc_reply(probe, 1 + seq * 3, now)

    async with StandIn(answer) as stand_in:
        _, paths, _ = await probe_through(stand_in, 5)
    reached = [path.reached for path in paths if path is not None]
    assert reached[0] == 1
    assert reached[-1] is None


async def test_a_reflector_that_forgets_the_session_starts_a_new_epoch():
    def answer(probe: bytes, seq: int, now: int) -> bytes:
        return rfc_reply(probe, seq if seq < 5 else seq - 5, now)  # restarts at 0 at probe 5

    async with StandIn(answer) as stand_in:
        _, paths, _ = await probe_through(stand_in, 10)
    epochs = [path.epoch for path in paths if path is not None]
    assert epochs == [0] * 5 + [1] * 5
    path = PathState()
    for each in paths:
        assert each is not None
        path.add(each, 0.0)
    assert path.directions == (0.0, 0.0)


async def test_probes_that_overtook_each_other_are_no_new_session():
    def answer(probe: bytes, seq: int, now: int) -> bytes:
        # Probes 20 and 21 swapped on the way out: the reflector numbered 21 first.
        return rfc_reply(probe, {20: 21, 21: 20}.get(seq, seq), now)

    async with StandIn(answer) as stand_in:
        _, paths, _ = await probe_through(stand_in, 30)
    assert {path.epoch for path in paths if path is not None} == {0}


async def test_stamp_probes_are_44_octets_and_padding_is_the_targets():
    sizes: list[int] = []

    def answer(probe: bytes, seq: int, now: int) -> bytes:
        sizes.append(len(probe))
        return rfc_reply(probe, seq, now, size=len(probe))

    async with StandIn(answer) as stand_in:
        await probe_through(stand_in, 2, method="stamp")
        await probe_through(stand_in, 2, method="twamp", padding=200)
        await probe_through(stand_in, 2, method="twamp")
    assert sizes == [44, 44, 214, 214, 41, 41]


async def test_the_clocks_synchronisation_is_both_ends_word():
    def answer(probe: bytes, seq: int, now: int) -> bytes:
        return rfc_reply(probe, seq, now, error=SYNCHRONIZED | 0x0A01)

    async with StandIn(answer) as stand_in:
        _, paths, _ = await probe_through(stand_in, 2)
    first = paths[0]
    assert first is not None
    # This host's clock is not NTP-synchronised in the sandbox; a synchronised reflector
    # alone does not make one-way delays trustworthy.
    from peerscope.probe.clock_sync import ClockWatch

    assert first.synchronized == ClockWatch().status().synchronized
    assert first.clock_error_ms > 0


async def test_the_prober_counts_what_its_sockets_could_not_use():
    from peerscope.probe.prober import Prober

    def answer(probe: bytes, seq: int, now: int) -> bytes:
        return rfc_reply(probe, seq, now)[:30] if seq % 2 else rfc_reply(probe, seq, now)

    monitor = Monitor(Settings(enable_system_metrics=False))
    async with StandIn(answer) as stand_in:
        prober = Prober(monitor, interval_s=0.01, timeout_s=1.0)
        prober.add(ProbeTarget.parse(f"127.0.0.1:{stand_in.port}", peer_id="half"))
        async with prober:
            while stand_in.received < 10:
                await asyncio.sleep(0.01)
            prober.remove("half")
            await asyncio.sleep(0.5)  # the last replies read
            counts = prober.counts()
    assert counts["sent"] == stand_in.received >= 10
    assert counts["malformed"] == stand_in.received // 2
    assert (counts["unmatched"], counts["errors"]) == (0, 0)


# --- through the Monitor --------------------------------------------------------------------


async def test_a_ttl_change_reaches_the_peer_its_events_and_its_status_text():
    ttl = {"now": 61}

    def answer(probe: bytes, seq: int, now: int) -> bytes:
        return rfc_reply(probe, seq, now, ttl=ttl["now"])

    monitor = Monitor(Settings(enable_system_metrics=False))
    events: list[PeerPathChanged] = []
    monitor.subscribe(
        lambda event: events.append(event) if isinstance(event, PeerPathChanged) else None
    )
    async with StandIn(answer) as stand_in:
        from peerscope.probe.prober import Prober

        prober = Prober(monitor, interval_s=0.02, timeout_s=1.0)
        target = ProbeTarget.parse(f"127.0.0.1:{stand_in.port}", peer_id="router")
        prober.add(target)
        async with prober:
            while stand_in.received < 10:
                await asyncio.sleep(0.01)
            ttl["now"] = 59
            while stand_in.received < 20:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
    monitor.tick()
    entry = monitor.peer("router")
    path = entry["path"]
    assert path is not None
    assert (path["ttl"], path["previous_ttl"], path["path_changes"]) == (59, 61, 1)
    assert path["forward_loss_percent"] == 0.0
    assert path["return_loss_percent"] == 0.0
    assert path["delay_clock"] in ("synchronized", "offset-affected")
    assert [(e.peer_id, e.previous_ttl, e.ttl) for e in events] == [("router", 61, 59)]
    assert "path changed" in entry["status_text"]


def test_a_loss_reason_says_which_way_and_a_recent_change_is_named():
    from peerscope.core.status_reason import PATH_CHANGE_SHOWN_S, with_path

    path = PathState()
    path.add(sample(1, 1, 1, ttl=60), 100.0)
    path.add(sample(101, 99, 79, ttl=58), 110.0)  # 2 % out, 20 % back; the TTL changed
    reason = {"kind": "loss", "value": 22.0, "threshold": 5.0, "detail": None}
    shown, text = with_path(reason, "loss 22 % (over 5.0 %)", path, 130.0)  # type: ignore[arg-type]
    assert shown["detail"] == "lost on the way back: probes 2.0 %, replies 20 %"
    assert text == (
        "loss 22 % (over 5.0 %); mostly lost on the way back (probes 2.0 %, replies 20 %); "
        "path changed 20 s ago (TTL 60 → 58)"
    )
    ok = {"kind": "ok", "value": None, "threshold": None, "detail": None}
    later = 110.0 + PATH_CHANGE_SHOWN_S
    assert with_path(ok, "healthy", path, later) == (ok, "healthy")  # type: ignore[arg-type]


def test_both_directions_are_on_metrics_for_probed_peers_only():
    from peerscope.export.prometheus import MonitorCollector

    clock = [1000.0]
    monitor = Monitor(Settings(enable_system_metrics=False), clock=lambda: clock[0])
    monitor.add_peer("router")
    monitor.add_peer("client")
    monitor.record_latency("client", 10.0)
    monitor.record_probe_paths(
        [
            ("router", PathSample(0, 1, 1, 1, 4.0, 6.0, False, 2.0, 61)),
            ("router", PathSample(0, 101, 91, 86, 4.0, 6.0, False, 2.0, 59)),
            ("nobody", PathSample(0, 1, 1, 1, 4.0, 6.0, False, 2.0, 61)),  # left out
        ]
    )
    text = MonitorCollector(monitor).render()[0].decode()
    lines = [line for line in text.splitlines() if "path" in line or "one_way" in line]
    router = 'kind="peer",name="",peer_id="router"'
    wanted = [
        f'peerscope_peer_path_loss_ratio{{direction="forward",{router}}} 0.1',
        f'peerscope_peer_path_loss_ratio{{direction="return",{router}}} 0.05',
        'peerscope_peer_one_way_delay_seconds{clock="offset-affected",direction="forward",'
        f"{router}}} 0.004",
        f"peerscope_peer_path_ttl{{{router}}} 59.0",
        f"peerscope_peer_path_changes_total{{{router}}} 1.0",
    ]
    for line in wanted:
        assert line in lines, (line, lines)
    assert not any('peer_id="client"' in line for line in lines)
    assert "router" in monitor
    assert "nobody" not in monitor


def test_an_alert_rule_fires_on_loss_one_way_only():
    from peerscope.alerting import Alerting
    from peerscope.core.alerts import AlertRule

    clock = [1000.0]
    monitor = Monitor(Settings(enable_system_metrics=False), clock=lambda: clock[0])
    rules = [
        AlertRule("replies_lost", "return_loss_percent", ">", 5.0),
        AlertRule("probes_lost", "forward_loss_percent", ">", 5.0),
    ]
    alerting = Alerting(monitor, rules)
    monitor.add_peer("uplink")
    monitor.add_peer("plain")
    monitor.record_latency("plain", 5.0)
    monitor.record_latency("uplink", 5.0)
    monitor.record_probe_paths(
        [
            ("uplink", PathSample(0, 1, 1, 1, 4.0, 6.0, False, 2.0, 61)),
            ("uplink", PathSample(0, 101, 100, 80, 4.0, 6.0, False, 2.0, 61)),
        ]
    )
    monitor.tick()
    firing = {(alert["rule"], alert["peer_id"]) for alert in alerting.active()}
    assert firing == {("replies_lost", "uplink")}
