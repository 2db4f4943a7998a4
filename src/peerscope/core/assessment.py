"""Turning a peer's raw measurements into its judged figures: score, trend and status.

A tick refreshes every changed peer, so this work is kept to what the tick needs for all of
them: the score (ordering and the network score), the trend averages (they are stateful)
and the status (the counts). Band, grade, MOS, the trend word and the status reason are
cheap functions of these and are derived only for the peers that are shown (see
:meth:`Assessor.derived`).

A peer that is *unanswered* (its last ``no_reply_after_failures`` measurements failed, or
nothing was heard from it for the status window, ``degraded_after_idle_s``) scores 0 and
shows no latency, jitter or MOS: its last figures describe a link that is not there now.
A peer heard from but not measured for the status window (*stale*) has no score and no
figures: nothing says how its link is now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypedDict

from peerscope.core import quality
from peerscope.core.model import Peer
from peerscope.core.quality import Band, Grade, QualityConfig, Status, StatusRules, Trend
from peerscope.core.status_reason import StatusReason, status_reason, with_path

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
    """A shown peer's judged figures; the measured ones are None while it is unanswered or
    stale."""

    latency_ms: float | None
    smoothed_latency_ms: float | None
    average_latency_ms: float | None
    last_measured_at: float | None
    jitter_ms: float | None
    band: Band | None
    grade: Grade | None
    mos: float | None
    trend: Trend
    status_reason: StatusReason
    status_text: str


def current_jitter(peer: Peer, config: QualityConfig) -> float:
    """Jitter by the configured method: the running RFC 3550 value or the seed's stddev."""
    if config.jitter_method == "stddev":
        return quality.stddev_jitter(peer.latency.tail(config.stddev_jitter_samples))
    return peer.jitter_ms


class Assessor:
    """Refreshes peers under one configuration; its constants are computed once."""

    __slots__ = (
        "_alpha_long",
        "_alpha_short",
        "_no_reply",
        "_score",
        "_smoothing",
        "_stddev_jitter",
        "_window",
        "config",
        "rules",
    )

    def __init__(self, config: QualityConfig, rules: StatusRules) -> None:
        self.config = config
        self.rules = rules
        self._alpha_short = quality.ewma_alpha(config.trend_short_samples)
        self._alpha_long = quality.ewma_alpha(config.trend_long_samples)
        self._stddev_jitter = config.jitter_method == "stddev"
        self._smoothing = config.latency_smoothing
        self._score = (
            quality.seed_score if config.score_method == "seed" else quality.impairment_score
        )
        self._no_reply = rules.no_reply_after_failures
        self._window = rules.degraded_after_idle_s

    def assess(self, peer: Peer, now: float) -> Status | None:
        """Refresh a changed peer's score, trend averages and status.

        Returns the new status if it changed, else None. A peer with no latency measured
        yet has no score (an unmeasured link is unknown, not perfect) until a measurement
        of it fails: then nothing ever came back, and it scores 0.
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
        new_score: float | None = None
        failures = peer.consecutive_failures
        if failures >= self._no_reply or (failures and latency is None):
            # No reply lately, or never one: nothing came back, whatever came before.
            new_score = peer.quality_score = 0.0
        elif latency is None or (not count and self._stale(peer, now)):
            peer.quality_score = None  # unknown: nothing measured (lately)
        else:
            config = self.config
            jitter = current_jitter(peer, config) if self._stddev_jitter else peer.jitter_ms
            # Peer.loss_percent, inline, skipping the call for the usual loss-free peer.
            reported = peer.reported_loss_percent
            if reported is None:
                tracker = peer.loss
                loss = tracker.loss_percent if tracker.window_lost else 0.0
            else:
                loss = reported
            new_score = peer.quality_score = self._score(latency, loss, jitter, config)
        if new_score is not None:
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

    def _stale(self, peer: Peer, now: float) -> bool:
        """Measured, but not within the status window."""
        last = peer.last_measured_at
        return last is not None and now - last >= self._window

    def unanswered(self, peer: Peer, now: float) -> bool:
        """Its last measurements failed, or nothing was heard from it for the status window."""
        return peer.consecutive_failures >= self._no_reply or now - peer.last_seen >= self._window

    def shows_figures(self, peer: Peer, now: float) -> bool:
        """Whether its latency, jitter and MOS describe the link now: neither unanswered nor
        stale (everywhere a peer is shown: entries, tick readings)."""
        # unanswered() and _stale(), inline: a tick asks this of every peer that changed.
        window = self._window
        if peer.consecutive_failures >= self._no_reply or now - peer.last_seen >= window:
            return False
        last = peer.latency.newest_time()
        return last is None or now - last < window

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
        if now - peer.last_seen >= self._window:
            peer.quality_score = 0.0  # unanswered: nothing heard for the status window
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

    def derived(self, peer: Peer, now: float) -> Derived:
        """The judged figures of a peer shown at ``now``."""
        config = self.config
        score = peer.quality_score
        last_measured = peer.last_measured_at
        shown = self.shows_figures(peer, now)
        latency = peer.smoothed_latency_ms if shown else None
        jitter = None if latency is None else current_jitter(peer, config)
        loss = peer.loss_percent
        reason, text = status_reason(
            now=now,
            problem=peer.problem,
            failures=peer.consecutive_failures,
            last_seen=peer.last_seen,
            last_measured_at=last_measured,
            latency_ms=latency,
            loss_percent=loss,
            jitter_ms=jitter or 0.0,
            score=score,
            config=config,
            rules=self.rules,
        )
        if peer.path is not None:
            reason, text = with_path(reason, text, peer.path, now)
        band = None if score is None else quality.quality_band(score, config)
        return Derived(
            latency_ms=peer.last_latency_ms if shown else None,
            smoothed_latency_ms=latency,
            average_latency_ms=peer.average_latency_ms if shown else None,
            last_measured_at=last_measured,
            jitter_ms=jitter,
            band=band,
            grade=None if band is None else quality.GRADE_OF_BAND[band],
            mos=None if latency is None or jitter is None else quality.mos(latency, jitter, loss),
            trend="stable"
            if score is None
            else quality.trend(peer.trend_short, peer.trend_long, config.trend_dead_band),
            status_reason=reason,
            status_text=text,
        )


def expire_probes(peer: Peer, now: float) -> int:
    """Count the peer's probes in flight past their timeout as lost; return how many.

    Each is a failed measurement too, so a peer that stopped answering goes degraded, then
    disconnected, by the failure rules without any further reply.
    """
    tracker = peer.loss
    if now < tracker.next_expiry:  # nothing due: skip making the bound method below
        return 0
    expired = tracker.expire(now, peer.note_loss)
    if expired:
        peer.consecutive_failures += expired
        peer.dirty = True
    return expired


def rank(peer: Peer) -> float:
    """Sort key, lowest = worst: status severity first, then score (unscored last)."""
    score = peer.quality_score
    return _SEVERITY[peer.status] + (UNSCORED if score is None else score)
