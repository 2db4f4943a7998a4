"""Helpers for testing code that uses peerscope."""

from __future__ import annotations


class ManualClock:
    """A clock for ``Monitor(clock=...)`` that only moves when told to, so figures are exact.

    >>> clock = ManualClock()
    >>> monitor = Monitor(clock=clock)   # doctest: +SKIP
    >>> clock.advance(1.5)
    1700000001.5
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
