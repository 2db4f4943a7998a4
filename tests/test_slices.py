"""Work in slices: run straight through, or on the event loop letting everything else run."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest

from peerscope.slices import Steps, Turns, finish, run_sliced


def counting(
    steps: int, busy_s: float = 0.0, log: list[str] | None = None, name: str = ""
) -> Steps[int]:
    """``steps`` steps of ``busy_s`` seconds each (the loop is held meanwhile); returns
    how many ran."""
    for step in range(steps):
        if busy_s:
            time.sleep(busy_s)
        if log is not None:
            log.append(f"{name}{step}")
        yield
    return steps


def test_finish_runs_every_step_and_returns_the_result():
    log: list[str] = []
    assert finish(counting(4, log=log)) == 4
    assert log == ["0", "1", "2", "3"]


async def test_the_loop_runs_other_tasks_between_slices():
    woken = 0

    async def other() -> None:
        nonlocal woken
        while True:
            await asyncio.sleep(0)
            woken += 1

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    try:
        # 40 steps of 1 ms in slices of 2 ms: the loop gets ~20 chances.
        assert await run_sliced(counting(40, busy_s=0.001), budget_s=0.002) == 40
        seen = woken
    finally:
        task.cancel()
    assert seen >= 5
    woken = 0
    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    try:
        # One slice as long as the whole job: the other task waits for all of it.
        await run_sliced(counting(40), budget_s=60.0)
        assert woken == 0
    finally:
        task.cancel()


async def test_a_job_cancelled_mid_way_is_closed_at_once():
    ended: list[str] = []

    def job() -> Steps[None]:
        try:
            while True:
                time.sleep(0.001)
                yield
        finally:
            ended.append("closed")

    task = asyncio.create_task(run_sliced(job(), budget_s=0.001))
    await asyncio.sleep(0.05)
    assert ended == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended == ["closed"]


async def test_turns_run_one_job_at_a_time_in_the_order_asked():
    turns = Turns(budget_s=0.001)
    log: list[str] = []
    first, second, third = (
        asyncio.create_task(turns.run(counting(5, busy_s=0.001, log=log, name=name)))
        for name in "abc"
    )
    assert await asyncio.gather(first, second, third) == [5, 5, 5]
    assert log == [f"{name}{step}" for name in "abc" for step in range(5)]


async def test_a_job_cancelled_while_waiting_its_turn_never_starts():
    turns = Turns(budget_s=0.001)
    running = asyncio.create_task(turns.run(counting(50, busy_s=0.001)))
    await asyncio.sleep(0.005)
    waiting_job = counting(5)
    waiting = asyncio.create_task(turns.run(waiting_job))
    await asyncio.sleep(0.005)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert inspect.getgeneratorstate(waiting_job) == inspect.GEN_CLOSED
    assert await running == 50
    assert await turns.run(counting(3)) == 3  # the line moved on
