"""Connection-quality figures: jitter, loss, score, band and grade, MOS, trend and peer status.

Every formula is documented with worked examples in docs/QUALITY.md; a test checks the
examples against this module, so the two cannot drift apart.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from peerscope.core.validation import require

JitterMethod = Literal["rfc3550", "stddev"]
ScoreMethod = Literal["impairment", "seed"]
Trend = Literal["improving", "stable", "degrading"]
Status = Literal["connected", "degraded", "disconnected"]
Band = Literal["excellent", "good", "fair", "poor", "bad"]
Grade = Literal["A", "B", "C", "D", "F"]

STATUSES: tuple[Status, ...] = ("connected", "degraded", "disconnected")
# One scale: each band has its letter, so a score never reads "excellent" and "B" at once.
GRADE_OF_BAND: dict[Band, Grade] = {
    "excellent": "A",
    "good": "B",
    "fair": "C",
    "poor": "D",
    "bad": "F",
}


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Weights, thresholds and methods of the quality score.

    The weights and slopes are the seeds'; ``score_method`` says how they combine (see
    :func:`quality_score`), and one set of thresholds gives both the band and its letter.
    """

    score_method: ScoreMethod = "impairment"
    latency_weight: float = 0.40
    loss_weight: float = 0.35
    jitter_weight: float = 0.25
    latency_ms_per_point: float = 1.5
    loss_points_per_percent: float = 20.0
    jitter_points_per_ms: float = 2.0
    excellent_min: float = 90.0
    good_min: float = 75.0
    fair_min: float = 60.0
    poor_min: float = 40.0
    jitter_method: JitterMethod = "rfc3550"
    stddev_jitter_samples: int = 20
    latency_smoothing: float = 0.125
    loss_window: int = 100
    trend_short_samples: int = 5
    trend_long_samples: int = 30
    trend_dead_band: float = 2.0
    network_cpu_weight: float = 0.1

    def __post_init__(self) -> None:
        for name in ("latency_weight", "loss_weight", "jitter_weight", "network_cpu_weight"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, name, f"must be within 0..1, got {value}")
        require(
            0 < self.latency_ms_per_point < math.inf,
            "latency_ms_per_point",
            "must be finite and > 0",
        )
        require(
            0 <= self.loss_points_per_percent < math.inf,
            "loss_points_per_percent",
            "must be finite and >= 0",
        )
        require(
            0 <= self.jitter_points_per_ms < math.inf,
            "jitter_points_per_ms",
            "must be finite and >= 0",
        )
        require(
            self.score_method in ("impairment", "seed"),
            "score_method",
            f"must be 'impairment' or 'seed', got {self.score_method!r}",
        )
        require(
            100 >= self.excellent_min >= self.good_min >= self.fair_min >= self.poor_min >= 0,
            "excellent_min",
            "bands must satisfy 100 >= excellent_min >= good_min >= fair_min >= poor_min >= 0",
        )
        require(
            self.jitter_method in ("rfc3550", "stddev"),
            "jitter_method",
            f"must be 'rfc3550' or 'stddev', got {self.jitter_method!r}",
        )
        require(self.stddev_jitter_samples >= 2, "stddev_jitter_samples", "must be >= 2")
        require(0.0 < self.latency_smoothing <= 1.0, "latency_smoothing", "must be within (0, 1]")
        require(self.loss_window >= 1, "loss_window", "must be >= 1")
        require(
            1 <= self.trend_short_samples < self.trend_long_samples,
            "trend_short_samples",
            "must be >= 1 and smaller than trend_long_samples",
        )
        require(self.trend_dead_band >= 0, "trend_dead_band", "must be >= 0")


@dataclass(frozen=True, slots=True)
class StatusRules:
    """When a peer counts as unanswered, degraded or disconnected.

    A peer is *unanswered* once ``no_reply_after_failures`` measurements in a row failed, or
    once it was not heard from for ``degraded_after_idle_s`` (the status window): it scores
    0 and shows no latency, jitter or MOS (see peerscope.core.assessment). ``idle`` is the
    time since the peer was last heard from (an answered probe, a message or
    traffic). Leaving ``degraded`` for ``connected`` on score alone needs the score to clear
    ``degraded_below_score + recover_margin``, so a score hovering at the line does not flap.
    """

    degraded_below_score: float = 60.0
    recover_margin: float = 5.0
    no_reply_after_failures: int = 2
    degraded_after_failures: int = 3
    disconnected_after_failures: int = 10
    degraded_after_idle_s: float = 15.0
    disconnected_after_idle_s: float = 60.0

    def __post_init__(self) -> None:
        require(
            0 <= self.degraded_below_score <= 100, "degraded_below_score", "must be within 0..100"
        )
        require(self.recover_margin >= 0, "recover_margin", "must be >= 0")
        require(
            1 <= self.no_reply_after_failures <= self.disconnected_after_failures,
            "no_reply_after_failures",
            "must be >= 1 and <= disconnected_after_failures",
        )
        require(
            1 <= self.degraded_after_failures <= self.disconnected_after_failures,
            "degraded_after_failures",
            "must be >= 1 and <= disconnected_after_failures",
        )
        require(
            0 < self.degraded_after_idle_s <= self.disconnected_after_idle_s,
            "degraded_after_idle_s",
            "must be > 0 and <= disconnected_after_idle_s",
        )


# --- jitter -------------------------------------------------------------------------------


def rfc3550_jitter(jitter: float, previous_ms: float, current_ms: float) -> float:
    """One step of RFC 3550 §6.4.1 interarrival jitter: ``J += (|D| - J) / 16``.

    ``D`` is the change in one-way transit (or round-trip) time between consecutive samples;
    the gain of 1/16 smooths it like the RTP estimator does.
    """
    return jitter + (abs(current_ms - previous_ms) - jitter) / 16.0


def stddev_jitter(latencies_ms: Sequence[float]) -> float:
    """The LANrage seed's jitter: sample standard deviation of recent latencies (0 below 2)."""
    if len(latencies_ms) < 2:
        return 0.0
    return statistics.stdev(latencies_ms)


# --- score, grade, MOS ----------------------------------------------------------------------


def quality_score(
    latency_ms: float,
    loss_percent: float,
    jitter_ms: float,
    config: QualityConfig = QualityConfig(),
) -> float:
    """The score 0..100 of a link by ``config.score_method``: :func:`impairment_score` (the
    default) or :func:`seed_score`. Inputs in ms and percent."""
    if config.score_method == "seed":
        return seed_score(latency_ms, loss_percent, jitter_ms, config)
    return impairment_score(latency_ms, loss_percent, jitter_ms, config)


def impairment_score(
    latency_ms: float,
    loss_percent: float,
    jitter_ms: float,
    config: QualityConfig = QualityConfig(),
) -> float:
    """``100 − 0.40·latency/1.5 − 0.35·loss·20 − 0.25·jitter·2``, clamped to 0..100.

    The seed's weights and slopes taken as impairments: each part takes its points off the
    whole score, with no floor of its own, so any one terrible part makes the score
    terrible (the seed's formula lets loss take at most 35 points, and reads 65 at 100 %
    loss). Where no part of the seed's formula is below zero the two agree. Two rules hold
    whatever the weights: 100 % loss scores 0, and 50 % or more is never better than
    ``poor_min``.
    """
    if loss_percent >= 100.0:
        return 0.0
    # Conditionals rather than max()/min(): this runs for every changed peer on every tick.
    score = 100.0 - (
        config.latency_weight * latency_ms / config.latency_ms_per_point
        + config.loss_weight * loss_percent * config.loss_points_per_percent
        + config.jitter_weight * jitter_ms * config.jitter_points_per_ms
    )
    if loss_percent >= 50.0 and score > config.poor_min:
        score = config.poor_min
    if score < 0.0:
        return 0.0
    return 100.0 if score > 100.0 else score


def seed_score(
    latency_ms: float,
    loss_percent: float,
    jitter_ms: float,
    config: QualityConfig = QualityConfig(),
) -> float:
    """The seeds' weighted score 0..100, by default
    ``0.40·max(0, 100 − latency/1.5) + 0.35·max(0, 100 − loss·20) + 0.25·max(0, 100 − jitter·2)``.

    Each part is floored at 0, so no part can take more than its weight: kept for
    ``score_method = "seed"``, not the default (see :func:`impairment_score`).
    """
    latency_part = 100.0 - latency_ms / config.latency_ms_per_point
    if latency_part < 0.0:
        latency_part = 0.0
    loss_part = 100.0 - loss_percent * config.loss_points_per_percent
    if loss_part < 0.0:
        loss_part = 0.0
    jitter_part = 100.0 - jitter_ms * config.jitter_points_per_ms
    if jitter_part < 0.0:
        jitter_part = 0.0
    score = (
        config.latency_weight * latency_part
        + config.loss_weight * loss_part
        + config.jitter_weight * jitter_part
    )
    return 100.0 if score > 100.0 else score


def quality_band(score: float, config: QualityConfig = QualityConfig()) -> Band:
    """The score's word on the one scale (its letter is :func:`grade`)."""
    if score >= config.excellent_min:
        return "excellent"
    if score >= config.good_min:
        return "good"
    if score >= config.fair_min:
        return "fair"
    if score >= config.poor_min:
        return "poor"
    return "bad"


def grade(score: float, config: QualityConfig = QualityConfig()) -> Grade:
    """The score's letter: A excellent, B good, C fair, D poor, F bad."""
    return GRADE_OF_BAND[quality_band(score, config)]


def limits(config: QualityConfig = QualityConfig()) -> tuple[float, float, float]:
    """(latency ms, loss %, jitter ms) at which each part alone costs its whole weight (where
    the seed's part reaches 0): 150 ms, 5 %, 50 ms by default. Past one, that part is a
    reason a peer is judged badly. A slope of 0 makes its limit infinite."""
    loss, jitter = config.loss_points_per_percent, config.jitter_points_per_ms
    return (
        100.0 * config.latency_ms_per_point,
        100.0 / loss if loss else math.inf,
        100.0 / jitter if jitter else math.inf,
    )


def r_factor(latency_ms: float, jitter_ms: float, loss_percent: float) -> float:
    """Simplified E-model transmission rating R, clamped to 0..100."""
    effective = latency_ms + 2.0 * jitter_ms + 10.0
    r = 93.2 - effective / 40.0 if effective < 160.0 else 93.2 - (effective - 120.0) / 10.0
    r -= 2.5 * loss_percent
    return min(100.0, max(0.0, r))


def mos(latency_ms: float, jitter_ms: float, loss_percent: float) -> float:
    """Mean opinion score 1..4.5 from :func:`r_factor`: ``1 + 0.035R + 7e-6·R(R−60)(100−R)``.

    The cubic dips a hair below 1 for R under about 6.5; the result is clamped to 1..4.5 as
    ITU-T G.107 does.
    """
    r = r_factor(latency_ms, jitter_ms, loss_percent)
    value = 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    return min(4.5, max(1.0, value))


def network_score(
    peer_scores: Iterable[float], cpu_percent: float, config: QualityConfig = QualityConfig()
) -> float:
    """``0.9·mean(peer scores) + 0.1·(100 − CPU%)``; with no scored peer, ``100 − CPU%``.

    The empty case follows the LANrage seed: with nobody measured, the host is all there is
    to judge.
    """
    scores = list(peer_scores)
    return network_score_from_sum(math.fsum(scores), len(scores), cpu_percent, config)


def network_score_from_sum(
    score_sum: float, scored: int, cpu_percent: float, config: QualityConfig = QualityConfig()
) -> float:
    """:func:`network_score` from the sum and count of peer scores (no list needed)."""
    cpu_part = 100.0 - min(100.0, max(0.0, cpu_percent))
    if not scored:
        return cpu_part
    weight = config.network_cpu_weight
    mean = score_sum / scored
    return min(100.0, max(0.0, (1.0 - weight) * mean + weight * cpu_part))


# --- trend ------------------------------------------------------------------------------------


def ewma(previous: float | None, value: float, alpha: float) -> float:
    """Exponentially weighted moving average; the first value seeds it."""
    return value if previous is None else previous + alpha * (value - previous)


def ewma_alpha(samples: int) -> float:
    """The smoothing factor whose EWMA has the centre of mass of an N-sample moving average."""
    return 2.0 / (samples + 1.0)


def trend(short_avg: float | None, long_avg: float | None, dead_band: float) -> Trend:
    """Compare a short moving average of the score with a long one, with a dead band.

    One good or bad sample moves the short average only partly, and differences within
    ``dead_band`` points read as stable, so the trend does not flicker.
    """
    if short_avg is None or long_avg is None:
        return "stable"
    difference = short_avg - long_avg
    if difference > dead_band:
        return "improving"
    if difference < -dead_band:
        return "degrading"
    return "stable"


# --- status -----------------------------------------------------------------------------------


def peer_status(
    *,
    score: float | None,
    consecutive_failures: int,
    idle_s: float,
    previous: Status,
    rules: StatusRules = StatusRules(),
) -> Status:
    """Connected, degraded or disconnected, from failures in a row, idle time and score."""
    if (
        consecutive_failures >= rules.disconnected_after_failures
        or idle_s >= rules.disconnected_after_idle_s
    ):
        return "disconnected"
    if (
        consecutive_failures >= rules.degraded_after_failures
        or idle_s >= rules.degraded_after_idle_s
    ):
        return "degraded"
    if score is not None:
        line = rules.degraded_below_score
        if previous != "connected":
            line += rules.recover_margin
        if score < line:
            return "degraded"
    return "connected"
