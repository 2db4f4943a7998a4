"""One profiled name's calls: counted on the hot path, summarised in bounded memory.

The hot path only appends the call's start and end (two ``perf_counter`` readings) to a
list: ``list.extend`` of a tuple is one atomic step under the interpreter lock, so threads
timing the same function need no lock for it, and a call is never half recorded. Every
``FOLD_AT`` calls, and before any read, the pending readings are folded into a
:class:`~peerscope.core.sketch.QuantileSketch` under the entry's lock: that sketch keeps the
count, sum, min and max exactly and the quantiles within its stated relative error (1 %),
in a size bounded whatever the number of calls, so an entry never holds more than
``FOLD_AT`` pending calls.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from enum import StrEnum
from operator import sub

from peerscope.core.sketch import QuantileSketch

__all__ = ["FOLD_AT", "CallTiming", "FunctionStats", "Kind"]

# Calls held before they are folded into the sketch: folding costs about as much per call
# whatever the batch, so the batch is sized for memory (two floats a call, ~32 KB).
FOLD_AT = 512
_MS = 1000.0


class Kind(StrEnum):
    """What is timed under a name."""

    FUNCTION = "function"
    COROUTINE = "coroutine"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class FunctionStats:
    """One name's figures, times in milliseconds.

    ``p50_ms``, ``p95_ms`` and ``p99_ms`` come from the sketch: each is within 1 % of the
    duration at rank ``floor(q·(calls − 1))`` of the sorted durations; ``min_ms`` and
    ``max_ms`` are exact. ``last_call_at`` is when the last call to finish started (Unix
    time, seconds) and ``last_ms`` its duration. ``cpu_ms`` is the thread CPU time of the
    calls whose CPU was measured (``cpu_calls`` of them; docs/PROFILER.md), None when none was.
    """

    name: str
    kind: Kind
    calls: int
    errors: int
    total_ms: float
    avg_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    last_call_at: float
    last_ms: float
    cpu_ms: float | None
    cpu_calls: int

    def as_dict(self) -> dict[str, str | int | float | None]:
        """The figures as plain JSON values."""
        figures = asdict(self)
        figures["kind"] = self.kind.value
        return figures


class CallTiming:
    """The calls recorded under one name (one per name and profiler)."""

    __slots__ = (
        "_cpu_calls",
        "_cpu_pending",
        "_cpu_total",
        "_errors",
        "_last",
        "_lock",
        "_pending",
        "_sketch",
        "kind",
        "name",
    )

    def __init__(self, name: str, kind: Kind) -> None:
        self.name = name
        self.kind = kind
        self._lock = threading.Lock()
        self._pending: list[float] = []  # start, end, start, end, ... (perf_counter)
        self._cpu_pending: list[float] = []
        self._sketch = QuantileSketch()
        self._errors = 0
        self._cpu_total = 0.0
        self._cpu_calls = 0
        self._last = (math.nan, math.nan)  # (start, duration) of the last call folded

    def add(self, start: float, end: float, failed: bool, cpu: float | None) -> None:
        """Count one call that ran from ``start`` to ``end`` (``perf_counter`` seconds),
        raised an exception if ``failed``, and spent ``cpu`` seconds on the CPU if measured."""
        pending = self._pending
        pending.extend((start, end))
        if cpu is not None:
            self._cpu_pending.append(cpu)
        if failed:
            with self._lock:
                self._errors += 1
        if len(pending) >= 2 * FOLD_AT:
            with self._lock:
                self._fold()

    def _fold(self) -> None:
        # Under self._lock. Other threads may append meanwhile: they only add at the end,
        # so taking (and deleting) the first ``taken`` readings loses none of theirs.
        pending = self._pending
        taken = len(pending)
        if taken:
            batch = pending[:taken]
            del pending[:taken]
            starts = batch[0::2]
            durations = list(map(sub, batch[1::2], starts))
            self._sketch.merge(QuantileSketch.of_values(durations))
            self._last = (starts[-1], durations[-1])
        cpu = self._cpu_pending
        taken = len(cpu)
        if taken:
            self._cpu_total += math.fsum(cpu[:taken])
            del cpu[:taken]
            self._cpu_calls += taken

    def read(self, epoch_offset: float) -> FunctionStats | None:
        """The figures so far (None before the first call); ``epoch_offset`` turns a
        ``perf_counter`` reading into Unix time."""
        with self._lock:
            self._fold()
            sketch = self._sketch
            if sketch.count == 0:
                return None
            p50, p95, p99 = (q or 0.0 for q in sketch.quantiles((0.5, 0.95, 0.99)))
            last_start, last_duration = self._last
            return FunctionStats(
                name=self.name,
                kind=self.kind,
                calls=sketch.count,
                errors=self._errors,
                total_ms=sketch.total * _MS,
                avg_ms=sketch.total / sketch.count * _MS,
                min_ms=sketch.minimum * _MS,
                max_ms=sketch.maximum * _MS,
                p50_ms=p50 * _MS,
                p95_ms=p95 * _MS,
                p99_ms=p99 * _MS,
                last_call_at=last_start + epoch_offset,
                last_ms=last_duration * _MS,
                cpu_ms=self._cpu_total * _MS if self._cpu_calls else None,
                cpu_calls=self._cpu_calls,
            )

    def clear(self) -> None:
        """Forget every call (the entry stays: decorated functions hold it)."""
        with self._lock:
            del self._pending[:]
            del self._cpu_pending[:]
            self._sketch = QuantileSketch()
            self._errors = 0
            self._cpu_total = 0.0
            self._cpu_calls = 0
            self._last = (math.nan, math.nan)
