"""The function profiler in the Prometheus exposition: each profiled name's calls, time and
quantiles as a summary (``peerscope_profiled_seconds{name,quantile}``, with ``_count`` and
``_sum``), its errors and its CPU time (where measured) as counters.

The quantiles are the profiler's, over every call since start or the last reset (a sketch
within 1 %), not over a recent window: rate(``_sum``)/rate(``_count``) gives a recent mean.
A reset makes the counters start again from zero, which Prometheus takes as a restart.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from peerscope.export.sliced_exposition import family_steps
from peerscope.profiler import FunctionStats, Profiler
from peerscope.slices import Steps, finish

__all__ = ["ProfilerCollector"]

_QUANTILES = (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms"))


class ProfilerCollector(Collector):
    """A ``prometheus_client`` collector over ``profiler``; MetricsApp serves it after the
    Monitor's (and the alerts') series."""

    def __init__(self, profiler: Profiler) -> None:
        self.profiler = profiler

    def render(self) -> bytes:
        return b"".join(finish(self.render_steps()))

    def render_steps(self) -> Steps[list[bytes]]:
        """:meth:`render` a slice of names at a time (up to 1,000 names are kept)."""
        names = sorted(self.profiler.function_stats(), key=lambda stats: stats.name)
        pieces: list[bytes] = []
        for build in (_durations, _errors, _cpu):
            pieces += yield from family_steps(build, names)
        return pieces

    def collect(self) -> Iterator[Metric]:
        names = sorted(self.profiler.function_stats(), key=lambda stats: stats.name)
        for build in (_durations, _errors, _cpu):
            yield build(names)


def _durations(names: Sequence[FunctionStats]) -> Metric:
    family = Metric(
        "peerscope_profiled_seconds",
        "Time of each call of a profiled function or block (peerscope.profiler), in seconds: "
        "quantiles since start or reset, count and sum.",
        "summary",
    )
    for stats in names:
        for quantile, field in _QUANTILES:
            family.add_sample(
                "peerscope_profiled_seconds",
                {"name": stats.name, "quantile": quantile},
                getattr(stats, field) / 1000.0,
            )
        family.add_sample("peerscope_profiled_seconds_count", {"name": stats.name}, stats.calls)
        family.add_sample(
            "peerscope_profiled_seconds_sum", {"name": stats.name}, stats.total_ms / 1000.0
        )
    return family


def _errors(names: Sequence[FunctionStats]) -> Metric:
    family = CounterMetricFamily(
        "peerscope_profiled_errors",
        "Calls of a profiled function or block that raised (count).",
        labels=("name",),
    )
    for stats in names:
        family.add_metric((stats.name,), stats.errors)
    return family


def _cpu(names: Sequence[FunctionStats]) -> Metric:
    family = CounterMetricFamily(
        "peerscope_profiled_cpu_seconds",
        "Thread CPU time of the calls of a profiled function or block whose CPU is measured "
        "(coroutines, and what asks for it), in seconds.",
        labels=("name",),
    )
    for stats in names:
        if stats.cpu_ms is not None:
            family.add_metric((stats.name,), stats.cpu_ms / 1000.0)
    return family
