"""Event rates over a true sliding window."""

from __future__ import annotations

import math
from collections import deque


class SlidingCounter:
    """Counts events in the last ``window_s`` seconds, at millisecond resolution.

    Events in the same millisecond share one bucket, so memory is bounded by
    ``window_s * 1000`` buckets however high the event rate, and the count is exact for
    any window boundary that falls on a millisecond.
    """

    __slots__ = ("_buckets", "_in_window", "_window_ms")

    def __init__(self, window_s: float = 1.0) -> None:
        if not 0.001 <= window_s < math.inf:
            raise ValueError(f"window_s: must be finite and >= 0.001, got {window_s!r}")
        self._window_ms = round(window_s * 1000)
        self._buckets: deque[list[int]] = deque()  # [millisecond, count], oldest first
        self._in_window = 0

    def add(self, now: float, n: int = 1) -> None:
        ms = int(now * 1000.0)
        buckets = self._buckets
        if buckets and buckets[-1][0] >= ms:
            # Same millisecond (or a clock that stepped back): fold into the newest bucket.
            buckets[-1][1] += n
        else:
            buckets.append([ms, n])
        self._in_window += n
        self._expire(ms)

    def _expire(self, now_ms: int) -> None:
        buckets = self._buckets
        horizon = now_ms - self._window_ms
        while buckets and buckets[0][0] <= horizon:
            self._in_window -= buckets.popleft()[1]

    def count(self, now: float) -> int:
        self._expire(int(now * 1000.0))
        return self._in_window

    def rate(self, now: float) -> float:
        """Events per second over the window ending at ``now``."""
        return self.count(now) * 1000.0 / self._window_ms
