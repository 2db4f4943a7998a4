"""Shared fixtures: a clock the test moves by hand, so time-dependent figures are exact."""

from __future__ import annotations

import pytest


class ManualClock:
    """A stand-in for ``time.time`` that only moves when the test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
