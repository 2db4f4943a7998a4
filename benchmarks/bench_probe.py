"""Probing: CPU of a Prober with 1,000 peers at 1 Hz, and the RTT our stack adds on loopback.

(a) One child process runs a ``Reflector`` on an ephemeral loopback port; another, the
sender, runs one of three cases against it, each sending 1,000 probes a second:

- ``tick``: a ``Monitor`` (ticking every second, system metrics off so only probing and peer
  upkeep are measured) and a ``Prober`` with 1,000 TWAMP targets, all on that one reflector
  port, each probed once a second (``interval_s=1.0``, staggered over the second). This is
  the case the target is for: <= 5 % of one core.
- ``no tick`` (information): the same without the Monitor's 1 s tick, which builds the
  ``/ws`` message and reassesses every peer whether or not they are probed.
- ``floor``: a bare asyncio loop doing only the socket work of probing, read the way the
  TWAMP sender reads: every 200 ms (the Prober's batching), every queued reply read with
  ``recvmsg`` and its kernel arrival stamp, then the same 41-octet datagram ``sendto`` the
  reflector 200 times; nothing encoded, decoded, matched or recorded. A probe sender in
  Python on asyncio can hardly cost less than this.

After a warm-up, the sender reports its own CPU time (``time.process_time()``, all threads)
at the start and end of a window of wall time; the figure is CPU seconds / wall seconds, as
a percentage of one core. With 2+ CPUs the two children are pinned to different CPUs. The
cases run in rounds (tick, no tick, floor, tick, ...), so drift in this VM's speed hits them
alike; the target is judged on the worst ``tick`` window.

(b) In the same run, on an idle loopback: 200 (quick: 50) probes 10 ms apart each, at once,
of the TWAMP sender (to a reflector in a child process), of our ICMP pinger (kernel receive
timestamps) and of iputils ``ping -c N -i 0.01 127.0.0.1``. Medians are compared with
ping's: the difference is what our stack adds to a round trip.

(c) Then 1,000 ICMP targets at 1 Hz against fping, and 1,000 TCP connect probes: see
:mod:`benchmarks.probe_methods`.

Run alone: ``python -m benchmarks.bench_probe [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import statistics
import time
from dataclasses import dataclass

from benchmarks.children import Child, commands_from_parent
from benchmarks.results import Reference, Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import down, up
from peerscope import Monitor, Settings
from peerscope.core.probe_target import Method, ProbeTarget
from peerscope.probe.one_shot import probe_series
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.probe.reply_schedule import RECEIVE_BUFFER
from peerscope.probe.twamp import ERROR_ESTIMATE
from peerscope.probe.twamp_sender import encode_probe
from peerscope.probe.udp import enable_timestamps

PEERS = 1000
WINDOW_S = 60.0
QUICK_WINDOW_S = 10.0
WARMUP_S = 5.0
QUICK_WARMUP_S = 3.0
ROUNDS = 2
RTT_PROBES = 200
QUICK_RTT_PROBES = 50
TARGET_PERCENT = 5.0
TIMEOUT_S = 120.0
FLOOR_BATCH_S = 0.2  # the Prober sends the probes due within 20 % of the 1 s spacing at once
_ANCILLARY = socket.CMSG_SPACE(16)  # one struct timespec, as the TWAMP sender asks for


# --- the child processes --------------------------------------------------------------------


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {cpu})


async def _reflector_main() -> None:
    _pin(1)
    commands = commands_from_parent()
    async with Reflector() as reflector:
        print(f"ready {reflector.port}", flush=True)
        while await commands.get() != "quit":
            pass


def _reflector_child() -> None:
    asyncio.run(_reflector_main())


def loopback_addresses(count: int) -> list[str]:
    """``count`` distinct addresses in 127.0.0.0/8 (127.0.0.1 … 127.0.3.250 for 1,000): Linux
    answers for the whole /8 on loopback, each from the address asked."""
    return [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(count)]


def _targets(method: Method, port: int, peers: int) -> list[ProbeTarget]:
    """TWAMP and TCP probes to one loopback port (a reflector, a listener); ICMP echo to
    ``peers`` distinct loopback addresses."""
    icmp = method == "icmp"
    addresses = loopback_addresses(peers) if icmp else [f"127.0.0.1:{port}"] * peers
    return [
        ProbeTarget.parse(address, method=method, peer_id=f"peer-{i:04d}")
        for i, address in enumerate(addresses)
    ]


async def _sender_main(port: int, peers: int, tick: bool, method: Method) -> None:
    _pin(0)
    commands = commands_from_parent()
    monitor = Monitor(Settings(enable_system_metrics=False))
    if tick:
        await monitor.start()
    async with Prober(monitor, interval_s=1.0, timeout_s=2.0) as prober:
        for target in _targets(method, port, peers):
            prober.add(target)
        print("ready -", flush=True)
        while await commands.get() != "quit":
            cpu = time.process_time()  # read first: the counting below is not probing
            listed = [monitor.peer(peer_id) for peer_id in monitor.peer_ids]
            received = sum(peer["probes"]["received"] for peer in listed)
            lost = sum(peer["probes"]["lost"] for peer in listed)
            print(f"mark {cpu!r} {prober.sent} {received} {lost}", flush=True)
    await monitor.stop()


def _sender_child(port: int, peers: int, tick: bool, method: Method = "twamp") -> None:
    asyncio.run(_sender_main(port, peers, tick, method))


async def _floor_main(port: int, peers: int) -> None:
    """The socket work alone (see the module docstring); no loss is judged, so none is told."""
    _pin(0)
    commands = commands_from_parent()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    enable_timestamps(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    datagram, address = encode_probe(0, 0, ERROR_ESTIMATE), ("127.0.0.1", port)
    per_batch = round(peers * FLOOR_BATCH_S)
    counts = {"sent": 0, "received": 0}

    async def send() -> None:
        due = loop.time()
        while True:
            while True:
                try:
                    sock.recvmsg(2048, _ANCILLARY)
                except BlockingIOError:
                    break
                counts["received"] += 1
            for _ in range(per_batch):
                sock.sendto(datagram, address)
            counts["sent"] += per_batch
            due += FLOOR_BATCH_S
            await asyncio.sleep(max(0.0, due - loop.time()))

    sending = loop.create_task(send())
    print("ready -", flush=True)
    while await commands.get() != "quit":
        print(f"mark {time.process_time()!r} {counts['sent']} {counts['received']} -", flush=True)
    sending.cancel()
    sock.close()


def _floor_child(port: int, peers: int) -> None:
    asyncio.run(_floor_main(port, peers))


# --- (a) CPU ----------------------------------------------------------------------------------

CASES = {
    "tick": ("Prober + Monitor ticking every 1 s", "_sender_child({port}, {peers}, True)"),
    "no tick": (
        "Prober + Monitor not ticking (information)",
        "_sender_child({port}, {peers}, False)",
    ),
    "floor": ("bare asyncio socket work (floor)", "_floor_child({port}, {peers})"),
}


@dataclass(frozen=True)
class Window:
    case: str
    cpu_s: float
    wall_s: float
    sent: int
    received: int
    lost: int | None  # the floor judges no loss

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s

    @property
    def per_probe_us(self) -> float:
        return 1e6 * self.cpu_s / max(self.sent, 1)


def _cpu(quick: bool) -> Result:
    window, warmup = (QUICK_WINDOW_S, QUICK_WARMUP_S) if quick else (WINDOW_S, WARMUP_S)
    cases, rounds = (("tick", "floor"), 1) if quick else (tuple(CASES), ROUNDS)
    print(
        f"  (a) {PEERS} TWAMP peers at 1 Hz, one reflector process on one port, "
        f"{window:g} s windows after {warmup:g} s warm-up, {rounds} round(s) of "
        f"{', '.join(cases)}"
    )
    windows: list[Window] = []
    for _ in range(rounds):
        for case in cases:
            result = _cpu_window(case, window, warmup)
            windows.append(result)
            lost = "-" if result.lost is None else str(result.lost)
            print(
                f"      {CASES[case][0]}: {up(result.cpu_s, 3)} s CPU in "
                f"{result.wall_s:.2f} s: {up(result.percent, 2)} % of one core; probes "
                f"sent {result.sent} ({down(result.sent / result.wall_s)} /s), replies "
                f"{result.received}, lost {lost}; {up(result.per_probe_us)} µs per probe"
            )
    return _cpu_summary(windows, quick)


def _cpu_summary(windows: list[Window], quick: bool) -> Result:
    def worst(case: str) -> Window:
        return max((w for w in windows if w.case == case), key=lambda w: w.percent)

    def best(case: str) -> Window:
        return min((w for w in windows if w.case == case), key=lambda w: w.percent)

    ours, floor = worst("tick"), best("floor")
    result = Result(
        name="bench_probe",
        title=f"CPU of the probe sender, {PEERS:,} TWAMP "
        "peers at 1 Hz with the Monitor ticking (worst window)",
        unit="% of one core",
        digits=2,
        target=Target(TARGET_PERCENT),
        figure=ours.percent,
        quick=quick,
        reference=Reference("bare asyncio socket work, best window", floor.percent, floor=True),
        ratio=ours.percent / floor.percent,
    )
    print(
        f"      worst tick window {up(ours.percent, 2)} % of one core "
        f"(target <= {TARGET_PERCENT:g} %: {result.verdict.label}); best floor window "
        f"{down(floor.percent, 2)} %: {up(ours.percent / floor.percent, 3)}x the floor, "
        f"{up(ours.percent - floor.percent, 2)} points above it "
        f"({up(ours.per_probe_us - floor.per_probe_us)} µs per probe); the target leaves "
        f"{down(TARGET_PERCENT - floor.percent, 2)} points above the floor"
    )
    return result


REFLECTOR = "from benchmarks.bench_probe import _reflector_child; _reflector_child()"


def _cpu_window(
    case: str, window: float, warmup: float, call: str | None = None, server: str | None = REFLECTOR
) -> Window:
    """One window of the sender child running ``call`` (default: the case's), against a
    ``server`` child (default: a reflector) that prints ``ready PORT``, or none."""
    server_child = None if server is None else Child(server, TIMEOUT_S)
    sender = None
    try:
        port = 0 if server_child is None else int(server_child.expect("ready")[0])
        call = (call or CASES[case][1]).format(port=port, peers=PEERS)
        sender = Child(
            f"from benchmarks.bench_probe import {call.split('(')[0]}; {call}", TIMEOUT_S
        )
        sender.expect("ready")
        time.sleep(warmup)
        start_wall = time.monotonic()
        sender.send("mark")
        start = sender.expect("mark")
        time.sleep(window)
        end_wall = time.monotonic()
        sender.send("mark")
        end = sender.expect("mark")
    finally:
        if sender is not None:
            sender.close()
        if server_child is not None:
            server_child.close()
    lost = None if end[3] == "-" else int(end[3]) - int(start[3])
    return Window(
        case,
        float(end[0]) - float(start[0]),
        end_wall - start_wall,
        int(end[1]) - int(start[1]),
        int(end[2]) - int(start[2]),
        lost,
    )


# --- (b) RTT next to ping -------------------------------------------------------------------


async def _series(target: ProbeTarget, count: int) -> list[float]:
    return [
        result.rtt_ms
        async for result in probe_series(target, count=count, interval_s=0.01, timeout_s=1.0)
        if result.arrival == "on_time" and result.rtt_ms is not None
    ]


async def _rtts(port: int, count: int) -> tuple[list[float], list[float], list[float]]:
    ping = await asyncio.create_subprocess_exec(
        "ping",
        "-n",
        "-c",
        str(count),
        "-i",
        "0.01",
        "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    twamp, icmp = await asyncio.gather(
        _series(ProbeTarget.parse(f"127.0.0.1:{port}"), count),
        _series(ProbeTarget.parse("127.0.0.1", method="icmp"), count),
    )
    output = (await ping.communicate())[0].decode()
    theirs = [
        float(ms)
        for line in output.splitlines()
        if "DUP!" not in line
        for ms in re.findall(r"icmp_seq=\d+ ttl=\d+ time=([\d.]+) ms", line)
    ]
    return twamp, icmp, theirs


def _rtt(quick: bool) -> None:
    count = QUICK_RTT_PROBES if quick else RTT_PROBES
    print(f"  (b) loopback RTT, {count} probes 10 ms apart each, the three at once")
    if shutil.which("ping") is None:
        print("      iputils ping not installed: skipped")
        return
    reflector = Child(REFLECTOR, TIMEOUT_S)
    try:
        (port,) = reflector.expect("ready")
        twamp, icmp, ping = asyncio.run(_rtts(int(port), count))
    finally:
        reflector.close()
    if not ping:
        print("      ping printed no replies: skipped")
        return
    reference = statistics.median(ping)
    print(
        f"      {'':<28} {'replies':>8} {'median ms':>10} {'p95 ms':>8} "
        f"{'- ping ms':>10} {'/ ping':>7}"
    )
    for name, values, ours in (
        ("TWAMP (sender + reflector)", twamp, True),
        ("ICMP (IcmpPinger)", icmp, True),
        ("iputils ping", ping, False),
    ):
        if not values:
            print(f"      {name:<28} {0:>8}")
            continue
        rounded = up if ours else down
        median = statistics.median(values)
        p95 = sorted(values)[max(0, round(0.95 * len(values)) - 1)]
        print(
            f"      {name:<28} {len(values):>8} {rounded(median, 3):>10} "
            f"{rounded(p95, 3):>8} {rounded(median - reference, 3):>10} "
            f"{rounded(median / reference, 2):>7}"
        )


def run(quick: bool = False) -> list[Result]:
    # Imported here: that module builds on this one's children and windows.
    from benchmarks.probe_methods import icmp_against_fping

    print("bench_probe: probing cost, loopback RTT overhead, ICMP against fping")
    result = _cpu(quick)
    _rtt(quick)  # information: no target
    # Quick: three more windows, shorter (the smoke test runs every benchmark in 300 s).
    window, warmup = (QUICK_WINDOW_S / 2, QUICK_WARMUP_S / 2) if quick else (WINDOW_S, WARMUP_S)
    icmp = icmp_against_fping(window, warmup, 1 if quick else ROUNDS, quick)
    return [result] if icmp is None else [result, icmp]


if __name__ == "__main__":
    run_alone(run)
