"""On-demand sampling of the event loop's thread with pyinstrument, for a number of seconds.

The decorators of :mod:`peerscope.profiler` time the functions someone marked; a sample
shows where the loop's time went whatever was marked, without restarting the process.
pyinstrument samples the thread that starts it (every ``interval_s``, 1 ms by default); it is
started on the loop's thread, so every callback, handler and tick the loop runs meanwhile is
in the report, and so is the time the loop waited for I/O (in ``selectors``' ``select``):
an idle server's report is mostly that. Other threads (the history store's writer, a
``to_thread`` job) are not sampled. One sample runs at a time per process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from pyinstrument import Profiler
from pyinstrument.frame import Frame
from pyinstrument.renderers import HTMLRenderer, JSONRenderer
from pyinstrument.session import Session

from peerscope.core.validation import require

__all__ = ["MAX_SAMPLE_S", "SampleReport", "SamplerBusyError", "is_sampling", "sample_loop"]

MAX_SAMPLE_S = 60.0
_TOP = 25
_running = False  # pyinstrument profiles one thread at a time with one profiler


class SamplerBusyError(RuntimeError):
    """A sample is already being taken in this process."""


@dataclass(frozen=True, slots=True)
class SampleReport:
    """A finished sample: its session, rendered on demand (rendering takes a while for a
    long sample: call the renderers off the loop)."""

    session: Session
    seconds: float
    interval_s: float
    started_at: float

    def html(self) -> str:
        """pyinstrument's interactive HTML page (self-contained: save it and open it)."""
        page: str = HTMLRenderer().render(self.session)
        return page

    def summary(self, top: int = _TOP) -> dict[str, Any]:
        """The figures and the ``top`` functions by time spent in them (not in what they
        called), then pyinstrument's own JSON tree as ``tree``."""
        session = self.session
        duration = session.duration or 0.0
        root = session.root_frame()
        spent: dict[tuple[str, str, int], float] = {}
        for frame in _frames(root):
            # A synthetic "[self]" child repeats its parent's own time.
            if frame.total_self_time > 0 and not frame.is_synthetic:
                key = (frame.function or "?", frame.file_path_short or "", frame.line_no or 0)
                spent[key] = spent.get(key, 0.0) + frame.total_self_time
        ranked = sorted(spent.items(), key=lambda item: item[1], reverse=True)[:top]
        return {
            "seconds": self.seconds,
            "interval_s": self.interval_s,
            "started_at": self.started_at,
            "duration_s": duration,
            "sample_count": session.sample_count,
            "cpu_time_s": session.cpu_time,
            "top": [
                {
                    "function": function,
                    "file": file,
                    "line": line,
                    "self_s": seconds,
                    "share": seconds / duration if duration else 0.0,
                }
                for (function, file, line), seconds in ranked
            ],
            "tree": orjson.loads(JSONRenderer().render(session)),
        }


def is_sampling() -> bool:
    """Whether a sample is being taken now."""
    return _running


def _frames(root: Frame | None) -> Iterator[Frame]:
    pending = [] if root is None else [root]
    while pending:
        frame = pending.pop()
        yield frame
        pending.extend(frame.children)


async def sample_loop(seconds: float, interval_s: float = 0.001) -> SampleReport:
    """Sample the running loop's thread for ``seconds`` (awaiting meanwhile: the loop goes
    on). :class:`SamplerBusyError` if a sample is already running; ValueError naming
    ``seconds`` or ``interval_s`` when out of range."""
    global _running
    require(0 < seconds <= MAX_SAMPLE_S, "seconds", f"must be > 0 and <= {MAX_SAMPLE_S:g}")
    require(0.0001 <= interval_s <= 0.1, "interval_s", "must be between 0.0001 and 0.1")
    if _running:
        raise SamplerBusyError("profiler: a sample is already running; try again when it ends")
    _running = True
    try:
        # "disabled": what the thread does, not which coroutine awaited what; the loop's
        # wait for I/O shows as such instead of as the awaiting coroutine's time.
        profiler = Profiler(interval=interval_s, async_mode="disabled")
        started_at = time.time()
        profiler.start()
        try:
            await asyncio.sleep(seconds)
        finally:
            session = profiler.stop()
    finally:
        _running = False
    return SampleReport(session, seconds, interval_s, started_at)
