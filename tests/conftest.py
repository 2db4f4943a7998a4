"""Shared fixtures: a clock the test moves by hand, so time-dependent figures are exact."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from peerscope.testing import ManualClock

# Every `serve` in the suite (in-process and `peerscope serve` subprocesses, which inherit
# this) answers probes on a free UDP port, not 8701: several run at once, and a developer's
# own agent may hold 8701. Tests of the default port say so explicitly.
os.environ.setdefault("PEERSCOPE_REFLECTOR_PORT", "0")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Started processes; any still running at the end is killed (by its own pid)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
