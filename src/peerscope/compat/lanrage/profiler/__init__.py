"""LANrage's profiler at LANrage's module name: ``from core.observability.profiler import X``
(or ``from core.profiler import X``) becomes ``from peerscope.compat.lanrage.profiler import
X``. The code is :mod:`peerscope.compat.lanrage.performance_profiler` (one file name per
module in the package: ``profiler.py`` is peerscope's own profiler's).
"""

from peerscope.compat.lanrage.performance_profiler import (
    PerformanceProfiler,
    ProfileContext,
    get_profiler,
    profile,
    profile_block,
)

__all__ = ["PerformanceProfiler", "ProfileContext", "get_profiler", "profile", "profile_block"]
