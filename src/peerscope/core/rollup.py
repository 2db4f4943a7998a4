"""What the history store keeps of each series, and a bucket's summary of it.

Every series (a peer, the host, the server) is a fixed list of figures. A *gauge* (latency,
CPU) is summarised per bucket by a :class:`~peerscope.core.sketch.QuantileSketch`: exact
count, sum, min and max, and quantiles within 1 %; a *counter* (bytes, probes sent and
lost) by how much it rose in the bucket and its last value, so a bucket's loss is
``lost / sent`` of the probes of that bucket, whatever its size. Summaries of consecutive
buckets merge into the summary of their union: the 1-minute tier is built from the raw
minutes, the 1-hour tier from the minutes, never by averaging averages or percentiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, islice
from operator import gt
from typing import Literal, cast

from peerscope.core.sketch import QuantileSketch

__all__ = [
    "FIGURES",
    "CounterSummary",
    "Figure",
    "FigureSummary",
    "merge_lists",
    "merge_summaries",
    "summarize",
    "summary_from_list",
    "summary_to_list",
]

SeriesKind = Literal["peer", "host", "server"]


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of a series: its name, gauge or counter, and its resolution
    (``1 / scale`` of its unit is the finest difference kept)."""

    name: str
    kind: Literal["gauge", "counter"]
    scale: int


def _gauges(scale: int, *names: str) -> tuple[Figure, ...]:
    return tuple(Figure(name, "gauge", scale) for name in names)


def _counters(*names: str) -> tuple[Figure, ...]:
    return tuple(Figure(name, "counter", 1) for name in names)


# The order is the storage order: a figure is only ever added at the end (a new schema
# version), so chunks written before still read.
FIGURES: dict[SeriesKind, tuple[Figure, ...]] = {
    "peer": (
        *_gauges(100, "latency_ms", "jitter_ms", "loss_percent", "quality_score", "mos"),
        *_gauges(100, "tcp_rtt_ms"),
        *_counters("bytes_sent", "bytes_received", "probes_sent", "probes_lost"),
        *_counters("tcp_total_retrans"),
    ),
    "host": _gauges(
        100,
        "cpu_percent",
        "memory_percent",
        "network_sent_rate",
        "network_recv_rate",
        "process_cpu_percent",
        "process_rss_mb",
    ),
    "server": (
        *_gauges(100, "active_connections", "messages_per_second"),
        *_gauges(100, "messages_in_per_second", "messages_out_per_second"),
        *_gauges(100, "average_latency_ms"),
        *_counters("total_connections", "total_messages"),
        *_gauges(100, "loop_lag_ms", "loop_lag_p99_ms"),
    ),
}


@dataclass(slots=True)
class CounterSummary:
    """A counter over a bucket: how much it rose (a reset counts from zero) and where it
    ended."""

    increase: float
    last: float


FigureSummary = QuantileSketch | CounterSummary | None


def _counter(values: Sequence[float], before: float | None) -> CounterSummary | None:
    """How much a counter rose over ``values`` (from ``before``, its last value before)."""
    chain = values if before is None else [before, *values]
    if not chain:
        return None
    # A counter that went down was reset (a reconnected peer): it rose from zero, so the
    # rise is last - first plus every value a reset fell from. An int while the values are.
    fell_from = sum(compress(chain, map(gt, chain, islice(chain, 1, None))))
    return CounterSummary(chain[-1] - chain[0] + fell_from, chain[-1])


def summarize(
    figures: Sequence[Figure],
    columns: Sequence[Sequence[float | None]],
    counters_before: Sequence[float | None],
) -> list[FigureSummary]:
    """Each figure's summary of one bucket's samples; ``counters_before`` holds each
    figure's last value before the bucket (None if unknown), so a counter's rise across
    the boundary is counted in the bucket it ends in."""
    summaries: list[FigureSummary] = []
    for figure, column, before in zip(figures, columns, counters_before, strict=True):
        present: Sequence[float] = (
            cast("Sequence[float]", column)
            if None not in column
            else [value for value in column if value is not None]
        )
        if figure.kind == "counter":
            summaries.append(_counter(present, before))
            continue
        if present and min(present) < 0.0:
            present = [value for value in present if value >= 0.0]
        summaries.append(QuantileSketch.of_values(present) if present else None)
    return summaries


def merge_summaries(parts: Sequence[Sequence[FigureSummary]]) -> list[FigureSummary]:
    """The summary of consecutive buckets (oldest first), figure by figure."""
    if not parts:
        return []
    merged: list[FigureSummary] = []
    for column in zip(*parts, strict=True):
        result: FigureSummary = None
        for part in column:
            if part is None:
                continue
            if isinstance(part, CounterSummary):
                if isinstance(result, CounterSummary):
                    result = CounterSummary(result.increase + part.increase, part.last)
                else:
                    result = CounterSummary(part.increase, part.last)
            else:
                if result is None:
                    result = QuantileSketch(part.alpha)
                assert isinstance(result, QuantileSketch)
                result.merge(part)
        merged.append(result)
    return merged


def merge_lists(
    figures: Sequence[Figure],
    parts: Sequence[Sequence[Sequence[float] | None]],
    wanted: Iterable[int],
) -> list[FigureSummary]:
    """What :func:`merge_summaries` gives for the summaries :func:`summary_to_list` wrote
    as ``parts`` (oldest first), for the figures at the ``wanted`` indexes only (the others
    None), merged from the stored lists without making a summary of each part."""
    merged: list[FigureSummary] = [None] * len(figures)
    for k in wanted:
        stored = [flat for part in parts if k < len(part) and (flat := part[k]) is not None]
        if not stored:
            continue
        if figures[k].kind == "counter":
            increase = stored[0][0]
            for part in stored[1:]:
                increase += part[0]
            merged[k] = CounterSummary(increase, stored[-1][1])
        else:
            merged[k] = QuantileSketch.merged(stored)
    return merged


def _whole(number: float) -> float:
    """A counter's value as an int when it is one: ``1488198``, not ``1488198.0``."""
    whole = isinstance(number, float) and number.is_integer() and abs(number) < 2**53
    return int(number) if whole else number


def summary_to_list(summary: Sequence[FigureSummary]) -> list[list[float] | None]:
    """A bucket's summary as plain lists (for JSON): a sketch's flat list, or a counter's
    ``[increase, last]``."""
    out: list[list[float] | None] = []
    for part in summary:
        if part is None:
            out.append(None)
        elif isinstance(part, CounterSummary):
            out.append([_whole(part.increase), _whole(part.last)])
        else:
            out.append(part.to_list())
    return out


def summary_from_list(
    figures: Sequence[Figure], flat: Sequence[Sequence[float] | None]
) -> list[FigureSummary]:
    """The summary :func:`summary_to_list` wrote for these figures. Figures added after it
    was written (a later schema) read as None."""
    out: list[FigureSummary] = []
    for k, figure in enumerate(figures):
        part = flat[k] if k < len(flat) else None
        if part is None:
            out.append(None)
        elif figure.kind == "counter":
            out.append(CounterSummary(part[0], part[1]))
        else:
            out.append(QuantileSketch.from_list(part))
    return out
