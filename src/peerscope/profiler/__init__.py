"""Time the application's own functions and blocks: calls, errors, durations and their
quantiles in bounded memory, CPU time, and the process's resources (docs/PROFILER.md).

``profile`` and ``profile_block`` record into the default profiler (``get_profiler()``),
which is enabled from the start; a :class:`Profiler` of one's own keeps separate figures.

    from peerscope.profiler import get_profiler, profile, profile_block

    @profile
    async def handle(message): ...

    with profile_block("load map"):
        ...

    get_profiler().hotspots(5)
"""

from __future__ import annotations

from peerscope.profiler.call_timing import FunctionStats, Kind
from peerscope.profiler.instrument import TimedBlock
from peerscope.profiler.process_stats import ProcessStats
from peerscope.profiler.profiler import MAX_NAMES, OTHER_NAMES, Profiler

__all__ = [
    "MAX_NAMES",
    "OTHER_NAMES",
    "FunctionStats",
    "Kind",
    "ProcessStats",
    "Profiler",
    "TimedBlock",
    "get_profiler",
    "profile",
    "profile_block",
]

_DEFAULT = Profiler()

profile = _DEFAULT.profile
profile_block = _DEFAULT.profile_block


def get_profiler() -> Profiler:
    """The default profiler, which ``profile`` and ``profile_block`` record into."""
    return _DEFAULT
