"""Turning a peer's raw measurements into its judged figures: score, trend and status.

A tick refreshes every changed peer, so this work is kept to what the tick needs for all of
them: the score (ordering and the network score), the trend averages (they are stateful)
and the status (the counts). Band, grade, MOS and the trend word are cheap functions of
these and are derived only for the peers that are shown (see :func:`derived`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypedDict

from peerscope.core import quality
from peerscope.core.model import Peer
from peerscope.core.quality import Band, Grade, QualityConfig, Status, StatusRules, Trend

UNSCORED = 101.0  # ranks unmeasured peers after every scored one within their status
_CONNECTED = 2000.0
_SEVERITY: dict[Status, float] = {"disconnected": 0.0, "degraded": 1000.0, "connected": _CONNECTED}


@dataclass(slots=True)
class Sweep:
    """What one pass over the peers found (see :meth:`Assessor.sweep`)."""

    changes: list[tuple[Peer, Status, Status]] = field(default_factory=list)
    assessed: list[Peer] = field(default_factory=list)  # the changed ones, refreshed
    expired: list[Peer] = field(default_factory=list)
    score_sum: float = 0.0
    scored: int = 0
    latency_sum: float = 0.0
    measured: int = 0


class Derived(TypedDict):
    jitter_ms: float
    band: Band | None
    grade: Grade | None
    mos: float | None
    trend: Trend


def current_jitter(peer: Peer, config: QualityConfig) -> float:
    """Jitter by the configured method: the running RFC 3550 value or the seed's stddev."""
    if config.jitter_method == "stddev":
        return quality.stddev_jitter(peer.latency.tail(config.stddev_jitter_samples))
    return peer.jitter_ms


class Assessor:
    """Refreshes peers under one configuration; its constants are computed once."""

    __slots__ = ("_alpha_long", "_alpha_short", "_smoothing", "_stddev_jitter", "config", "rules")

    def __init__(self, config: QualityConfig, rules: StatusRules) -> None:
        self.config = config
        self.rules = rules
        self._alpha_short = quality.ewma_alpha(config.trend_short_samples)
        self._alpha_long = quality.ewma_alpha(config.trend_long_samples)
        self._stddev_jitter = config.jitter_method == "stddev"
        self._smoothing = config.latency_smoothing

    def assess(self, peer: Peer, now: float) -> Status | None:
        """Refresh a changed peer's score, trend averages and status.

        Returns the new status if it changed, else None. A peer with no latency measured
        yet has no score: an unmeasured link is unknown, not perfect.
        """
        # Runs for every changed peer on every tick: locals over repeated attribute lookups.
        peer.dirty = False
        count = peer.unfolded
        if count == 1:
            # The usual case: one sample since the last refresh, taken in without allocating
            # (a tuple per peer per tick would wake the garbage collector). The steps are
            # quality.rfc3550_jitter and quality.ewma, inline; tests hold them to the same
            # results.
            peer.unfolded = 0
            sample = peer.last_latency_ms
            previous, smoothed = peer.folded_latency_ms, peer.smoothed_latency_ms
            if sample is not None:
                if previous is None or smoothed is None:
                    peer.smoothed_latency_ms = sample
                else:
                    change = sample - previous
                    jitter = peer.jitter_ms
                    peer.jitter_ms = (
                        jitter + ((change if change >= 0.0 else -change) - jitter) / 16.0
                    )
                    peer.smoothed_latency_ms = smoothed + self._smoothing * (sample - smoothed)
                peer.folded_latency_ms = sample
        elif count:
            self._fold_many(peer, count)
        latency = peer.smoothed_latency_ms
        if latency is not None:
            config = self.config
            jitter = current_jitter(peer, config) if self._stddev_jitter else peer.jitter_ms
            # Peer.loss_percent, inline, skipping the call for the usual loss-free peer.
            reported = peer.reported_loss_percent
            if reported is None:
                tracker = peer.loss
                loss = tracker.loss_percent if tracker.window_lost else 0.0
            else:
                loss = reported
            new_score = quality.quality_score(latency, loss, jitter, config)
            peer.quality_score = new_score
            # quality.ewma, inline (twice per changed peer per tick).
            short, long = peer.trend_short, peer.trend_long
            peer.trend_short = (
                new_score if short is None else short + self._alpha_short * (new_score - short)
            )
            peer.trend_long = (
                new_score if long is None else long + self._alpha_long * (new_score - long)
            )
        rules = self.rules
        score = peer.quality_score
        if (
            peer.status == "connected"
            and peer.consecutive_failures < rules.degraded_after_failures
            and now - peer.last_seen < rules.degraded_after_idle_s
            and (score is None or score >= rules.degraded_below_score)
        ):
            # The common case, settled without calling quality.peer_status: a healthy peer
            # stays connected (tests hold this shortcut to peer_status's answer).
            peer.rank = _CONNECTED + (UNSCORED if score is None else score)
            return None
        changed = self.update_status(peer, now)
        if changed is None:
            peer.rank = rank(peer)
        return changed

    def _fold_many(self, peer: Peer, count: int) -> None:
        """Take several samples recorded since the last refresh into jitter and smoothing.

        The hot path only stores samples; the RFC 3550 and EWMA steps happen at refresh,
        in order. The samples come from the ring (float32); any it overwrote before this
        refresh are skipped.
        """
        peer.unfolded = 0
        jitter, smoothed = peer.jitter_ms, peer.smoothed_latency_ms
        previous = peer.folded_latency_ms
        for sample in peer.latency.tail(count):
            if previous is not None:
                jitter = quality.rfc3550_jitter(jitter, previous, sample)
            smoothed = quality.ewma(smoothed, sample, self._smoothing)
            previous = sample
        peer.jitter_ms, peer.smoothed_latency_ms = jitter, smoothed
        peer.folded_latency_ms = previous

    def refresh(self, peer: Peer, now: float) -> Status | None:
        """Bring one peer up to date: assess it if it changed, else re-check idle time."""
        if peer.dirty:
            return self.assess(peer, now)
        if self.may_change_status(peer, now):
            return self.update_status(peer, now)
        return None

    def sweep(self, peers: Iterable[Peer], now: float, ttl_s: float) -> Sweep:
        """A tick's one pass over every peer: refresh, find the expired, sum for averages.

        A peer disconnected for ``ttl_s`` or longer is listed in ``expired`` and left out of
        the sums. Status changes are listed as (peer, previous, new), the peers that had
        changed (and were assessed) in ``assessed``.
        """
        result = Sweep()
        changes, expired = result.changes, result.expired
        assessed = result.assessed.append
        assess, update_status = self.assess, self.update_status
        degraded_idle = self.rules.degraded_after_idle_s
        disconnected_idle = self.rules.disconnected_after_idle_s
        score_sum = latency_sum = 0.0
        scored = measured = 0
        for peer in peers:
            previous = peer.status
            if peer.dirty:
                assessed(peer)
                changed = assess(peer, now)
            elif previous == "disconnected":
                changed = None
            # may_change_status, inline: this branch runs for every quiet peer every tick.
            elif now - peer.last_seen >= (
                degraded_idle if previous == "connected" else disconnected_idle
            ):
                changed = update_status(peer, now)
            else:
                changed = None
            if changed is not None:
                changes.append((peer, previous, changed))
            elif previous == "disconnected" and now - peer.status_since >= ttl_s:
                expired.append(peer)
                continue
            score = peer.quality_score
            if score is not None:
                score_sum += score
                scored += 1
            latency = peer.smoothed_latency_ms
            if latency is not None:
                latency_sum += latency
                measured += 1
        result.score_sum, result.scored = score_sum, scored
        result.latency_sum, result.measured = latency_sum, measured
        return result

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
        previous = peer.status
        status = quality.peer_status(
            score=peer.quality_score,
            consecutive_failures=peer.consecutive_failures,
            idle_s=now - peer.last_seen,
            previous=previous,
            rules=self.rules,
        )
        if status == previous:
            return None
        peer.status = status
        peer.status_since = now
        peer.rank = rank(peer)
        return status

    def jitter(self, peer: Peer) -> float:
        """The peer's jitter by the configured method (see :func:`current_jitter`)."""
        return current_jitter(peer, self.config) if self._stddev_jitter else peer.jitter_ms

    def derived(self, peer: Peer) -> Derived:
        """Jitter (by the configured method), band, grade, MOS and trend of a peer."""
        config = self.config
        score = peer.quality_score
        latency = peer.smoothed_latency_ms
        jitter = current_jitter(peer, config)
        if score is None or latency is None:
            return Derived(jitter_ms=jitter, band=None, grade=None, mos=None, trend="stable")
        return Derived(
            jitter_ms=jitter,
            band=quality.quality_band(score, config),
            grade=quality.grade(score, config),
            mos=quality.mos(latency, jitter, peer.loss_percent),
            trend=quality.trend(peer.trend_short, peer.trend_long, config.trend_dead_band),
        )


def expire_probes(peer: Peer, now: float) -> int:
    """Count the peer's probes in flight past their timeout as lost; return how many.

    Each is a failed measurement too, so a peer that stopped answering goes degraded, then
    disconnected, by the failure rules without any further reply.
    """
    expired = peer.loss.expire(now)
    if expired:
        peer.consecutive_failures += expired
        peer.dirty = True
    return expired


def rank(peer: Peer) -> float:
    """Sort key, lowest = worst: status severity first, then score (unscored last)."""
    score = peer.quality_score
    return _SEVERITY[peer.status] + (UNSCORED if score is None else score)
