"""quality: jitter, score, band, grade, R, MOS, network score, trend, status and their config."""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.quality import (
    GRADE_OF_BAND,
    STATUSES,
    QualityConfig,
    StatusRules,
    ewma,
    ewma_alpha,
    grade,
    impairment_score,
    limits,
    mos,
    network_score,
    network_score_from_sum,
    peer_status,
    quality_band,
    quality_score,
    r_factor,
    rfc3550_jitter,
    seed_score,
    stddev_jitter,
    trend,
)

# --- RFC 3550 jitter ---------------------------------------------------------------------------


def test_rfc3550_jitter_has_a_gain_of_one_sixteenth():
    assert rfc3550_jitter(0.0, 10.0, 26.0) == 1.0  # 0 + (16 - 0) / 16
    assert rfc3550_jitter(1.0, 26.0, 10.0) == 1.9375  # 1 + (16 - 1) / 16, |D| for a drop too
    assert rfc3550_jitter(16.0, 20.0, 20.0) == 15.0  # no change: decays by 1/16
    assert rfc3550_jitter(4.0, 10.0, 14.0) == 4.0  # |D| equal to J: stays


def test_rfc3550_jitter_converges_to_a_steady_step():
    jitter, previous = 0.0, 10.0
    for k in range(400):
        current = 26.0 if k % 2 == 0 else 10.0  # alternates: |D| = 16 every time
        jitter = rfc3550_jitter(jitter, previous, current)
        previous = current
    # J_n = 16·(1 - (15/16)^n); after 400 steps within 1e-9 of 16.
    assert jitter == pytest.approx(16.0, abs=1e-9)


def test_rfc3550_jitter_of_a_constant_latency_is_zero():
    jitter = 0.0
    for _ in range(10):
        jitter = rfc3550_jitter(jitter, 25.0, 25.0)
    assert jitter == 0.0


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=100))
def test_rfc3550_jitter_is_never_negative(latencies):
    jitter = 0.0
    for previous, current in itertools.pairwise(latencies):
        jitter = rfc3550_jitter(jitter, previous, current)
        assert jitter >= 0.0
    # Never above the largest step seen: it is a running mean of |D| starting at 0.
    steps = [abs(b - a) for a, b in itertools.pairwise(latencies)]
    assert jitter <= max(steps, default=0.0) * (1 + 1e-12)


# --- stddev jitter ------------------------------------------------------------------------------


def test_stddev_jitter_below_two_samples_is_zero():
    assert stddev_jitter([]) == 0.0
    assert stddev_jitter([42.0]) == 0.0


def test_stddev_jitter_is_the_sample_standard_deviation():
    assert stddev_jitter([20.0, 30.0, 40.0]) == 10.0  # sqrt((100 + 0 + 100) / 2)
    assert stddev_jitter([10.0, 20.0]) == pytest.approx(math.sqrt(50.0), abs=1e-12)
    # mean 5, squared deviations sum to 32, n - 1 = 7
    assert stddev_jitter([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(math.sqrt(32 / 7), abs=1e-12)
    assert stddev_jitter([7.0] * 5) == 0.0


# --- quality score -------------------------------------------------------------------------------


def test_perfect_link_scores_100():
    assert quality_score(0.0, 0.0, 0.0) == 100.0


SEED = QualityConfig(score_method="seed")


def test_the_default_score_is_the_impairment_score():
    assert QualityConfig().score_method == "impairment"
    assert quality_score(30.0, 10.0, 1.0) == impairment_score(30.0, 10.0, 1.0)
    assert quality_score(30.0, 10.0, 1.0, SEED) == seed_score(30.0, 10.0, 1.0)


def test_seed_score_formula_with_the_default_weights():
    # 0.40·(100 − 30/1.5) + 0.35·(100 − 1·20) + 0.25·(100 − 10·2) = 32 + 28 + 20 = 80
    assert seed_score(latency_ms=30.0, loss_percent=1.0, jitter_ms=10.0) == pytest.approx(
        80.0, abs=1e-12
    )
    # 0.40·80 + 0.35·(100 − 200 -> 0) + 0.25·(100 − 2) = 32 + 0 + 24.5 = 56.5
    assert seed_score(latency_ms=30.0, loss_percent=10.0, jitter_ms=1.0) == 56.5
    # 100 ms: 0.40·33.33 + 0.35·80 + 0.25·80 = 13.33 + 28 + 20 = 61.33
    assert seed_score(100.0, 1.0, 10.0) == pytest.approx(61.0 + 1 / 3, abs=1e-12)


def test_impairment_score_takes_each_part_off_the_whole():
    # 100 − 0.40·30/1.5 − 0.35·1·20 − 0.25·10·2 = 100 − 8 − 7 − 5 = 80: the seed's figure,
    # as no part of the seed's formula is below zero here.
    assert impairment_score(30.0, 1.0, 10.0) == pytest.approx(80.0, abs=1e-12)
    # 10 % loss costs 70 points, not the seed's 35: 100 − 8 − 70 − 0.5 = 21.5
    assert impairment_score(30.0, 10.0, 1.0) == pytest.approx(21.5, abs=1e-12)
    assert impairment_score(0.5, 0.0, 0.1) == pytest.approx(100 - 0.2 / 1.5 - 0.05, abs=1e-12)


@pytest.mark.parametrize(
    ("latency", "loss", "jitter", "expected"),
    [
        (150.0, 0.0, 0.0, 60.0),  # latency part exactly 0
        (1000.0, 0.0, 0.0, 60.0),  # and never negative
        (0.0, 5.0, 0.0, 65.0),  # loss part exactly 0
        (0.0, 100.0, 0.0, 65.0),  # why the seed's formula is not the default
        (0.0, 0.0, 50.0, 75.0),  # jitter part exactly 0
        (0.0, 0.0, 1e9, 75.0),
        (150.0, 5.0, 50.0, 0.0),  # all three parts 0
        (1e9, 100.0, 1e9, 0.0),
    ],
)
def test_each_part_of_the_seed_score_floors_at_zero(latency, loss, jitter, expected):
    assert seed_score(latency, loss, jitter) == expected


@pytest.mark.parametrize(
    ("latency", "loss", "jitter", "expected"),
    [
        (150.0, 0.0, 0.0, 60.0),  # the latency part's whole weight
        (375.0, 0.0, 0.0, 0.0),  # latency alone makes it 0
        (0.0, 5.0, 0.0, 65.0),
        (0.0, 100.0 / 7, 0.0, 0.0),  # 14.3 % loss alone makes it 0
        (0.0, 100.0, 0.0, 0.0),
        (0.0, 0.0, 200.0, 0.0),  # jitter alone
    ],
)
def test_any_one_terrible_part_makes_the_impairment_score_terrible(latency, loss, jitter, expected):
    assert impairment_score(latency, loss, jitter) == pytest.approx(expected, abs=1e-9)


def test_score_weights_and_slopes_come_from_config():
    for method in ("impairment", "seed"):
        latency_only = QualityConfig(
            score_method=method, latency_weight=1.0, loss_weight=0.0, jitter_weight=0.0
        )
        assert quality_score(30.0, 40.0, 50.0, latency_only) == 80.0  # 100 − 30/1.5
    steeper = QualityConfig(
        latency_ms_per_point=1.0, loss_points_per_percent=10.0, jitter_points_per_ms=4.0
    )
    # 100 − 0.40·30 − 0.35·20 − 0.25·20 = 100 − 12 − 7 − 5 = 76
    assert quality_score(30.0, 2.0, 5.0, steeper) == pytest.approx(76.0, abs=1e-12)
    lenient = QualityConfig(loss_points_per_percent=0.0, jitter_points_per_ms=0.0)
    assert quality_score(0.0, 49.0, 1e6, lenient) == 100.0


def test_the_loss_rules_hold_whatever_the_weights():
    lenient = QualityConfig(loss_weight=0.0)
    assert quality_score(0.0, 49.9, 0.0, lenient) == 100.0
    assert quality_score(0.0, 50.0, 0.0, lenient) == lenient.poor_min  # never better than poor
    assert quality_band(quality_score(0.0, 50.0, 0.0, lenient)) == "poor"
    assert quality_score(0.0, 100.0, 0.0, lenient) == 0.0


def test_score_is_clamped_to_0_100():
    heavy = QualityConfig(
        score_method="seed", latency_weight=1.0, loss_weight=1.0, jitter_weight=1.0
    )
    assert quality_score(0.0, 0.0, 0.0, heavy) == 100.0  # 300 before the clamp
    assert quality_score(15.0, 0.0, 0.0, heavy) == 100.0  # 290
    assert quality_score(-150.0, 0.0, 0.0, SEED) == 100.0  # 0.40·200 + 35 + 25 = 140
    assert quality_score(-150.0, 0.0, 0.0) == 100.0  # 100 + 40
    light = QualityConfig(
        score_method="seed", latency_weight=0.5, loss_weight=0.0, jitter_weight=0.0
    )
    assert quality_score(0.0, 0.0, 0.0, light) == 50.0  # weights need not sum to 1


def test_limits_are_where_each_seed_part_reaches_zero():
    assert limits() == (150.0, 5.0, 50.0)
    assert limits(QualityConfig(loss_points_per_percent=0.0))[1] == math.inf


_finite = st.floats(0, 1e9, allow_nan=False, allow_infinity=False)


_percent = st.floats(0, 100, allow_nan=False)
_weight = st.floats(0, 1, allow_nan=False)


@given(
    latency=_finite,
    loss=_percent,
    jitter=_finite,
    weights=st.tuples(_weight, _weight, _weight),
)
def test_heavy_loss_is_never_better_than_poor_and_total_loss_is_zero(
    latency, loss, jitter, weights
):
    config = QualityConfig(
        latency_weight=weights[0], loss_weight=weights[1], jitter_weight=weights[2]
    )
    score = quality_score(latency, loss, jitter, config)
    if loss >= 50.0:
        assert score <= config.poor_min
        assert quality_band(score, config) in ("poor", "bad")
    if loss >= 100.0:
        assert score == 0.0
        assert grade(score, config) == "F"


@given(latency=_finite, loss=_finite, jitter=_finite)
def test_score_and_mos_stay_in_range(latency, loss, jitter):
    assert 0.0 <= quality_score(latency, loss, jitter) <= 100.0
    assert 0.0 <= seed_score(latency, loss, jitter) <= 100.0
    assert 0.0 <= r_factor(latency, jitter, loss) <= 100.0
    assert 1.0 <= mos(latency, jitter, loss) <= 4.5


@given(a=_finite, b=_finite, x=_finite, y=_finite)
def test_score_is_monotone_non_increasing_in_each_input(a, b, x, y):
    low, high = min(a, b), max(a, b)
    assert quality_score(high, x, y) <= quality_score(low, x, y)  # latency
    assert quality_score(x, high, y) <= quality_score(x, low, y)  # loss
    assert quality_score(x, y, high) <= quality_score(x, y, low)  # jitter
    assert seed_score(high, x, y) <= seed_score(low, x, y)
    assert seed_score(x, high, y) <= seed_score(x, low, y)
    assert seed_score(x, y, high) <= seed_score(x, y, low)


@given(a=_finite, b=_finite, x=_finite, y=_finite)
def test_mos_is_monotone_non_increasing_in_each_input(a, b, x, y):
    low, high = min(a, b), max(a, b)
    # R is exactly monotone; the cubic may wobble by an ulp, hence the tolerance.
    assert r_factor(high, x, y) <= r_factor(low, x, y)
    assert r_factor(x, high, y) <= r_factor(x, low, y)
    assert r_factor(x, y, high) <= r_factor(x, y, low)
    assert mos(high, x, y) <= mos(low, x, y) + 1e-12
    assert mos(x, high, y) <= mos(x, low, y) + 1e-12
    assert mos(x, y, high) <= mos(x, y, low) + 1e-12


# --- band and grade --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "band", "letter"),
    [
        (100.0, "excellent", "A"),
        (90.0, "excellent", "A"),
        (89.999, "good", "B"),
        (75.0, "good", "B"),
        (74.999, "fair", "C"),
        (60.0, "fair", "C"),
        (59.999, "poor", "D"),
        (40.0, "poor", "D"),
        (39.999, "bad", "F"),
        (0.0, "bad", "F"),
    ],
)
def test_one_scale_thresholds_belong_to_the_better_band(score, band, letter):
    assert quality_band(score) == band
    assert grade(score) == letter


@given(score=st.floats(0, 100, allow_nan=False))
def test_band_and_letter_always_agree(score):
    assert GRADE_OF_BAND[quality_band(score)] == grade(score)


def test_band_thresholds_come_from_config():
    config = QualityConfig(excellent_min=95.0, good_min=70.0, fair_min=50.0, poor_min=20.0)
    assert [quality_band(s, config) for s in (95.0, 94.9, 70.0, 69.9, 50.0, 49.9, 19.9)] == [
        "excellent",
        "good",
        "good",
        "fair",
        "fair",
        "poor",
        "bad",
    ]
    assert [grade(s, config) for s in (95.0, 70.0, 50.0, 20.0, 19.9)] == list("ABCDF")


# --- R factor and MOS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latency", "jitter", "loss", "expected"),
    [
        (0.0, 0.0, 0.0, 92.95),  # Leff 10: 93.2 − 10/40
        (50.0, 5.0, 0.0, 91.45),  # Leff 70: 93.2 − 1.75
        (140.0, 0.0, 0.0, 89.45),  # Leff 150: 93.2 − 3.75
        (149.9, 0.0, 0.0, 89.2025),  # Leff 159.9 < 160: 93.2 − 3.9975
        (150.0, 0.0, 0.0, 89.2),  # Leff 160: second branch, 93.2 − 40/10 (branches meet)
        (140.0, 5.0, 0.0, 89.2),  # Leff 160 again, reached through jitter
        (160.0, 0.0, 0.0, 88.2),  # Leff 170: 93.2 − 50/10 (first branch would give 88.95)
        (200.0, 25.0, 2.0, 74.2),  # Leff 260: 93.2 − 14 − 2.5·2
        (0.0, 0.0, 10.0, 67.95),  # 92.95 − 25
        (18.0, 0.0, 13.0, 60.0),  # Leff 28: 93.2 − 0.7 − 32.5
        (1000.0, 0.0, 0.0, 4.2),  # Leff 1010: 93.2 − 890/10
        (0.0, 0.0, 50.0, 0.0),  # 92.95 − 125 -> clamped to 0
        (1200.0, 0.0, 0.0, 0.0),  # Leff 1210: 93.2 − 109 -> clamped to 0
        (-400.0, 0.0, 0.0, 100.0),  # Leff −390: 93.2 + 9.75 -> clamped to 100
    ],
)
def test_r_factor_both_branches_and_clamping(latency, jitter, loss, expected):
    assert r_factor(latency, jitter, loss) == pytest.approx(expected, abs=1e-9)


def test_r_factor_is_continuous_at_leff_160():
    below = r_factor(150.0 - 1e-9, 0.0, 0.0)
    at = r_factor(150.0, 0.0, 0.0)
    assert below == pytest.approx(at, abs=1e-9)
    # ... but four times steeper past it: one more ms costs 0.1 instead of 0.025.
    assert r_factor(149.0, 0.0, 0.0) - at == pytest.approx(0.025, abs=1e-9)
    assert at - r_factor(151.0, 0.0, 0.0) == pytest.approx(0.1, abs=1e-9)


@pytest.mark.parametrize(
    ("latency", "jitter", "loss", "expected"),
    [
        # R 92.95: 1 + 3.25325 + 7e-6·92.95·32.95·7.05 = 4.404394368375
        (0.0, 0.0, 0.0, 4.404394368375),
        # R 92.15 (Leff 42): 1 + 3.22525 + 7e-6·92.15·32.15·7.85 = 4.388046106375
        (30.0, 1.0, 0.0, 4.388046106375),
        # R 60: the cubic term vanishes, 1 + 2.1
        (18.0, 0.0, 13.0, 3.1),
        # R 74.2 (Leff 260): 1 + 2.597 + 7e-6·74.2·14.2·25.8 = 3.787287384
        (200.0, 25.0, 2.0, 3.787287384),
        # R 0 (clamped): 1
        (0.0, 0.0, 50.0, 1.0),
        # R 4.2: 1 + 0.147 + 7e-6·4.2·(−55.8)·95.8 = 0.98983... -> clamped to 1
        (50.0, 0.0, 35.0, 1.0),
        # R 100 (clamped from 102.95): 1 + 3.5 + 0
        (-400.0, 0.0, 0.0, 4.5),
    ],
)
def test_mos(latency, jitter, loss, expected):
    assert mos(latency, jitter, loss) == pytest.approx(expected, abs=1e-12)


def test_mos_clamps_the_cubic_dip_below_one():
    # For R between 0 and about 6.5 the cubic dips below 1 (min ~0.989 at R ~3.2).
    r = r_factor(50.0, 0.0, 35.0)
    assert r == pytest.approx(4.2, abs=1e-9)
    raw = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)
    assert raw == pytest.approx(0.98983, abs=1e-5)
    assert mos(50.0, 0.0, 35.0) == 1.0


def test_mos_reaches_4_5_only_at_r_100():
    assert mos(-400.0, 0.0, 0.0) == 4.5  # R clamped to 100: 1 + 3.5 + 0
    assert mos(-1e9, 0.0, 0.0) == 4.5
    assert mos(0.0, 0.0, 0.0) < 4.41  # the best a real link gets (R 92.95)


# --- network score ----------------------------------------------------------------------------


def test_network_score_weights_peers_and_cpu():
    # 0.9·mean(80, 60) + 0.1·(100 − 20) = 63 + 8
    assert network_score([80.0, 60.0], 20.0) == pytest.approx(71.0, abs=1e-12)
    assert network_score([100.0], 0.0) == 100.0
    assert network_score([0.0], 100.0) == 0.0


def test_network_score_without_peers_is_the_idle_cpu():
    assert network_score([], 30.0) == 70.0
    assert network_score([], 0.0) == 100.0
    assert network_score(iter([]), 100.0) == 0.0


def test_network_score_clamps_cpu():
    assert network_score([50.0], 150.0) == 45.0  # CPU part 0: 0.9·50
    assert network_score([50.0], -10.0) == pytest.approx(55.0, abs=1e-12)  # CPU part 100
    assert network_score([], 250.0) == 0.0


def test_network_score_cpu_weight_comes_from_config():
    config = QualityConfig(network_cpu_weight=0.5)
    assert network_score([80.0], 40.0, config) == 70.0  # 0.5·80 + 0.5·60
    no_cpu = QualityConfig(network_cpu_weight=0.0)
    assert network_score([80.0, 40.0], 99.0, no_cpu) == 60.0


def test_network_score_reads_a_generator_once():
    assert network_score((s for s in (90.0, 70.0)), 0.0) == pytest.approx(82.0, abs=1e-12)


def test_network_score_from_sum_and_count():
    # sum 140 over 2 peers: 0.9·70 + 0.1·(100 − 20) = 71
    assert network_score_from_sum(140.0, 2, 20.0) == pytest.approx(71.0, abs=1e-12)
    assert network_score_from_sum(0.0, 0, 30.0) == 70.0  # no scored peer
    assert network_score_from_sum(50.0, 1, 150.0) == 45.0
    config = QualityConfig(network_cpu_weight=0.5)
    assert network_score_from_sum(80.0, 1, 40.0, config) == 70.0


@given(scores=st.lists(st.floats(0, 100), max_size=20), cpu=st.floats(-50, 150))
def test_network_score_forms_agree_and_stay_in_range(scores, cpu):
    value = network_score(scores, cpu)
    assert 0.0 <= value <= 100.0
    assert value == network_score_from_sum(math.fsum(scores), len(scores), cpu)


# --- EWMA and trend -----------------------------------------------------------------------------


def test_ewma():
    assert ewma(None, 42.0, 0.5) == 42.0  # the first value seeds it
    assert ewma(10.0, 20.0, 0.25) == 12.5
    assert ewma(10.0, 20.0, 1.0) == 20.0
    assert ewma(80.0, 80.0, 0.3) == 80.0


def test_ewma_alpha_matches_an_n_sample_moving_average():
    assert ewma_alpha(1) == 1.0
    assert ewma_alpha(5) == pytest.approx(1 / 3, abs=1e-15)
    assert ewma_alpha(30) == pytest.approx(2 / 31, abs=1e-15)


@pytest.mark.parametrize(
    ("short", "long", "expected"),
    [
        (None, 50.0, "stable"),
        (50.0, None, "stable"),
        (None, None, "stable"),
        (52.5, 50.0, "improving"),  # +2.5 > 2
        (52.0, 50.0, "stable"),  # +2 is inside the dead band
        (50.0, 50.0, "stable"),
        (48.0, 50.0, "stable"),  # −2 is inside too
        (47.5, 50.0, "degrading"),
    ],
)
def test_trend_with_a_dead_band(short, long, expected):
    assert trend(short, long, 2.0) == expected


def test_trend_with_no_dead_band():
    assert trend(50.1, 50.0, 0.0) == "improving"
    assert trend(50.0, 50.0, 0.0) == "stable"
    assert trend(49.9, 50.0, 0.0) == "degrading"


def test_one_bad_sample_does_not_flip_the_trend():
    short_alpha, long_alpha = ewma_alpha(5), ewma_alpha(30)
    short = long = None
    for _ in range(30):
        short, long = ewma(short, 80.0, short_alpha), ewma(long, 80.0, long_alpha)
    short, long = ewma(short, 75.0, short_alpha), ewma(long, 75.0, long_alpha)
    # short 78.33, long 79.68: −1.34 is within the band
    assert trend(short, long, 2.0) == "stable"
    for _ in range(3):
        short, long = ewma(short, 70.0, short_alpha), ewma(long, 70.0, long_alpha)
    assert trend(short, long, 2.0) == "degrading"


# --- peer status --------------------------------------------------------------------------


DEFAULT_RULES = StatusRules()


def status(score=None, failures=0, idle=0.0, previous="connected", rules=DEFAULT_RULES):
    return peer_status(
        score=score, consecutive_failures=failures, idle_s=idle, previous=previous, rules=rules
    )


def test_statuses_tuple():
    assert STATUSES == ("connected", "degraded", "disconnected")


@pytest.mark.parametrize(
    ("failures", "idle", "expected"),
    [
        (0, 0.0, "connected"),
        (2, 0.0, "connected"),
        (3, 0.0, "degraded"),
        (9, 0.0, "degraded"),
        (10, 0.0, "disconnected"),
        (0, 14.999, "connected"),
        (0, 15.0, "degraded"),
        (0, 59.999, "degraded"),
        (0, 60.0, "disconnected"),
        (3, 60.0, "disconnected"),
    ],
)
def test_status_from_failures_and_idle_time(failures, idle, expected):
    assert status(failures=failures, idle=idle) == expected


def test_failures_and_idle_win_over_a_good_score():
    assert status(score=100.0, failures=10) == "disconnected"
    assert status(score=100.0, failures=3) == "degraded"
    assert status(score=100.0, idle=15.0) == "degraded"
    assert status(score=100.0, idle=60.0, previous="degraded") == "disconnected"


def test_score_below_the_line_degrades_a_connected_peer():
    assert status(score=60.0) == "connected"
    assert status(score=59.999) == "degraded"
    assert status(score=None) == "connected"  # no score: only failures and idle count


@pytest.mark.parametrize("previous", ["degraded", "disconnected"])
def test_recovering_needs_the_margin(previous):
    assert status(score=64.999, previous=previous) == "degraded"
    assert status(score=65.0, previous=previous) == "connected"
    assert status(score=None, previous=previous) == "connected"


def test_recover_margin_prevents_flapping():
    previous = "connected"
    seen = []
    for score in (61.0, 59.0, 61.0, 62.0, 64.0, 59.5, 66.0, 61.0, 59.0):
        previous = status(score=score, previous=previous)
        seen.append(previous)
    assert seen == [
        "connected",
        "degraded",
        "degraded",
        "degraded",
        "degraded",
        "degraded",
        "connected",
        "connected",
        "degraded",
    ]


def test_status_rules_come_from_config():
    rules = StatusRules(
        degraded_below_score=50.0,
        recover_margin=0.0,
        degraded_after_failures=1,
        disconnected_after_failures=2,
        degraded_after_idle_s=1.0,
        disconnected_after_idle_s=2.0,
    )
    assert status(score=50.0, previous="degraded", rules=rules) == "connected"
    assert status(score=49.9, rules=rules) == "degraded"
    assert status(failures=1, rules=rules) == "degraded"
    assert status(failures=2, rules=rules) == "disconnected"
    assert status(idle=1.0, rules=rules) == "degraded"
    assert status(idle=2.0, rules=rules) == "disconnected"


# --- configuration ----------------------------------------------------------------------------


def test_quality_config_defaults_keep_the_seeds_weights_on_one_scale():
    config = QualityConfig()
    assert (config.latency_weight, config.loss_weight, config.jitter_weight) == (0.40, 0.35, 0.25)
    assert (
        config.latency_ms_per_point,
        config.loss_points_per_percent,
        config.jitter_points_per_ms,
    ) == (1.5, 20.0, 2.0)
    assert (config.excellent_min, config.good_min, config.fair_min, config.poor_min) == (
        90.0,
        75.0,
        60.0,
        40.0,
    )
    assert config.score_method == "impairment"
    assert config.jitter_method == "rfc3550"
    assert config.stddev_jitter_samples == 20
    assert config.latency_smoothing == 0.125
    assert config.loss_window == 100
    assert (config.trend_short_samples, config.trend_long_samples) == (5, 30)
    assert config.trend_dead_band == 2.0
    assert config.network_cpu_weight == 0.1


def test_status_rules_defaults():
    rules = StatusRules()
    assert (rules.degraded_below_score, rules.recover_margin) == (60.0, 5.0)
    assert (rules.degraded_after_failures, rules.disconnected_after_failures) == (3, 10)
    assert rules.no_reply_after_failures == 2
    assert (rules.degraded_after_idle_s, rules.disconnected_after_idle_s) == (15.0, 60.0)
    with pytest.raises(ValueError, match=r"^no_reply_after_failures: "):
        StatusRules(no_reply_after_failures=11)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        QualityConfig().latency_weight = 0.9  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        StatusRules().recover_margin = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"latency_weight": -0.1}, "latency_weight"),
        ({"latency_weight": 1.5}, "latency_weight"),
        ({"loss_weight": math.nan}, "loss_weight"),
        ({"jitter_weight": 2.0}, "jitter_weight"),
        ({"network_cpu_weight": -1.0}, "network_cpu_weight"),
        ({"latency_ms_per_point": 0.0}, "latency_ms_per_point"),
        ({"latency_ms_per_point": math.inf}, "latency_ms_per_point"),
        ({"loss_points_per_percent": -1.0}, "loss_points_per_percent"),
        ({"loss_points_per_percent": math.inf}, "loss_points_per_percent"),
        ({"jitter_points_per_ms": -0.5}, "jitter_points_per_ms"),
        ({"jitter_points_per_ms": math.nan}, "jitter_points_per_ms"),
        ({"excellent_min": 50.0}, "excellent_min"),  # below good_min 75
        ({"fair_min": 80.0}, "excellent_min"),  # above good_min: the band order is named
        ({"poor_min": -1.0}, "excellent_min"),
        ({"excellent_min": 101.0}, "excellent_min"),
        ({"score_method": "cubic"}, "score_method"),
        ({"jitter_method": "median"}, "jitter_method"),
        ({"stddev_jitter_samples": 1}, "stddev_jitter_samples"),
        ({"latency_smoothing": 0.0}, "latency_smoothing"),
        ({"latency_smoothing": 1.5}, "latency_smoothing"),
        ({"loss_window": 0}, "loss_window"),
        ({"trend_short_samples": 0}, "trend_short_samples"),
        ({"trend_short_samples": 30}, "trend_short_samples"),  # not below long (30)
        ({"trend_long_samples": 3}, "trend_short_samples"),
        ({"trend_dead_band": -1.0}, "trend_dead_band"),
    ],
)
def test_bad_quality_config_is_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        QualityConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"degraded_below_score": -1.0}, "degraded_below_score"),
        ({"degraded_below_score": 101.0}, "degraded_below_score"),
        ({"degraded_below_score": math.nan}, "degraded_below_score"),
        ({"recover_margin": -0.1}, "recover_margin"),
        ({"degraded_after_failures": 0}, "degraded_after_failures"),
        ({"degraded_after_failures": 11}, "degraded_after_failures"),  # above disconnected
        ({"disconnected_after_failures": 2}, "degraded_after_failures"),
        ({"degraded_after_idle_s": 0.0}, "degraded_after_idle_s"),
        ({"degraded_after_idle_s": 61.0}, "degraded_after_idle_s"),
        ({"disconnected_after_idle_s": 10.0}, "degraded_after_idle_s"),
    ],
)
def test_bad_status_rules_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        StatusRules(**kwargs)


def test_valid_edge_configs_are_accepted():
    config = QualityConfig(
        latency_weight=0.0,
        loss_weight=1.0,
        jitter_weight=0.0,
        excellent_min=50.0,
        good_min=50.0,
        fair_min=50.0,
        jitter_method="stddev",
        stddev_jitter_samples=2,
        latency_smoothing=1.0,
        loss_window=1,
        trend_short_samples=1,
        trend_long_samples=2,
        trend_dead_band=0.0,
    )
    assert quality_band(50.0, config) == "excellent"
    assert quality_band(49.9, config) == "poor"
    rules = StatusRules(
        degraded_below_score=0.0,
        recover_margin=0.0,
        degraded_after_failures=5,
        disconnected_after_failures=5,
        degraded_after_idle_s=30.0,
        disconnected_after_idle_s=30.0,
    )
    assert (
        peer_status(
            score=0.0, consecutive_failures=5, idle_s=0.0, previous="connected", rules=rules
        )
        == "disconnected"
    )


def test_stddev_jitter_matches_statistics():
    values = [12.0, 15.5, 11.25, 30.0, 14.0]
    assert stddev_jitter(values) == statistics.stdev(values)
