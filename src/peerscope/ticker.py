"""Calling a function at a fixed interval on the event loop, without drift or bursts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Ticker:
    """Runs ``step`` every ``interval`` seconds on the running event loop.

    The schedule is absolute (step *k* at start + *k*·interval), so the time a step takes
    does not add up as drift. If the loop was blocked for more than an interval the
    schedule starts afresh instead of replaying the missed steps in a burst. A step that
    raises is logged and the next one runs on schedule.
    """

    def __init__(self, interval: float, step: Callable[[], object], name: str) -> None:
        if not interval > 0:
            raise ValueError(f"interval: must be > 0, got {interval!r}")
        self.interval = interval
        self._step = step
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start on the running event loop; does nothing if already running."""
        if not self.is_running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    def cancel(self) -> asyncio.Task[None] | None:
        """Stop without waiting; ``is_running`` is False at once. Returns the task, if any."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    async def stop(self) -> None:
        """Stop and wait for the task to end; safe to call when not running."""
        task = self.cancel()
        if task is None:
            return
        try:
            await task
        except asyncio.CancelledError:
            # Swallow the task's own cancellation, but not one aimed at our caller.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval
        next_at = loop.time()
        while True:
            try:
                self._step()
            except Exception:
                logger.exception("%s: a step failed; the next runs on schedule", self._name)
            next_at += interval
            now = loop.time()
            if next_at < now:
                next_at = now + interval
            await asyncio.sleep(next_at - now)
