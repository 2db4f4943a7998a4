"""Helpers for testing code that uses peerscope."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self


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


class LoopStalls:
    """How long the running event loop kept a task waiting that wakes every ``period_s``.

    >>> async with LoopStalls() as stalls:   # doctest: +SKIP
    ...     await client.get("/api/metrics/summary")
    >>> stalls.worst                          # doctest: +SKIP
    0.0031

    A stall is how late a wake-up came: the time between two wake-ups less ``period_s``.
    It measures whatever held the loop (a handler, the garbage collector, a tick).
    """

    def __init__(self, period_s: float = 0.005) -> None:
        self.period_s = period_s
        self.stalls: list[float] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def worst(self) -> float:
        """The longest stall so far, in seconds (0 before the first wake-up)."""
        return max(self.stalls, default=0.0)

    def reset(self) -> list[float]:
        """The stalls so far, which are forgotten: the next ones are counted afresh."""
        stalls, self.stalls = self.stalls, []
        return stalls

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="peerscope-loop-stalls")
        await asyncio.sleep(0)  # running before the block's first await
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.period_s)
            now = loop.time()
            self.stalls.append(max(0.0, now - last - self.period_s))
            last = now
