"""A stretch of one series' samples, packed for the history store's raw tier.

A chunk holds the samples of one series (a peer, the host, the server) over a stretch of
time: one column of times shared by several columns of figures. Each figure is kept at a
fixed resolution (``1 / scale``: 10 µs for a latency, 0.01 for a percent, 1 for a byte
counter), so it is an integer. A column is stored as its values or as its steps (the
differences from one value to the next), whichever spans the narrower range: a latency
scattered around a level as its values, a counter or a smooth figure as its steps (a
steady 1 Hz column of times is one step repeated). What is stored is each number's offset
from the smallest, bit-packed at the width the widest offset needs, so a constant column
costs nothing and a noisy one about the bits its noise holds; general-purpose compression
finds nothing more in such bits. A figure that was not measured at a time (a dead peer
has no latency) is marked absent in a bitmap and read back as None. This is what brings a
raw sample to about a byte on disk, where a row per sample costs tens (bench_store in
docs/BENCHMARKS.md measures both).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from itertools import accumulate, chain, repeat
from operator import add, and_, lshift, mul, rshift, sub, truediv

from peerscope.core.validation import require

__all__ = ["decode_chunk", "encode_chunk", "quantized"]

_FORMAT = 2
_ALL_ABSENT, _ALL_PRESENT, _SOME_ABSENT = 0, 1, 2
_INT64 = 2**63
# Numbers are packed in blocks of this many: a block of 64 numbers of any width ends on a
# byte, so the blocks join into one bit stream, and no big integer grows with the chunk.
_BLOCK = 64


def _put_unsigned(out: bytearray, number: int) -> None:
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)


def _put_signed(out: bytearray, number: int) -> None:
    _put_unsigned(out, number << 1 if number >= 0 else (-number << 1) - 1)


def _get_unsigned(data: bytes, offset: int) -> tuple[int, int]:
    number = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            return number, offset
        shift += 7


def _get_signed(data: bytes, offset: int) -> tuple[int, int]:
    number, offset = _get_unsigned(data, offset)
    return (number >> 1 if not number & 1 else -((number + 1) >> 1)), offset


def _signed_size(number: int) -> int:
    """Bytes :func:`_put_signed` takes for ``number``."""
    bits = (number << 1 if number >= 0 else (-number << 1) - 1).bit_length()
    return max(1, (bits + 6) // 7)


def _put_bits(out: bytearray, numbers: list[int], low: int, width: int) -> None:
    """Append each of ``numbers`` less ``low`` (``0 <= n - low < 2**width``) as one
    little-endian bit stream."""
    if width == 0:
        return
    for start in range(0, len(numbers), _BLOCK):
        block = numbers if len(numbers) <= _BLOCK else numbers[start : start + _BLOCK]
        size = len(block)
        # The shifted offsets do not overlap, so their sum is the block's bits.
        packed = sum(map(lshift, map(sub, block, repeat(low, size)), range(0, size * width, width)))
        out += packed.to_bytes((size * width + 7) // 8, "little")


def _get_bits(data: bytes, offset: int, count: int, width: int) -> tuple[Iterator[int], int]:
    """The numbers :func:`_put_bits` packed (before adding ``low`` back), and where they end."""
    end = offset + (count * width + 7) // 8
    if width == 0:
        return repeat(0, count), end
    mask = (1 << width) - 1
    blocks: list[Iterator[int]] = []
    for start in range(0, count, _BLOCK):
        first = offset + start * width // 8
        packed = int.from_bytes(data[first : min(first + _BLOCK * width // 8, end)], "little")
        size = min(_BLOCK, count - start)
        shifted = map(rshift, repeat(packed, size), range(0, size * width, width))
        blocks.append(map(and_, shifted, repeat(mask, size)))
    return (blocks[0] if len(blocks) == 1 else chain.from_iterable(blocks)), end


def _put_column(out: bytearray, numbers: list[int]) -> tuple[int, int]:
    """Append a column of integers: a byte saying values or steps and the width, the first
    value (steps only), the smallest and the offsets from it; the smallest and largest."""
    low, high = min(numbers), max(numbers)
    width = (high - low).bit_length()
    if len(numbers) > 1:
        steps = list(map(sub, numbers[1:], numbers))
        step_low = min(steps)
        step_width = (max(steps) - step_low).bit_length()
        as_values = len(numbers) * width + 8 * _signed_size(low)
        as_steps = len(steps) * step_width + 8 * (_signed_size(numbers[0]) + _signed_size(step_low))
        if as_steps < as_values:
            out.append(0x80 | step_width)
            _put_signed(out, numbers[0])
            _put_signed(out, step_low)
            _put_bits(out, steps, step_low, step_width)
            return low, high
    out.append(width)
    _put_signed(out, low)
    _put_bits(out, numbers, low, width)
    return low, high


def _get_column(data: bytes, offset: int, count: int) -> tuple[Iterator[int], int]:
    """The integers :func:`_put_column` wrote (an iterator: a caller turning them into
    floats makes one list, not two), and where they end."""
    head = data[offset]
    offset += 1
    width = head & 0x7F
    if head & 0x80:
        first, offset = _get_signed(data, offset)
        low, offset = _get_signed(data, offset)
        steps, offset = _get_bits(data, offset, count - 1, width)
        return accumulate(map(add, steps, repeat(low, count - 1)), initial=first), offset
    low, offset = _get_signed(data, offset)
    if width == 0:
        return repeat(low, count), offset
    offsets, offset = _get_bits(data, offset, count, width)
    return map(add, offsets, repeat(low, count)), offset


def quantized(column: Sequence[float | None], scale: int) -> list[float | None]:
    """``column`` as a chunk keeps it: each value rounded to ``1 / scale``, exactly what
    :func:`decode_chunk` reads back (None where absent). Summaries are made of these, so
    a tier says what the raw samples say."""
    if None not in column:
        units = map(round, map(mul, column, repeat(scale)))
        return list(map(float, units) if scale == 1 else map(truediv, units, repeat(scale)))
    if scale == 1:
        return [None if value is None else float(round(value)) for value in column]
    return [None if value is None else round(value * scale) / scale for value in column]


def _quantized(column: Sequence[float | None], scale: int) -> tuple[list[int], list[int] | None]:
    """The column at its resolution and, if some are absent, which are present (1) or not."""
    try:
        if None not in column:
            return list(map(round, map(mul, column, repeat(scale)))), None
        present = [0 if value is None else 1 for value in column]
        previous = next(value for value in column if value is not None)
        quantized: list[int] = []
        append = quantized.append
        for value in column:
            if value is not None:
                previous = value
            # An absent value repeats the one before: it widens neither range.
            append(round(previous * scale))
    except (ValueError, OverflowError):  # round() of a NaN or an infinity
        bad = next(v for v in column if v is not None and not math.isfinite(v))
        raise ValueError(f"columns: {bad!r} is not a finite number") from None
    return quantized, present


def _check_range(low: int, high: int, column: Sequence[float | None], scale: int) -> None:
    if not (low >= -_INT64 and high < _INT64):
        value = next(
            v for v in column if v is not None and not -_INT64 <= round(v * scale) < _INT64
        )
        raise ValueError(f"columns: {value:g} does not fit in 64 bits at a resolution of 1/{scale}")


def encode_chunk(
    times_ms: Sequence[int], columns: Sequence[Sequence[float | None]], scales: Sequence[int]
) -> bytes:
    """Pack samples: ``times_ms`` (ascending) and, per figure, its values at those times
    (None where absent), each kept to ``1 / scale`` of its unit. A value that is not
    finite, or beyond 64 bits at its resolution, is refused naming ``columns``."""
    count = len(times_ms)
    require(count > 0, "times_ms", "a chunk holds at least one sample")
    require(
        len(columns) == len(scales), "columns", f"{len(columns)} columns for {len(scales)} scales"
    )
    out = bytearray((_FORMAT,))
    _put_unsigned(out, count)
    _put_unsigned(out, len(columns))
    low, high = _put_column(out, list(times_ms))
    if not (low >= -_INT64 and high < _INT64):
        raise ValueError(f"times_ms: {low if low < -_INT64 else high} does not fit in 64 bits")
    for column, scale in zip(columns, scales, strict=True):
        require(len(column) == count, "columns", f"a column of {len(column)} for {count} times")
        if column.count(None) == count:
            out.append(_ALL_ABSENT)
            continue
        quantized, present = _quantized(column, scale)
        if present is None:
            out.append(_ALL_PRESENT)
        else:
            out.append(_SOME_ABSENT)
            _put_bits(out, present, 0, 1)
        # Written before it is checked: out is dropped if it does not fit.
        _check_range(*_put_column(out, quantized), column, scale)
    return bytes(out)


def _skip_column(data: bytes, offset: int, count: int) -> int:
    """Where the column :func:`_put_column` wrote at ``offset`` ends."""
    head = data[offset]
    offset += 1
    numbers = 2 if head & 0x80 else 1
    while numbers:
        if data[offset] < 0x80:
            numbers -= 1
        offset += 1
    packed = count - 1 if head & 0x80 else count
    return offset + (packed * (head & 0x7F) + 7) // 8


def decode_chunk(
    data: bytes, scales: Sequence[int], wanted: Collection[int] | None = None
) -> tuple[list[int], list[list[float | None]]]:
    """The times (ms) and the columns :func:`encode_chunk` packed with these ``scales``;
    columns the chunk does not hold (figures added since it was written) read as None,
    and so do those whose index is not in ``wanted`` (when given), which are skipped
    unread."""
    require(
        len(data) > 0 and data[0] == _FORMAT,
        "chunk",
        f"format {data[0] if data else None} is not one this version reads",
    )
    count, offset = _get_unsigned(data, 1)
    stored, offset = _get_unsigned(data, offset)
    numbers, offset = _get_column(data, offset, count)
    times = list(numbers)
    absent: list[float | None] = [None] * count
    columns: list[list[float | None]] = []
    for k, scale in enumerate(scales[:stored]):
        state = data[offset]
        offset += 1
        if state == _ALL_ABSENT:
            columns.append(absent.copy())
            continue
        bitmap = offset
        if state == _SOME_ABSENT:
            offset += (count + 7) // 8
        if wanted is not None and k not in wanted:
            offset = _skip_column(data, offset, count)
            columns.append(absent.copy())
            continue
        numbers, offset = _get_column(data, offset, count)
        values: list[float | None] = list(
            map(float, numbers) if scale == 1 else map(truediv, numbers, repeat(scale, count))
        )
        if state == _SOME_ABSENT:
            present, _ = _get_bits(data, bitmap, count, 1)
            values = [v if p else None for v, p in zip(values, present, strict=True)]
        columns.append(values)
    columns += [absent.copy() for _ in scales[stored:]]
    return times, columns
