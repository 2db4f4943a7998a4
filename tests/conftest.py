"""Shared fixtures: a clock the test moves by hand, so time-dependent figures are exact."""

from __future__ import annotations

import os

import pytest

from peerscope.testing import ManualClock

# Every `serve` in the suite (in-process and `peerscope serve` subprocesses, which inherit
# this) answers probes on a free UDP port, not 8701: several run at once, and a developer's
# own agent may hold 8701. Tests of the default port say so explicitly.
os.environ.setdefault("PEERSCOPE_REFLECTOR_PORT", "0")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
