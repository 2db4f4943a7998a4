"""The quantile sketch: every quantile within its relative error, merging equal to counting
everything at once, and bad input refused by name."""

from __future__ import annotations

import math
import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.sketch import QuantileSketch

values = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=1e7)), min_size=1, max_size=300
)
quantiles = st.floats(min_value=0.0, max_value=1.0)
alphas = st.sampled_from([0.005, 0.01, 0.02, 0.05])


def exact(sorted_values: list[float], q: float) -> float:
    return sorted_values[math.floor(q * (len(sorted_values) - 1))]


@given(values, quantiles, alphas)
def test_every_quantile_is_within_alpha_of_the_true_one(data, q, alpha):
    sketch = QuantileSketch(alpha)
    sketch.extend(data)
    true = exact(sorted(data), q)
    found = sketch.quantile(q)
    assert found is not None
    assert abs(found - true) <= alpha * true + 1e-12
    assert (sketch.count, sketch.minimum, sketch.maximum) == (len(data), min(data), max(data))
    assert sketch.total == pytest.approx(math.fsum(data))


@given(values, values, quantiles)
def test_merging_two_sketches_is_counting_everything_in_one(left, right, q):
    merged, one, other = QuantileSketch(), QuantileSketch(), QuantileSketch()
    one.extend(left)
    other.extend(right)
    merged.extend(left + right)
    one.merge(other)
    assert (one.buckets, one.zeros, one.count) == (merged.buckets, merged.zeros, merged.count)
    assert one.quantile(q) == merged.quantile(q)


def test_the_extremes_come_back_exact_and_an_empty_sketch_has_none():
    sketch = QuantileSketch()
    assert (sketch.quantile(0.5), sketch.mean) == (None, None)
    sketch.extend([12.5, 30.0, 250.0])
    assert (sketch.quantile(0.0), sketch.quantile(1.0)) == (12.5, 250.0)
    assert sketch.quantile(0.5) == pytest.approx(30.0, rel=0.01)
    assert sketch.mean == pytest.approx(97.5)


def test_a_day_of_one_hertz_latency_needs_few_buckets():
    sketch = QuantileSketch()
    sketch.extend(20.0 + (i % 1000) * 0.25 for i in range(86_400))  # 20 .. 270 ms
    assert sketch.count == 86_400
    assert len(sketch.buckets) <= 140  # log(270/20) / log(1.0202): 131


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.add(-1.0), "value: must be a finite number >= 0, got -1.0"),
        (lambda s: s.add(math.nan), "value: must be a finite number >= 0, got nan"),
        (lambda s: s.add("5"), "value: must be a real number, got str '5'"),
        (lambda s: s.quantile(1.5), "q: must be within 0..1, got 1.5"),
        (lambda s: s.merge(QuantileSketch(0.05)), "alpha: sketches of alpha 0.01 and 0.05"),
    ],
)
def test_bad_input_is_refused_naming_it_and_nothing_counted(call, message):
    sketch = QuantileSketch()
    sketch.add(10.0)
    with pytest.raises(ValueError, match=re.escape(message)):
        call(sketch)
    assert (sketch.count, sketch.buckets) == (
        1,
        {math.ceil(math.log(10.0) / math.log(sketch.gamma)): 1},
    )


def test_alpha_is_checked():
    with pytest.raises(ValueError, match=re.escape("alpha: must be within 0..1")):
        QuantileSketch(1.0)


def fields(sketch: QuantileSketch) -> tuple[object, ...]:
    return (
        sketch.buckets,
        sketch.zeros,
        sketch.count,
        sketch.total,
        sketch.minimum,
        sketch.maximum,
    )


@given(values)
def test_a_sketch_survives_its_trip_through_a_list_and_json(data):
    sketch = QuantileSketch()
    sketch.extend(data)
    assert fields(QuantileSketch.from_list(orjson.loads(orjson.dumps(sketch.to_list())))) == fields(
        sketch
    )


def test_neighbouring_buckets_take_one_number_each_and_a_gap_one_more():
    sketch = QuantileSketch()
    at = [sketch.gamma ** (index - 0.5) for index in (196, 197, 198, 198, 199, 310)]
    sketch.extend(at)  # four neighbouring buckets (one counted twice), then one far off
    assert sketch.to_list() == [6, 0, sketch.total, min(at), max(at), 196, 1, 1, 2, 1, -110, 1]


@given(st.lists(values, max_size=12))
def test_merging_stored_lists_is_merging_their_sketches_one_by_one(parts):
    sketches = []
    for part in parts:
        sketch = QuantileSketch()
        sketch.extend(part)
        sketches.append(sketch)
    one_by_one = QuantileSketch()
    for sketch in sketches:
        one_by_one.merge(QuantileSketch.from_list(sketch.to_list()))
    merged = QuantileSketch.merged([sketch.to_list() for sketch in sketches])
    assert fields(merged) == fields(one_by_one)


@given(values, st.lists(quantiles, min_size=1, max_size=5))
def test_quantiles_at_once_are_each_quantile(data, qs):
    sketch = QuantileSketch()
    sketch.extend(data)
    assert sketch.quantiles(qs) == [sketch.quantile(q) for q in qs]
    assert QuantileSketch().quantiles(qs) == [None] * len(qs)
