"""LANrage's ``core/observability/profiler.py`` (earlier ``core/profiler.py``) over
:class:`peerscope.profiler.Profiler`: the ``PerformanceProfiler``, its global instance and
``ProfileContext``.

LANrage's import paths work through the package :mod:`peerscope.compat.lanrage.profiler`
(``from core.observability.profiler import X`` → ``from peerscope.compat.lanrage.profiler
import X``). Method names, arguments, sync/async-ness and dict shapes follow the original;
times are in **seconds**, as LANrage gave them (peerscope's profiler keeps milliseconds).
Every figure comes from the wrapped Profiler; the deliberate differences are listed in
:mod:`peerscope.compat.lanrage`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import psutil

from peerscope.core.validation import preview
from peerscope.profiler import FunctionStats, Profiler, TimedBlock
from peerscope.profiler import get_profiler as default_profiler

__all__ = ["PerformanceProfiler", "ProfileContext", "get_profiler", "profile", "profile_block"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_MS_PER_S = 1000.0
_MB = 1024.0 * 1024.0
_SLOW_MS = 10.0  # the threshold of the report's slow functions, as in LANrage
_RULE = "=" * 80
# The keys of LANrage's own per-name record (``function_stats``), a subset of get_stats'.
_RAW_KEYS = ("calls", "total_time", "min_time", "max_time", "errors")
_REPORTED_TIMES = (
    ("Total", "total_time"),
    ("Avg", "avg_time"),
    ("Min", "min_time"),
    ("Max", "max_time"),
)


def _figures(stats: FunctionStats) -> dict[str, Any]:
    """One name's figures in LANrage's shape (seconds), with the quantiles beside."""
    return {
        "calls": stats.calls,
        "total_time": stats.total_ms / _MS_PER_S,
        "avg_time": stats.avg_ms / _MS_PER_S,
        "min_time": stats.min_ms / _MS_PER_S,
        "max_time": stats.max_ms / _MS_PER_S,
        "errors": stats.errors,
        "p50_time": stats.p50_ms / _MS_PER_S,
        "p95_time": stats.p95_ms / _MS_PER_S,
        "p99_time": stats.p99_ms / _MS_PER_S,
    }


def _by_name(stats: FunctionStats) -> str:
    return stats.name


class PerformanceProfiler:
    """LANrage's profiler, reading and switching a :class:`peerscope.profiler.Profiler`.

    ``profiler`` wraps an existing Profiler (its switch is this one's); without one a new,
    disabled Profiler is made, as LANrage's started disabled. The module's global instance
    (:func:`get_profiler`) wraps peerscope's default profiler, the one ``/api/profiler``
    shows, which is enabled from the start.
    """

    def __init__(self, *, profiler: Profiler | None = None) -> None:
        if profiler is not None and not isinstance(profiler, Profiler):
            raise ValueError(f"profiler: must be a peerscope Profiler, got {preview(profiler)}")
        self._profiler = Profiler(enabled=False) if profiler is None else profiler

    @property
    def profiler(self) -> Profiler:
        """The wrapped peerscope Profiler."""
        return self._profiler

    @property
    def enabled(self) -> bool:
        return self._profiler.is_enabled()

    @enabled.setter
    def enabled(self, value: bool) -> None:
        if type(value) is not bool:
            raise ValueError(f"enabled: must be True or False, got {preview(value)}")
        if value:
            self._profiler.enable()
        else:
            self._profiler.disable()

    @property
    def function_stats(self) -> dict[str, dict[str, Any]]:
        """LANrage's per-name record (``calls``, ``total_time``, ``min_time``, ``max_time``,
        ``errors``; seconds): a snapshot built at each read, not a store to write to."""
        return {
            name: {key: figures[key] for key in _RAW_KEYS}
            for name, figures in self.get_stats().items()
        }

    def enable(self) -> None:
        self._profiler.enable()
        logger.info("Profiling enabled")

    def disable(self) -> None:
        """Stop recording; the figures so far stay until :meth:`reset`."""
        self._profiler.disable()
        logger.info("Profiling disabled")

    def reset(self) -> None:
        count = len(self._profiler.function_stats())
        self._profiler.reset()
        logger.info("Profiling statistics reset (%d functions cleared)", count)

    def profile(self, func: F) -> F:
        """Decorate a function or coroutine function to time its calls while enabled, under
        ``module.qualname``."""
        return self._profiler.profile(func)

    def get_stats(self) -> dict[str, dict[str, Any]]:
        """Every name called while enabled, by name: ``calls``, ``total_time``, ``avg_time``,
        ``min_time``, ``max_time`` (seconds), ``errors``, and ``p50_time``, ``p95_time``,
        ``p99_time`` beside them."""
        found = sorted(self._profiler.function_stats(), key=_by_name)
        return {stats.name: _figures(stats) for stats in found}

    def get_hotspots(self, top_n: int = 10) -> list[tuple[str, dict[str, Any]]]:
        """The ``top_n`` names with the most total time, most first, as (name, figures)."""
        return [(stats.name, _figures(stats)) for stats in self._profiler.hotspots(top_n)]

    def get_slow_functions(self, threshold_ms: float = 10.0) -> list[tuple[str, dict[str, Any]]]:
        """The names whose **p95** duration is above ``threshold_ms`` (not their average:
        a function slow one call in ten shows up), slowest p95 first, as (name, figures)."""
        slow = self._profiler.slow_functions(threshold_ms)
        return [(stats.name, _figures(stats)) for stats in slow]

    def get_system_stats(self) -> dict[str, Any]:
        """This process: ``cpu_percent`` (of one CPU, since the previous reading, without
        waiting), ``memory_mb`` (RSS, MiB), ``memory_percent`` (RSS of the host's memory),
        ``num_threads``, ``num_fds`` (None where there are none, on Windows)."""
        process = self._profiler.process_stats()
        return {
            "cpu_percent": process.cpu_percent,
            "memory_mb": process.rss_bytes / _MB,
            "memory_percent": process.rss_bytes / psutil.virtual_memory().total * 100.0,
            "num_threads": process.threads,
            "num_fds": process.open_fds,
        }

    def print_report(self, top_n: int = 20) -> None:
        """LANrage's report, written to this module's logger: the process, the ``top_n``
        hotspots, the slow functions (p95 over 10 ms, at WARNING) and the totals."""
        hotspots = self.get_hotspots(top_n)  # first: a bad top_n writes nothing
        system = self.get_system_stats()
        every = self.get_stats()
        info = logger.info
        info(_RULE)
        info("LANrage Performance Report")
        info(_RULE)
        info("System Resources:")
        info("  CPU: %.1f%%", system["cpu_percent"])
        info("  Memory: %.1f MB (%.1f%%)", system["memory_mb"], system["memory_percent"])
        info("  Threads: %d", system["num_threads"])
        if system["num_fds"]:
            info("  File Descriptors: %d", system["num_fds"])
        if hotspots:
            info("Top %d Hotspots (by total time):", len(hotspots))
            for rank, (name, figures) in enumerate(hotspots, 1):
                info("  %d. %s", rank, name)
                info("     Calls: %d", figures["calls"])
                for label, key in _REPORTED_TIMES:
                    info("     %s: %.2fms", label, figures[key] * _MS_PER_S)
                if figures["errors"] > 0:
                    logger.warning("     Errors: %d", figures["errors"])
        slow = self.get_slow_functions(_SLOW_MS)
        if slow:
            logger.warning("Slow Functions (p95 > %gms):", _SLOW_MS)
            for name, figures in slow:
                logger.warning("  %s: %.2fms p95", name, figures["p95_time"] * _MS_PER_S)
        info("Summary:")
        info("  Total function calls: %d", sum(f["calls"] for f in every.values()))
        total_ms = sum(f["total_time"] for f in every.values()) * _MS_PER_S
        info("  Total profiled time: %.2fms", total_ms)
        info("  Total errors: %d", sum(f["errors"] for f in every.values()))
        info("  Unique functions: %d", len(every))
        info(_RULE)


_profiler = PerformanceProfiler(profiler=default_profiler())


def get_profiler() -> PerformanceProfiler:
    """The global profiler: peerscope's default one (enabled from the start)."""
    return _profiler


def profile(func: F) -> F:
    """Time ``func``'s calls with the global profiler."""
    return _profiler.profile(func)


class ProfileContext:
    """``with ProfileContext(name):`` times the block under ``name`` in the global profiler,
    while it is enabled; a block that raises counts as an error (and still raises).

    One use at a time: entering it again while it runs is a ``RuntimeError``.
    """

    def __init__(self, name: str) -> None:
        self._block: TimedBlock = _profiler.profiler.profile_block(name)
        self.name = name
        self.start_time: float | None = None  # perf_counter when last entered

    def __enter__(self) -> ProfileContext:
        self._block.__enter__()
        self.start_time = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self._block.__exit__(exc_type, exc_val, exc_tb)


def profile_block(name: str) -> ProfileContext:
    """A :class:`ProfileContext` for ``name``."""
    return ProfileContext(name)
