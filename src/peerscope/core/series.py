"""A fixed-capacity ring of (timestamp, value) samples stored in flat arrays.

Each sample costs 8 bytes: the time as a signed 32-bit count of milliseconds from the
ring's base time, and the value as a 32-bit float. That keeps a peer's full 360-sample
latency ring under 3 KiB, which is what makes thousands of peers cheap to hold. Millisecond
time resolution and float32 precision (about 7 significant digits) are far finer than
anything a network measurement can tell apart.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)
_UNSET_BASE = -(2**62)  # any real time minus this overflows int32, so append() sets the base


class Series:
    """Ring buffer of timestamped floats; appending is O(1) and never allocates."""

    __slots__ = ("_base_ms", "_capacity", "_count", "_next", "_times", "_total", "_values")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: must be at least 1, got {capacity}")
        self._capacity = capacity
        # Multiplying a one-item array allocates exactly; array(typecode, bytes) over-allocates.
        self._times = array("i", [0]) * capacity
        self._values = array("f", [0.0]) * capacity
        self._next = 0
        self._count = 0
        self._total = 0.0  # of the stored values, kept as they come and go, for mean()
        self._base_ms = _UNSET_BASE

    def __len__(self) -> int:
        return self._count

    def append(self, t: float, value: float) -> None:
        i = self._next
        try:
            self._times[i] = int(t * 1000.0) - self._base_ms
        except OverflowError:
            # The offset left int32: ~24.8 days from the base, or the very first sample
            # (the base starts far out of range so that no per-call check is needed).
            self._rebase(t)
            i = self._next
            self._times[i] = 0
        values = self._values
        if self._count == self._capacity:
            old = values[i]
            values[i] = value
            self._total += values[i] - old  # the float32 stored, not the value given
        else:
            values[i] = value
            self._total += values[i]
            self._count += 1
        i += 1
        if i == self._capacity:  # the ring is full whenever its end is reached
            i = 0
            # Once a lap, summed afresh: rounding in the running total never builds up.
            self._total = sum(values)
        self._next = i

    @property
    def capacity(self) -> int:
        return self._capacity

    def newest_time(self) -> float | None:
        """When the newest sample was taken (None when empty); O(1)."""
        if not self._count:
            return None
        return (self._base_ms + self._times[self._next - 1]) / 1000.0

    def mean(self) -> float | None:
        """Mean of the stored values (None when empty); O(1)."""
        count = self._count
        return self._total / count if count else None

    def _rebase(self, t: float) -> None:
        """Move the base to ``t`` after ~24 days of drift; drops samples it can no longer place."""
        new_base = int(t * 1000.0)
        shift = new_base - self._base_ms
        kept: list[tuple[int, float]] = []
        for offset, value in self._iter_raw():
            moved = offset - shift
            if _INT32_MIN <= moved <= _INT32_MAX:
                kept.append((moved, value))
        self._base_ms = new_base
        self._next = 0
        self._count = 0
        for offset, value in kept:
            self._times[self._next] = offset
            self._values[self._next] = value
            self._next += 1
            self._count += 1
        self._total = sum(self._values[: self._count])
        self._next %= self._capacity

    def _iter_raw(self) -> Iterator[tuple[int, float]]:
        start = (self._next - self._count) % self._capacity
        times, values, cap = self._times, self._values, self._capacity
        for k in range(self._count):
            i = (start + k) % cap
            yield times[i], values[i]

    def __iter__(self) -> Iterator[tuple[float, float]]:
        """Samples oldest first, as (seconds, value)."""
        base = self._base_ms
        for offset, value in self._iter_raw():
            yield (base + offset) / 1000.0, value

    def window(self, window_s: float, now: float) -> Iterator[tuple[float, float]]:
        """Samples with ``now - window_s < t <= now``, oldest first."""
        start = now - window_s
        for t, value in self:
            if start < t <= now:
                yield t, value

    def window_values(self, window_s: float, now: float) -> list[float]:
        """The values of :meth:`window` in storage order (not oldest first).

        When every stored sample is in the window, as for a window that spans a peer's
        whole connection, the values are copied in one go instead of read one by one.
        """
        count = self._count
        if not count:
            return []
        full = count == self._capacity
        times = self._times if full else self._times[:count]
        values = self._values if full else self._values[:count]
        base = self._base_ms
        start = now - window_s
        # Times as __iter__ computes them, so a sample is in or out exactly as in window().
        if start < (base + min(times)) / 1000.0 and (base + max(times)) / 1000.0 <= now:
            return values.tolist()
        return [
            value
            for offset, value in zip(times.tolist(), values.tolist(), strict=True)
            if start < (base + offset) / 1000.0 <= now
        ]

    def tail(self, n: int) -> list[float]:
        """The newest ``n`` values (fewer if fewer are stored), oldest first; O(n)."""
        n = min(n, self._count)
        values, cap, end = self._values, self._capacity, self._next
        return [values[(end - n + k) % cap] for k in range(n)]
