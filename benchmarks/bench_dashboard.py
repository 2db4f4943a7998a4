"""Dashboard: the page's frame rate and JS heap in headless Chromium under a full load.

One process runs a Monitor served by ``peerscope.agent.serve`` on a loopback ephemeral port
(``metrics_interval`` 1 s, system metrics on, so every chart moves) with 200 peers, each given
a latency sample, some traffic and a few messages every second by a background task. Debian's
Chromium (``/usr/bin/chromium``, driven by Playwright, never a downloaded browser) opens the
dashboard at 1400×1000, picks the 1 h range and opens the worst peer's charts. Then every
time-series chart is filled to 3,600 points per series (CPU/memory, network, messages,
and the peer's jitter and quality; the peer's latency band holds what REST gives for the
hour), so each frame from then on appends one point and drops one, redrawing 3,600-point
series every second while the peers table (200 rows, the frame's own list) is rewritten.

After a warm-up, the page counts its own ``requestAnimationFrame`` callbacks for the whole
run (mean fps) and per whole second (the worst second), and the JS heap is read over the
Chrome DevTools Protocol after a forced collection (``HeapProfiler.collectGarbage``, then
``Runtime.getHeapUsage``) at the start, every ``HEAP_EVERY_S`` seconds and at the end.

Targets: >= 30 fps (judged on the worst second) and a flat heap: the heap after collection
at the end exceeds the one at the start by no more than 1 MB. fps is rounded down, heap
sizes and growth up (against peerscope).

The server, the feed and Playwright share this process's event loop; Chromium's processes
are separate. Run alone: ``python -m benchmarks.bench_dashboard [--quick]`` (5 min;
``--quick``: 20 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from dataclasses import dataclass

from benchmarks.results import Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import down, up
from peerscope.agent import serve
from peerscope.config import Settings
from peerscope.monitor import Monitor

PEERS = 200
POINTS = 3600
DURATION_S = 300.0
QUICK_DURATION_S = 20.0
WARMUP_S = 10.0
QUICK_WARMUP_S = 3.0
HEAP_EVERY_S = 30.0
QUICK_HEAP_EVERY_S = 5.0
FLAT_HEAP_BYTES = 1_000_000
TARGET_FPS = 30
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Every chart of the page to 3,600 points per series, one a second up to now (the server's
# clock, as the page's charts keep it).
FILL_CHARTS = """(points) => {
  const d = window.peerscopeDashboard;
  const charts = [d.hostCharts.resources, d.hostCharts.network, d.hostCharts.messages,
                  d.detail.jitter, d.detail.quality];
  const now = d.clock.now();
  for (const chart of charts) {
    const times = Array.from({length: points}, (_, i) => now - points + 1 + i);
    const columns = chart.columns.slice(1).map((_, s) =>
      times.map((t) => 50 + 40 * Math.sin(t / 60 + s)));
    chart.replace(times, columns);
  }
  return charts.map((chart) => chart.points);
}"""
# Frames counted by the page itself: in total and per whole second, in a few numbers only
# (a list of timestamps would itself grow the heap being measured).
COUNT_FRAMES = """() => {
  const bench = { frames: 0, start: null, second: 0, inSecond: 0, worst: Infinity,
                  running: true };
  window.__bench = bench;
  const frame = (t) => {
    if (!bench.running) return;
    bench.start ??= t; // a frame's time can precede this call: count from the first frame
    bench.frames += 1;
    const second = Math.floor((t - bench.start) / 1000);
    if (second !== bench.second) {
      bench.worst = Math.min(bench.worst, bench.inSecond);
      bench.second = second;
      bench.inSecond = 0;
    }
    bench.inSecond += 1;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""
STOP_COUNTING = """() => {
  const bench = window.__bench;
  bench.running = false;
  return { frames: bench.frames - 1, seconds: (performance.now() - bench.start) / 1000,
           worst: bench.worst };
}"""


@dataclass(frozen=True)
class Measured:
    seconds: float
    frames: int
    worst_second_fps: int
    heap: list[tuple[float, int]]  # (seconds since start, bytes used after a collection)
    chart_points: list[int]
    rows: int


async def feed(monitor: Monitor, peer_ids: list[str]) -> None:
    rng = random.Random(7)
    while True:
        for index, peer_id in enumerate(peer_ids):
            monitor.record_latency(peer_id, max(0.1, rng.gauss(5.0 + index % 100, 3.0)))
            monitor.record_traffic(
                peer_id,
                bytes_sent=rng.randint(500, 5000),
                bytes_received=rng.randint(500, 5000),
                packets_sent=4,
                packets_received=4,
            )
            monitor.record_message(peer_id, size=200, direction="in")
        await asyncio.sleep(1.0)


async def measure(duration_s: float, warmup_s: float, heap_every_s: float) -> Measured:
    from playwright.async_api import async_playwright

    monitor = Monitor(Settings(metrics_interval=1.0))
    peer_ids = [f"peer-{k:03d}" for k in range(PEERS)]
    for peer_id in peer_ids:
        monitor.add_peer(peer_id, name=f"Player {peer_id}", labels={"region": "eu"})
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve(monitor, port=0, on_ready=ready.set_result))
    feeding = asyncio.create_task(feed(monitor, peer_ids))
    try:
        url = await asyncio.wait_for(ready, 15)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await page.goto(url + "/")
                await page.wait_for_function(
                    "() => document.querySelectorAll('#peers tbody tr').length === 200",
                    timeout=15000,
                )
                await page.get_by_role("button", name="1 h").click()
                await page.locator("#peers tbody tr").first.click()
                await page.wait_for_timeout(1500)  # the range's REST history has landed
                chart_points = await page.evaluate(FILL_CHARTS, POINTS)
                await page.wait_for_timeout(warmup_s * 1000)
                cdp = await page.context.new_cdp_session(page)

                async def heap_used() -> int:
                    await cdp.send("HeapProfiler.collectGarbage")
                    usage = await cdp.send("Runtime.getHeapUsage")
                    return int(usage["usedSize"])

                loop = asyncio.get_running_loop()
                start = loop.time()
                heap = [(0.0, await heap_used())]
                await page.evaluate(COUNT_FRAMES)
                while (elapsed := loop.time() - start) < duration_s:
                    await asyncio.sleep(min(heap_every_s, duration_s - elapsed))
                    heap.append((loop.time() - start, await heap_used()))
                counted = await page.evaluate(STOP_COUNTING)
                rows = await page.locator("#peers tbody tr").count()
            finally:
                await browser.close()
    finally:
        for task in (feeding, server):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return Measured(
        seconds=counted["seconds"],
        frames=counted["frames"],
        worst_second_fps=int(counted["worst"]),
        heap=heap,
        chart_points=chart_points,
        rows=rows,
    )


def mb(size: float) -> str:
    return up(size / 1e6, 2)


def run(quick: bool = False) -> list[Result]:
    duration = QUICK_DURATION_S if quick else DURATION_S
    result = asyncio.run(
        measure(
            duration,
            QUICK_WARMUP_S if quick else WARMUP_S,
            QUICK_HEAP_EVERY_S if quick else HEAP_EVERY_S,
        )
    )
    mean_fps = result.frames / result.seconds
    first, last = result.heap[0][1], result.heap[-1][1]
    peak = max(size for _, size in result.heap)
    growth = last - first
    print(
        f"bench_dashboard: {PEERS} peers, {POINTS} points per series "
        f"(charts filled to {result.chart_points}), one frame a second, "
        f"{result.rows} table rows, {duration:.0f} s in headless Chromium"
    )
    print(
        f"  fps (requestAnimationFrame in the page): mean "
        f"{math.floor(mean_fps * 10) / 10:.1f} over {result.seconds:.1f} s "
        f"({result.frames} frames), worst whole second {result.worst_second_fps}"
    )
    print(
        "  JS heap after a forced GC (MB): "
        + ", ".join(f"{t:.0f} s {mb(size)}" for t, size in result.heap)
    )
    # A growth is rounded up, a shrink's size down: both against peerscope.
    change = f"+{mb(growth)}" if growth >= 0 else f"-{down(-growth / 1e6, 2)}"
    print(f"  heap start {mb(first)} MB, end {mb(last)} MB, peak {mb(peak)} MB, growth {change} MB")
    where = f"dashboard in Chromium, {PEERS} peers, {POINTS:,}-point charts, {duration:.0f} s"
    fps = Result(
        name="bench_dashboard_fps",
        title=f"{where}: the worst whole second's frames",
        unit="fps",
        digits=0,
        target=Target(TARGET_FPS, at_least=True),
        figure=result.worst_second_fps,
        quick=quick,
        detail=f"mean {math.floor(mean_fps * 10) / 10:.1f} fps",
    )
    heap = Result(
        name="bench_dashboard_heap",
        title=f"{where}: JS heap growth after a forced GC, start to end",
        unit="MB",
        digits=2,
        target=Target(FLAT_HEAP_BYTES / 1e6),
        figure=growth / 1e6,
        quick=quick,
        detail=f"{mb(first)} → {mb(last)} MB",
    )
    print(
        f"  target: worst second >= {TARGET_FPS} fps: {fps.verdict.label}; heap growth <= "
        f"{FLAT_HEAP_BYTES / 1e6:.0f} MB: {heap.verdict.label}"
    )
    return [fps, heap]


if __name__ == "__main__":
    run_alone(run)
