"""The wrappers that time a call, a coroutine or a block, and the switch that turns them off.

Disabled, a wrapper costs one attribute read (``switch.on``) and the forwarding call. Enabled,
it reads ``perf_counter`` around the call and hands both readings to the name's
:class:`CallTiming`; a call is counted only if the switch is on when it starts and when it
ends, so nothing is recorded while the profiler is off.

CPU time is read with ``time.thread_time()`` (the calling thread's CPU clock). For a
coroutine it is summed over the coroutine's own steps only (:class:`OwnSteps` drives it,
one ``send``/``throw`` at a time): between steps the thread runs the event loop and other
tasks, whose CPU time must not be counted as the coroutine's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Generator
from time import perf_counter, thread_time
from types import TracebackType
from typing import Any

from peerscope.profiler.call_timing import CallTiming

__all__ = ["OwnSteps", "Switch", "TimedBlock", "time_calls", "time_coroutine_calls"]


class Switch:
    """Whether a profiler records: the one attribute every wrapper reads first."""

    __slots__ = ("on",)

    def __init__(self, on: bool) -> None:
        self.on = on


def time_calls(
    func: Callable[..., Any], timing: CallTiming, switch: Switch, cpu: bool
) -> Callable[..., Any]:
    """``func`` wrapped to time each call (and its thread CPU time if ``cpu``)."""

    @functools.wraps(func)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if not switch.on:
            return func(*args, **kwargs)
        failed = False
        start = perf_counter()
        cpu_start = thread_time() if cpu else 0.0
        try:
            return func(*args, **kwargs)
        except Exception:
            failed = True
            raise
        finally:
            spent = thread_time() - cpu_start if cpu else None
            end = perf_counter()
            if switch.on:
                timing.add(start, end, failed, spent)

    return timed


def time_coroutine_calls(
    func: Callable[..., Coroutine[Any, Any, Any]], timing: CallTiming, switch: Switch, cpu: bool
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The coroutine function ``func`` wrapped to time each awaited call, from the call to
    its result (awaits included), and its CPU time over its own steps if ``cpu``."""

    @functools.wraps(func)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        if not switch.on:
            return await func(*args, **kwargs)
        failed = False
        steps: OwnSteps | None = None
        start = perf_counter()
        try:
            if not cpu:
                return await func(*args, **kwargs)
            steps = OwnSteps(func(*args, **kwargs))
            return await steps
        except Exception:
            failed = True
            raise
        finally:
            end = perf_counter()
            if switch.on:
                timing.add(start, end, failed, None if steps is None else steps.cpu)

    return timed


class OwnSteps:
    """Awaits ``coroutine`` step by step, summing the thread CPU time of its steps in
    ``cpu`` (seconds): what the coroutine and everything it calls or awaits inline run on
    the CPU, not what runs between its steps. It forwards sends, throws (cancellation) and
    close as ``await`` itself does."""

    __slots__ = ("_coroutine", "cpu")

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._coroutine = coroutine
        self.cpu = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine = self._coroutine
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            began = thread_time()
            try:
                if thrown is None:
                    suspended_on = coroutine.send(sent)
                else:
                    error, thrown = thrown, None
                    suspended_on = coroutine.throw(error)
            except StopIteration as finished:
                return finished.value
            finally:
                self.cpu += thread_time() - began
            try:
                sent = yield suspended_on
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # CancelledError too: the coroutine decides
                thrown, sent = error, None


class TimedBlock:
    """``with`` / ``async with`` timing of the block under ``timing``; see
    :meth:`peerscope.profiler.Profiler.profile_block`. One use at a time."""

    __slots__ = ("_cpu", "_cpu_start", "_start", "_switch", "_timing")

    def __init__(self, timing: CallTiming, switch: Switch, cpu: bool) -> None:
        self._timing = timing
        self._switch = switch
        self._cpu = cpu
        self._start: float | None = None
        self._cpu_start = 0.0

    def __enter__(self) -> TimedBlock:
        if self._start is not None:
            raise RuntimeError("profile_block: this block is already running; make one per use")
        if self._switch.on:
            self._start = perf_counter()
            if self._cpu:
                self._cpu_start = thread_time()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        start, self._start = self._start, None
        if start is None:  # entered while the profiler was off
            return
        spent = thread_time() - self._cpu_start if self._cpu else None
        end = perf_counter()
        if self._switch.on:
            failed = exc_type is not None and issubclass(exc_type, Exception)
            self._timing.add(start, end, failed, spent)

    async def __aenter__(self) -> TimedBlock:
        if self._cpu:
            raise ValueError(
                "cpu: an async block's CPU time cannot be told from other tasks' (they run on "
                "the same thread while it awaits); time a coroutine function with @profile"
            )
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)
