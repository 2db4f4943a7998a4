"""Shared fixtures: a clock the test moves by hand, so time-dependent figures are exact."""

from __future__ import annotations

import pytest

from peerscope.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
