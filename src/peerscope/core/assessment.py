"""Turning a peer's raw measurements into its derived figures: score, MOS, trend, status."""

from __future__ import annotations

from peerscope.core import quality
from peerscope.core.model import Peer
from peerscope.core.quality import QualityConfig, Status, StatusRules


def current_jitter(peer: Peer, config: QualityConfig) -> float:
    """Jitter by the configured method: the running RFC 3550 value or the seed's stddev."""
    if config.jitter_method == "stddev":
        return quality.stddev_jitter(peer.latency.values()[-config.stddev_jitter_samples:])
    return peer.jitter_ms


def assess(peer: Peer, now: float, config: QualityConfig, rules: StatusRules) -> Status | None:
    """Refresh a dirty peer's score, band, grade, MOS, trend and status.

    Returns the new status if it changed, else None. A peer with no latency measured yet
    has no score, MOS or grade: an unmeasured link is unknown, not perfect.
    """
    peer.dirty = False
    latency = peer.smoothed_latency_ms
    if latency is not None:
        jitter = current_jitter(peer, config)
        loss = peer.loss_percent
        score = quality.quality_score(latency, loss, jitter, config)
        peer.quality_score = score
        peer.band = quality.quality_band(score, config)
        peer.grade = quality.grade(score, config)
        peer.mos = quality.mos(latency, jitter, loss)
        peer.trend_short = quality.ewma(peer.trend_short, score,
                                        quality.ewma_alpha(config.trend_short_samples))
        peer.trend_long = quality.ewma(peer.trend_long, score,
                                       quality.ewma_alpha(config.trend_long_samples))
        peer.trend = quality.trend(peer.trend_short, peer.trend_long, config.trend_dead_band)
    return update_status(peer, now, rules)


def update_status(peer: Peer, now: float, rules: StatusRules) -> Status | None:
    """Re-evaluate status (idle time grows even when nothing is recorded)."""
    status = quality.peer_status(
        score=peer.quality_score,
        consecutive_failures=peer.consecutive_failures,
        idle_s=peer.idle(now),
        previous=peer.status,
        rules=rules,
    )
    if status == peer.status:
        return None
    peer.status = status
    peer.status_since = now
    return status
