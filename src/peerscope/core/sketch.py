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
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, islice, repeat
from operator import truediv
from typing import cast

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
        indexable = (
            values if min(values) > MIN_INDEXABLE else [v for v in values if v > MIN_INDEXABLE]
        )
        logs = map(math.log, indexable)
        indexes = Counter(map(math.ceil, map(truediv, logs, repeat(log_gamma, len(indexable)))))
        sketch.buckets = dict(indexes)
        sketch.zeros = len(values) - indexes.total()
        sketch.count = len(values)
        sketch.total = math.fsum(values)
        sketch.minimum = min(values)
        sketch.maximum = max(values)
        return sketch

    def to_list(self) -> list[float]:
        """The sketch as a flat list of numbers (for storing): count, zeros, sum, min, max,
        then, if any bucket is counted, the lowest bucket's index and each bucket's count
        from there up, a run of empty buckets standing as one negative number (minus how
        many): the buckets of a minute's latency are mostly neighbours, so most take one
        small number."""
        flat: list[float] = [self.count, self.zeros, self.total, self.minimum, self.maximum]
        previous: int | None = None
        buckets = self.buckets
        for index in sorted(buckets):
            if previous is None:
                flat.append(index)
            elif index > previous + 1:
                flat.append(previous + 1 - index)
            flat.append(buckets[index])
            previous = index
        return flat

    @classmethod
    def from_list(cls, flat: Sequence[float], alpha: float = DEFAULT_ALPHA) -> QuantileSketch:
        """The sketch :meth:`to_list` wrote."""
        return cls.merged((flat,), alpha)

    @classmethod
    def merged(
        cls, flats: Iterable[Sequence[float]], alpha: float = DEFAULT_ALPHA
    ) -> QuantileSketch:
        """The sketch of several :meth:`to_list` lists merged, as :meth:`merge` would merge
        their sketches one by one (the same sums in the same order), without making them:
        a query merges thousands of stored buckets."""
        sketch = cls(alpha)
        buckets = sketch.buckets
        get = buckets.get
        count = zeros = 0
        total = 0.0
        minimum, maximum = math.inf, -math.inf
        for flat in flats:
            count += int(flat[0])
            zeros += int(flat[1])
            total += flat[2]
            minimum = min(minimum, flat[3])
            maximum = max(maximum, flat[4])
            if len(flat) > 5:
                index = int(flat[5])
                # The hot loop of a long query: what to_list wrote after the index is ints,
                # taken as they are.
                for number in cast("Iterable[int]", islice(flat, 6, None)):
                    if number < 0:
                        index -= number
                    else:
                        buckets[index] = get(index, 0) + number
                        index += 1
        sketch.count, sketch.zeros, sketch.total = count, zeros, total
        sketch.minimum, sketch.maximum = minimum, maximum
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
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """:meth:`quantile` of each of ``qs``, in one pass over the buckets."""
        checked = [real_number(q, "q") for q in qs]
        for q in checked:
            require(0.0 <= q <= 1.0, "q", f"must be within 0..1, got {q!r}")
        if self.count == 0:
            return [None] * len(checked)
        last = self.count - 1
        ranks = [math.floor(q * last) for q in checked]
        found: dict[int, float] = {}
        for rank in ranks:
            if rank == 0:
                found[rank] = self.minimum  # the extremes are kept exactly
            elif rank == last:
                found[rank] = self.maximum
            elif rank < self.zeros:
                found[rank] = 0.0
        wanted = [rank for rank in ranks if rank not in found]
        if wanted:
            buckets = self.buckets
            indexes = sorted(buckets)
            # How many values are at or below each bucket, zeros aside.
            below = list(accumulate(map(buckets.__getitem__, indexes)))
            gamma = self.gamma
            for rank in wanted:
                position = bisect_right(below, rank - self.zeros)
                if position == len(indexes):
                    found[rank] = self.maximum
                    continue
                # The bucket (gamma^(i-1), gamma^i] is read as the point within alpha of
                # both its ends, kept within the exact extremes.
                estimate = 2.0 * gamma ** indexes[position] / (gamma + 1.0)
                found[rank] = min(max(estimate, self.minimum), self.maximum)
        return [found[rank] for rank in ranks]

    @property
    def mean(self) -> float | None:
        return None if self.count == 0 else self.total / self.count
