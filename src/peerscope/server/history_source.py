"""Where a range of history comes from: what memory holds, or the history store.

The Monitor keeps the recent past in rings (each peer's latency samples and losses, the
host's figures, one per tick); the history store keeps every tick's figures, compressed, in
tiers (raw, 1-minute, 1-hour). The history routes read the store when there is one. The
seed's routes (``/metrics/system/history``, ``/metrics/peers/{id}/latency``) answer from
memory while it holds the range from its start (exact, up to the latest tick) and from the
store for a range that starts earlier, in their own shapes; what the store has not
committed yet (at most a flush interval) is taken from memory. Store queries run on a thread
(``HistoryStore``'s methods).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from peerscope.core.peer_history import Bucket
from peerscope.core.rollup import SeriesKind
from peerscope.core.stats import Aggregate, aggregate, downsample, group_by_step
from peerscope.monitor import Monitor
from peerscope.seed_views import SYSTEM_HISTORY_KEYS
from peerscope.store import HistoryStore
from peerscope.store.intake import HOST_KEY

__all__ = ["MEMORY", "HistorySource", "LatencyAnswer", "Points"]

MEMORY = "memory"  # the tier named in answers from the Monitor's rings
_ALL_S = 1e9  # "the whole ring": a window longer than any ring reaches
Points = list[tuple[float, float]]
# A peer's figures the seed's buckets are made of.
_SEED_FIGURES = ("latency_ms", "jitter_ms", "quality_score", "mos")


@dataclass(frozen=True, slots=True)
class LatencyAnswer:
    """The seed latency route's figures of a range: ``points`` (as recorded, or means per
    step), ``buckets`` (with a step), ``stats`` of the range, and the ``tier`` read."""

    tier: str
    points: Points
    buckets: list[Bucket] | None
    stats: Aggregate


def _summary(values: Sequence[float]) -> dict[str, Any]:
    """A gauge's figures over a bucket, as the store gives them (exact here)."""
    # aggregate() takes a window of timed samples: every value, at time 0, is in (-1, 0].
    stats = aggregate(((0.0, value) for value in values), 1.0, 0.0)
    return {
        "count": stats["count"],
        "min": stats["min"],
        "max": stats["max"],
        "avg": stats["avg"],
        "p50": stats["p50"],
        "p95": stats["p95"],
        "p99": stats["p99"],
    }


def _aligned(start: float, step: float) -> float:
    """The start of the ``step``-second bucket ``start`` falls in: buckets on multiples of
    the step, as memory's are, so that the store's and memory's line up."""
    return math.floor(start / step) * step


def _through(end: float) -> float:
    """The store's buckets end before their ``end``; the routes' ``to`` is included. Its
    times are whole milliseconds."""
    return end + 0.001


def _within(points: Points, start: float, end: float) -> Points:
    return [(t, v) for t, v in points if start < t <= end]


def _newer(points: Points, than: Points) -> Points:
    """``points`` after the last of ``than``: what memory adds to the store's answer."""
    if not than:
        return points
    last = than[-1][0]
    return [point for point in points if point[0] > last]


def _seed_bucket(bucket: dict[str, Any]) -> Bucket:
    """A store's bucket of a peer in the shape of Monitor.peer_history's: an outage has no
    latency figures, jitter or MOS, and scores 0 (a tick's stale reading is not an answer)."""
    outage = bool(bucket["outage"])
    latency = None if outage else bucket["latency_ms"]
    jitter = None if outage else bucket["jitter_ms"]
    score, mos = bucket["quality_score"], None if outage else bucket["mos"]
    return Bucket(
        timestamp=bucket["timestamp"],
        samples=0 if latency is None else latency["count"],
        sent=bucket["sent"],
        lost=bucket["lost"],
        loss_percent=bucket["loss_percent"] or 0.0,
        outage=outage,
        min=None if latency is None else latency["min"],
        p50=None if latency is None else latency["p50"],
        p95=None if latency is None else latency["p95"],
        max=None if latency is None else latency["max"],
        jitter_ms=None if jitter is None else jitter["avg"],
        score=0.0 if outage else None if score is None else score["avg"],
        mos=None if mos is None else mos["avg"],
    )


def _merged_stats(buckets: list[dict[str, Any]]) -> Aggregate:
    """The range's latency statistics from its buckets: count, extremes, sum and mean are
    exact; percentiles do not add up from buckets', so they are left out (null)."""
    parts = [bucket["latency_ms"] for bucket in buckets if bucket["latency_ms"] is not None]
    count = sum(part["count"] for part in parts)
    total = math.fsum(part["avg"] * part["count"] for part in parts)
    return Aggregate(
        count=count,
        min=min((part["min"] for part in parts), default=None),
        max=max((part["max"] for part in parts), default=None),
        avg=total / count if count else None,
        sum=total,
        p50=None,
        p95=None,
        p99=None,
    )


class HistorySource:
    """Ranges of ``monitor``'s history, from ``store`` where memory holds less."""

    def __init__(self, monitor: Monitor, store: HistoryStore | None) -> None:
        self.monitor = monitor
        self.store = store

    # --- the history routes: the store's shapes -----------------------------------------

    async def samples(
        self, kind: SeriesKind, key: str, start: float, end: float, names: Sequence[str]
    ) -> dict[str, Any] | None:
        """``{"tier", "timestamps", "values"}`` of ``start < t <= end``: per figure a column
        of values (None where not measured; the whole column None where memory keeps no
        history of it). None: nothing is known of the series."""
        if self.store is not None:
            found = await self.store.samples(kind, key, start, end, names)
            if found is not None:
                return {"tier": "raw", "timestamps": found.times, "values": found.values}
        rings = self._rings(kind, key, names)
        if rings is None:
            return None
        times: list[float] = []
        values: dict[str, list[float | None] | None] = {}
        for name in names:
            ring = rings.get(name)
            if ring is None:
                values[name] = None
                continue
            kept = _within(ring, start, end)
            times = [t for t, _ in kept]  # the host's figures share their times
            values[name] = [v for _, v in kept]
        return {"tier": MEMORY, "timestamps": times, "values": values}

    async def buckets(
        self,
        kind: SeriesKind,
        key: str,
        start: float,
        end: float,
        step: float,
        names: Sequence[str],
    ) -> dict[str, Any] | None:
        """``{"tier", "buckets"}``: the store's buckets (``HistoryReader.buckets``), or
        memory's in the same shape. None: nothing is known of the series."""
        start = _aligned(start, step)
        if self.store is not None:
            found = await self.store.buckets(
                kind, key, start, _through(end), step, names, now=self.monitor.now()
            )
            if found is not None:
                return {"tier": found[0], "buckets": found[1]}
        rings = self._rings(kind, key, names)
        if rings is None:
            return None
        grouped: dict[float, dict[str, Any]] = {}
        for name in names:
            ring = rings.get(name)
            for bucket_start, values in group_by_step(_within(ring or [], start, end), step):
                grouped.setdefault(bucket_start, {})[name] = _summary(values)
        if kind == "peer":
            # Memory's buckets also count what was sent and lost, answered or not.
            try:
                counted = self.monitor.peer_history(key, start, end, step)
            except KeyError:  # removed meanwhile
                return None
            for bucket in counted:
                grouped.setdefault(bucket["timestamp"], {}).update(
                    sent=bucket["sent"],
                    lost=bucket["lost"],
                    loss_percent=bucket["loss_percent"],
                    outage=bucket["outage"],
                )
        return {
            "tier": MEMORY,
            "buckets": [
                {"timestamp": t, **dict.fromkeys(names), **grouped[t]} for t in sorted(grouped)
            ],
        }

    def _rings(self, kind: SeriesKind, key: str, names: Sequence[str]) -> dict[str, Points] | None:
        """Memory's history of each of ``names`` it keeps (the whole ring); None: an
        unknown peer."""
        monitor = self.monitor
        if kind == "host":
            return {name: monitor.system_history(name, _ALL_S) for name in names}
        if kind == "server":
            return {}
        try:
            latency = monitor.latency_history(key, _ALL_S)
        except KeyError:
            return None
        return {"latency_ms": latency} if "latency_ms" in names else {}

    # --- the seed's routes: memory, or the store for what memory no longer holds ---------

    async def system(
        self, start: float, end: float, step: float | None
    ) -> tuple[str, dict[str, Points]]:
        """The tier read, and the host's ``(start, end]`` per seed key (cpu, memory,
        network_sent, network_received), as recorded or as ``step``-second means."""
        monitor = self.monitor
        rings = {
            key: monitor.system_history(name, _ALL_S) for key, name in SYSTEM_HISTORY_KEYS.items()
        }
        memory = {key: _within(ring, start, end) for key, ring in rings.items()}
        if step is not None:
            memory = {key: downsample(points, step) for key, points in memory.items()}
        ring = rings["cpu"]
        if self.store is None or (ring and ring[0][0] <= start):
            return MEMORY, memory
        names = list(SYSTEM_HISTORY_KEYS.values())
        if step is None:
            found = await self.store.samples("host", HOST_KEY, start, end, names)
            if found is None:
                return MEMORY, memory
            tier = "raw"
            stored = {key: found.present(name) for key, name in SYSTEM_HISTORY_KEYS.items()}
        else:
            buckets = await self.store.buckets(
                "host",
                HOST_KEY,
                _aligned(start, step),
                _through(end),
                step,
                names,
                now=monitor.now(),
            )
            if buckets is None:
                return MEMORY, memory
            tier = buckets[0]
            stored = {
                key: [
                    (bucket["timestamp"], bucket[name]["avg"])
                    for bucket in buckets[1]
                    if bucket[name] is not None
                ]
                for key, name in SYSTEM_HISTORY_KEYS.items()
            }
        return tier, {key: points + _newer(memory[key], points) for key, points in stored.items()}

    async def latency(
        self, peer_id: str, start: float, end: float, step: float | None
    ) -> LatencyAnswer | None:
        """A peer's latency over ``(start, end]`` as the seed's route gives it; None: the
        peer is known neither to the Monitor nor to the store."""
        try:
            ring: Points | None = self.monitor.latency_history(peer_id, _ALL_S)
        except KeyError:
            ring = None
        memory = _within(ring or [], start, end)
        held = ring is not None and (self.store is None or (ring and ring[0][0] <= start))
        stored = None
        if not held and self.store is not None:
            stored = await self._stored_latency(peer_id, memory, start, end, step)
        if stored is not None or ring is None:
            return stored
        return self._memory_latency(peer_id, memory, start, end, step)

    def _memory_latency(
        self, peer_id: str, memory: Points, start: float, end: float, step: float | None
    ) -> LatencyAnswer | None:
        try:
            buckets = None if step is None else self.monitor.peer_history(peer_id, start, end, step)
        except KeyError:  # removed meanwhile
            return None
        points = memory if step is None else downsample(memory, step)
        return LatencyAnswer(MEMORY, points, buckets, aggregate(memory, end - start, end))

    async def _raw_latency(
        self, peer_id: str, memory: Points, start: float, end: float
    ) -> Points | None:
        """The store's latency samples of the range, then memory's newer ones."""
        assert self.store is not None
        found = await self.store.samples("peer", peer_id, start, end, ["latency_ms"])
        if found is None:
            return None
        points = found.present("latency_ms")
        return points + _newer(memory, points)

    async def _stored_latency(
        self, peer_id: str, memory: Points, start: float, end: float, step: float | None
    ) -> LatencyAnswer | None:
        store = self.store
        assert store is not None  # only called with one
        if step is None:
            raw = await self._raw_latency(peer_id, memory, start, end)
            return (
                None
                if raw is None
                else LatencyAnswer("raw", raw, None, aggregate(raw, end - start, end))
            )
        now = self.monitor.now()
        read = await store.buckets(
            "peer", peer_id, _aligned(start, step), _through(end), step, _SEED_FIGURES, now=now
        )
        if read is None:
            return None
        tier, stored = read
        buckets = [_seed_bucket(bucket) for bucket in stored]
        points = [
            (bucket["timestamp"], bucket["latency_ms"]["avg"])
            for bucket in stored
            if bucket["latency_ms"] is not None and not bucket["outage"]
        ]
        # The buckets the store has not committed yet, from memory's.
        last = buckets[-1]["timestamp"] if buckets else -math.inf
        try:
            newest = self.monitor.peer_history(peer_id, start, end, step)
        except KeyError:  # a peer that left: the store has all there is
            newest = []
        buckets += [bucket for bucket in newest if bucket["timestamp"] > last]
        points += [point for point in downsample(memory, step) if point[0] > last]
        raw = None
        if start >= now - store.retention.raw_s:
            raw = await self._raw_latency(peer_id, memory, start, end)
        stats = _merged_stats(stored) if raw is None else aggregate(raw, end - start, end)
        return LatencyAnswer(tier, points, buckets, stats)
