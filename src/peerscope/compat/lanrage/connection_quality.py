"""LANrage's second scorer, ``ConnectionQualityMonitor``: bandwidth and stability beside
latency, jitter and loss, with a rolling average and hourly aggregates of its samples.

The class keeps LANrage's names, arguments and dict shapes and can be used on its own, fed
with explicit figures as in LANrage. The figures it makes itself are peerscope's:

- The score keeps LANrage's weights and normalisations (latency 0.30 at 2 ms a point,
  jitter 0.15 at 2 points a ms, loss 0.25 at a point a percent, bandwidth 0.15 at 5 points
  an Mbit/s, stability 0.15) but takes each part off the whole as an impairment, as
  peerscope's default score does (:func:`peerscope.core.quality.impairment_score`): where
  latency is under 200 ms and jitter under 50 ms the two agree exactly; past that, latency
  and jitter keep costing instead of stopping at their weight, 100 % loss scores 0 and
  50 % or more at most 40 (LANrage read 75 at 100 % loss).
- Grades are peerscope's one scale (A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, F), not LANrage's
  (A ≥ 90, B ≥ 70, C ≥ 50, D ≥ 30).
- Without a ``jitter_ms`` the jitter is :func:`peerscope.core.quality.stddev_jitter` of the
  window: the sample standard deviation (n − 1), where LANrage divided by n.
- ``record_measurement`` also takes ``jitter_ms`` and ``stability_percent``: the collector
  passes the Monitor's own figures (see :mod:`peerscope.compat.lanrage.metrics`).
- Time comes from ``clock`` (default ``time.time``); windows keep samples with
  ``now − window < t <= now``. ``forget_peer`` drops a peer's samples and counters.
- Samples are frozen; bad input raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from peerscope.core import quality
from peerscope.core.quality import QualityConfig
from peerscope.core.stats import group_by_step
from peerscope.core.validation import validate_count, validate_id, validate_number

__all__ = ["ConnectionQualityMonitor", "ConnectionQualitySample"]

# LANrage's latency, jitter and loss weights and slopes as a peerscope score configuration:
# impairment_score over them is LANrage's three parts, taken off the whole.
_IMPAIRMENTS = QualityConfig(
    latency_weight=0.30,
    jitter_weight=0.15,
    loss_weight=0.25,
    latency_ms_per_point=2.0,
    jitter_points_per_ms=2.0,
    loss_points_per_percent=1.0,
)
_BANDWIDTH_WEIGHT = 0.15
_BANDWIDTH_POINTS_PER_MBPS = 5.0
_STABILITY_WEIGHT = 0.15
_HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class ConnectionQualitySample:
    """One scored measurement of a peer."""

    timestamp: float
    latency_ms: float
    jitter_ms: float
    packet_loss_percent: float
    bandwidth_mbps: float
    stability_percent: float
    quality_score: float
    quality_grade: str


class ConnectionQualityMonitor:
    """Scored measurements per peer: the newest ``window_size`` of each are kept."""

    def __init__(
        self,
        window_size: int = 100,
        rolling_window_seconds: float = 300,
        hourly_history_hours: float = 24,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_size = validate_count(window_size, "window_size")
        if self.window_size < 1:
            raise ValueError("window_size: must be at least 1, got 0")
        self.rolling_window_seconds = validate_number(
            rolling_window_seconds, "rolling_window_seconds"
        )
        self.hourly_history_hours = validate_number(hourly_history_hours, "hourly_history_hours")
        self._clock = clock
        self.samples: dict[str, deque[ConnectionQualitySample]] = {}
        self.peer_registered_at: dict[str, float] = {}
        self.measurement_attempts: dict[str, int] = {}
        self.successful_measurements: dict[str, int] = {}

    def register_peer(self, peer_id: str) -> None:
        """Start tracking a peer; a known one is left as it is."""
        if peer_id not in self.samples:
            validate_id(peer_id)
            self.samples[peer_id] = deque(maxlen=self.window_size)
            self.peer_registered_at[peer_id] = self._clock()
            self.measurement_attempts[peer_id] = 0
            self.successful_measurements[peer_id] = 0

    def forget_peer(self, peer_id: str) -> None:
        """Drop a peer's samples and counters (nothing happens for an unknown one)."""
        for table in (
            self.samples,
            self.peer_registered_at,
            self.measurement_attempts,
            self.successful_measurements,
        ):
            table.pop(peer_id, None)

    def record_failed_measurement(self, peer_id: str) -> None:
        """A measurement of the peer that got no answer: it lowers the stability."""
        self.register_peer(peer_id)
        self.measurement_attempts[peer_id] += 1

    def record_measurement(
        self,
        peer_id: str,
        latency_ms: float,
        packet_loss_percent: float = 0.0,
        bandwidth_mbps: float = 100.0,
        timestamp: float | None = None,
        *,
        jitter_ms: float | None = None,
        stability_percent: float | None = None,
    ) -> ConnectionQualitySample:
        """Score one answered measurement and keep it.

        Without ``jitter_ms`` the jitter is the standard deviation of the kept latencies and
        this one; without ``stability_percent`` the stability is the answered share of the
        peer's measurements so far, this one included.
        """
        validate_id(peer_id)
        latency = validate_number(latency_ms, "latency_ms")
        loss = validate_number(packet_loss_percent, "packet_loss_percent", high=100.0)
        bandwidth = validate_number(bandwidth_mbps, "bandwidth_mbps")
        now = self._clock() if timestamp is None else validate_number(timestamp, "timestamp")
        if jitter_ms is not None:
            jitter_ms = validate_number(jitter_ms, "jitter_ms")
        if stability_percent is not None:
            stability_percent = validate_number(stability_percent, "stability_percent", high=100)
        self.register_peer(peer_id)
        window = self.samples[peer_id]
        self.measurement_attempts[peer_id] += 1
        self.successful_measurements[peer_id] += 1
        if jitter_ms is None:
            jitter_ms = quality.stddev_jitter([s.latency_ms for s in window] + [latency])
        if stability_percent is None:
            answered = self.successful_measurements[peer_id]
            stability_percent = 100.0 * answered / self.measurement_attempts[peer_id]
        score, grade = self.calculate_quality_score(
            latency, jitter_ms, loss, bandwidth, stability_percent
        )
        sample = ConnectionQualitySample(
            timestamp=now,
            latency_ms=latency,
            jitter_ms=jitter_ms,
            packet_loss_percent=loss,
            bandwidth_mbps=bandwidth,
            stability_percent=stability_percent,
            quality_score=score,
            quality_grade=grade,
        )
        window.append(sample)
        return sample

    @staticmethod
    def calculate_quality_score(
        latency_ms: float,
        jitter_ms: float,
        packet_loss_percent: float,
        bandwidth_mbps: float,
        stability_percent: float,
    ) -> tuple[float, str]:
        """Score 0..100 and its grade from the five figures (see the module docstring)."""
        latency = validate_number(latency_ms, "latency_ms")
        jitter = validate_number(jitter_ms, "jitter_ms")
        loss = validate_number(packet_loss_percent, "packet_loss_percent", high=100.0)
        bandwidth = validate_number(bandwidth_mbps, "bandwidth_mbps")
        stability = validate_number(stability_percent, "stability_percent", high=100.0)
        bandwidth_points = min(100.0, bandwidth * _BANDWIDTH_POINTS_PER_MBPS)
        score = (
            quality.impairment_score(latency, loss, jitter, _IMPAIRMENTS)
            - _BANDWIDTH_WEIGHT * (100.0 - bandwidth_points)
            - _STABILITY_WEIGHT * (100.0 - stability)
        )
        score = max(0.0, score)
        return score, quality.grade(score)

    @staticmethod
    def score_to_grade(score: float) -> str:
        """The score's letter on peerscope's one scale: A, B, C, D or F."""
        return quality.grade(validate_number(score, "score", high=100.0))

    def get_latest(self, peer_id: str) -> ConnectionQualitySample | None:
        """The peer's newest sample; None if it has none."""
        window = self.samples.get(peer_id)
        return window[-1] if window else None

    def get_rolling_average(self, peer_id: str) -> dict[str, float | str] | None:
        """Averages of the peer's samples in the last ``rolling_window_seconds``; None if
        there are none."""
        recent = self._recent(peer_id, self.rolling_window_seconds)
        if not recent:
            return None
        score = _mean(s.quality_score for s in recent)
        return {
            "sample_count": float(len(recent)),
            "avg_score": score,
            "grade": quality.grade(score),
            "avg_latency_ms": _mean(s.latency_ms for s in recent),
            "avg_jitter_ms": _mean(s.jitter_ms for s in recent),
            "avg_packet_loss_percent": _mean(s.packet_loss_percent for s in recent),
            "avg_bandwidth_mbps": _mean(s.bandwidth_mbps for s in recent),
            "avg_stability_percent": _mean(s.stability_percent for s in recent),
        }

    def get_hourly_aggregates(self, peer_id: str) -> list[dict[str, float | str]]:
        """The peer's kept samples of the last ``hourly_history_hours`` by clock hour, oldest
        first: count, average score with its grade, average latency and loss."""
        recent = self._recent(peer_id, self.hourly_history_hours * _HOUR_S)
        # One grouping per figure: the buckets are aligned to the hour, so they line up.
        scores = group_by_step(((s.timestamp, s.quality_score) for s in recent), _HOUR_S)
        latencies = group_by_step(((s.timestamp, s.latency_ms) for s in recent), _HOUR_S)
        losses = group_by_step(((s.timestamp, s.packet_loss_percent) for s in recent), _HOUR_S)
        aggregates: list[dict[str, float | str]] = []
        for (start, hour_scores), (_, hour_latencies), (_, hour_losses) in zip(
            scores, latencies, losses, strict=True
        ):
            score = _mean(hour_scores)
            aggregates.append(
                {
                    "hour_start": start,
                    "sample_count": float(len(hour_scores)),
                    "avg_score": score,
                    "grade": quality.grade(score),
                    "avg_latency_ms": _mean(hour_latencies),
                    "avg_packet_loss_percent": _mean(hour_losses),
                }
            )
        return aggregates

    def _recent(self, peer_id: str, window_s: float) -> Sequence[ConnectionQualitySample]:
        window = self.samples.get(peer_id)
        if not window:
            return ()
        now = self._clock()
        start = now - window_s
        return [s for s in window if start < s.timestamp <= now]


def _mean(values: Iterable[float]) -> float:
    numbers = list(values)
    return math.fsum(numbers) / len(numbers)
