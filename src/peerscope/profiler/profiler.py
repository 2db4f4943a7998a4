"""The profiler: what is timed under which name, switched on and off at run time, and read.

Names are ``module.qualname`` for a decorated function (or the ``name=`` given), and the
given name for a block; one name is one entry whoever times it, so a function decorated
again (a closure made per call, say) adds to the same figures. The number of names is
bounded (``max_names``): names beyond it are counted together under ``(other names)``, so
a name built from data (a peer id in a block's name) cannot grow memory without end.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from peerscope.core.validation import (
    preview,
    require,
    validate_count,
    validate_number,
    validate_text,
)
from peerscope.profiler.call_timing import CallTiming, FunctionStats, Kind
from peerscope.profiler.instrument import Switch, TimedBlock, time_calls, time_coroutine_calls
from peerscope.profiler.process_stats import ProcessReader, ProcessStats

__all__ = ["MAX_NAMES", "OTHER_NAMES", "Profiler"]

F = TypeVar("F", bound=Callable[..., Any])

MAX_NAMES = 1000
OTHER_NAMES = "(other names)"
_MB = 1024.0 * 1024.0
_TIMING_MARK = "_peerscope_profiled_as"  # on a wrapper: the entry it records into


class Profiler:
    """Times decorated functions and blocks while enabled; see docs/PROFILER.md.

    Thread-safe: any thread may call, decorate, read or reset at any time.
    """

    def __init__(self, *, enabled: bool = True, max_names: int = MAX_NAMES) -> None:
        _require_bool(enabled, "enabled")
        max_names = validate_count(max_names, "max_names")
        require(max_names >= 1, "max_names", f"must be at least 1, got {max_names}")
        self._switch = Switch(enabled)
        self._max_names = max_names
        self._entries: dict[str, CallTiming] = {}
        self._lock = threading.Lock()  # guards adding entries, not the calls' figures
        # perf_counter readings to Unix time (as of now: a clock step later is not followed).
        self._epoch_offset = time.time() - time.perf_counter()
        self._process = ProcessReader()

    def enable(self) -> None:
        self._switch.on = True

    def disable(self) -> None:
        """Stop recording: calls made from now on (and those running, when they end) are not
        counted; the figures so far stay until :meth:`reset`."""
        self._switch.on = False

    def is_enabled(self) -> bool:
        return self._switch.on

    @overload
    def profile(self, func: F, /) -> F: ...

    @overload
    def profile(
        self, func: None = None, /, *, name: str | None = None, cpu: bool | None = None
    ) -> Callable[[F], F]: ...

    def profile(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        cpu: bool | None = None,
    ) -> Any:
        """Decorate a function or coroutine function to time its calls: ``@profile`` or
        ``@profile(name="tick", cpu=True)``.

        ``name``: the entry's name (default ``module.qualname``). ``cpu``: also measure the
        thread CPU time, by default for coroutine functions only (docs/PROFILER.md).
        Generator functions are refused: their calls return at once and run when iterated.
        """
        if name is not None:
            name = validate_text(name, "name")
        if cpu is not None:
            _require_bool(cpu, "cpu")
        if func is None:
            return lambda decorated: self._wrap(decorated, name, cpu)
        return self._wrap(func, name, cpu)

    def _wrap(self, func: F, name: str | None, cpu: bool | None) -> F:
        if not callable(func):
            raise ValueError(f"func: must be a function, got {preview(func)}")
        key = name if name is not None else _qualified_name(func)
        marked = getattr(func, _TIMING_MARK, None)
        if marked is not None and marked is self._entries.get(key):
            # Timed twice under one name, every call would count twice.
            raise ValueError(f"func: {key} is profiled already")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise ValueError(
                f"func: {key} is a generator function, which the profiler does not time: a "
                "call returns at once and the work runs as it is iterated"
            )
        if inspect.iscoroutinefunction(func):
            timing = self._entry(key, Kind.COROUTINE)
            wrapped = time_coroutine_calls(func, timing, self._switch, cpu is not False)
        else:
            timing = self._entry(key, Kind.FUNCTION)
            wrapped = time_calls(func, timing, self._switch, cpu is True)
        setattr(wrapped, _TIMING_MARK, timing)
        return cast(F, wrapped)

    def profile_block(self, name: str, *, cpu: bool = False) -> TimedBlock:
        """Time a block: ``with profiler.profile_block("load"):`` or ``async with``.

        ``cpu=True`` also measures the thread CPU time, in a ``with`` block only: while an
        ``async with`` block awaits, other tasks run on the same thread (refused there).
        """
        _require_bool(cpu, "cpu")
        return TimedBlock(self._entry(validate_text(name, "name"), Kind.BLOCK), self._switch, cpu)

    def _entry(self, name: str, kind: Kind) -> CallTiming:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        with self._lock:
            entries = self._entries
            if name not in entries and len(entries) >= self._max_names:
                name = OTHER_NAMES
            return entries.setdefault(name, CallTiming(name, kind))

    def function_stats(self) -> list[FunctionStats]:
        """Every name called at least once, in no particular order."""
        with self._lock:
            entries = list(self._entries.values())
        read = [entry.read(self._epoch_offset) for entry in entries]
        return [stats for stats in read if stats is not None]

    def hotspots(self, top_n: int = 10) -> list[FunctionStats]:
        """The ``top_n`` names with the most total time, most first."""
        top_n = validate_count(top_n, "top_n")
        ranked = sorted(self.function_stats(), key=lambda stats: (-stats.total_ms, stats.name))
        return ranked[:top_n]

    def slow_functions(self, threshold_ms: float = 10.0) -> list[FunctionStats]:
        """The names whose p95 duration is above ``threshold_ms``, slowest p95 first: the
        p95, not the average, so a function slow one call in ten shows up."""
        threshold = validate_number(threshold_ms, "threshold_ms")
        slow = [stats for stats in self.function_stats() if stats.p95_ms > threshold]
        return sorted(slow, key=lambda stats: (-stats.p95_ms, stats.name))

    def stats(self) -> dict[str, dict[str, str | int | float | None]]:
        """Every name's figures as JSON-ready dicts, by name."""
        return {stats.name: stats.as_dict() for stats in sorted(self.function_stats(), key=_name)}

    def reset(self) -> None:
        """Forget every figure; decorated functions keep being timed (if enabled)."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            entry.clear()

    def process_stats(self) -> ProcessStats:
        """This process's CPU (since the previous call), RSS, threads and open files, read
        without waiting."""
        return self._process.read()

    def report(self, top_n: int = 20) -> str:
        """A text report: the totals, the process and the ``top_n`` hotspots."""
        top_n = validate_count(top_n, "top_n")
        everything = self.function_stats()
        process = self.process_stats()
        state = "enabled" if self.is_enabled() else "disabled"
        fds = "" if process.open_fds is None else f", {process.open_fds} open fds"
        lines = [
            f"peerscope profiler ({state}): {len(everything)} names, "
            f"{sum(s.calls for s in everything):,} calls, "
            f"{sum(s.errors for s in everything):,} errors",
            f"process: CPU {process.cpu_percent:.1f} % of one core, "
            f"RSS {process.rss_bytes / _MB:.1f} MB, {process.threads} threads{fds}",
        ]
        hot = sorted(everything, key=lambda stats: (-stats.total_ms, stats.name))[:top_n]
        if hot:
            lines.append(f"top {len(hot)} by total time (ms):")
            lines.append(
                f"{'calls':>10} {'errors':>7} {'total':>11} {'avg':>9} {'p50':>9} "
                f"{'p95':>9} {'p99':>9} {'max':>9} {'cpu':>11}  name"
            )
            for s in hot:
                cpu = "-" if s.cpu_ms is None else f"{s.cpu_ms:.3f}"
                lines.append(
                    f"{s.calls:>10,} {s.errors:>7,} {s.total_ms:>11.3f} {s.avg_ms:>9.3f} "
                    f"{s.p50_ms:>9.3f} {s.p95_ms:>9.3f} {s.p99_ms:>9.3f} {s.max_ms:>9.3f} "
                    f"{cpu:>11}  {s.name}"
                )
        return "\n".join(lines)


def _name(stats: FunctionStats) -> str:
    return stats.name


def _require_bool(value: object, field_name: str) -> None:
    if type(value) is not bool:
        raise ValueError(f"{field_name}: must be True or False, got {preview(value)}")


def _qualified_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)):
        raise ValueError(
            f"name: {preview(func)} has no __module__ and __qualname__ to name it by; give name="
        )
    return f"{module}.{qualname}"
