"""Raw chunks: what goes in comes back within the resolution kept, absent values stay
absent, odd shapes (one sample, huge counters, falling values, all-None columns, fewer
columns than today's figures) read back, a figure can be read alone, a minute of
real-looking samples packs to about a byte and a half a sample, and values a chunk cannot
hold are refused by name."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.chunk import decode_chunk, encode_chunk, quantized
from tests.minute_support import real_minute

SCALES = [1, 100, 1000]


@st.composite
def chunks(draw: st.DrawFn, max_size: int = 120) -> tuple[list[int], list[list[float | None]]]:
    """Ascending times (steady or jittery, with gaps) and columns mixing runs of None, huge
    counters, negative and falling values."""
    count = draw(st.integers(1, max_size))
    first = draw(st.integers(0, 2**42))
    steps = draw(st.lists(st.integers(1, 3_600_000), min_size=count - 1, max_size=count - 1))
    times = [first]
    for step in steps:
        times.append(times[-1] + step)
    values = st.one_of(
        st.none(),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        st.floats(min_value=0.0, max_value=1e15, allow_nan=False),
        st.integers(0, 10**15).map(float),
    )
    columns = [
        draw(
            st.one_of(
                st.lists(values, min_size=count, max_size=count),
                st.just([None] * count),
                # runs: a value repeated, then absent for a while
                st.lists(st.tuples(values, st.integers(1, 20)), min_size=1, max_size=count).map(
                    lambda runs: [v for value, n in runs for v in [value] * n][:count]
                ),
            ).filter(lambda column: len(column) == count)
        )
        for _ in SCALES
    ]
    return times, columns


def close_enough(found: float | None, value: float | None, scale: int) -> bool:
    if value is None or found is None:
        return found is value
    # Half a step of the resolution, and the float rounding of value * scale on top.
    return abs(found - value) <= 0.5 / scale + abs(value) * 1e-15 + 1e-12


@given(chunks())
def test_a_chunk_reads_back_within_its_resolution_and_absent_values_stay_absent(chunk):
    times, columns = chunk
    read_times, read_columns = decode_chunk(encode_chunk(times, columns, SCALES), SCALES)
    assert read_times == times
    for column, read, scale in zip(columns, read_columns, SCALES, strict=True):
        assert len(read) == len(column)
        assert all(close_enough(r, v, scale) for r, v in zip(read, column, strict=True))


@given(chunks())
def test_quantized_is_exactly_what_a_chunk_reads_back(chunk):
    times, columns = chunk
    _, read_columns = decode_chunk(encode_chunk(times, columns, SCALES), SCALES)
    assert read_columns == [quantized(c, s) for c, s in zip(columns, SCALES, strict=True)]


@given(chunks(max_size=40), st.integers(0, len(SCALES) - 1))
def test_a_chunk_written_with_fewer_columns_reads_the_missing_ones_as_none(chunk, kept):
    times, columns = chunk
    data = encode_chunk(times, columns[:kept], SCALES[:kept])
    read_times, read_columns = decode_chunk(data, SCALES)
    assert read_times == times
    assert read_columns[kept:] == [[None] * len(times) for _ in SCALES[kept:]]
    assert read_columns[:kept] == [
        quantized(c, s) for c, s in zip(columns[:kept], SCALES[:kept], strict=True)
    ]


@given(chunks(max_size=70), st.sets(st.integers(0, len(SCALES) - 1)))
def test_the_figures_wanted_read_as_in_a_whole_read_and_the_others_as_none(chunk, wanted):
    times, columns = chunk
    data = encode_chunk(times, columns, SCALES)
    _, whole = decode_chunk(data, SCALES)
    read_times, some = decode_chunk(data, SCALES, wanted)
    assert read_times == times
    for k, column in enumerate(some):
        assert column == (whole[k] if k in wanted else [None] * len(times))


def test_one_sample_huge_counters_and_falling_values_read_back_exactly():
    one = decode_chunk(encode_chunk([1_700_000_000_123], [[20.5], [None]], [100, 100]), [100, 100])
    assert one == ([1_700_000_000_123], [[20.5], [None]])
    times = [0, 1000, 2000, 2500, 9000]
    counters = [1e15, 1e15 + 1, 3.0, None, 2e15]  # a reset, a gap, a jump
    gauges = [-5.25, 120.0, 0.0, -0.01, None]
    extremes = [-(2.0**62), 2.0**62, 0.0, None, 1.0]  # a difference of 2**63
    assert decode_chunk(
        encode_chunk(times, [counters, gauges, extremes], [1, 100, 1]), [1, 100, 1]
    ) == (times, [counters, gauges, extremes])


def test_a_steady_tick_packs_to_about_a_byte_a_sample():
    times = [1_700_000_000_000 + 1000 * i for i in range(60)]
    latency = [20.0 + (i % 7) * 0.25 for i in range(60)]
    data = encode_chunk(times, [latency, [None] * 60, [float(i) for i in range(60)]], SCALES)
    assert len(data) < 2 * 60


def test_a_minute_of_real_looking_samples_packs_to_a_byte_and_a_half_a_sample():
    # Noise is what costs: 60 latencies at 10 µs with 3 ms of noise hold about 10 bits
    # each, the traffic counters' steps about 14. zlib over byte-wide differences needed
    # 557 bytes for this minute.
    times, columns, scales = real_minute()
    assert len(encode_chunk(times, columns, scales)) <= 1.5 * 60 * len(columns)


def test_constant_columns_and_a_steady_tick_cost_a_few_bytes_each():
    times = [1_700_000_000_000 + 1000 * i for i in range(60)]
    columns: list[list[float | None]] = [[50.0] * 60, [None] * 60, [7.0] * 60]
    data = encode_chunk(times, columns, [100, 100, 1])
    assert len(data) <= 25
    assert decode_chunk(data, [100, 100, 1]) == (times, columns)


@pytest.mark.parametrize(
    ("times", "columns", "scales", "message"),
    [
        ([], [], [], "times_ms: a chunk holds at least one sample"),
        ([0], [[1.0]], [1, 1], "columns: 1 columns for 2 scales"),
        ([0, 1], [[1.0]], [1], "columns: a column of 1 for 2 times"),
        ([0], [[1e19]], [1], "columns: 1e+19 does not fit in 64 bits at a resolution of 1/1"),
        ([0, 1], [[5.0, -1e17]], [100], "columns: -1e+17 does not fit in 64 bits"),
        ([0, 1], [[1.0, float("nan")]], [1], "columns: nan is not a finite number"),
        ([0], [[float("inf")]], [100], "columns: inf is not a finite number"),
        ([0, 2**70], [[1.0, 2.0]], [1], "times_ms: 1180591620717411303424 does not fit"),
    ],
)
def test_what_a_chunk_cannot_hold_is_refused_naming_it(times, columns, scales, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        encode_chunk(times, columns, scales)


def test_a_chunk_of_another_format_is_refused():
    data = bytearray(encode_chunk([0], [[1.0]], [1]))
    data[0] = 9
    with pytest.raises(ValueError, match="chunk: format 9 is not one this version reads"):
        decode_chunk(bytes(data), [1])
    with pytest.raises(ValueError, match="chunk: format None is not one this version reads"):
        decode_chunk(b"", [1])
