"""SlidingCounter: events in a true sliding window at millisecond resolution."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.rate import SlidingCounter

T_MS = 1_700_000_000_000
T = T_MS / 1000.0


def at(ms: int) -> float:
    """``ms`` milliseconds after T (exactly representable at whole milliseconds)."""
    return (T_MS + ms) / 1000.0


@pytest.mark.parametrize("window", [0.0, -1.0, math.nan, math.inf, 0.0004])
def test_invalid_window_is_refused(window):
    with pytest.raises(ValueError, match="window_s"):
        SlidingCounter(window)


def test_smallest_window_is_one_millisecond():
    c = SlidingCounter(0.001)
    c.add(at(0))
    assert c.count(at(0)) == 1
    assert c.rate(at(0)) == 1000.0
    assert c.count(at(1)) == 0


def test_empty_counter():
    c = SlidingCounter()
    assert c.count(T) == 0
    assert c.rate(T) == 0.0


def test_window_is_open_at_the_start_and_closed_at_now():
    c = SlidingCounter(1.0)
    c.add(at(0))
    assert c.count(at(0)) == 1
    assert c.count(at(999)) == 1  # (now - 1 s, now] still holds 0 ms
    assert c.count(at(1000)) == 0  # 0 ms is now exactly 1 s old: out


def test_true_sliding_window_not_per_second_buckets():
    c = SlidingCounter(1.0)
    for ms in (0, 500, 900):
        c.add(at(ms))
    assert c.count(at(900)) == 3
    assert c.count(at(1200)) == 2  # (200, 1200]: 500 and 900
    assert c.count(at(1500)) == 1  # (500, 1500]: 900 only, 500 just left
    assert c.count(at(1899)) == 1
    assert c.count(at(1900)) == 0


def test_events_in_one_millisecond_share_a_bucket_and_expire_together():
    c = SlidingCounter(1.0)
    c.add(T + 0.0001)
    c.add(T + 0.0004)  # the same millisecond as the first
    c.add(T + 0.0009, 3)
    assert c.count(T + 0.5) == 5
    assert c.count(at(999)) == 5
    assert c.count(at(1000)) == 0


def test_add_counts_n_events():
    c = SlidingCounter(2.0)
    c.add(at(0), 4)
    c.add(at(100), 2)
    assert c.count(at(100)) == 6
    assert c.rate(at(100)) == 3.0  # 6 events / 2 s


def test_rate_is_events_per_second_over_the_window():
    c = SlidingCounter(1.0)
    for ms in range(0, 1000, 10):  # 100 events in one second
        c.add(at(ms))
    assert c.rate(at(999)) == 100.0
    assert c.rate(at(1499)) == 50.0  # (499, 1499]: events at 500..990 -> 50
    c2 = SlidingCounter(0.5)
    c2.add(at(0), 10)
    assert c2.rate(at(0)) == 20.0  # 10 events / 0.5 s


def test_adding_expires_old_events_too():
    c = SlidingCounter(1.0)
    c.add(at(0), 7)
    c.add(at(2000))
    assert c.count(at(2000)) == 1


def test_a_clock_that_steps_back_folds_into_the_newest_bucket():
    c = SlidingCounter(1.0)
    c.add(at(1000))
    c.add(at(500))  # stepped back: counted with the 1000 ms bucket
    assert c.count(at(1000)) == 2
    assert c.count(at(1999)) == 2
    assert c.count(at(2000)) == 0


@given(
    events=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 5)), max_size=50),
    window_ms=st.integers(1, 2_000),
    queries=st.lists(st.integers(0, 3_000), max_size=5),
)
def test_count_matches_a_naive_list(events, window_ms, queries):
    c = SlidingCounter(window_ms / 1000.0)
    log = []
    ms = 0
    for delta, n in events:
        ms += delta
        c.add(at(ms), n)
        log.append((ms, n))
        assert c.count(at(ms)) == sum(k for m, k in log if ms - window_ms < m <= ms)
    for extra in sorted(queries):
        now = ms + extra
        expected = sum(k for m, k in log if now - window_ms < m <= now)
        assert c.count(at(now)) == expected
        assert c.rate(at(now)) == expected * 1000.0 / window_ms
