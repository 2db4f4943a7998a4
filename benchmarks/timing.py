"""The one timing helper the benchmarks share: repeat a measurement, keep median and min.

Rules every benchmark follows:
- time with ``time.perf_counter_ns``; one sample is one timed run of a whole loop (or one
  call), divided by the operations it did;
- run several repeats and report the median (and the min and max) of the samples;
- cases compared with each other are interleaved (A, B, C, A, B, C, ...) so drift in the
  machine's speed hits them all alike;
- figures are printed rounded *against* peerscope: its costs up, a peer library's down.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Stats:
    """Per-operation cost over the repeats, in the unit the samples were given in."""

    median: float
    minimum: float
    maximum: float
    repeats: int


def stats(samples: Sequence[float]) -> Stats:
    return Stats(statistics.median(samples), min(samples), max(samples), len(samples))


def time_ns(fn: Callable[[], object], *, gc_off: bool) -> int:
    """Wall time of one ``fn()`` call in ns; with ``gc_off`` the collector is paused for it."""
    if gc_off:
        gc.collect()
        gc.disable()
    try:
        start = time.perf_counter_ns()
        fn()
        return time.perf_counter_ns() - start
    finally:
        if gc_off:
            gc.enable()


def repeat(
    cases: Mapping[str, Callable[[], object]],
    *,
    repeats: int,
    ops: int = 1,
    gc_off: bool,
    setup: Callable[[], object] | None = None,
    warmup: int = 1,
) -> dict[str, Stats]:
    """Time every case ``repeats`` times, interleaved; return ns per operation for each.

    ``setup`` (untimed) runs before every timed call; ``warmup`` rounds are run and dropped.
    """
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for round_no in range(warmup + repeats):
        for name, fn in cases.items():
            if setup is not None:
                setup()
            elapsed = time_ns(fn, gc_off=gc_off)
            if round_no >= warmup:
                samples[name].append(elapsed / ops)
    return {name: stats(values) for name, values in samples.items()}


def up(value: float, digits: int = 1) -> str:
    """``value`` rounded up at ``digits`` decimals (for peerscope's own costs)."""
    scale = 10**digits
    return f"{math.ceil(value * scale) / scale:.{digits}f}"


def down(value: float, digits: int = 1) -> str:
    """``value`` rounded down at ``digits`` decimals (for a peer library's costs)."""
    scale = 10**digits
    return f"{math.floor(value * scale) / scale:.{digits}f}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """One line describing where the figures come from."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpus} CPUs ({_cpu_model()}), Python {platform.python_version()} "
        f"({platform.python_implementation()}), prometheus_client "
        f"{_version('prometheus_client')}, peerscope {_version('peerscope')}"
    )
