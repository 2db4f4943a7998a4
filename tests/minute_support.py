"""A real-looking minute of one peer's samples, for the tests of chunks and summaries."""

from __future__ import annotations

import random


def real_minute(seed: int = 1) -> tuple[list[int], list[list[float | None]], list[int]]:
    """A minute at 1 Hz of one peer: latency around 50 ms with 3 ms of noise, its RFC 3550
    jitter, two traffic counters growing ±20 % a second, and the probes sent."""
    rng = random.Random(seed)
    times = [1_700_000_000_000 + 1000 * i for i in range(60)]
    latency = [max(0.1, rng.gauss(50.0, 3.0)) for _ in range(60)]
    jitter, previous, level = [], latency[0], 0.0
    for value in latency:
        level += (abs(value - previous) - level) / 16.0
        previous = value
        jitter.append(level)
    sent, received, a, b = [], [], 10**6, 10**6
    for _ in range(60):
        a += max(0, round(rng.gauss(25_000, 5_000)))
        b += max(0, round(rng.gauss(20_000, 4_000)))
        sent.append(float(a))
        received.append(float(b))
    probes = [float(100 + i) for i in range(60)]
    columns: list[list[float | None]] = [latency, jitter, sent, received, probes]
    return times, columns, [100, 100, 1, 1, 1]
