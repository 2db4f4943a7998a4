"""A mergeable quantile sketch with a stated relative error (DDSketch's log buckets).

A value ``x > 0`` is counted in bucket ``ceil(log(x) / log(gamma))`` with
``gamma = (1 + alpha) / (1 - alpha)``; a bucket's representative value is within
``alpha`` of every value in it, so any quantile read back is within ``alpha`` (relative) of
the true one at that rank. Two sketches merge by adding bucket counts, so the p95 of a week
is computed from the hours' sketches exactly as from the raw samples, never by averaging
percentiles. Buckets are sparse; values span a bounded range of indexes (about 2,400 at 1 %
from 1e-9 to 1e12), so a sketch's size is bounded whatever it is fed.

This is the summary each tier of the history store keeps per series and bucket (issue 14);
it is pure, with no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from peerscope.core.validation import preview, real_number, require

__all__ = ["DEFAULT_ALPHA", "QuantileSketch"]

DEFAULT_ALPHA = 0.01
# Values at or below this count as zero (their own bucket): latencies and jitter are never
# this small, and log() of them would reach indexes no real value uses.
MIN_INDEXABLE = 1e-9


@dataclass(slots=True)
class QuantileSketch:
    """Counts of values in log buckets, with count, sum, min and max kept exactly.

    ``alpha`` is the relative error of every quantile read back (default 1 %). Only values
    >= 0 are taken (the figures peerscope keeps are); a negative, NaN or infinite value is
    refused with ``ValueError`` naming it.
    """

    alpha: float = DEFAULT_ALPHA
    buckets: dict[int, int] = field(default_factory=dict)
    zeros: int = 0
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def __post_init__(self) -> None:
        alpha = real_number(self.alpha, "alpha")
        require(0.0 < alpha < 1.0, "alpha", f"must be within 0..1 (exclusive), got {alpha!r}")
        self.alpha = alpha

    @property
    def gamma(self) -> float:
        return (1.0 + self.alpha) / (1.0 - self.alpha)

    def add(self, value: float, times: int = 1) -> None:
        """Count ``value`` (``times`` times)."""
        if not (type(value) is float and math.isfinite(value) and value >= 0.0):
            value = real_number(value, "value")
            require(
                math.isfinite(value) and value >= 0.0,
                "value",
                f"must be a finite number >= 0, got {preview(value)}",
            )
        if value <= MIN_INDEXABLE:
            self.zeros += times
        else:
            index = math.ceil(math.log(value) / math.log(self.gamma))
            self.buckets[index] = self.buckets.get(index, 0) + times
        self.count += times
        self.total += value * times
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    @classmethod
    def of_values(cls, values: Sequence[float], alpha: float = DEFAULT_ALPHA) -> QuantileSketch:
        """A sketch of ``values``, all finite and >= 0 (the store's decoded figures are),
        counted in one pass: the store sketches every figure of every minute this way."""
        sketch = cls(alpha)
        if not values:
            return sketch
        # The same arithmetic as add(), so a value lands in the same bucket either way.
        log_gamma = math.log(sketch.gamma)
        ceil, log = math.ceil, math.log
        indexes = Counter([ceil(log(v) / log_gamma) for v in values if v > MIN_INDEXABLE])
        sketch.buckets = dict(indexes)
        sketch.zeros = len(values) - indexes.total()
        sketch.count = len(values)
        sketch.total = math.fsum(values)
        sketch.minimum = min(values)
        sketch.maximum = max(values)
        return sketch

    def to_list(self) -> list[float]:
        """The sketch as a flat list of numbers (for storing): count, zeros, sum, min, max,
        then each bucket as its index's step from the one before and its count."""
        flat: list[float] = [self.count, self.zeros, self.total, self.minimum, self.maximum]
        previous = 0
        for index in sorted(self.buckets):
            flat += (index - previous, self.buckets[index])
            previous = index
        return flat

    @classmethod
    def from_list(cls, flat: Sequence[float], alpha: float = DEFAULT_ALPHA) -> QuantileSketch:
        """The sketch :meth:`to_list` wrote."""
        sketch = cls(alpha)
        sketch.count, sketch.zeros = int(flat[0]), int(flat[1])
        sketch.total, sketch.minimum, sketch.maximum = flat[2], flat[3], flat[4]
        index = 0
        for k in range(5, len(flat), 2):
            index += int(flat[k])
            sketch.buckets[index] = int(flat[k + 1])
        return sketch

    def merge(self, other: QuantileSketch) -> None:
        """Add ``other``'s counts to this sketch (both must have the same ``alpha``)."""
        require(
            other.alpha == self.alpha,
            "alpha",
            f"sketches of alpha {self.alpha!r} and {other.alpha!r} do not merge",
        )
        for index, times in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + times
        self.zeros += other.zeros
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), within ``alpha`` of the value at rank
        ``floor(q · (count − 1))`` of the sorted values; None when empty."""
        q = real_number(q, "q")
        require(0.0 <= q <= 1.0, "q", f"must be within 0..1, got {q!r}")
        if self.count == 0:
            return None
        rank = math.floor(q * (self.count - 1))
        if rank == 0:
            return self.minimum  # the extremes are kept exactly
        if rank == self.count - 1:
            return self.maximum
        seen = self.zeros
        if rank < seen:
            return 0.0
        gamma = self.gamma
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if rank < seen:
                # The bucket (gamma^(i-1), gamma^i] is read as the point within alpha of
                # both its ends, kept within the exact extremes.
                estimate = 2.0 * gamma**index / (gamma + 1.0)
                return min(max(estimate, self.minimum), self.maximum)
        return self.maximum

    @property
    def mean(self) -> float | None:
        return None if self.count == 0 else self.total / self.count
