"""LANrage's PerformanceProfiler over peerscope's Profiler: exact counts and errors, times in
seconds within what the test measured itself, the disabled profiler recording nothing,
coroutines, hotspots and slow functions in LANrage's shapes, the process figures, the
report, ProfileContext/profile_block on the global profiler, threads, and bad arguments
refused by name."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

import peerscope.compat.lanrage as lanrage_package
import peerscope.compat.lanrage.performance_profiler as performance_profiler
import peerscope.compat.lanrage.profiler as lanrage_profiler
from peerscope.compat.lanrage.profiler import (
    PerformanceProfiler,
    ProfileContext,
    get_profiler,
    profile,
    profile_block,
)
from peerscope.profiler import Profiler
from peerscope.profiler import get_profiler as default_profiler

LOGGER = "peerscope.compat.lanrage.performance_profiler"
FIGURES = {
    "calls",
    "total_time",
    "avg_time",
    "min_time",
    "max_time",
    "errors",
    "p50_time",
    "p95_time",
    "p99_time",
}
SYSTEM = {"cpu_percent", "memory_mb", "memory_percent", "num_threads", "num_fds"}


def spin(seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
    """Keep the CPU busy until ``clock`` has moved ``seconds``."""
    began = clock()
    while clock() - began < seconds:
        pass


@pytest.fixture
def profiler() -> PerformanceProfiler:
    """A profiler of the test's own, enabled (LANrage's starts disabled)."""
    made = PerformanceProfiler()
    made.enable()
    return made


@pytest.fixture
def global_profiler() -> Iterator[PerformanceProfiler]:
    """The global profiler, emptied, and left as it was found (it is peerscope's default)."""
    wrapped = default_profiler()
    was_enabled = wrapped.is_enabled()
    wrapped.reset()
    yield get_profiler()
    wrapped.reset()
    if was_enabled:
        wrapped.enable()
    else:
        wrapped.disable()


def qualified(function: object) -> str:
    return f"{function.__module__}.{function.__qualname__}"  # type: ignore[attr-defined]


# --- the switch -----------------------------------------------------------------------------


def test_a_new_profiler_is_disabled_and_records_nothing_until_enabled():
    profiler = PerformanceProfiler()

    @profiler.profile
    def work(n: int) -> int:
        return n + 1

    assert profiler.enabled is False
    assert [work(n) for n in range(5)] == [1, 2, 3, 4, 5]
    assert profiler.get_stats() == {}
    assert profiler.function_stats == {}
    assert profiler.get_hotspots() == []

    profiler.enable()
    for n in range(3):
        work(n)
    assert profiler.enabled is True
    assert profiler.get_stats()[qualified(work)]["calls"] == 3

    profiler.disable()
    for n in range(4):
        work(n)
    assert profiler.get_stats()[qualified(work)]["calls"] == 3  # kept, not added to


def test_enabled_can_be_set_as_an_attribute_and_must_be_a_bool():
    profiler = PerformanceProfiler()
    profiler.enabled = True
    assert profiler.profiler.is_enabled() is True
    profiler.enabled = False
    assert profiler.profiler.is_enabled() is False
    with pytest.raises(ValueError, match=r"^enabled: must be True or False, got 'yes'"):
        profiler.enabled = "yes"  # type: ignore[assignment]
    assert profiler.enabled is False


def test_enable_disable_and_reset_log_lanrage_lines(profiler, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)

    @profiler.profile
    def one() -> None:
        pass

    @profiler.profile
    def two() -> None:
        pass

    one()
    two()
    two()
    profiler.disable()
    profiler.enable()
    profiler.reset()
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "Profiling disabled",
        "Profiling enabled",
        "Profiling statistics reset (2 functions cleared)",
    ]
    assert profiler.get_stats() == {}
    two()  # still timed after a reset
    assert profiler.get_stats()[qualified(two)]["calls"] == 1


# --- counts, errors and times ---------------------------------------------------------------


def test_calls_and_errors_are_counted_exactly_and_the_error_still_raised(profiler):
    @profiler.profile
    def halve(n: int) -> int:
        if n % 3 == 0:
            raise ValueError(f"multiple of three: {n}")
        return n // 2

    raised = 0
    for n in range(1, 11):
        try:
            halve(n)
        except ValueError:
            raised += 1
    assert raised == 3

    stats = profiler.get_stats()
    assert list(stats) == [qualified(halve)]
    figures = stats[qualified(halve)]
    assert set(figures) == FIGURES
    assert (figures["calls"], figures["errors"]) == (10, 3)
    assert profiler.function_stats == {
        qualified(halve): {
            key: figures[key] for key in ("calls", "total_time", "min_time", "max_time", "errors")
        }
    }


def test_times_are_seconds_within_what_the_test_measured(profiler):
    @profiler.profile
    def busy(seconds: float) -> None:
        spin(seconds)

    outer = []
    for seconds in (0.004, 0.008, 0.012):
        began = time.perf_counter()
        busy(seconds)
        outer.append(time.perf_counter() - began)

    figures = profiler.get_stats()[qualified(busy)]
    assert figures["calls"] == 3
    assert 0.024 <= figures["total_time"] <= sum(outer)
    assert figures["avg_time"] == pytest.approx(figures["total_time"] / 3)
    assert 0.004 <= figures["min_time"] <= outer[0]
    assert 0.012 <= figures["max_time"] <= outer[2]
    # The median of three calls is the middle one, to the sketch's 1 %.
    assert 0.008 * 0.99 <= figures["p50_time"] <= sorted(outer)[1] * 1.01
    # The same figures peerscope keeps in milliseconds.
    (stats,) = profiler.profiler.function_stats()
    assert figures["total_time"] * 1000 == pytest.approx(stats.total_ms)


async def test_coroutine_functions_are_timed_to_their_result(profiler):
    @profiler.profile
    async def fetch(delay: float, fail: bool = False) -> str:
        await asyncio.sleep(delay)
        if fail:
            raise ConnectionError("peer went away")
        return "done"

    began = time.perf_counter()
    assert await fetch(0.02) == "done"
    with pytest.raises(ConnectionError, match="peer went away"):
        await fetch(0.01, fail=True)
    elapsed = time.perf_counter() - began

    figures = profiler.get_stats()[qualified(fetch)]
    assert (figures["calls"], figures["errors"]) == (2, 1)
    assert 0.03 <= figures["total_time"] <= elapsed
    assert figures["max_time"] >= 0.02


def test_a_method_is_named_by_module_and_qualname(profiler):
    class Room:
        @profiler.profile
        def join(self) -> str:
            return "joined"

    assert Room().join() == "joined"
    assert list(profiler.get_stats()) == [f"{__name__}.{Room.join.__qualname__}"]
    assert Room.join.__qualname__.endswith("Room.join")


def test_what_cannot_be_timed_is_refused_by_name(profiler):
    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(ValueError, match=r"^func: .*generator function"):
        profiler.profile(numbers)
    with pytest.raises(ValueError, match=r"^func: must be a function"):
        profiler.profile(42)  # type: ignore[type-var]
    with pytest.raises(ValueError, match=r"^profiler: must be a peerscope Profiler"):
        PerformanceProfiler(profiler="default")  # type: ignore[arg-type]


# --- hotspots and slow functions ------------------------------------------------------------


def test_hotspots_are_name_and_figures_by_total_time(profiler):
    @profiler.profile
    def small() -> None:
        spin(0.001)

    @profiler.profile
    def large() -> None:
        spin(0.030)

    @profiler.profile
    def many() -> None:
        spin(0.003)

    small()
    large()
    for _ in range(4):
        many()

    hotspots = profiler.get_hotspots()
    assert [name for name, _ in hotspots] == [qualified(large), qualified(many), qualified(small)]
    assert all(isinstance(entry, tuple) and set(entry[1]) == FIGURES for entry in hotspots)
    assert hotspots[1][1]["calls"] == 4
    assert [name for name, _ in profiler.get_hotspots(top_n=1)] == [qualified(large)]
    assert profiler.get_hotspots(top_n=0) == []
    with pytest.raises(ValueError, match=r"^top_n: must be an integer within 0\.\.2\*\*53, got -1"):
        profiler.get_hotspots(top_n=-1)


def test_slow_functions_are_those_whose_p95_is_over_the_threshold(profiler):
    @profiler.profile
    def steady() -> None:  # always 12 ms: slow by its average and its p95
        spin(0.012)

    @profiler.profile
    def spiky(slow: bool) -> None:  # 2 calls in 20 take 60 ms: average 6 ms, p95 60 ms
        if slow:
            spin(0.060)

    @profiler.profile
    def quick() -> None:
        pass

    for _ in range(10):
        steady()
        quick()
    for n in range(20):
        spiky(n in (7, 13))

    slow = profiler.get_slow_functions()
    assert [name for name, _ in slow] == [qualified(spiky), qualified(steady)]
    spiky_figures = slow[0][1]
    assert spiky_figures["avg_time"] < 0.010 < spiky_figures["p95_time"]  # LANrage missed it
    assert slow[1][1]["p95_time"] >= 0.012 * 0.99
    assert [name for name, _ in profiler.get_slow_functions(threshold_ms=50.0)] == [
        qualified(spiky)
    ]
    with pytest.raises(ValueError, match=r"^threshold_ms: must be a finite number"):
        profiler.get_slow_functions(threshold_ms=-1.0)
    with pytest.raises(ValueError, match=r"^threshold_ms: must be a finite number"):
        profiler.get_slow_functions(threshold_ms=float("nan"))


# --- the process ----------------------------------------------------------------------------


def test_system_stats_are_this_process_read_without_waiting(profiler, tmp_path):
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.get_system_stats()  # the CPU figure is since the previous reading
    spin(0.2, clock=time.process_time)
    with (tmp_path / "held").open("w"):
        began = time.perf_counter()
        stats = profiler.get_system_stats()
        took = time.perf_counter() - began
        busy = (time.process_time() - cpu) / (time.perf_counter() - wall) * 100.0
        assert stats["num_fds"] == psutil.Process().num_fds()  # the file is open here
    assert set(stats) == SYSTEM
    assert took < 0.1  # LANrage's slept 100 ms to measure its CPU interval
    # 200 ms of CPU spent between the readings, over the wall time the test saw pass.
    assert stats["cpu_percent"] == pytest.approx(busy, rel=0.25)
    rss = psutil.Process(os.getpid()).memory_info().rss
    assert stats["memory_mb"] == pytest.approx(rss / 1024 / 1024, rel=0.05)
    total = psutil.virtual_memory().total
    assert stats["memory_percent"] == pytest.approx(stats["memory_mb"] * 1024 * 1024 / total * 100)
    assert stats["num_threads"] == psutil.Process().num_threads()
    assert profiler.get_system_stats()["num_fds"] == stats["num_fds"] - 1  # and closed again


# --- the report -----------------------------------------------------------------------------


def test_print_report_writes_lanrage_report_to_the_log(profiler, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)

    @profiler.profile
    def parse(fail: bool) -> None:
        spin(0.012)
        if fail:
            raise KeyError("frame")

    parse(False)
    parse(False)
    with pytest.raises(KeyError, match="frame"):
        parse(True)
    figures = profiler.get_stats()[qualified(parse)]

    profiler.print_report(top_n=5)
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]
    lines = [text for _, text in logged]
    assert lines[:4] == ["=" * 80, "LANrage Performance Report", "=" * 80, "System Resources:"]
    assert lines[4].startswith("  CPU: ")
    assert lines[4].endswith("%")
    at = lines.index("Top 1 Hotspots (by total time):")
    assert lines[at + 1 : at + 8] == [
        f"  1. {qualified(parse)}",
        "     Calls: 3",
        f"     Total: {figures['total_time'] * 1000:.2f}ms",
        f"     Avg: {figures['avg_time'] * 1000:.2f}ms",
        f"     Min: {figures['min_time'] * 1000:.2f}ms",
        f"     Max: {figures['max_time'] * 1000:.2f}ms",
        "     Errors: 1",
    ]
    warnings = [text for level, text in logged if level == logging.WARNING]
    assert warnings == [
        "     Errors: 1",
        "Slow Functions (p95 > 10ms):",
        f"  {qualified(parse)}: {figures['p95_time'] * 1000:.2f}ms p95",
    ]
    assert lines[-6:] == [
        "Summary:",
        "  Total function calls: 3",
        f"  Total profiled time: {figures['total_time'] * 1000:.2f}ms",
        "  Total errors: 1",
        "  Unique functions: 1",
        "=" * 80,
    ]

    caplog.clear()
    with pytest.raises(ValueError, match=r"^top_n: "):
        profiler.print_report(top_n=-2)
    assert [r for r in caplog.records if r.name == LOGGER] == []


# --- the global profiler, ProfileContext and profile_block ----------------------------------


def test_the_global_profiler_is_peerscopes_default(global_profiler):
    @profile
    def handle() -> None:
        spin(0.002)

    handle()
    handle()
    assert global_profiler.profiler is default_profiler()
    assert global_profiler.get_stats()[qualified(handle)]["calls"] == 2
    # What /api/profiler shows: the same figures, in milliseconds.
    shown = default_profiler().stats()[qualified(handle)]
    assert shown["calls"] == 2
    total = global_profiler.get_stats()[qualified(handle)]["total_time"]
    assert shown["total_ms"] == pytest.approx(total * 1000)


def test_profile_context_times_a_block_and_counts_an_error(global_profiler):
    global_profiler.enable()
    began = time.perf_counter()
    with ProfileContext("load map") as context:
        spin(0.005)
    outer = time.perf_counter() - began
    assert context.name == "load map"
    assert context.start_time is not None
    assert began <= context.start_time
    with pytest.raises(OSError, match="disk"), profile_block("load map"):
        raise OSError("disk")

    figures = global_profiler.get_stats()["load map"]
    assert (figures["calls"], figures["errors"]) == (2, 1)
    assert 0.005 <= figures["max_time"] <= outer


def test_profile_block_records_nothing_while_the_profiler_is_disabled(global_profiler):
    global_profiler.disable()
    with profile_block("quiet"):
        spin(0.001)
    assert global_profiler.get_stats() == {}  # LANrage's recorded it all the same

    global_profiler.enable()
    block = profile_block("quiet")
    with block:
        pass
    with block:  # one object, used again once it has ended
        pass
    assert global_profiler.get_stats()["quiet"]["calls"] == 2


def test_profile_block_is_one_use_at_a_time_and_needs_a_name(global_profiler):
    global_profiler.enable()
    block = profile_block("nested")
    with block, pytest.raises(RuntimeError, match="already running"), block:
        pass
    with pytest.raises(ValueError, match=r"^name: must be 1-256 printable characters, got ''"):
        profile_block("")
    with pytest.raises(ValueError, match=r"^name: "):
        ProfileContext(None)  # type: ignore[arg-type]


# --- threads --------------------------------------------------------------------------------


def test_threads_timing_one_function_lose_no_call(profiler):
    threads, calls = 8, 2000

    @profiler.profile
    def tick(n: int) -> int:
        return n * 2

    seen: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            figures = profiler.get_stats().get(qualified(tick))
            seen.append(0 if figures is None else figures["calls"])

    def caller() -> None:
        for n in range(calls):
            tick(n)

    watching = threading.Thread(target=reader)
    watching.start()
    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    watching.join()

    assert profiler.get_stats()[qualified(tick)]["calls"] == threads * calls
    assert seen == sorted(seen)  # read while counting: never going back
    assert len(seen) > 0


# --- where the names are --------------------------------------------------------------------


def test_lanrage_import_paths_give_the_same_objects():
    for name in lanrage_profiler.__all__:
        assert getattr(lanrage_profiler, name) is getattr(performance_profiler, name)
        assert getattr(lanrage_package, name) is getattr(performance_profiler, name)
    assert isinstance(get_profiler(), PerformanceProfiler)
    assert isinstance(PerformanceProfiler().profiler, Profiler)
    assert PerformanceProfiler().profiler is not default_profiler()
