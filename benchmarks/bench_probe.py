"""Probing: CPU of a Prober with 1,000 peers at 1 Hz, and the RTT our stack adds on loopback.

(a) One child process runs a ``Reflector`` on an ephemeral loopback port; another runs a
``Monitor`` (ticking every second, system metrics off so only probing and peer upkeep are
measured) and a ``Prober`` with 1,000 TWAMP targets, all on that one reflector port, each
probed once a second (``interval_s=1.0``, staggered over the second). After a warm-up, the
sender child reports its own CPU time (``time.process_time()``, all threads) at the start
and end of a window of wall time; the figure is CPU seconds / wall seconds, as a percentage
of one core. With 2+ CPUs the two children are pinned to different CPUs. Target: <= 5 %.

(b) In the same run, on an idle loopback: 200 (quick: 50) probes 10 ms apart each, at once,
of the TWAMP sender (to a reflector in a child process), of our ICMP method (icmplib sockets,
kernel receive timestamps) and of iputils ``ping -c N -i 0.01 127.0.0.1``. Medians are
compared with ping's: the difference is what our stack adds to a round trip.

Run alone: ``python -m benchmarks.bench_probe [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import sys
import threading
import time

from benchmarks.children import Child
from benchmarks.timing import down, run_alone, up
from peerscope import Monitor, Settings
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.probe.series import probe_series
from peerscope.probe.target import ProbeTarget

PEERS = 1000
WINDOW_S = 60.0
QUICK_WINDOW_S = 10.0
WARMUP_S = 5.0
QUICK_WARMUP_S = 3.0
RTT_PROBES = 200
QUICK_RTT_PROBES = 50
TARGET_PERCENT = 5.0
TIMEOUT_S = 120.0


# --- the child processes --------------------------------------------------------------------


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {cpu})


def _wait_for_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str]) -> None:
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line.strip())
    loop.call_soon_threadsafe(lines.put_nowait, "quit")


async def _commands() -> asyncio.Queue[str]:
    lines: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_wait_for_stdin, args=(loop, lines), daemon=True).start()
    return lines


async def _reflector_main() -> None:
    _pin(1)
    commands = await _commands()
    async with Reflector() as reflector:
        print(f"ready {reflector.port}", flush=True)
        while await commands.get() != "quit":
            pass


def _reflector_child() -> None:
    asyncio.run(_reflector_main())


async def _sender_main(port: int, peers: int, tick: bool) -> None:
    _pin(0)
    commands = await _commands()
    monitor = Monitor(Settings(enable_system_metrics=False))
    if tick:
        await monitor.start()
    async with Prober(monitor, interval_s=1.0, timeout_s=2.0) as prober:
        for i in range(peers):
            prober.add(ProbeTarget.parse(f"127.0.0.1:{port}", peer_id=f"peer-{i:04d}"))
        print("ready -", flush=True)
        while await commands.get() != "quit":
            cpu = time.process_time()  # read first: the counting below is not probing
            peers = [monitor.peer(peer_id) for peer_id in monitor.peer_ids]
            received = sum(peer["probes"]["received"] for peer in peers)
            lost = sum(peer["probes"]["lost"] for peer in peers)
            print(f"mark {cpu!r} {prober.sent} {received} {lost}", flush=True)
    await monitor.stop()


def _sender_child(port: int, peers: int, tick: bool) -> None:
    asyncio.run(_sender_main(port, peers, tick))


# --- (a) CPU ----------------------------------------------------------------------------------


def _cpu(quick: bool) -> None:
    window, warmup = (QUICK_WINDOW_S, QUICK_WARMUP_S) if quick else (WINDOW_S, WARMUP_S)
    print(f"  (a) {PEERS} TWAMP peers at 1 Hz, one reflector process on one port, "
          f"{window:g} s window after {warmup:g} s warm-up")
    # The second case (information, full runs only) shows what the Monitor's own 1 s tick
    # over 1,000 changed peers costs, apart from probing.
    for tick in (True,) if quick else (True, False):
        _cpu_case(tick, window, warmup)


def _cpu_case(tick: bool, window: float, warmup: float) -> None:
    reflector = Child("from benchmarks.bench_probe import _reflector_child; _reflector_child()",
                      TIMEOUT_S)
    sender = None
    try:
        (port,) = reflector.expect("ready")
        sender = Child("from benchmarks.bench_probe import _sender_child; "
                       f"_sender_child({int(port)}, {PEERS}, {tick})", TIMEOUT_S)
        sender.expect("ready")
        time.sleep(warmup)
        start_wall = time.monotonic()
        sender.send("mark")
        start = [float(field) for field in sender.expect("mark")]
        time.sleep(window)
        end_wall = time.monotonic()
        sender.send("mark")
        end = [float(field) for field in sender.expect("mark")]
    finally:
        if sender is not None:
            sender.close()
        reflector.close()
    wall = end_wall - start_wall
    cpu, sent, received, lost = (e - s for e, s in zip(end, start, strict=True))
    percent = 100.0 * cpu / wall
    if tick:
        verdict = "MET" if percent <= TARGET_PERCENT else "MISSED"
        print(f"      Prober + Monitor ticking every 1 s: sender process CPU {up(cpu, 3)} s "
              f"in {wall:.2f} s wall: {up(percent, 2)} % of one core "
              f"(target <= {TARGET_PERCENT:g} %: {verdict})")
    else:
        print(f"      Prober + Monitor not ticking (information): {up(cpu, 3)} s in "
              f"{wall:.2f} s: {up(percent, 2)} % of one core")
    print(f"        probes sent {int(sent)} ({down(sent / wall)} /s), replies {int(received)}, "
          f"lost {int(lost)} in the window; CPU per probe {up(1e6 * cpu / max(sent, 1))} µs")


# --- (b) RTT next to ping -------------------------------------------------------------------


async def _series(target: ProbeTarget, count: int) -> list[float]:
    return [result.rtt_ms async for result in
            probe_series(target, count=count, interval_s=0.01, timeout_s=1.0)
            if result.arrival == "on_time" and result.rtt_ms is not None]


async def _rtts(port: int, count: int) -> tuple[list[float], list[float], list[float]]:
    ping = await asyncio.create_subprocess_exec(
        "ping", "-n", "-c", str(count), "-i", "0.01", "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    twamp, icmp = await asyncio.gather(
        _series(ProbeTarget.parse(f"127.0.0.1:{port}"), count),
        _series(ProbeTarget.parse("127.0.0.1", method="icmp"), count))
    output = (await ping.communicate())[0].decode()
    theirs = [float(ms) for line in output.splitlines() if "DUP!" not in line
              for ms in re.findall(r"icmp_seq=\d+ ttl=\d+ time=([\d.]+) ms", line)]
    return twamp, icmp, theirs


def _rtt(quick: bool) -> None:
    count = QUICK_RTT_PROBES if quick else RTT_PROBES
    print(f"  (b) loopback RTT, {count} probes 10 ms apart each, the three at once")
    if shutil.which("ping") is None:
        print("      iputils ping not installed: skipped")
        return
    reflector = Child("from benchmarks.bench_probe import _reflector_child; _reflector_child()",
                      TIMEOUT_S)
    try:
        (port,) = reflector.expect("ready")
        twamp, icmp, ping = asyncio.run(_rtts(int(port), count))
    finally:
        reflector.close()
    if not ping:
        print("      ping printed no replies: skipped")
        return
    reference = statistics.median(ping)
    print(f"      {'':<28} {'replies':>8} {'median ms':>10} {'p95 ms':>8} "
          f"{'- ping ms':>10} {'/ ping':>7}")
    for name, values, ours in (("TWAMP (sender + reflector)", twamp, True),
                               ("ICMP (icmplib)", icmp, True),
                               ("iputils ping", ping, False)):
        if not values:
            print(f"      {name:<28} {0:>8}")
            continue
        rounded = up if ours else down
        median = statistics.median(values)
        p95 = sorted(values)[max(0, round(0.95 * len(values)) - 1)]
        print(f"      {name:<28} {len(values):>8} {rounded(median, 3):>10} "
              f"{rounded(p95, 3):>8} {rounded(median - reference, 3):>10} "
              f"{rounded(median / reference, 2):>7}")


def run(quick: bool = False) -> None:
    print("bench_probe: probing cost and loopback RTT overhead")
    _cpu(quick)
    _rtt(quick)


if __name__ == "__main__":
    run_alone(run)
