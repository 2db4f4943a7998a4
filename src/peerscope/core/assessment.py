"""Turning a peer's raw measurements into its judged figures: score, trend and status.

A tick refreshes every changed peer, so this work is kept to what the tick needs for all of
them: the score (ordering and the network score), the trend averages (they are stateful)
and the status (the counts). Band, grade, MOS and the trend word are cheap functions of
these and are derived only for the peers that are shown (see :func:`derived`).
"""

from __future__ import annotations

from typing import TypedDict

from peerscope.core import quality
from peerscope.core.model import Peer
from peerscope.core.quality import Band, Grade, QualityConfig, Status, StatusRules, Trend

UNSCORED = 101.0  # ranks unmeasured peers after every scored one within their status
_SEVERITY: dict[Status, float] = {"disconnected": 0.0, "degraded": 1000.0, "connected": 2000.0}


class Derived(TypedDict):
    band: Band | None
    grade: Grade | None
    mos: float | None
    trend: Trend


def current_jitter(peer: Peer, config: QualityConfig) -> float:
    """Jitter by the configured method: the running RFC 3550 value or the seed's stddev."""
    if config.jitter_method == "stddev":
        return quality.stddev_jitter(peer.latency.values()[-config.stddev_jitter_samples:])
    return peer.jitter_ms


class Assessor:
    """Refreshes peers under one configuration; its constants are computed once."""

    __slots__ = ("_alpha_long", "_alpha_short", "config", "rules")

    def __init__(self, config: QualityConfig, rules: StatusRules) -> None:
        self.config = config
        self.rules = rules
        self._alpha_short = quality.ewma_alpha(config.trend_short_samples)
        self._alpha_long = quality.ewma_alpha(config.trend_long_samples)

    def assess(self, peer: Peer, now: float) -> Status | None:
        """Refresh a changed peer's score, trend averages and status.

        Returns the new status if it changed, else None. A peer with no latency measured
        yet has no score: an unmeasured link is unknown, not perfect.
        """
        peer.dirty = False
        latency = peer.smoothed_latency_ms
        if latency is not None:
            score = quality.quality_score(latency, peer.loss_percent,
                                          current_jitter(peer, self.config), self.config)
            peer.quality_score = score
            peer.trend_short = quality.ewma(peer.trend_short, score, self._alpha_short)
            peer.trend_long = quality.ewma(peer.trend_long, score, self._alpha_long)
        changed = self.update_status(peer, now)
        if changed is None:
            peer.rank = rank(peer)
        return changed

    def may_change_status(self, peer: Peer, now: float) -> bool:
        """Whether idle time alone could move an unchanged peer's status: a cheap pre-check."""
        status = peer.status
        if status == "disconnected":
            return False
        idle = now - peer.last_seen
        if status == "connected":
            return idle >= self.rules.degraded_after_idle_s
        return idle >= self.rules.disconnected_after_idle_s

    def update_status(self, peer: Peer, now: float) -> Status | None:
        """Re-evaluate status; returns the new one if it changed."""
        status = quality.peer_status(
            score=peer.quality_score,
            consecutive_failures=peer.consecutive_failures,
            idle_s=peer.idle(now),
            previous=peer.status,
            rules=self.rules,
        )
        if status == peer.status:
            return None
        peer.status = status
        peer.status_since = now
        peer.rank = rank(peer)
        return status

    def derived(self, peer: Peer) -> Derived:
        """Band, grade, MOS and trend of a peer, from its latest refresh."""
        config = self.config
        score = peer.quality_score
        latency = peer.smoothed_latency_ms
        if score is None or latency is None:
            return Derived(band=None, grade=None, mos=None, trend="stable")
        return Derived(
            band=quality.quality_band(score, config),
            grade=quality.grade(score, config),
            mos=quality.mos(latency, current_jitter(peer, config), peer.loss_percent),
            trend=quality.trend(peer.trend_short, peer.trend_long, config.trend_dead_band),
        )


def rank(peer: Peer) -> float:
    """Sort key, lowest = worst: status severity first, then score (unscored last)."""
    score = peer.quality_score
    return _SEVERITY[peer.status] + (UNSCORED if score is None else score)
