"""stats: nearest-rank percentiles and window aggregation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.series import Series
from peerscope.core.stats import aggregate, nearest_rank

T = 1_700_000_000.0
EMPTY = {
    "count": 0,
    "min": None,
    "max": None,
    "avg": None,
    "sum": 0.0,
    "p50": None,
    "p95": None,
    "p99": None,
}


# --- nearest_rank ---------------------------------------------------------------------------


def test_nearest_rank_of_nothing_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        nearest_rank([], 0.5)


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [
        # values are 1..n, so sorted[i] == i + 1
        (1, 0.95, 1),  # min(0, int(0.95)) = 0
        (4, 0.50, 3),  # int(0.5 * 4) = 2 -> the 3rd value: leans high, no interpolation
        (10, 0.95, 10),  # int(9.5) = 9 -> the largest of 10
        (10, 0.50, 6),  # int(5.0) = 5
        (20, 0.95, 20),  # int(0.95 * 20) = int(19.0) = 19 -> the largest
        (21, 0.95, 20),  # int(19.95) = 19
        (100, 0.95, 96),  # int(95.0) = 95
        (100, 0.99, 100),  # int(99.0) = 99
        (101, 0.99, 100),  # int(99.99) = 99
        (3, 1.0, 3),  # min(2, int(3.0)) = 2: never past the end
        (5, 0.0, 1),
    ],
)
def test_nearest_rank_picks_sorted_min_n_minus_1_int_fraction_n(n, fraction, expected):
    assert nearest_rank([float(v) for v in range(1, n + 1)], fraction) == expected


# --- aggregate ---------------------------------------------------------------------------------


def test_aggregate_of_a_window():
    points = [(T + 1, 30.0), (T + 2, 10.0), (T + 3, 20.0), (T + 4, 40.0)]
    result = aggregate(points, 10.0, T + 4)
    # sorted 10, 20, 30, 40: p50 = sorted[int(2.0)] = 30, p95 = sorted[min(3, int(3.8))] = 40.
    assert result == {
        "count": 4,
        "min": 10.0,
        "max": 40.0,
        "avg": 25.0,
        "sum": 100.0,
        "p50": 30.0,
        "p95": 40.0,
        "p99": 40.0,
    }


def test_aggregate_window_is_open_at_the_start_and_closed_at_now():
    points = [(T + k, float(k)) for k in range(1, 6)]
    # (T+3, T+5]: 4 and 5 only.
    assert aggregate(points, 2.0, T + 5)["count"] == 2
    assert aggregate(points, 2.0, T + 5)["min"] == 4.0
    # (T+2, T+4]: the sample at T+5 is after now and excluded.
    result = aggregate(points, 2.0, T + 4)
    assert (result["count"], result["min"], result["max"], result["sum"]) == (2, 3.0, 4.0, 7.0)


def test_points_after_now_are_excluded_even_in_a_huge_window():
    points = [(T, 1.0), (T + 10, 1000.0)]
    result = aggregate(points, 1e9, T + 5)
    assert result["count"] == 1
    assert result["max"] == 1.0
    assert result["p99"] == 1.0


def test_aggregate_of_twenty_latencies():
    # 1..20 ms in a shuffled order: avg 10.5, sum 210,
    # p50 = sorted[int(10.0)] = 11, p95 = sorted[int(19.0)] = 20, p99 = sorted[min(19, 19)] = 20.
    values = [7, 3, 18, 1, 20, 12, 5, 9, 16, 2, 14, 11, 19, 4, 8, 15, 6, 17, 10, 13]
    points = [(T + k * 0.5, float(v)) for k, v in enumerate(values)]
    result = aggregate(points, 60.0, T + 30)
    assert result == {
        "count": 20,
        "min": 1.0,
        "max": 20.0,
        "avg": 10.5,
        "sum": 210.0,
        "p50": 11.0,
        "p95": 20.0,
        "p99": 20.0,
    }


def test_aggregate_sum_is_exact():
    points = [(T, 0.1)] * 10
    result = aggregate(points, 1.0, T)
    assert result["sum"] == 1.0  # fsum; a plain sum of ten 0.1 gives 0.9999999999999999
    assert result["avg"] == 0.1


def test_empty_window():
    assert aggregate([], 60.0, T) == EMPTY
    assert aggregate([(T - 100, 5.0)], 60.0, T) == EMPTY
    assert aggregate([(T + 1, 5.0)], 60.0, T) == EMPTY


def test_window_of_zero_is_empty():
    assert aggregate([(T, 5.0)], 0.0, T) == EMPTY


@pytest.mark.parametrize("window", [-1.0, -1e-9, math.nan, math.inf, -math.inf])
def test_invalid_window_is_refused(window):
    with pytest.raises(ValueError, match="window_s"):
        aggregate([(T, 1.0)], window, T)


def test_aggregate_reads_a_series():
    s = Series(3)
    for k in range(5):  # the ring keeps 2, 3, 4
        s.append(T + k, float(k * 10))
    result = aggregate(s, 3.0, T + 4)  # (T+1, T+4]: 20, 30, 40
    assert result == {
        "count": 3,
        "min": 20.0,
        "max": 40.0,
        "avg": 30.0,
        "sum": 90.0,
        "p50": 30.0,
        "p95": 40.0,
        "p99": 40.0,
    }


@given(
    values=st.lists(st.floats(0.0, 1000.0, width=32), min_size=1, max_size=40),
    steps_ms=st.lists(st.integers(-500, 2_000), min_size=40, max_size=40),
    window=st.floats(0.0, 100.0),
    capacity=st.integers(1, 20),
)
def test_aggregate_of_a_series_is_the_aggregate_of_its_samples(values, steps_ms, window, capacity):
    """A Series is read from its arrays; the figures are those of its (t, value) pairs."""
    s = Series(capacity)
    ms = 0
    for value, step in zip(values, steps_ms, strict=False):
        ms += step
        s.append(T + ms / 1000.0, value)
    now = T + 5.0
    assert aggregate(s, window, now) == aggregate(list(s), window, now)


def test_aggregate_accepts_a_one_shot_iterator():
    points = iter([(T, 2.0), (T + 1, 4.0)])
    assert aggregate(points, 5.0, T + 1)["avg"] == 3.0


# --- property: agrees with a naive reference ----------------------------------------------


def naive_aggregate(points, window, now):
    inside = [v for t, v in points if now - window < t <= now]
    if not inside:
        return EMPTY
    ordered = sorted(inside)
    n = len(ordered)

    def rank(fraction):
        return ordered[min(n - 1, int(fraction * n))]

    return {
        "count": n,
        "min": min(inside),
        "max": max(inside),
        "avg": math.fsum(inside) / n,
        "sum": math.fsum(inside),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
    }


_times = st.one_of(st.integers(-100, 100).map(float), st.floats(-100, 100, allow_nan=False))
_values = st.floats(-1e6, 1e6, allow_nan=False)


@given(
    points=st.lists(st.tuples(_times, _values), max_size=60),
    window=st.one_of(st.integers(0, 200).map(float), st.floats(0, 200, allow_nan=False)),
    now=_times,
)
def test_aggregate_agrees_with_a_naive_reference(points, window, now):
    result = aggregate(points, window, now)
    expected = naive_aggregate(points, window, now)
    assert result == expected
    if result["count"]:
        assert result["min"] <= result["p50"] <= result["p95"] <= result["p99"] <= result["max"]


def test_downsample_means_per_aligned_bucket_and_skips_empty_ones():
    from peerscope.core.stats import downsample

    points = [(100.0, 10.0), (104.9, 20.0), (105.0, 40.0), (119.0, 7.0)]
    assert downsample(points, 5.0) == [(100.0, 15.0), (105.0, 40.0), (115.0, 7.0)]
    assert downsample([], 5.0) == []
    assert downsample(points, 60.0) == [(60.0, 19.25)]
    for bad in (0.0, 1e-308, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="step"):
            downsample(points, bad)
