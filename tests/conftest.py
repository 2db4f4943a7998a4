"""Shared fixtures: a clock the test moves by hand, so time-dependent figures are exact.

Also the markers that follow from what a test uses (see the markers in pyproject.toml):
they are set here so a new test gets them without anyone remembering to.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from peerscope.testing import ManualClock
from tests.browser_support import browser_page

# Every `serve` in the suite (in-process and `peerscope serve` subprocesses, which inherit
# this) answers probes on a free UDP port, not 8701: several run at once, and a developer's
# own agent may hold 8701. Tests of the default port say so explicitly.
os.environ.setdefault("PEERSCOPE_REFLECTOR_PORT", "0")
# Nor does any keep history unless it asks for a database of its own (`--db`, or
# `store={"enabled": True, "db": ...}`): the default file is the developer's own history
# (~/.local/share/peerscope), which every serve and Agent would open. A test of the default
# path sets XDG_DATA_HOME to a tmp dir.
os.environ.setdefault("PEERSCOPE_STORE__ENABLED", "false")
# And should one open the default path all the same (a child given an environment of its
# own), it is the session's, never the developer's.
_DATA_HOME = tempfile.mkdtemp(prefix="peerscope-tests-data-")
os.environ["XDG_DATA_HOME"] = _DATA_HOME


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DATA_HOME, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # browser_page is a context manager, not a fixture, so the module that imports it
        # is what says a test drives Chromium.
        module = getattr(item, "module", None)
        if getattr(module, "browser_page", None) is browser_page:
            item.add_marker(pytest.mark.browser)
        # The processes fixture is for tests that start `peerscope serve` or another
        # long-running interpreter: a second or more of start-up alone.
        if "processes" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


# The loggers an Agent built from settings configures (peerscope.logs.configure_logging).
_CONFIGURED_LOGGERS = ("peerscope", "uvicorn", "asyncio")


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Each test's logging set-up undone after it: a test that builds the command's agent
    (or configures logging itself) leaves no handler or level to the tests after it."""
    loggers = [logging.getLogger(name) for name in _CONFIGURED_LOGGERS]
    kept = [(logger, logger.level, list(logger.handlers), logger.propagate) for logger in loggers]
    yield
    for logger, level, handlers, propagate in kept:
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


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
