"""The function profiler's cost per call, disabled and enabled, next to cProfile's.

Every case is the same loop, ``for x in values: f(x)``, of a trivial function
(``return x + 1``: the worst case, where a wrapper's cost is all there is to see), timed in
the same run, interleaved, with the garbage collector paused alike:

- ``bare``: the function itself;
- ``peerscope disabled``: decorated with ``Profiler.profile``, the profiler disabled;
- ``peerscope enabled``: the same, enabled (the folding of every 512 calls into the
  quantile sketch included: the loop runs thousands of calls);
- ``cProfile``: the bare loop with a ``cProfile.Profile`` enabled around it;
- two floors, what the job cannot cost less than in Python: ``forwarding wrapper`` (a
  function of the same signature that only calls it: the least any wrapping decorator
  adds) and ``two clock readings`` (that wrapper reading ``perf_counter`` before and after
  the call, recording nothing: the least timing a call costs);
- ``loop``: the loop alone, subtracted to get each call's own cost.

Targets: disabled ≤ 1.2× a bare call (``bench_profiler_disabled``, the calls' own costs,
loop subtracted), and the enabled profiler's overhead (enabled − bare) ≤ 0.5× cProfile's
(cProfile − bare) (``bench_profiler_enabled``); each judged on the worse of the medians
and the minimums, each beside its floor's figure measured the same way. For information,
the same cases over a small function that makes five calls of its own (a dict, ``str``,
``len``, ``abs``, ``max``): cProfile pays for each of them, a decorator only for the one.

Printed for information too (the issue sets it no target): what on-demand sampling costs a
busy agent. The agent's work of a tick at 1,000 peers (a latency recorded for each, the
tick, its ``/ws`` message built and serialized) is timed in rounds, alternately bare and
with pyinstrument sampling the thread every 1 ms as ``POST /api/profiler/sample`` does
(``async_mode="disabled"``); the ratio of the medians is the slowdown while a sample runs.

Run alone: ``python -m benchmarks.bench_profiler [--quick]``.
"""

from __future__ import annotations

import cProfile
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from time import perf_counter

import orjson
from pyinstrument import Profiler as PyinstrumentProfiler

from benchmarks.results import Reference, Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import Stats, down, repeat, up
from peerscope.config import Settings
from peerscope.monitor import Monitor
from peerscope.profiler import Profiler

DISABLED_TARGET = 1.2  # x a bare call
SAMPLED_PEERS = 1_000
ENABLED_TARGET = 0.5  # x cProfile's overhead


def trivial(x: int) -> int:
    return x + 1


def small(x: int) -> int:
    fields = {"id": x, "name": str(x)}
    return len(fields) + abs(-x) + max(x, 3)


def forwarding(func: Callable[[int], int]) -> Callable[[int], int]:
    def forward(x: int) -> int:
        return func(x)

    return forward


def clocked(func: Callable[[int], int]) -> Callable[[int], int]:
    def clock(x: int) -> int:
        start = perf_counter()
        try:
            return func(x)
        finally:
            perf_counter() - start

    return clock


def _calls(fn: Callable[[int], object], values: list[int]) -> Callable[[], None]:
    def run() -> None:
        for x in values:
            fn(x)

    return run


def _loop(values: list[int]) -> Callable[[], None]:
    def run() -> None:
        for _x in values:
            pass

    return run


def _under_cprofile(run: Callable[[], None]) -> Callable[[], None]:
    profile = cProfile.Profile()

    def profiled() -> None:
        profile.enable()
        run()
        profile.disable()

    return profiled


def cases(func: Callable[[int], int], values: list[int]) -> dict[str, Callable[[], None]]:
    disabled, enabled = Profiler(enabled=False), Profiler()
    return {
        "loop": _loop(values),
        "bare": _calls(func, values),
        "peerscope disabled": _calls(disabled.profile(func), values),
        "forwarding wrapper (floor)": _calls(forwarding(func), values),
        "peerscope enabled": _calls(enabled.profile(func), values),
        "two clock readings (floor)": _calls(clocked(func), values),
        "cProfile": _under_cprofile(_calls(func, values)),
    }


@dataclass(frozen=True)
class Ratios:
    """Each figure on medians and on minimums; ``worst`` is the larger."""

    median: float
    minimum: float

    @property
    def worst(self) -> float:
        return max(self.median, self.minimum)


def _own_costs(results: dict[str, Stats], pick: Callable[[Stats], float]) -> dict[str, float]:
    """Each case's cost per call with the loop's own cost taken out."""
    loop = pick(results["loop"])
    return {name: pick(stats) - loop for name, stats in results.items()}


def ratios(results: dict[str, Stats]) -> dict[str, Ratios]:
    """Disabled (and its floor) over a bare call; enabled's overhead (and its floor's) over
    cProfile's; each on medians and on minimums."""
    costs = [_own_costs(results, attrgetter("median")), _own_costs(results, attrgetter("minimum"))]

    def both(compute: Callable[[dict[str, float]], float]) -> Ratios:
        on_medians, on_minimums = (compute(own) for own in costs)
        return Ratios(on_medians, on_minimums)

    def overhead(case: str) -> Callable[[dict[str, float]], float]:
        return lambda own: (own[case] - own["bare"]) / (own["cProfile"] - own["bare"])

    return {
        "disabled": both(lambda own: own["peerscope disabled"] / own["bare"]),
        "disabled floor": both(lambda own: own["forwarding wrapper (floor)"] / own["bare"]),
        "enabled": both(overhead("peerscope enabled")),
        "enabled floor": both(overhead("two clock readings (floor)")),
    }


def run(quick: bool = False) -> list[Result]:
    calls, repeats = (2_000, 5) if quick else (20_000, 25)
    values = list(range(calls))
    measured = {
        name: repeat(cases(func, values), repeats=repeats, ops=calls, gc_off=True)
        for name, func in (("trivial", trivial), ("small", small))
    }
    found = {workload: ratios(results) for workload, results in measured.items()}
    judged = found["trivial"]
    disabled = Result(
        name="bench_profiler_disabled",
        title="`@profile` disabled on a trivial function, per call against the bare call "
        "(loop subtracted; the worse of medians and minimums)",
        unit="× a bare call",
        digits=3,
        target=Target(DISABLED_TARGET),
        figure=judged["disabled"].worst,
        quick=quick,
        reference=Reference("a forwarding wrapper", judged["disabled floor"].worst, floor=True),
        ratio=judged["disabled"].worst / judged["disabled floor"].worst,
    )
    enabled = Result(
        name="bench_profiler_enabled",
        title="`@profile` enabled on a trivial function: its overhead per call against "
        "cProfile's on the same loop (the worse of medians and minimums)",
        unit="× cProfile's overhead",
        digits=3,
        target=Target(ENABLED_TARGET),
        figure=judged["enabled"].worst,
        quick=quick,
        reference=Reference(
            "two clock readings around the call", judged["enabled floor"].worst, floor=True
        ),
        ratio=judged["enabled"].worst / judged["enabled floor"].worst,
    )
    _report(measured, found, calls, repeats, (disabled, enabled))
    _sampling_report(*sampling_overhead(rounds=4 if quick else 30))
    return [disabled, enabled]


def _agent_round(peers: int = SAMPLED_PEERS) -> Callable[[], None]:
    """One tick's worth of a busy agent's loop work at ``peers`` peers."""
    monitor = Monitor(Settings(enable_system_metrics=False))
    ids = [f"peer-{i:05d}" for i in range(peers)]
    for peer_id in ids:
        monitor.add_peer(peer_id)
    record = monitor.record_latency
    latencies = [5.0 + (i % 97) for i in range(peers)]

    def work() -> None:
        for peer_id, latency in zip(ids, latencies, strict=True):
            record(peer_id, latency)
        orjson.dumps(monitor.tick().message())

    return work


def sampling_overhead(rounds: int) -> tuple[list[float], list[float], list[float]]:
    """Seconds per round of the agent's work: bare, under a pyinstrument sample (each
    sampled round a sample of its own, started and stopped) and under cProfile, in turn."""
    work = _agent_round()
    for _ in range(3):
        work()  # warm: every peer measured, the rings past their first samples
    bare: list[float] = []
    sampled: list[float] = []
    profiled: list[float] = []
    for _ in range(rounds):
        began = perf_counter()
        work()
        bare.append(perf_counter() - began)
        sampler = PyinstrumentProfiler(interval=0.001, async_mode="disabled")
        sampler.start()
        began = perf_counter()
        work()
        sampled.append(perf_counter() - began)
        sampler.stop()
        tracer = cProfile.Profile()
        tracer.enable()
        began = perf_counter()
        work()
        profiled.append(perf_counter() - began)
        tracer.disable()
    return bare, sampled, profiled


def _sampling_report(bare: list[float], sampled: list[float], profiled: list[float]) -> None:
    bare_ms = statistics.median(bare) * 1e3
    sampled_ms = statistics.median(sampled) * 1e3
    profiled_ms = statistics.median(profiled) * 1e3
    print(
        f"  a busy agent's tick at {SAMPLED_PEERS:,} peers ({len(bare)} rounds each, in "
        f"turn), median: bare {down(bare_ms, 3)} ms; pyinstrument sampling every 1 ms "
        f"{up(sampled_ms, 3)} ms ({up(sampled_ms / bare_ms, 3)}x while a sample runs); "
        f"cProfile {down(profiled_ms, 3)} ms ({down(profiled_ms / bare_ms, 3)}x)"
    )


def _report(
    measured: dict[str, dict[str, Stats]],
    found: dict[str, dict[str, Ratios]],
    calls: int,
    repeats: int,
    results: tuple[Result, Result],
) -> None:
    print(
        f"bench_profiler: {calls} calls per repeat, {repeats} repeats, gc paused for "
        "every case; ns per call, the loop included"
    )
    for workload, stats in measured.items():
        print(f"  {workload} function:")
        print(f"    {'case':<28} {'median ns/call':>15} {'min ns/call':>12}")
        for name, figures in stats.items():
            fmt = up if name.startswith("peerscope") else down
            print(f"    {name:<28} {fmt(figures.median):>15} {fmt(figures.minimum):>12}")
        ratios = found[workload]
        print(
            f"    disabled / bare call (loop subtracted): median {up(ratios['disabled'].median, 3)}"
            f"x, min {up(ratios['disabled'].minimum, 3)}x; forwarding wrapper (floor): "
            f"{down(ratios['disabled floor'].worst, 3)}x"
        )
        print(
            "    enabled overhead / cProfile's overhead: median "
            f"{up(ratios['enabled'].median, 3)}x, min {up(ratios['enabled'].minimum, 3)}x; two "
            f"clock readings (floor): {down(ratios['enabled floor'].worst, 3)}x"
        )
    disabled, enabled = results
    print(
        f"  target disabled <= {DISABLED_TARGET}x a bare call (trivial function): "
        f"{disabled.verdict.label}"
    )
    print(
        f"  target enabled overhead <= {ENABLED_TARGET}x cProfile's (trivial function): "
        f"{enabled.verdict.label}"
    )


if __name__ == "__main__":
    run_alone(run)
