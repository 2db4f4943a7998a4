"""A one-shot run of probes to one target, reported as each outcome is known (like ping).

What ``peerscope probe`` runs; the agent's continuous probing of many peers is the Prober's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from peerscope.core.model import ProblemKind
from peerscope.core.path import PathSample
from peerscope.core.probe_target import ProbeTarget, TcpRefused
from peerscope.probe.method_factory import open_method

Outcome = Literal["on_time", "late", "duplicate", "timeout", "port_closed", "unresolved"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One event of a series: a reply to probe ``seq``, its timeout (``rtt_ms`` None), or
    its target's no (``port_closed``: a refused TCP connection; ``unresolved``: the name
    did not resolve; ``rtt_ms`` None, ``detail`` saying more).

    A reply after its timeout comes as a second result, ``late``; a second reply to one
    probe as ``duplicate``. A TWAMP or STAMP probe's first reply carries ``path``: what it
    says of both directions (peerscope.core.path).
    """

    seq: int
    rtt_ms: float | None
    arrival: Outcome
    detail: str | None = None
    path: PathSample | None = None


async def probe_series(
    target: ProbeTarget,
    *,
    count: int,
    interval_s: float,
    timeout_s: float,
    tcp_refused: TcpRefused = "fail",
) -> AsyncIterator[ProbeResult]:
    """Send ``count`` probes ``interval_s`` apart, yielding results as they happen.

    Ends when every probe has been answered, refused or has timed out; replies after that
    are not waited for. ``tcp_refused`` as for :mod:`peerscope.probe.tcp`.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count: must be an integer >= 1, got {count!r}")
    for value, field_name in ((interval_s, "interval_s"), (timeout_s, "timeout_s")):
        if not 0 < value < 86_400:
            raise ValueError(f"{field_name}: must be > 0 and < 86400 s, got {value!r}")
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[ProbeResult] = asyncio.Queue()
    answered: set[int] = set()
    timed_out: set[int] = set()
    settled: set[int] = set()  # probes whose outcome is known: answered, failed, timed out

    def on_reply(seq: int, rtt_ms: float, path: PathSample | None = None, /) -> None:
        if seq in answered:
            events.put_nowait(ProbeResult(seq, rtt_ms, "duplicate"))
            return
        answered.add(seq)
        settled.add(seq)
        arrival: Outcome = "late" if seq in timed_out else "on_time"
        events.put_nowait(ProbeResult(seq, rtt_ms, arrival, path=path))

    def on_failure(seq: int, kind: ProblemKind, detail: str) -> None:
        if seq not in settled:  # after its timeout, a no adds nothing to "timeout"
            settled.add(seq)
            events.put_nowait(ProbeResult(seq, None, kind, detail))

    def on_timeout(seq: int) -> None:
        if seq not in settled:
            timed_out.add(seq)
            settled.add(seq)
            events.put_nowait(ProbeResult(seq, None, "timeout"))

    method = open_method(target.method, tcp_refused=tcp_refused)
    timers: list[asyncio.TimerHandle] = []

    async def send_all() -> None:
        start = loop.time()
        for seq in range(count):
            await asyncio.sleep(max(0.0, start + seq * interval_s - loop.time()))
            method.send(target, seq, timeout_s, on_reply, on_failure=on_failure)
            timers.append(loop.call_later(timeout_s, on_timeout, seq))

    sender = loop.create_task(send_all())
    try:
        while len(settled) < count:
            yield await events.get()
        while not events.empty():  # replies that came with the last outcome
            yield events.get_nowait()
    finally:
        sender.cancel()
        for timer in timers:
            timer.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await method.close()
