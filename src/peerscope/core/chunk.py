"""A stretch of one series' samples, packed for the history store's raw tier.

A chunk holds the samples of one series (a peer, the host, the server) over a stretch of
time: one column of times shared by several columns of figures. Each figure is kept at a
fixed resolution (``1 / scale``: 10 µs for a latency, 0.01 for a percent, 1 for a byte
counter), so it is an integer; the integers are stored as differences from the previous
one (times as differences of differences: a steady 1 Hz tick is a column of zeros), each
column in the narrowest integer width that holds it, and the whole compressed with zlib.
A figure that was not measured at a time (a dead peer has no latency) is marked absent in
a bitmap and read back as None. This is what brings a raw sample to a byte or two on disk,
where a row per sample costs tens.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Sequence
from itertools import pairwise

from peerscope.core.validation import require

__all__ = ["decode_chunk", "encode_chunk", "quantized"]

_FORMAT = 1
# format, sample count, column count, first time (ms), first time step
_HEADER = struct.Struct("<BIHqq")
_WIDTHS = (("b", 2**7), ("h", 2**15), ("i", 2**31), ("q", 2**63))
_ALL_ABSENT, _ALL_PRESENT, _SOME_ABSENT = 0, 1, 2
_LEVEL = 6  # zlib's default: level 9 saves under 1 % more here at twice the time
_FIRST = struct.Struct("<q")
_INT64 = 2**63


def _pack(values: list[int], out: bytearray, field_name: str) -> None:
    """Append ``values`` in the narrowest signed width that holds them all."""
    low, high = (min(values), max(values)) if values else (0, 0)
    for code, bound in _WIDTHS:
        if -bound <= low and high < bound:
            packed = array(code, values)
            if sys.byteorder == "big":
                packed.byteswap()
            out += code.encode()
            out += packed.tobytes()
            return
    raise ValueError(f"{field_name}: a difference {low}..{high} does not fit in 64 bits")


def _unpack(data: memoryview, offset: int, count: int) -> tuple[list[int], int]:
    code = chr(data[offset])
    packed = array(code)
    end = offset + 1 + count * packed.itemsize
    packed.frombytes(data[offset + 1 : end])
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist(), end


def _differences(values: list[int]) -> list[int]:
    return [b - a for a, b in pairwise(values)]


def _running_sum(first: int, steps: list[int]) -> list[int]:
    total = first
    out = [first]
    append = out.append
    for step in steps:
        total += step
        append(total)
    return out


def quantized(column: Sequence[float | None], scale: int) -> list[float | None]:
    """``column`` as a chunk keeps it: each value rounded to ``1 / scale``, exactly what
    :func:`decode_chunk` reads back (None where absent). Summaries are made of these, so
    a tier says what the raw samples say."""
    if scale == 1:
        return [None if value is None else float(round(value)) for value in column]
    return [None if value is None else round(value * scale) / scale for value in column]


def encode_chunk(
    times_ms: Sequence[int], columns: Sequence[Sequence[float | None]], scales: Sequence[int]
) -> bytes:
    """Pack samples: ``times_ms`` (ascending) and, per figure, its values at those times
    (None where absent), each kept to ``1 / scale`` of its unit."""
    count = len(times_ms)
    require(count > 0, "times_ms", "a chunk holds at least one sample")
    require(
        len(columns) == len(scales), "columns", f"{len(columns)} columns for {len(scales)} scales"
    )
    times = list(times_ms)
    steps = _differences(times)
    first_step = steps[0] if steps else 0
    out = bytearray(_HEADER.pack(_FORMAT, count, len(columns), times[0], first_step))
    _pack(_differences(steps), out, "times_ms")
    for column, scale in zip(columns, scales, strict=True):
        require(len(column) == count, "columns", f"a column of {len(column)} for {count} times")
        present = [value is not None for value in column]
        if not any(present):
            out.append(_ALL_ABSENT)
            continue
        first = previous = next(value for value in column if value is not None)
        integers: list[int] = []
        append = integers.append
        try:
            for value in column:
                if value is not None:
                    previous = value
                # An absent value repeats the one before, a difference of 0 that costs nothing.
                append(round(previous * scale))
        except (ValueError, OverflowError):  # round() of a NaN or an infinity
            raise ValueError(f"columns: {previous!r} is not a finite number") from None
        require(
            -_INT64 <= integers[0] < _INT64,
            "columns",
            f"{first:g} does not fit in 64 bits at a resolution of 1/{scale}",
        )
        if all(present):
            out.append(_ALL_PRESENT)
        else:
            out.append(_SOME_ABSENT)
            out += bytes(present)
        out += _FIRST.pack(integers[0])
        _pack(_differences(integers), out, "columns")
    return zlib.compress(bytes(out), _LEVEL)


def decode_chunk(data: bytes, scales: Sequence[int]) -> tuple[list[int], list[list[float | None]]]:
    """The times (ms) and the columns :func:`encode_chunk` packed with these ``scales``;
    columns the chunk does not hold (figures added since it was written) read as None."""
    raw = memoryview(zlib.decompress(data))
    version, count, stored, first_time, first_step = _HEADER.unpack_from(raw)
    require(version == _FORMAT, "chunk", f"format {version} is not one this version reads")
    offset = _HEADER.size
    second_differences, offset = _unpack(raw, offset, max(count - 2, 0))
    steps = _running_sum(first_step, second_differences)[: max(count - 1, 0)]
    times = _running_sum(first_time, steps)
    columns: list[list[float | None]] = []
    for scale in scales[:stored]:
        flag = raw[offset]
        offset += 1
        if flag == _ALL_ABSENT:
            columns.append([None] * count)
            continue
        present = None
        if flag == _SOME_ABSENT:
            present = raw[offset : offset + count]
            offset += count
        (first,) = _FIRST.unpack_from(raw, offset)
        differences, offset = _unpack(raw, offset + _FIRST.size, count - 1)
        integers = _running_sum(first, differences)
        values: list[float | None] = (
            [float(q) for q in integers] if scale == 1 else [q / scale for q in integers]
        )
        if present is not None:
            values = [v if p else None for v, p in zip(values, present, strict=True)]
        columns.append(values)
    columns += [[None] * count for _ in scales[stored:]]
    return times, columns
