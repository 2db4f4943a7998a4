"""Series: a ring of (t, value) with millisecond times and float32 values."""

from __future__ import annotations

import math
import struct
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.series import Series

# Epoch-sized times, as time.time() gives. For a whole number of ms in this range,
# int((ms / 1000) * 1000.0) == ms exactly: t is within 2^-23 s of ms/1000, so t*1000 is within
# 1000·2^-23 < 2^-13 (half an ulp at ~1.7e12) of ms and rounds back to it.
T = 1_700_000_000.0
T_MS = 1_700_000_000_000
DAY = 86_400.0


def f32(value: float) -> float:
    """What a float32 slot gives back for ``value``."""
    return struct.unpack("f", struct.pack("f", value))[0]


def values(series: Series) -> list[float]:
    """The stored values, oldest first, as iteration gives them."""
    return [value for _, value in series]


def newest(series: Series) -> tuple[float, float] | None:
    """The newest sample, as iteration gives it (None when empty)."""
    samples = list(series)
    return samples[-1] if samples else None


def at(ms: int) -> float:
    """The time ``ms`` milliseconds after T."""
    return (T_MS + ms) / 1000.0


# --- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_below_one_is_refused(capacity):
    with pytest.raises(ValueError, match="capacity"):
        Series(capacity)


def test_empty_series():
    s = Series(4)
    assert len(s) == 0
    assert newest(s) is None
    assert values(s) == []
    assert list(s) == []
    assert s.mean() is None
    assert list(s.window(10.0, T)) == []


def test_each_sample_costs_eight_bytes():
    # What a ring allocates, less what a one-sample ring does (the objects' own overhead).
    def allocated(capacity: int) -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            ring = Series(capacity)
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            del ring
            tracemalloc.stop()

    assert allocated(3601) - allocated(1) == 3600 * 8


# --- appending and the ring -------------------------------------------------------------------


def test_samples_come_back_oldest_first():
    s = Series(5)
    s.append(T, 10.0)
    s.append(T + 1, 20.0)
    s.append(T + 2, 30.0)
    assert len(s) == 3
    assert list(s) == [(T, 10.0), (T + 1, 20.0), (T + 2, 30.0)]
    assert values(s) == [10.0, 20.0, 30.0]
    assert newest(s) == (T + 2, 30.0)


def test_ring_wraps_and_keeps_the_last_capacity_samples():
    s = Series(3)
    for k in range(1, 8):  # 7 samples into 3 slots: keeps samples 5, 6, 7
        s.append(T + k, float(k))
    assert len(s) == 3
    assert values(s) == [5.0, 6.0, 7.0]
    assert list(s) == [(T + 5, 5.0), (T + 6, 6.0), (T + 7, 7.0)]
    assert newest(s) == (T + 7, 7.0)
    assert s.mean() == 6.0  # (5 + 6 + 7) / 3


def test_ring_of_one_keeps_only_the_newest():
    s = Series(1)
    s.append(T, 1.0)
    s.append(T + 1, 2.0)
    assert list(s) == [(T + 1, 2.0)]
    assert s.mean() == 2.0


def test_exactly_full_ring_then_one_more():
    s = Series(4)
    for k in range(4):
        s.append(T + k, float(k))
    assert values(s) == [0.0, 1.0, 2.0, 3.0]
    assert newest(s) == (T + 3, 3.0)
    s.append(T + 4, 4.0)
    assert values(s) == [1.0, 2.0, 3.0, 4.0]
    assert newest(s) == (T + 4, 4.0)


# --- mean ---------------------------------------------------------------------------------------


def test_mean_is_the_mean_of_the_float32_values_stored():
    s = Series(4)
    for k, value in enumerate([0.1, 0.2, 0.3]):
        s.append(T + k, value)
    # (float32(0.1) + float32(0.2) + float32(0.3)) / 3; not 0.2.
    expected = math.fsum([f32(0.1), f32(0.2), f32(0.3)]) / 3
    assert s.mean() == pytest.approx(expected, rel=1e-15, abs=0)
    assert abs(s.mean() - 0.2) > 1e-9


def test_mean_follows_the_ring_through_many_laps():
    s = Series(5)
    for k in range(53):
        s.append(T + k, k * 1.1)
        assert s.mean() == pytest.approx(math.fsum(values(s)) / len(s), rel=1e-15, abs=0)
    # After 53 appends the ring holds samples 48..52.
    assert values(s) == [f32(k * 1.1) for k in range(48, 53)]
    assert s.mean() == pytest.approx(
        math.fsum(f32(k * 1.1) for k in range(48, 53)) / 5, rel=1e-15, abs=0
    )


def test_mean_of_a_full_ring_of_real_latencies_is_within_float64_rounding():
    s = Series(360)
    latencies = [0.05 + (k * 7919 % 1000) * 0.313 for k in range(1000)]  # 0.05-313 ms, mixed
    for k, value in enumerate(latencies):
        s.append(T + k, value)
    exact = math.fsum(values(s)) / 360
    assert s.mean() == pytest.approx(exact, rel=1e-13, abs=0)


def test_mean_of_a_part_filled_ring_ignores_empty_slots():
    s = Series(10)
    s.append(T, 4.0)
    s.append(T + 1, 8.0)
    assert s.mean() == 6.0


# --- float32 values and millisecond times ----------------------------------------------------


@pytest.mark.parametrize("value", [0.1, 1 / 3, 12.345678, 1e-3, 123456.789, -2.5, 0.0])
def test_values_are_stored_as_float32(value):
    s = Series(2)
    s.append(T, value)
    assert values(s) == [f32(value)]
    assert newest(s) == (T, f32(value))


def test_float32_keeps_about_seven_significant_digits():
    s = Series(1)
    s.append(T, 12.345678)
    assert values(s)[0] == pytest.approx(12.345678, rel=1e-7)
    assert values(s)[0] != 12.345678


def test_times_are_kept_to_the_millisecond_rounding_down():
    s = Series(3)
    s.append(T + 0.1234, 1.0)  # the base: 1_700_000_000_123 ms
    s.append(T + 0.5678, 2.0)  # 567.8 ms -> 567 ms
    s.append(T + 2.0009, 3.0)  # 2000.9 ms -> 2000 ms
    assert [t for t, _ in s] == [at(123), at(567), at(2000)]
    assert newest(s) == (at(2000), 3.0)


def test_times_before_the_first_sample_are_kept():
    s = Series(3)
    s.append(T, 1.0)
    s.append(T - 5.0, 2.0)  # negative offset from the base
    assert list(s) == [(T, 1.0), (T - 5.0, 2.0)]
    assert newest(s) == (T - 5.0, 2.0)


# --- window -------------------------------------------------------------------------------------


def test_window_is_open_at_the_start_and_closed_at_now():
    s = Series(10)
    for k in range(1, 6):
        s.append(T + k, float(k))
    # now - window < t <= now with now = T+5, window 2: (T+3, T+5] -> samples 4 and 5.
    assert list(s.window(2.0, T + 5)) == [(T + 4, 4.0), (T + 5, 5.0)]
    # now = T+4: (T+2, T+4] -> 3 and 4; 5 is after now and excluded.
    assert list(s.window(2.0, T + 4)) == [(T + 3, 3.0), (T + 4, 4.0)]
    # A window just wider than 2 s reaches sample 3.
    assert [v for _, v in s.window(2.001, T + 5)] == [3.0, 4.0, 5.0]


def test_window_of_zero_is_empty_and_a_huge_window_holds_everything():
    s = Series(4)
    for k in range(4):
        s.append(T + k, float(k))
    assert list(s.window(0.0, T + 3)) == []
    assert [v for _, v in s.window(1e9, T + 3)] == [0.0, 1.0, 2.0, 3.0]


def test_window_at_millisecond_boundaries():
    s = Series(4)
    s.append(at(0), 1.0)
    s.append(at(1), 2.0)
    s.append(at(2), 3.0)
    # (at(1) - 0.001, at(1)] = (at(0), at(1)] -> only the sample at 1 ms.
    assert list(s.window(0.001, at(1))) == [(at(1), 2.0)]
    assert [v for _, v in s.window(0.002, at(2))] == [2.0, 3.0]


def test_window_only_sees_what_the_ring_still_holds():
    s = Series(2)
    for k in range(5):
        s.append(T + k, float(k))
    assert [v for _, v in s.window(100.0, T + 4)] == [3.0, 4.0]


# --- rebase after ~24.8 days --------------------------------------------------------------------


def test_rebase_keeps_samples_within_reach_and_drops_older_ones():
    # int32 ms reaches 2^31 - 1 ms = 24.855 days from the base.
    s = Series(4)
    s.append(T, 1.0)
    s.append(T + 10 * DAY, 2.0)
    s.append(T + 20 * DAY, 3.0)
    # 30 days after the base does not fit: the base moves to T+30d. The T sample would be
    # -30 days from it (out of reach) and is dropped; the 10- and 20-day ones are kept.
    s.append(T + 30 * DAY, 4.0)
    assert list(s) == [(T + 10 * DAY, 2.0), (T + 20 * DAY, 3.0), (T + 30 * DAY, 4.0)]
    assert len(s) == 3
    assert s.mean() == 3.0  # (2 + 3 + 4) / 3
    assert newest(s) == (T + 30 * DAY, 4.0)
    # Appending carries on normally from the new base, wrapping as usual.
    s.append(T + 31 * DAY, 5.0)
    s.append(T + 32 * DAY, 6.0)
    assert values(s) == [3.0, 4.0, 5.0, 6.0]
    assert s.mean() == 4.5  # (3 + 4 + 5 + 6) / 4


def test_rebase_just_past_24_8_days():
    s = Series(3)
    s.append(T, 1.0)
    s.append(T + 24.8 * DAY, 2.0)  # 2_142_720_000 ms: still fits in int32
    assert list(s) == [(T, 1.0), (T + 24.8 * DAY, 2.0)]
    s.append(T + 24.9 * DAY, 3.0)  # 2_151_360_000 ms: rebase, T is now out of reach
    assert list(s) == [(T + 24.8 * DAY, 2.0), (T + 24.9 * DAY, 3.0)]
    assert s.mean() == 2.5


def test_rebase_of_a_full_ring_overwrites_the_oldest():
    s = Series(3)
    s.append(T, 1.0)
    s.append(T + 10 * DAY, 2.0)
    s.append(T + 20 * DAY, 3.0)
    s.append(T + 24 * DAY, 4.0)  # fits: overwrites the T sample
    assert values(s) == [2.0, 3.0, 4.0]
    s.append(T + 26 * DAY, 5.0)  # rebase keeps 10d, 20d, 24d (full), then drops 10d
    assert list(s) == [(T + 20 * DAY, 3.0), (T + 24 * DAY, 4.0), (T + 26 * DAY, 5.0)]
    assert s.mean() == 4.0  # (3 + 4 + 5) / 3


def test_rebase_backwards_in_time():
    s = Series(3)
    s.append(T, 1.0)
    s.append(T - 30 * DAY, 2.0)  # -30 days does not fit: rebase, T is out of reach now
    assert list(s) == [(T - 30 * DAY, 2.0)]
    assert s.mean() == 2.0


# --- properties against a naive reference ----------------------------------------------------

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class NaiveSeries:
    """A plain list of (ms, value) with the same rules: last ``capacity`` items, and when a
    time is more than int32 ms away from the base, the base moves to it and samples it can no
    longer reach are dropped."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
        self.base = None

    def append(self, ms, value):
        if self.base is None:
            self.base = ms
        if not _INT32_MIN <= ms - self.base <= _INT32_MAX:
            self.base = ms
            self.items = [(m, v) for m, v in self.items if _INT32_MIN <= m - ms <= _INT32_MAX]
        self.items = [*self.items, (ms, f32(value))][-self.capacity :]


_steps = st.lists(
    st.tuples(
        st.one_of(st.integers(-5_000, 5_000), st.integers(-20 * 86_400_000, 40 * 86_400_000)),
        st.floats(-1e6, 1e6, allow_nan=False, width=32),
    ),
    max_size=40,
)


@given(capacity=st.integers(1, 8), steps=_steps)
def test_series_matches_a_naive_list(capacity, steps):
    s = Series(capacity)
    ref = NaiveSeries(capacity)
    ms = 0
    for delta, value in steps:
        ms += delta
        s.append(at(ms), value)
        ref.append(ms, value)
        assert len(s) == len(ref.items)
        assert newest(s) == (at(ref.items[-1][0]), ref.items[-1][1])
    assert list(s) == [(at(m), v) for m, v in ref.items]
    assert values(s) == [v for _, v in ref.items]
    if ref.items:
        expected = math.fsum(v for _, v in ref.items) / len(ref.items)
        # The running total's rounding is relative to every value it has held since it was
        # last summed afresh (once a lap), not only to those still stored.
        scale = max(abs(v) for _, v in steps)
        assert s.mean() == pytest.approx(expected, rel=0, abs=1e-14 * scale)
    else:
        assert s.mean() is None


@given(
    capacity=st.integers(1, 8),
    deltas=st.lists(st.integers(0, 3_000), max_size=30),
    window_ms=st.integers(0, 20_000),
    now_ms=st.integers(-1_000, 60_000),
)
def test_window_matches_a_naive_filter(capacity, deltas, window_ms, now_ms):
    s = Series(capacity)
    kept = []
    ms = 0
    for k, delta in enumerate(deltas):
        ms += delta
        s.append(at(ms), float(k))
        kept = [*kept, (at(ms), float(k))][-capacity:]
    now, window = at(now_ms), window_ms / 1000.0
    assert list(s.window(window, now)) == [(t, v) for t, v in kept if now - window < t <= now]


@given(
    capacity=st.integers(1, 8),
    deltas=st.lists(st.integers(-2_000, 3_000), max_size=30),
    window_ms=st.integers(0, 20_000),
    now_ms=st.integers(-5_000, 60_000),
)
def test_window_values_are_the_window_s_values(capacity, deltas, window_ms, now_ms):
    """Whether every sample is in the window (read in one go) or not (one by one), and
    with the clock stepping back: the values of window(), in storage order."""
    s = Series(capacity)
    ms = 0
    for k, delta in enumerate(deltas):
        ms += delta
        s.append(at(ms), float(k))
    now, window = at(now_ms), window_ms / 1000.0
    found = s.window_values(window, now)
    assert sorted(found) == sorted(v for _, v in s.window(window, now))
    assert all(type(value) is float for value in found)


def test_window_values_of_a_full_ring_wholly_in_the_window_are_all_of_them():
    s = Series(3)
    for k in range(5):
        s.append(T + k, float(k))
    # Storage order: the ring wrapped, 3 and 4 overwrote 0 and 1.
    assert s.window_values(60.0, T + 10) == [3.0, 4.0, 2.0]
    assert s.window_values(2.5, T + 4) == [3.0, 4.0, 2.0]
    assert s.window_values(1.5, T + 4) == [3.0, 4.0]
    assert Series(3).window_values(60.0, T) == []
