"""A notifier's own thread for the calls that block (a user's sync callback, Apprise).

Not the loop's default executor (``asyncio.to_thread``): a callback that hangs would hold
one of its threads per attempt until none is left for the others that share it (name
lookups go through it), and its non-daemon threads would hold up the process's exit.
Here each notifier has one daemon thread, so a hung call stalls that notifier alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Worker"]

T = TypeVar("T")

_Call = tuple[Callable[[], Any], concurrent.futures.Future[Any]]


class Worker:
    """Runs blocking calls one at a time on a daemon thread of its own, started at the
    first call. A call the awaiting side gave up on (its attempt timed out) before the
    thread reached it is skipped; one already running cannot be stopped and finishes."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def call(self, function: Callable[[], T]) -> T:
        """``function()`` on the thread; the loop waits for it without blocking."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put((function, future))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        # Cancelling the wrapper (the dispatcher's timeout) cancels the future, so a call
        # still waiting its turn never runs.
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Let the thread end once the calls before this are done; returns at once."""
        if self._thread is not None:
            self._calls.put(None)
            self._thread = None

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            function, future = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = function()
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
