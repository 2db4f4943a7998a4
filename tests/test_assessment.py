"""assessment: a Peer's measurements turned into score, trend, status, rank and derived figures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core import quality
from peerscope.core.assessment import UNSCORED, Assessor, current_jitter, rank
from peerscope.core.loss import LossTracker
from peerscope.core.model import Peer
from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.core.series import Series

T = 1_700_000_000.0
CONFIG = QualityConfig()
RULES = StatusRules()
ASSESSOR = Assessor(CONFIG, RULES)


def make_peer(**fields):
    return Peer(
        peer_id="p1",
        latency=Series(360),
        loss=LossTracker(window=100),
        connected_at=T,
        last_seen=T,
        **fields,
    )


def record(peer, now, latency_ms, smoothing=0.125):
    """Feed one sample the way the Monitor's hot path does (ring, RFC 3550, SRTT, outcome)."""
    peer.dirty = True
    if latency_ms is None:
        peer.consecutive_failures += 1
        peer.loss.record(False)
        return
    if peer.last_latency_ms is not None:
        peer.jitter_ms = quality.rfc3550_jitter(peer.jitter_ms, peer.last_latency_ms, latency_ms)
    peer.latency.append(now, latency_ms)
    peer.last_latency_ms = latency_ms
    peer.smoothed_latency_ms = quality.ewma(peer.smoothed_latency_ms, latency_ms, smoothing)
    peer.consecutive_failures = 0
    peer.last_seen = now
    peer.loss.record(True)


def test_assessor_keeps_its_configuration():
    config = QualityConfig(trend_short_samples=3)
    rules = StatusRules(recover_margin=1.0)
    assessor = Assessor(config, rules)
    assert assessor.config is config
    assert assessor.rules is rules


# --- a peer with no latency yet ------------------------------------------------------------


def test_unmeasured_peer_has_no_score():
    peer = make_peer()
    assert ASSESSOR.assess(peer, T + 1) is None  # still connected: no change
    assert peer.dirty is False
    assert peer.quality_score is None
    assert (peer.trend_short, peer.trend_long) == (None, None)
    assert peer.status == "connected"
    assert ASSESSOR.derived(peer, T + 1) == {
        "latency_ms": None,
        "smoothed_latency_ms": None,
        "average_latency_ms": None,
        "last_measured_at": None,
        "jitter_ms": None,
        "band": None,
        "grade": None,
        "mos": None,
        "trend": "stable",
        "status_reason": {"kind": "unmeasured", "value": None, "threshold": None, "detail": None},
        "status_text": "not measured yet",
    }
    assert peer.rank == 2000.0 + UNSCORED


def test_unmeasured_peer_still_goes_degraded_when_idle():
    peer = make_peer()
    assert ASSESSOR.assess(peer, T + 15) == "degraded"
    assert peer.status == "degraded"
    assert peer.status_since == T + 15
    assert peer.quality_score == 0.0  # nothing heard for the status window: unanswered
    assert peer.rank == 1000.0
    assert ASSESSOR.derived(peer, T + 15)["status_reason"]["kind"] == "idle"


# --- figures from measurements ---------------------------------------------------------------


def test_assess_scores_the_smoothed_latency_jitter_and_loss():
    peer = make_peer()
    record(peer, T + 1, 20.0)
    record(peer, T + 2, 20.0)
    record(peer, T + 3, 100.0)
    # smoothed: 20, 20, 20 + 0.125·80 = 30; jitter: 0, then (80 − 0)/16 = 5; loss 0 %
    assert peer.smoothed_latency_ms == 30.0
    assert peer.jitter_ms == 5.0
    assert ASSESSOR.assess(peer, T + 3) is None
    # 0.40·(100 − 20) + 0.35·100 + 0.25·(100 − 10) = 32 + 35 + 22.5
    assert peer.quality_score == 89.5
    assert peer.dirty is False
    assert peer.rank == 2000.0 + 89.5
    figures = ASSESSOR.derived(peer, T + 3)
    assert figures["band"] == "good"
    assert figures["grade"] == "B"
    assert figures["last_measured_at"] == T + 3
    assert (figures["latency_ms"], figures["smoothed_latency_ms"]) == (100.0, 30.0)
    assert figures["status_text"] == "healthy"
    # Leff = 30 + 10 + 10 = 50 -> R = 93.2 − 1.25 = 91.95;
    # MOS = 1 + 3.21825 + 7e-6·91.95·31.95·8.05 = 4.383795170875
    assert figures["mos"] == pytest.approx(4.383795170875, abs=1e-12)
    assert figures["trend"] == "stable"


def test_assess_uses_the_measured_loss_window():
    peer = make_peer()
    record(peer, T + 1, 30.0)
    for _ in range(3):
        record(peer, T + 2, None)
    record(peer, T + 3, 30.0)
    # 3 lost of 5 outcomes = 60 %: 100 − 8 − 0.35·60·20 < 0 (the seed's formula: 57)
    assert peer.loss_percent == 60.0
    ASSESSOR.assess(peer, T + 3)
    assert peer.quality_score == 0.0
    figures = ASSESSOR.derived(peer, T + 3)
    assert figures["mos"] == 1.0  # R = 93.2 − 1 − 150 -> clamped to 0
    assert (figures["band"], figures["grade"]) == ("bad", "F")
    assert figures["status_reason"] == {
        "kind": "loss",
        "value": 60.0,
        "threshold": 5.0,
        "detail": None,
    }
    assert figures["status_text"] == "loss 60 % (over 5.0 %)"


def test_reported_loss_replaces_the_measured_loss():
    peer = make_peer(smoothed_latency_ms=30.0)
    peer.loss.record(False)
    assert peer.loss_percent == 100.0
    peer.reported_loss_percent = 1.0
    assert peer.loss_percent == 1.0
    ASSESSOR.assess(peer, T)
    # 0.40·80 + 0.35·(100 − 20) + 0.25·100 = 32 + 28 + 25 = 85
    assert peer.quality_score == pytest.approx(85.0, abs=1e-12)
    assert ASSESSOR.derived(peer, T)["mos"] == quality.mos(30.0, 0.0, 1.0)


def test_assess_follows_the_config():
    peer = make_peer(smoothed_latency_ms=30.0, jitter_ms=1.0)
    latency_only = Assessor(
        QualityConfig(latency_weight=1.0, loss_weight=0.0, jitter_weight=0.0, good_min=85.0),
        RULES,
    )
    latency_only.assess(peer, T)
    assert peer.quality_score == 80.0
    assert latency_only.derived(peer, T)["grade"] == "C"  # below good_min 85
    strict = Assessor(QualityConfig(excellent_min=95.0, good_min=90.0, fair_min=85.0), RULES)
    strict.assess(peer, T)
    assert peer.quality_score == pytest.approx(91.5, abs=1e-12)  # 32 + 35 + 24.5
    assert strict.derived(peer, T)["band"] == "good"
    assert ASSESSOR.derived(peer, T)["band"] == "excellent"  # same score, default bands


# --- jitter method ----------------------------------------------------------------------------


def test_rfc3550_method_uses_the_running_jitter():
    peer = make_peer(jitter_ms=7.5)
    for k, value in enumerate((10.0, 20.0, 30.0)):
        peer.latency.append(T + k, value)
    assert current_jitter(peer, CONFIG) == 7.5


def test_stddev_method_uses_the_last_n_ring_values():
    config = QualityConfig(jitter_method="stddev", stddev_jitter_samples=3)
    assessor = Assessor(config, RULES)
    peer = make_peer(jitter_ms=99.0, smoothed_latency_ms=25.0)
    for k, value in enumerate((10.0, 20.0, 30.0, 40.0)):
        peer.latency.append(T + k, value)
    assert current_jitter(peer, config) == 10.0  # stdev of 20, 30, 40; the 99 is ignored
    assessor.assess(peer, T + 4)
    # 0.40·(100 − 25/1.5) + 0.35·100 + 0.25·(100 − 20) = 33.33 + 35 + 20 = 88.33
    assert peer.quality_score == pytest.approx(88.0 + 1 / 3, abs=1e-12)
    # MOS with jitter 10: Leff = 25 + 20 + 10 = 55 -> R = 93.2 − 1.375 = 91.825
    assert assessor.derived(peer, T)["mos"] == quality.mos(25.0, 10.0, 0.0)
    assert assessor.derived(peer, T)["jitter_ms"] == 10.0  # what the message shows, too
    assert quality.r_factor(25.0, 10.0, 0.0) == pytest.approx(91.825, abs=1e-12)


def test_stddev_method_with_fewer_than_two_samples_is_zero():
    config = QualityConfig(jitter_method="stddev")
    peer = make_peer(jitter_ms=99.0)
    assert current_jitter(peer, config) == 0.0
    peer.latency.append(T, 10.0)
    assert current_jitter(peer, config) == 0.0


# --- trend -------------------------------------------------------------------------------------


def test_trend_from_short_and_long_averages():
    peer = make_peer(smoothed_latency_ms=30.0, jitter_ms=1.0)
    ASSESSOR.assess(peer, T)
    assert peer.quality_score == 91.5
    assert (peer.trend_short, peer.trend_long) == (91.5, 91.5)
    assert ASSESSOR.derived(peer, T)["trend"] == "stable"
    peer.smoothed_latency_ms = 105.0  # latency part 30: score 12 + 35 + 24.5 = 71.5
    ASSESSOR.assess(peer, T + 1)
    assert peer.quality_score == pytest.approx(71.5, abs=1e-12)
    # short = 91.5 − 20/3 = 84.833, long = 91.5 − 20·2/31 = 90.210; −5.38 < −2
    assert peer.trend_short == pytest.approx(91.5 - 20 / 3, abs=1e-9)
    assert peer.trend_long == pytest.approx(91.5 - 40 / 31, abs=1e-9)
    assert ASSESSOR.derived(peer, T)["trend"] == "degrading"


def test_trend_rises_then_settles():
    peer = make_peer(smoothed_latency_ms=105.0, jitter_ms=1.0)  # 71.5
    ASSESSOR.assess(peer, T)
    peer.smoothed_latency_ms = 30.0  # 91.5
    ASSESSOR.assess(peer, T + 1)
    assert ASSESSOR.derived(peer, T)["trend"] == "improving"
    for k in range(200):  # both averages converge on 91.5
        ASSESSOR.assess(peer, T + 2 + k)
    assert ASSESSOR.derived(peer, T)["trend"] == "stable"
    assert peer.trend_long == pytest.approx(91.5, abs=1e-3)


def test_trend_sample_counts_come_from_config():
    assessor = Assessor(QualityConfig(trend_short_samples=1, trend_long_samples=3), RULES)
    peer = make_peer(smoothed_latency_ms=30.0, jitter_ms=1.0)  # 91.5
    assessor.assess(peer, T)
    peer.smoothed_latency_ms = 105.0  # 71.5
    assessor.assess(peer, T + 1)
    assert peer.trend_short == pytest.approx(71.5, abs=1e-12)  # alpha 2/2 = 1
    assert peer.trend_long == pytest.approx(81.5, abs=1e-12)  # alpha 2/4: halfway


# --- status ------------------------------------------------------------------------------------


def score_peer(peer, latency):
    """With 4 % loss and no jitter the score is 32 + 0.40·(100 − latency/1.5)."""
    peer.smoothed_latency_ms = latency
    peer.reported_loss_percent = 4.0
    peer.jitter_ms = 0.0


def test_status_hysteresis_through_assess():
    peer = make_peer()
    # latency 48.75 -> 59, 37.5 -> 62, 30 -> 64, 22.5 -> 66
    assert [round(quality.quality_score(x, 4.0, 0.0), 9) for x in (48.75, 37.5, 30.0, 22.5)] == [
        59.0,
        62.0,
        64.0,
        66.0,
    ]
    changes = []
    for now, latency in [(1, 37.5), (2, 48.75), (3, 37.5), (4, 30.0), (5, 22.5), (6, 30.0)]:
        score_peer(peer, latency)
        peer.last_seen = T + now
        changes.append((ASSESSOR.assess(peer, T + now), peer.status))
    assert changes == [
        (None, "connected"),  # 62
        ("degraded", "degraded"),  # 59 < 60
        (None, "degraded"),  # 62 < 65: still degraded
        (None, "degraded"),  # 64 < 65
        ("connected", "connected"),  # 66 >= 65
        (None, "connected"),  # 64 >= 60
    ]
    assert peer.status_since == T + 5
    assert peer.rank == pytest.approx(2064.0, abs=1e-9)


def test_failures_degrade_and_disconnect_a_well_scored_peer():
    peer = make_peer()
    record(peer, T + 1, 10.0)
    ASSESSOR.assess(peer, T + 1)
    assert peer.status == "connected"
    for k in range(3):
        record(peer, T + 1.1 + k * 0.1, None)
    assert peer.consecutive_failures == 3
    assert ASSESSOR.assess(peer, T + 2) == "degraded"
    for _ in range(7):
        record(peer, T + 2, None)
    assert ASSESSOR.assess(peer, T + 3) == "disconnected"
    assert peer.status_since == T + 3
    # no reply to the last 10: scores 0
    assert peer.quality_score == 0.0
    assert peer.rank == 0.0
    record(peer, T + 4, 10.0)  # answers again: failures reset, heard from
    # loss is now 10 of 12 outcomes (83 %): 0 all the same, back as degraded only
    assert ASSESSOR.assess(peer, T + 4) == "degraded"
    assert peer.quality_score == 0.0


def test_update_status_follows_idle_time():
    peer = make_peer()
    assert ASSESSOR.update_status(peer, T + 14.9) is None
    assert ASSESSOR.update_status(peer, T + 15) == "degraded"
    assert peer.status_since == T + 15
    assert ASSESSOR.update_status(peer, T + 20) is None  # no change: status_since kept
    assert peer.status_since == T + 15
    assert ASSESSOR.update_status(peer, T + 60) == "disconnected"
    assert peer.status == "disconnected"
    assert peer.quality_score == 0.0  # nothing heard for the status window
    assert peer.rank == 0.0
    peer.last_seen = T + 61  # heard from again (dirty); no score, so nothing holds it back
    peer.dirty = True
    assert ASSESSOR.assess(peer, T + 61) == "connected"
    assert peer.quality_score is None
    assert peer.status_since == T + 61


def test_update_status_uses_the_rules_given():
    peer = make_peer()
    assessor = Assessor(
        CONFIG, StatusRules(degraded_after_idle_s=1.0, disconnected_after_idle_s=2.0)
    )
    assert assessor.update_status(peer, T + 1) == "degraded"
    assert assessor.update_status(peer, T + 2) == "disconnected"


def test_may_change_status_is_true_only_when_idle_time_could_move_the_status():
    peer = make_peer()
    assert ASSESSOR.may_change_status(peer, T + 14.9) is False
    assert ASSESSOR.may_change_status(peer, T + 15) is True
    peer.status = "degraded"
    assert ASSESSOR.may_change_status(peer, T + 59.9) is False
    assert ASSESSOR.may_change_status(peer, T + 60) is True
    peer.status = "disconnected"
    assert ASSESSOR.may_change_status(peer, T + 1e6) is False


def test_may_change_status_agrees_with_update_status_for_an_unchanged_peer():
    # After an assessment, a peer that records nothing changes only with idle time: whenever
    # the pre-check says no, a full re-evaluation must find no change either.
    checked = changed = 0
    for latency in (None, 22.5, 37.5, 48.75):  # no score, 66, 62, 59 (see score_peer)
        for failures in (0, 3, 10):
            for assessed_at in (0.0, 20.0, 70.0):
                peer = make_peer(consecutive_failures=failures)
                if latency is not None:
                    score_peer(peer, latency)
                ASSESSOR.assess(peer, T + assessed_at)
                for later in (0.0, 5.0, 14.9, 15.0, 30.0, 59.9, 60.0, 600.0):
                    now = T + assessed_at + later
                    if ASSESSOR.may_change_status(peer, now):
                        changed += ASSESSOR.update_status(peer, now) is not None
                    else:
                        checked += 1
                        assert ASSESSOR.update_status(peer, now) is None
    assert checked > 100
    assert changed > 10


# --- rank ----------------------------------------------------------------------------------


def test_rank_orders_worst_first():
    def ranked(status, score):
        return rank(make_peer(status=status, quality_score=score))

    order = [
        ranked("disconnected", 90.0),
        ranked("disconnected", None),
        ranked("degraded", 10.0),
        ranked("degraded", None),
        ranked("connected", 0.0),
        ranked("connected", 99.0),
        ranked("connected", None),
    ]
    assert order == sorted(order)
    assert ranked("connected", 42.5) == 2042.5
    assert ranked("degraded", None) == 1101.0


# --- the Peer figures assessment reads ------------------------------------------------------


def test_peer_derived_figures():
    peer = make_peer()
    assert peer.average_latency_ms is None
    assert peer.loss_percent == 0.0
    record(peer, T + 1, 20.0)
    record(peer, T + 2, 20.0)
    record(peer, T + 3, 100.0)
    assert peer.average_latency_ms == pytest.approx(140.0 / 3, abs=1e-12)
    assert peer.uptime(T + 10) == 10.0
    assert peer.uptime(T - 5) == 0.0  # never negative
    assert peer.idle(T + 10) == 7.0  # last heard at T+3
    assert peer.idle(T) == 0.0
    peer.messages_sent, peer.messages_received = 3, 4
    assert peer.message_count == 7


@given(
    latency=st.one_of(st.none(), st.floats(0.0, 400.0)),
    reported_loss=st.floats(0.0, 100.0),
    failures=st.integers(0, 12),
    idle=st.floats(0.0, 90.0),
    previous=st.sampled_from(quality.STATUSES),
)
def test_assess_shortcut_agrees_with_peer_status(latency, reported_loss, failures, idle, previous):
    """assess() settles healthy connected peers without peer_status; it must agree with it."""
    now = T + 100.0
    peer = make_peer(
        smoothed_latency_ms=latency,
        reported_loss_percent=reported_loss,
        consecutive_failures=failures,
        status=previous,
    )
    peer.last_seen = now - idle
    ASSESSOR.assess(peer, now)
    expected = quality.peer_status(
        score=peer.quality_score,
        consecutive_failures=failures,
        idle_s=idle,
        previous=previous,
        rules=RULES,
    )
    assert peer.status == expected
    assert peer.rank == rank(peer)
