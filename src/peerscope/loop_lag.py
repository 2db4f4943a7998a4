"""Event-loop lag: how late a timer fires on the loop the Monitor runs on.

An asyncio server does one thing at a time; while a handler computes, every other socket
waits. How late a short timer fires is the delay every ready callback saw at that moment,
so it is the most telling single figure of a server's health (a game server's players feel
it as lag however good their links are). A timer set ``interval_s`` ahead is re-armed each
time it fires; its lateness is kept for ``window_s`` in a ring.

Each tick takes the worst lateness since the previous tick (a timer still due when the tick
runs counts by how overdue it is then: a loop blocked through a whole tick reads as blocked,
not as quiet) and the p99 over the window.
"""

from __future__ import annotations

import asyncio
import math
from array import array

from peerscope.core.validation import require

__all__ = ["LoopLag"]


class LoopLag:
    """A re-armed timer on the running loop and the lateness it measured (seconds)."""

    def __init__(self, interval_s: float = 0.1, window_s: float = 60.0) -> None:
        require(interval_s > 0, "interval_s", f"must be > 0, got {interval_s!r}")
        require(window_s >= interval_s, "window_s", f"must be >= interval_s, got {window_s!r}")
        self.interval_s = interval_s
        self._ring = array("d", bytes(8 * max(1, round(window_s / interval_s))))
        self._count = 0  # fired since start (the ring holds the newest len(ring) of them)
        self._worst = 0.0  # since the last take()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    @property
    def is_running(self) -> bool:
        return self._handle is not None

    def start(self) -> None:
        """Arm the timer on the running loop (again after a stop, with a fresh window)."""
        if self._handle is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._count = 0
        self._worst = 0.0
        self._arm()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self) -> None:
        assert self._loop is not None
        self._due = self._loop.time() + self.interval_s
        self._handle = self._loop.call_at(self._due, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        # The loop runs a timer up to its clock resolution early: that is not a negative lag.
        late = max(0.0, self._loop.time() - self._due)
        ring = self._ring
        ring[self._count % len(ring)] = late
        self._count += 1
        if late > self._worst:
            self._worst = late
        self._arm()

    def take(self) -> tuple[float | None, float | None]:
        """The worst lateness since the last call and the p99 over the window, in ms;
        (None, None) while the timer is not running. Call it on the loop's thread."""
        if self._handle is None or self._loop is None:
            return None, None
        overdue = max(0.0, self._loop.time() - self._due)
        worst = max(self._worst, overdue)
        self._worst = 0.0
        fired = min(self._count, len(self._ring))
        if not fired:
            return worst * 1000.0, None
        # The overdue timer is not in the p99: it is counted when it fires.
        kept = sorted(self._ring[:fired])
        return worst * 1000.0, kept[math.ceil(0.99 * fired) - 1] * 1000.0
