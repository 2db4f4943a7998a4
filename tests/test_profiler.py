"""The function profiler: exact counts, durations within what the test itself measured,
a coroutine's wall and CPU time, blocks, the run-time switch, threads, the read-outs and the
process figures, and every bad argument refused by name."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import math
import os
import random
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Generator, Iterator

import pytest

from peerscope.profiler import (
    OTHER_NAMES,
    FunctionStats,
    Kind,
    Profiler,
    get_profiler,
    profile,
    profile_block,
)
from peerscope.profiler.call_timing import FOLD_AT, CallTiming

MS = 1000.0


def spin(seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
    """Keep the CPU busy until ``clock`` has moved ``seconds``."""
    began = clock()
    while clock() - began < seconds:
        pass


def only(profiler: Profiler, name: str) -> FunctionStats:
    found = [stats for stats in profiler.function_stats() if stats.name == name]
    assert len(found) == 1, [stats.name for stats in profiler.function_stats()]
    return found[0]


@pytest.fixture
def profiler() -> Profiler:
    return Profiler()


def test_calls_and_errors_are_counted_exactly_and_the_error_still_raised(profiler):
    @profiler.profile
    def halve(n: int) -> int:
        if n % 2:
            raise ValueError(f"odd: {n}")
        return n // 2

    results = []
    for n in range(11):
        if n % 2:
            with pytest.raises(ValueError, match=f"odd: {n}"):
                halve(n)
        else:
            results.append(halve(n))
    assert results == [0, 1, 2, 3, 4, 5]
    stats = only(profiler, f"{__name__}.{halve.__qualname__}")
    assert (stats.calls, stats.errors, stats.kind) == (11, 5, Kind.FUNCTION)


def test_a_functions_durations_lie_between_its_own_time_and_the_callers(profiler):
    inner: list[float] = []

    @profiler.profile(name="work")
    def work(seconds: float) -> None:
        began = time.perf_counter()
        spin(seconds)
        inner.append(time.perf_counter() - began)

    outer = []
    for seconds in (0.002, 0.005, 0.001, 0.008):
        began = time.perf_counter()
        work(seconds)
        outer.append(time.perf_counter() - began)
    stats = only(profiler, "work")
    assert stats.calls == 4
    assert sum(inner) * MS <= stats.total_ms <= sum(outer) * MS
    assert min(inner) * MS <= stats.min_ms <= min(outer) * MS
    assert max(inner) * MS <= stats.max_ms <= max(outer) * MS
    assert stats.avg_ms == pytest.approx(stats.total_ms / 4)
    # The last call is the 8 ms one, started within the test's own readings of the clock.
    assert inner[-1] * MS <= stats.last_ms <= outer[-1] * MS
    assert time.time() - outer[-1] - 0.05 <= stats.last_call_at <= time.time()
    assert stats.min_ms <= stats.p50_ms <= stats.p95_ms <= stats.p99_ms <= stats.max_ms
    # Not asked for: a sync function's CPU time costs a system call per reading.
    assert (stats.cpu_ms, stats.cpu_calls) == (None, 0)


def test_a_sync_functions_cpu_time_when_asked_for(profiler):
    @profiler.profile(name="burns", cpu=True)
    def burns() -> None:
        spin(0.02, time.thread_time)

    @profiler.profile(name="sleeps", cpu=True)
    def sleeps() -> None:
        time.sleep(0.02)

    burns()
    sleeps()
    burned, slept = only(profiler, "burns"), only(profiler, "sleeps")
    assert burned.cpu_calls == slept.cpu_calls == 1
    assert 20.0 <= (burned.cpu_ms or 0.0) <= burned.total_ms
    assert slept.total_ms >= 20.0
    assert (slept.cpu_ms or 0.0) < 5.0


async def test_a_coroutines_wall_time_counts_its_awaits_and_its_cpu_only_its_own_steps(profiler):
    inner: list[float] = []

    @profiler.profile
    async def waits() -> str:
        began = time.perf_counter()
        await asyncio.sleep(0.05)
        inner.append(time.perf_counter() - began)
        return "done"

    async def busy_neighbour() -> None:
        # Burns 40 ms of the same thread while `waits` sleeps: none of it is `waits`'s.
        for _ in range(4):
            spin(0.01, time.thread_time)
            await asyncio.sleep(0)

    began = time.perf_counter()
    result, _ = await asyncio.gather(waits(), busy_neighbour())
    outer = time.perf_counter() - began
    assert result == "done"
    stats = only(profiler, f"{__name__}.{waits.__qualname__}")
    assert (stats.kind, stats.calls, stats.errors, stats.cpu_calls) == (Kind.COROUTINE, 1, 0, 1)
    assert inner[0] * MS <= stats.total_ms <= outer * MS
    assert stats.total_ms >= 49.0  # the awaited sleep counts
    assert (stats.cpu_ms or 0.0) < 5.0  # its own two short steps, not its neighbour's 40 ms


async def test_a_busy_coroutines_cpu_time_is_its_wall_time(profiler):
    @profiler.profile(name="crunch")
    async def crunch() -> int:
        spin(0.015, time.thread_time)
        await asyncio.sleep(0)  # two steps: the CPU of both is summed
        spin(0.015, time.thread_time)
        return 7

    assert await crunch() == 7
    stats = only(profiler, "crunch")
    assert 30.0 <= (stats.cpu_ms or 0.0) <= stats.total_ms
    assert (stats.cpu_ms or 0.0) <= 35.0


async def test_a_coroutines_cpu_is_not_measured_when_told_not_to(profiler):
    @profiler.profile(name="plain", cpu=False)
    async def plain() -> None:
        await asyncio.sleep(0)

    await plain()
    assert (only(profiler, "plain").cpu_ms, only(profiler, "plain").cpu_calls) == (None, 0)


async def test_cancellation_reaches_the_coroutine_and_counts_a_call_not_an_error(profiler):
    cleaned_up = []

    @profiler.profile(name="cancelled")
    async def cancelled() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned_up.append(True)

    task = asyncio.create_task(cancelled())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = only(profiler, "cancelled")
    assert cleaned_up == [True]
    assert (stats.calls, stats.errors) == (1, 0)
    assert stats.total_ms >= 9.0


@types.coroutine
def pause() -> Generator[str, object, object]:
    return (yield "paused")


def test_a_coroutine_driven_by_hand_gets_its_sends_throws_and_close(profiler):
    seen = []

    @profiler.profile(name="driven")
    async def driven() -> str:
        try:
            seen.append(await pause())
            await pause()
        except KeyError as error:
            seen.append(f"caught {error}")
        try:
            await pause()
        finally:
            seen.append("closed")
        return "never"

    coroutine = driven()
    assert coroutine.send(None) == "paused"
    assert coroutine.send("sent back") == "paused"
    assert coroutine.throw(KeyError("k")) == "paused"  # caught inside, which goes on
    coroutine.close()
    assert seen == ["sent back", "caught 'k'", "closed"]
    stats = only(profiler, "driven")
    assert (stats.calls, stats.errors) == (1, 0)

    failing = driven()
    failing.send(None)
    with pytest.raises(ValueError, match="boom"):
        failing.throw(ValueError("boom"))
    assert (only(profiler, "driven").calls, only(profiler, "driven").errors) == (2, 1)


def test_the_wrappers_look_like_what_they_wrap(profiler):
    async def fetch(url: str) -> str:
        """Fetch it."""
        return url

    def parse(text: str) -> int:
        return len(text)

    timed_fetch, timed_parse = profiler.profile(fetch), profiler.profile(parse)
    assert inspect.iscoroutinefunction(timed_fetch)
    assert not inspect.iscoroutinefunction(timed_parse)
    assert (timed_fetch.__name__, timed_fetch.__doc__) == ("fetch", "Fetch it.")
    assert timed_fetch.__wrapped__ is fetch  # type: ignore[attr-defined]
    assert inspect.signature(timed_parse) == inspect.signature(parse)


def test_methods_are_named_by_their_class_and_closures_share_one_entry(profiler):
    class Room:
        @profiler.profile
        def join(self, who: str) -> str:
            return f"{who} joined"

    def make() -> Callable[[], int]:
        @profiler.profile
        def counted() -> int:
            return 1

        return counted

    assert Room().join("ann") == "ann joined"
    for _ in range(3):
        make()()
    names = {stats.name: stats.calls for stats in profiler.function_stats()}
    assert names == {
        f"{__name__}.{Room.join.__qualname__}": 1,
        f"{__name__}.test_methods_are_named_by_their_class_and_closures_share_one_entry"
        ".<locals>.make.<locals>.counted": 3,
    }


def test_blocks_time_their_body_and_count_its_errors(profiler):
    outer = []
    for seconds in (0.003, 0.006):
        began = time.perf_counter()
        with profiler.profile_block("load map"):
            spin(seconds)
        outer.append(time.perf_counter() - began)
    with pytest.raises(KeyError), profiler.profile_block("load map"):
        raise KeyError("missing")
    with profiler.profile_block("burn", cpu=True):
        spin(0.01, time.thread_time)
    stats = only(profiler, "load map")
    assert (stats.kind, stats.calls, stats.errors) == (Kind.BLOCK, 3, 1)
    assert 9.0 <= stats.total_ms <= sum(outer) * MS + 5.0
    assert stats.cpu_ms is None
    assert 10.0 <= (only(profiler, "burn").cpu_ms or 0.0) <= only(profiler, "burn").total_ms


async def test_async_blocks_count_their_awaits_and_refuse_to_guess_cpu(profiler):
    began = time.perf_counter()
    async with profiler.profile_block("handshake"):
        await asyncio.sleep(0.03)
    outer = time.perf_counter() - began
    stats = only(profiler, "handshake")
    assert stats.calls == 1
    assert 29.0 <= stats.total_ms <= outer * MS
    with pytest.raises(ValueError, match=r"^cpu: an async block's CPU time"):
        async with profiler.profile_block("handshake", cpu=True):
            pass
    assert only(profiler, "handshake").calls == 1


def test_one_block_object_runs_once_at_a_time(profiler):
    block = profiler.profile_block("once")
    with block, pytest.raises(RuntimeError, match="already running"), block:
        pass
    with block:  # reusable once it has ended
        pass
    assert only(profiler, "once").calls == 2


async def test_disabled_nothing_is_recorded_by_any_kind_of_timing():
    profiler = Profiler(enabled=False)

    @profiler.profile
    def plain() -> int:
        return 1

    @profiler.profile
    async def awaited() -> int:
        return 2

    assert plain() == 1
    assert await awaited() == 2
    with profiler.profile_block("block"):
        pass
    async with profiler.profile_block("async block"):
        pass
    assert not profiler.is_enabled()
    assert profiler.function_stats() == []
    assert profiler.stats() == {}
    assert profiler.hotspots() == []


def test_enable_and_disable_at_run_time(profiler):
    @profiler.profile(name="tick")
    def tick() -> None:
        pass

    @profiler.profile(name="switches off")
    def switches_off() -> None:
        profiler.disable()

    @profiler.profile(name="switches on")
    def switches_on() -> None:
        profiler.enable()

    tick()
    profiler.disable()
    tick()
    tick()
    assert only(profiler, "tick").calls == 1
    profiler.enable()
    tick()
    assert profiler.is_enabled()
    assert only(profiler, "tick").calls == 2
    # A call counts only when the profiler is on both when it starts and when it ends.
    switches_off()
    assert not profiler.is_enabled()
    switches_on()
    assert profiler.is_enabled()
    assert {stats.name for stats in profiler.function_stats()} == {"tick"}


def test_threads_calling_at_once_are_all_counted(profiler):
    threads, calls = 8, 5_000

    @profiler.profile(name="shared")
    def shared(n: int) -> int:
        if n % 10 == 0:
            raise ValueError(n)
        return n

    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        for n in range(calls):
            with contextlib.suppress(ValueError):
                shared(n)
            if n % 997 == 0:
                profiler.function_stats()  # folds while the others append

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # as many thread switches mid-call as the interpreter makes
    try:
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    stats = only(profiler, "shared")
    assert stats.calls == threads * calls
    assert stats.errors == threads * calls // 10


def test_hotspots_rank_by_total_time(profiler):
    @profiler.profile(name="many small")
    def many_small() -> None:
        spin(0.002)

    @profiler.profile(name="one big")
    def one_big() -> None:
        spin(0.04)

    @profiler.profile(name="trivial")
    def trivial() -> None:
        pass

    for _ in range(5):
        many_small()
    one_big()
    trivial()
    assert [stats.name for stats in profiler.hotspots()] == ["one big", "many small", "trivial"]
    assert [stats.name for stats in profiler.hotspots(2)] == ["one big", "many small"]
    assert profiler.hotspots(0) == []


def test_slow_functions_go_by_the_p95_not_the_average(profiler):
    @profiler.profile(name="sometimes slow")
    def sometimes_slow(slow: bool) -> None:
        spin(0.02 if slow else 0.0)

    @profiler.profile(name="fast")
    def fast() -> None:
        pass

    # Two calls in ten take 20 ms: the average is about 4 ms, the p95 20 ms.
    for n in range(10):
        sometimes_slow(n >= 8)
    fast()
    stats = only(profiler, "sometimes slow")
    assert stats.avg_ms < 10.0 < stats.p95_ms
    assert [s.name for s in profiler.slow_functions(10.0)] == ["sometimes slow"]
    assert [s.name for s in profiler.slow_functions(0.0)] == ["sometimes slow", "fast"]
    assert profiler.slow_functions(1000.0) == []


def test_reset_forgets_the_figures_but_keeps_timing(profiler):
    @profiler.profile(name="kept")
    def kept() -> None:
        pass

    kept()
    with profiler.profile_block("block"):
        pass
    profiler.reset()
    assert profiler.stats() == {}
    kept()
    assert list(profiler.stats()) == ["kept"]
    assert profiler.stats()["kept"]["calls"] == 1


def test_stats_are_json_ready_dicts_by_name(profiler):
    import orjson

    @profiler.profile(name="b")
    def second() -> None:
        pass

    with profiler.profile_block("a"):
        pass
    second()
    stats = profiler.stats()
    assert list(stats) == ["a", "b"]
    assert stats["a"]["kind"] == "block"
    assert orjson.loads(orjson.dumps(stats)) == stats
    assert set(stats["b"]) == {
        "name", "kind", "calls", "errors", "total_ms", "avg_ms", "min_ms", "max_ms",
        "p50_ms", "p95_ms", "p99_ms", "last_call_at", "last_ms", "cpu_ms", "cpu_calls",
    }  # fmt: skip


def test_the_report_names_every_hotspot_with_its_figures(profiler):
    @profiler.profile(name="render frame")
    def render() -> None:
        spin(0.001)

    for _ in range(3):
        render()
    with pytest.raises(OSError, match="disk full"), profiler.profile_block("save"):
        raise OSError("disk full")
    report = profiler.report()
    stats = only(profiler, "render frame")
    lines = report.splitlines()
    assert lines[0] == "peerscope profiler (enabled): 2 names, 4 calls, 1 errors"
    assert lines[1].startswith("process: CPU ")
    row = next(line for line in lines if line.endswith("  render frame"))
    assert row.split()[:3] == ["3", "0", f"{stats.total_ms:.3f}"]
    assert f"{stats.p95_ms:.3f}" in row
    save = next(line for line in lines if line.endswith("  save"))
    assert save.split()[:2] == ["1", "1"]
    assert len(profiler.report(top_n=1).splitlines()) == len(lines) - 1


def test_quantiles_are_within_the_sketchs_stated_error_of_the_exact_ones():
    # A known distribution, more than FOLD_AT calls so several folds merge.
    rng = random.Random(5)
    calls = []
    start = 100.0
    for _ in range(5 * FOLD_AT + 17):
        end = start + rng.lognormvariate(math.log(0.004), 0.8)
        calls.append((start, end))
        start = end + 0.001
    timing = CallTiming("known", Kind.FUNCTION)
    for start, end in calls:
        timing.add(start, end, False, None)
    durations = [end - start for start, end in calls]
    stats = timing.read(epoch_offset=0.5)
    assert stats is not None
    ordered = sorted(durations)
    for q, found in ((0.5, stats.p50_ms), (0.95, stats.p95_ms), (0.99, stats.p99_ms)):
        exact = ordered[math.floor(q * (len(ordered) - 1))] * MS
        assert abs(found - exact) <= 0.01 * exact, q
    assert stats.calls == len(durations)
    assert (stats.min_ms, stats.max_ms) == (ordered[0] * MS, ordered[-1] * MS)
    assert stats.total_ms == pytest.approx(math.fsum(durations) * MS, rel=1e-12)
    assert stats.last_ms == durations[-1] * MS
    assert stats.last_call_at == calls[-1][0] + 0.5


def test_memory_is_bounded_however_many_calls(profiler):
    @profiler.profile(name="hot")
    def hot() -> None:
        pass

    for _ in range(20 * FOLD_AT):
        hot()
    entry = profiler._entries["hot"]
    assert len(entry._pending) < 2 * FOLD_AT  # the rest is in the sketch
    assert only(profiler, "hot").calls == 20 * FOLD_AT


def test_names_beyond_max_names_are_counted_together():
    profiler = Profiler(max_names=2)
    for name in ("a", "b", "peer-1", "peer-2", "peer-3"):
        with profiler.profile_block(name):
            pass
    calls = {stats.name: stats.calls for stats in profiler.function_stats()}
    assert calls == {"a": 1, "b": 1, OTHER_NAMES: 3}


def test_process_stats_are_this_processs_and_read_without_waiting(profiler):
    profiler.process_stats()
    spin(0.05, time.thread_time)  # 50 ms of CPU since the previous reading
    release = threading.Event()
    waiter = threading.Thread(target=release.wait)
    before = profiler.process_stats()
    waiter.start()
    try:
        with tempfile.TemporaryFile() as _:
            began = time.perf_counter()
            during = profiler.process_stats()
            took = time.perf_counter() - began
    finally:
        release.set()
        waiter.join()
    assert before.cpu_percent > 0.0
    assert before.rss_bytes > 1024 * 1024
    assert before.threads >= 1
    assert before.open_fds is not None
    assert during.threads == before.threads + 1
    assert during.open_fds == before.open_fds + 1 > 1
    # A blocking cpu_percent(interval=...) would take its interval (0.1 s and up).
    assert took < 0.05
    assert set(during.as_dict()) == {"cpu_percent", "rss_bytes", "threads", "open_fds"}
    assert os.getpid() == profiler._process._process.pid


def test_the_default_profiler_is_what_profile_and_profile_block_record_into():
    import peerscope

    default = get_profiler()
    assert default.is_enabled()
    assert (peerscope.profile, peerscope.profile_block) == (profile, profile_block)
    assert {"profile", "profile_block"} <= set(peerscope.__all__)

    @profile(name="test_profiler default")
    def decorated() -> None:
        pass

    try:
        decorated()
        with profile_block("test_profiler default block"):
            pass
        names = {stats.name for stats in default.function_stats()}
        assert {"test_profiler default", "test_profiler default block"} <= names
    finally:
        default.reset()


def test_generators_are_refused_not_mismeasured(profiler):
    def numbers() -> Iterator[int]:
        yield 1

    async def stream() -> object:
        yield 1

    with pytest.raises(ValueError, match=r"^func: .*numbers is a generator function"):
        profiler.profile(numbers)
    with pytest.raises(ValueError, match=r"^func: .*stream is a generator function"):
        profiler.profile(stream)
    assert profiler.function_stats() == []


def test_profiling_a_profiled_function_under_the_same_name_is_refused(profiler):
    def once() -> None:
        pass

    timed = profiler.profile(once)
    with pytest.raises(ValueError, match=r"^func: .*once is profiled already"):
        profiler.profile(timed)
    twice = profiler.profile(name="under another name")(timed)
    twice()
    assert {stats.name for stats in profiler.function_stats()} == {
        f"{__name__}.{once.__qualname__}",
        "under another name",
    }


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: p.hotspots(-1), "top_n"),
        (lambda p: p.hotspots(2.5), "top_n"),
        (lambda p: p.report(top_n=-3), "top_n"),
        (lambda p: p.slow_functions(-5), "threshold_ms"),
        (lambda p: p.slow_functions(math.nan), "threshold_ms"),
        (lambda p: p.profile_block(""), "name"),
        (lambda p: p.profile_block("tab\there"), "name"),
        (lambda p: p.profile_block(None), "name"),
        (lambda p: p.profile_block("ok", cpu="yes"), "cpu"),
        (lambda p: p.profile(name=""), "name"),
        (lambda p: p.profile(cpu=1), "cpu"),
        (lambda p: p.profile(42), "func"),
        (lambda p: p.profile(functools.partial(print)), "name"),
        (lambda p: Profiler(enabled=1), "enabled"),
        (lambda p: Profiler(max_names=0), "max_names"),
        (lambda p: Profiler(max_names=-1), "max_names"),
    ],
)
def test_a_bad_argument_is_refused_by_name(profiler, call, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        call(profiler)
    assert profiler.function_stats() == []
