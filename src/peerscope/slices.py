"""Work over every peer done in slices, so the event loop is never held for long.

A *steps* generator does a slice of its work (a few peers) between two ``yield``\\ s and
returns its result; ``finish`` runs one straight through, ``run_sliced`` runs one on the event
loop and lets the loop run everything else whenever ``budget_s`` has passed, and ``Turns``
has such jobs take turns. Handing the work to a thread instead would not spare the loop: a
thread running Python holds the GIL for 5 ms at a time, and the loop waits that long for it
after every system call it makes (every socket write of a ``/ws`` fan-out, every probe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")
Steps = Generator[None, None, T]

# Loop time a job takes before it lets the loop run the rest: well inside the ~10 ms a
# handler may hold the loop, with room for a slice that runs over it.
BUDGET_S = 0.002


def finish(steps: Steps[T]) -> T:
    """Run ``steps`` to the end at once and return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


async def run_sliced(steps: Steps[T], budget_s: float = BUDGET_S) -> T:
    """Run ``steps`` on the event loop, yielding to it whenever ``budget_s`` has passed."""
    clock = time.perf_counter
    try:
        deadline = clock() + budget_s
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result: T = done.value
                return result
            if clock() >= deadline:
                await asyncio.sleep(0)
                deadline = clock() + budget_s
    finally:
        steps.close()  # cancelled mid-way (the client went away): end it now, not at GC


class Turns:
    """Sliced jobs that take turns: one runs at a time, the others wait in line.

    Run side by side, k jobs would each take a slice before the loop looked at anything else,
    holding it k times as long; in turns, a stall is one slice however many clients ask.
    """

    def __init__(self, budget_s: float = BUDGET_S) -> None:
        self.budget_s = budget_s
        self._lock = asyncio.Lock()

    async def run(self, steps: Steps[T]) -> T:
        """Wait for this job's turn, then :func:`run_sliced` it."""
        try:
            async with self._lock:
                return await run_sliced(steps, self.budget_s)
        finally:
            steps.close()  # cancelled while waiting in line
