"""A peer's past in ``step``-second buckets: latency spread, loss, jitter, score and MOS.

Built on demand from what a peer keeps anyway: its latency ring (the answered measurements,
stamped when they came back) and its loss ring (the failed ones, stamped when they were
sent, so an outage shows in the buckets where it happened). Jitter, score and MOS per bucket
are judged from the bucket's own samples and loss by the formulas of
:mod:`peerscope.core.quality`, so they cost no memory per tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from typing_extensions import TypedDict  # pydantic (the API) reads it on Python < 3.12

from peerscope.core import quality
from peerscope.core.quality import QualityConfig
from peerscope.core.stats import group_by_step, nearest_rank


class Bucket(TypedDict):
    """One ``step``-second bucket of a peer's past; an *outage* when probes went out and
    none came back (then the latency figures, jitter and MOS are null and the score is 0)."""

    timestamp: float
    samples: int
    sent: int
    lost: int
    loss_percent: float
    outage: bool
    min: float | None
    p50: float | None
    p95: float | None
    max: float | None
    jitter_ms: float | None
    score: float | None
    mos: float | None


def _running_jitter(samples: Sequence[tuple[float, float]]) -> dict[float, float]:
    """RFC 3550 jitter after each sample, by its time: run over the whole ring, so a bucket's
    figure is the live estimate as it stood at the bucket's last sample."""
    after: dict[float, float] = {}
    jitter = 0.0
    previous: float | None = None
    for t, value in samples:
        if previous is not None:
            jitter = quality.rfc3550_jitter(jitter, previous, value)
        previous = value
        after[t] = jitter
    return after


def peer_buckets(
    samples: Sequence[tuple[float, float]],
    losses: Iterable[float],
    start: float,
    end: float,
    step: float,
    config: QualityConfig,
) -> list[Bucket]:
    """The buckets of ``(start, end]``, oldest first, aligned to multiples of ``step``.

    ``samples`` are (time, ms) of answered measurements, oldest first (the whole ring: the
    jitter estimate runs over all of it); ``losses`` the send times of failed ones. A bucket
    with nothing sent and nothing answered is left out rather than filled with a made-up
    value. A reply that came after its probe's timeout counts as a sample and as a loss.
    """
    in_range = [(t, v) for t, v in samples if start < t <= end]
    by_bucket = dict(group_by_step(in_range, step))
    lost_by_bucket: dict[float, int] = {}
    for bucket_start, times in group_by_step(((t, 1.0) for t in losses if start < t <= end), step):
        lost_by_bucket[bucket_start] = len(times)
    stddev = config.jitter_method == "stddev"
    running = {} if stddev else _running_jitter(samples)
    last_time: dict[float, float] = {}
    for t, _ in in_range:
        last_time[math.floor(t / step) * step] = t
    found: list[Bucket] = []
    for bucket_start in sorted(by_bucket.keys() | lost_by_bucket.keys()):
        values = sorted(by_bucket.get(bucket_start, []))
        lost = lost_by_bucket.get(bucket_start, 0)
        sent = len(values) + lost
        loss = 100.0 * lost / sent
        if not values:
            found.append(
                Bucket(
                    timestamp=bucket_start,
                    samples=0,
                    sent=sent,
                    lost=lost,
                    loss_percent=loss,
                    outage=True,
                    min=None,
                    p50=None,
                    p95=None,
                    max=None,
                    jitter_ms=None,
                    score=0.0,
                    mos=None,
                )
            )
            continue
        mean = math.fsum(values) / len(values)
        jitter = quality.stddev_jitter(values) if stddev else running[last_time[bucket_start]]
        found.append(
            Bucket(
                timestamp=bucket_start,
                samples=len(values),
                sent=sent,
                lost=lost,
                loss_percent=loss,
                outage=False,
                min=values[0],
                p50=nearest_rank(values, 0.50),
                p95=nearest_rank(values, 0.95),
                max=values[-1],
                jitter_ms=jitter,
                score=quality.quality_score(mean, loss, jitter, config),
                mos=quality.mos(mean, jitter, loss),
            )
        )
    return found
