"""bench_probe's ICMP and TCP cases: 1,000 targets at 1 Hz, ICMP side by side with fping.

- ``icmp``: the sender child of bench_probe (a ``Monitor`` ticking every second and a
  ``Prober``) with 1,000 ICMP targets, one per loopback address 127.0.0.1 … 127.0.3.250.
- ``fping``: ``fping -l -p 1000 -i 1`` to the same 1,000 addresses (loop forever, each
  target every 1,000 ms, 1 ms between sends): the same probes a second. Its CPU is read
  from outside (``psutil``'s user + system time of its process, as the sender child reads
  its own ``time.process_time()``), over a window of the same length; its reply lines are
  counted by the parent, which fping's figure does not include.
- ``tcp`` (information, no target): the Prober with 1,000 TCP connect probes to one
  loopback listener in another child, which accepts and closes each connection.

Each round runs icmp, fping, then tcp, so drift in this VM's speed hits them alike; the
ICMP target (<= 1x fping's CPU per probe: fping's 1 ms between sends stretches its round
past the second, so it sends fewer probes a second) is judged on the worst ICMP window
against the best fping window. All three run pinned to the same CPU, the listener on the
other.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time

import psutil

from benchmarks.bench_probe import (
    PEERS,
    TIMEOUT_S,
    Window,
    _cpu_window,
    _pin,
    loopback_addresses,
)
from benchmarks.children import commands_from_parent
from benchmarks.results import Reference, Result, Target
from benchmarks.timing import down, up

ICMP_SENDER = "_sender_child({port}, {peers}, True, 'icmp')"
TCP_SENDER = "_sender_child({port}, {peers}, True, 'tcp')"
LISTENER = "from benchmarks.probe_methods import _listener_child; _listener_child()"
FPING_RATIO = 1.0


async def _listener_main() -> None:
    _pin(1)
    commands = commands_from_parent()

    async def close(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", 0, backlog=4096)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    while await commands.get() != "quit":
        pass
    server.close()


def _listener_child() -> None:
    asyncio.run(_listener_main())


def _fping_window(window: float, warmup: float) -> Window:
    """fping's own CPU over ``window`` seconds after ``warmup``; reply lines counted."""
    command = ["fping", "-l", "-p", "1000", "-i", "1", *loopback_addresses(PEERS)]
    fping = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
    )
    replies = [0]

    def count() -> None:
        assert fping.stdout is not None
        for line in fping.stdout:
            if " bytes, " in line:
                replies[0] += 1

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    try:
        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
            os.sched_setaffinity(fping.pid, {0})  # where the sender child runs
        process = psutil.Process(fping.pid)
        time.sleep(warmup)
        start_wall, start_cpu, start_replies = time.monotonic(), process.cpu_times(), replies[0]
        time.sleep(window)
        end_wall, end_cpu, end_replies = time.monotonic(), process.cpu_times(), replies[0]
    finally:
        fping.terminate()
        fping.wait(TIMEOUT_S)
        reader.join(TIMEOUT_S)
    if fping.returncode not in (0, 1, -15):  # 1: some target unreachable; -15: terminated
        raise RuntimeError(f"fping exited with status {fping.returncode}")
    received = end_replies - start_replies
    return Window(
        "fping",
        (end_cpu.user + end_cpu.system) - (start_cpu.user + start_cpu.system),
        end_wall - start_wall,
        received,  # fping sends one probe a target a second; what was sent is not printed
        received,
        None,
    )


def _print(name: str, result: Window) -> None:
    lost = "-" if result.lost is None else str(result.lost)
    print(
        f"      {name}: {up(result.cpu_s, 3)} s CPU in {result.wall_s:.2f} s: "
        f"{up(result.percent, 2)} % of one core; probes {result.sent} "
        f"({down(result.sent / result.wall_s)} /s), replies {result.received}, lost {lost}; "
        f"{up(result.per_probe_us)} µs per probe"
    )


def icmp_against_fping(window: float, warmup: float, rounds: int, quick: bool) -> Result | None:
    """The ICMP result (None when fping is not installed), and the TCP figure printed."""
    have_fping = shutil.which("fping") is not None
    print(
        f"  (c) {PEERS} ICMP targets (127.0.0.1 … {loopback_addresses(PEERS)[-1]}) at 1 Hz: "
        f"the Prober against fping -l -p 1000 -i 1, and {PEERS} TCP connect probes, "
        f"{rounds} round(s)"
    )
    if not have_fping:
        print("      fping not installed: the ICMP comparison is skipped")
    windows: list[Window] = []
    for _ in range(rounds):
        icmp = _cpu_window("icmp", window, warmup, ICMP_SENDER, server=None)
        _print("Prober, ICMP", icmp)
        windows.append(icmp)
        if have_fping:
            fping = _fping_window(window, warmup)
            _print("fping", fping)
            windows.append(fping)
        tcp = _cpu_window("tcp", window, warmup, TCP_SENDER, server=LISTENER)
        _print("Prober, TCP connect (information)", tcp)
    if not have_fping:
        return None
    # Judged per probe: fping's 1 ms between sends stretches its round of 1,000 targets
    # past the second (about 900 probes a second here), so its share of a core is for
    # fewer probes than the Prober's.
    ours = max((w for w in windows if w.case == "icmp"), key=lambda w: w.per_probe_us)
    theirs = min((w for w in windows if w.case == "fping"), key=lambda w: w.per_probe_us)
    ratio = ours.per_probe_us / theirs.per_probe_us
    result = Result(
        name="bench_probe_icmp",
        title=f"CPU per probe of the probe sender, {PEERS:,} ICMP targets at 1 Hz with the "
        "Monitor ticking, against fping -l -p 1000 -i 1 (worst window against fping's best)",
        unit="µs/probe",
        digits=1,
        target=Target(FPING_RATIO, on="ratio"),
        figure=ours.per_probe_us,
        quick=quick,
        reference=Reference("fping, best window", theirs.per_probe_us, floor=False),
        ratio=ratio,
        detail=f"{up(ours.percent, 2)} % of one core; fping {down(theirs.percent, 2)} %",
    )
    print(
        f"      worst ICMP window {up(ours.per_probe_us)} µs per probe "
        f"({up(ours.percent, 2)} % of one core), best fping window "
        f"{down(theirs.per_probe_us)} µs ({down(theirs.percent, 2)} %): {up(ratio, 3)}x fping "
        f"(target <= {FPING_RATIO:g}x: {result.verdict.label})"
    )
    return result
