"""Bucket summaries: the summaries of consecutive buckets merge into the summary of their
concatenation (a counter's rise, resets and all; a gauge's count, sum and extremes exactly,
its quantiles within the sketch's error), merging stored summaries gives the same for just
the figures asked for, and a summary survives its trip through JSON, in few bytes."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.chunk import quantized
from peerscope.core.rollup import (
    FIGURES,
    CounterSummary,
    Figure,
    merge_lists,
    merge_summaries,
    summarize,
    summary_from_list,
    summary_to_list,
)
from peerscope.core.sketch import QuantileSketch
from tests.minute_support import real_minute

FIGS = (Figure("latency_ms", "gauge", 100), Figure("probes_sent", "counter", 1))

gauge_values = st.one_of(
    st.none(), st.just(0.0), st.floats(min_value=0.01, max_value=1e5), st.just(-1.0)
)
counter_values = st.one_of(st.none(), st.integers(0, 10**15).map(float))


@st.composite
def split_series(draw: st.DrawFn) -> tuple[list[list[float | None]], list[int], list[float | None]]:
    """Two columns (a gauge, a counter that may reset), cut into consecutive buckets at
    ``cuts``, and each figure's value before the first bucket."""
    count = draw(st.integers(1, 150))
    gauge = draw(st.lists(gauge_values, min_size=count, max_size=count))
    counter = draw(st.lists(counter_values, min_size=count, max_size=count))
    cuts = sorted(draw(st.sets(st.integers(1, count), max_size=8)) | {count})
    before = [None, draw(counter_values)]
    return [gauge, counter], cuts, before


def bucket_summaries(columns, cuts, before):
    """Each bucket's summary, its counters carried over from the buckets before it, as the
    writer does from chunk to chunk."""
    before = list(before)
    parts, start = [], 0
    for end in cuts:
        part = [column[start:end] for column in columns]
        parts.append(summarize(FIGS, part, before))
        last = [v for v in part[1] if v is not None]
        if last:
            before[1] = last[-1]
        start = end
    return parts


def true_increase(values: list[float | None], before: float | None) -> float:
    total, previous = 0.0, before
    for value in values:
        if value is None:
            continue
        if previous is not None:
            total += value - previous if value >= previous else value
        previous = value
    return total


@given(split_series())
def test_merged_buckets_are_the_summary_of_their_concatenation(case):
    columns, cuts, before = case
    merged = merge_summaries(bucket_summaries(columns, cuts, before))
    whole = summarize(FIGS, columns, before)
    gauge, counter = merged
    present = [v for v in columns[0] if v is not None and v >= 0.0]
    if not present:
        assert gauge is None
        assert whole[0] is None
    else:
        assert isinstance(gauge, QuantileSketch)
        assert isinstance(whole[0], QuantileSketch)
        assert (gauge.count, gauge.minimum, gauge.maximum) == (
            len(present),
            min(present),
            max(present),
        )
        assert gauge.total == pytest.approx(math.fsum(present), rel=1e-12, abs=1e-9)
        assert (gauge.buckets, gauge.zeros) == (whole[0].buckets, whole[0].zeros)
        ordered = sorted(present)
        for q in (0.0, 0.25, 0.5, 0.95, 0.99, 1.0):
            true = ordered[math.floor(q * (len(ordered) - 1))]
            found = gauge.quantile(q)
            assert found is not None
            assert abs(found - true) <= gauge.alpha * true + 1e-12
    known = [v for v in [before[1], *columns[1]] if v is not None]
    if not known:
        assert counter is None
        assert whole[1] is None
    else:
        assert isinstance(counter, CounterSummary)
        assert isinstance(whole[1], CounterSummary)
        assert counter.last == known[-1] == whole[1].last
        assert counter.increase == pytest.approx(true_increase(columns[1], before[1]), rel=1e-12)
        assert counter.increase == pytest.approx(whole[1].increase, rel=1e-12)


def test_a_reset_counter_counts_from_zero_and_a_gap_is_carried_over():
    figures = (Figure("probes_sent", "counter", 1),)
    first = summarize(figures, [[10.0, 15.0]], [8.0])  # rose 2 across the boundary, then 5
    gap = summarize(figures, [[None, None]], [15.0])  # not read: still where it was
    reset = summarize(figures, [[4.0, 6.0]], [15.0])  # reset: 0 → 4, then 2
    assert first == [CounterSummary(7.0, 15.0)]
    assert gap == [CounterSummary(0.0, 15.0)]
    assert reset == [CounterSummary(6.0, 6.0)]
    assert merge_summaries([first, gap, reset]) == [CounterSummary(13.0, 6.0)]
    assert summarize(figures, [[None]], [None]) == [None]  # never read at all
    assert merge_summaries([]) == []


def test_merging_leaves_the_parts_as_they_were():
    one = summarize(FIGS, [[10.0, 20.0], [1.0, 2.0]], [None, None])
    two = summarize(FIGS, [[30.0], [5.0]], [None, 2.0])
    kept = (summary_to_list(one), summary_to_list(two))
    merged = merge_summaries([one, two])
    assert (summary_to_list(one), summary_to_list(two)) == kept
    assert isinstance(merged[0], QuantileSketch)
    assert merged[0].count == 3


@given(split_series())
def test_a_summary_survives_json(case):
    columns, _, before = case
    summary = summarize(FIGS, columns, before)
    back = summary_from_list(FIGS, orjson.loads(orjson.dumps(summary_to_list(summary))))
    assert summary_to_list(back) == summary_to_list(summary)
    for part, read in zip(summary, back, strict=True):
        if isinstance(part, QuantileSketch):
            assert isinstance(read, QuantileSketch)
            assert (read.count, read.total, read.minimum, read.maximum) == (
                part.count,
                part.total,
                part.minimum,
                part.maximum,
            )
            assert read.quantile(0.95) == part.quantile(0.95)
        else:
            assert read == part


@given(split_series(), st.sets(st.integers(0, len(FIGS) - 1)))
def test_merging_stored_summaries_is_merging_their_objects_for_the_figures_wanted(case, wanted):
    stored = [orjson.loads(orjson.dumps(summary_to_list(part))) for part in bucket_summaries(*case)]
    objects = merge_summaries([summary_from_list(FIGS, part) for part in stored])
    merged = merge_lists(FIGS, stored, wanted)
    for k, (found, expected) in enumerate(zip(merged, objects, strict=True)):
        if k not in wanted or expected is None:
            assert found is None
        elif isinstance(expected, QuantileSketch):
            assert isinstance(found, QuantileSketch)
            assert summary_to_list([found]) == summary_to_list([expected])
        else:
            assert found == expected


def test_a_minute_summary_is_short_to_store():
    # Neighbouring buckets one number each, counters whole numbers: 308 bytes before.
    _, columns, scales = real_minute()
    figures = [Figure(f"f{k}", "gauge" if k < 2 else "counter", s) for k, s in enumerate(scales)]
    kept = [quantized(column, scale) for column, scale in zip(columns, scales, strict=True)]
    stored = orjson.dumps(summary_to_list(summarize(figures, kept, [None, None, 1e6, 1e6, 99])))
    assert len(stored) <= 280
    counters = orjson.loads(stored)[2:]
    assert counters == [[1_488_198, 2_488_198], [1_228_973, 2_228_973], [60, 159]]
    assert all(type(number) is int for part in counters for number in part)


def test_a_summary_written_before_a_figure_was_added_reads_it_as_none():
    figures = FIGURES["peer"]
    old = summarize(figures[:3], [[20.0], [1.0], [0.0]], [None] * 3)
    read = summary_from_list(figures, summary_to_list(old))
    assert len(read) == len(figures)
    assert read[3:] == [None] * (len(figures) - 3)
    assert summary_to_list(read[:3]) == summary_to_list(old)


def test_every_series_kind_has_distinct_figures_with_a_resolution():
    for figures in FIGURES.values():
        names = [figure.name for figure in figures]
        assert len(set(names)) == len(names)
        assert all(figure.scale >= 1 for figure in figures)
        assert all(figure.scale == 1 for figure in figures if figure.kind == "counter")


def test_stored_summaries_of_an_older_schema_merge_with_their_new_figures_as_none():
    one = [[3, 0, 6.0, 1.0, 3.0, 0, 1, 1, 1]]  # a latency-only summary of an older schema
    merged = merge_lists(FIGS, [one, one], range(len(FIGS)))
    assert merged[1:] == [None] * (len(FIGS) - 1)
    assert isinstance(merged[0], QuantileSketch)
    assert (merged[0].count, merged[0].total, merged[0].buckets) == (6, 12.0, {0: 2, 1: 2, 2: 2})
