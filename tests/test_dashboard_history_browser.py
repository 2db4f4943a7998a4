"""The dashboard's long ranges after a restart: the 7 d range plots the history store's
points from days ago, which no ring of the restarted agent holds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from peerscope import Monitor, Settings
from peerscope.store import HistoryStore
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock
from tests.browser_support import PeerFeed, browser_page
from tests.server_support import live_server

DAY_S = 86_400.0
PEER = "old-peer"

# The times a chart plots and its first series' values (null: a break in the line).
PLOTTED = """(name) => {
  const chart = name.split(".").reduce((o, key) => o[key], window.peerscopeDashboard);
  return { times: Array.from(chart.plot.data[0]), values: Array.from(chart.plot.data[1]) };
}"""


def recorded_days_ago(db: Path, days: float, hours: int) -> tuple[float, float]:
    """``hours`` of a tick a minute (the host and PEER) from ``days`` ago, in ``db``, by an
    agent that then stops: the first and last tick's times."""
    start = time.time() - days * DAY_S
    start -= start % 3600
    clock = ManualClock(start)
    monitor = Monitor(Settings(metrics_interval=60.0), clock=clock)
    store = HistoryStore(StoreSettings(db=str(db)))
    store.attach(monitor)
    try:
        for minute in range(hours * 60):
            clock.now = start + 60 * minute
            monitor.record_latency(PEER, 20.0 + minute % 5)
            monitor.tick()
            if minute % 300 == 299:
                store.flush()
    finally:
        store.close()
    return start, clock.now


async def plotted(page: Any, name: str) -> dict[str, Any]:
    view: dict[str, Any] = await page.evaluate(PLOTTED, name)
    return view


async def test_after_a_restart_the_7_day_range_plots_what_the_store_kept(tmp_path: Path):
    db = tmp_path / "history.db"
    first, last = recorded_days_ago(db, 3, hours=3)
    # The restart: a new Monitor (rings empty), and its agent's store on the same file.
    monitor = Monitor(
        Settings(
            metrics_interval=0.5,
            ws_ping_interval=0.5,
            store=StoreSettings(enabled=True, db=str(db)),
        )
    )
    stores: list[HistoryStore] = []
    try:
        async with (
            live_server(monitor) as live,
            PeerFeed(monitor, [PEER]),
            browser_page() as browser,
        ):
            assert live.agent.store is not None
            stores.append(live.agent.store)  # live_server does not run the agent: closed below
            page = browser.page
            await page.goto(live.url + "/")
            await page.wait_for_selector(f'#peers tr[data-peer="{PEER}"]', timeout=5000)
            async with page.expect_response(
                lambda r: "/system/history" in r.url and "duration=604800" in r.url
            ) as answered:
                await page.get_by_role("button", name="7 d").click()
            assert (await (await answered.value).json())["tier"] == "1h"
            # The host's charts: hourly means from three days ago, none since (the agent
            # was off) until the restart.
            await page.wait_for_function(
                f"""() => {{ const x = window.peerscopeDashboard.hostCharts.resources.plot;
                             return x.data[0].length && x.data[0][0] < {last + 1}; }}""",
                timeout=5000,
            )
            host = await plotted(page, "hostCharts.resources")
            old = [t for t in host["times"] if t <= last]
            assert old == [first, first + 3600, first + 7200]  # three hours of 1 h steps
            assert None not in host["values"][: len(old)]
            # The days the agent was off are a break in the line, not a line across them.
            assert host["times"][len(old)] == old[-1] + 3600
            assert host["values"][len(old)] is None
            assert max(host["times"]) > time.time() - 3600  # and now
            # The peer's charts: hourly buckets from three days ago, then its live figures.
            await page.locator(f'#peers tr[data-peer="{PEER}"]').click()
            await page.wait_for_function(
                f"""() => {{ const x = window.peerscopeDashboard.detail.latency.plot;
                             return x.data[0].length && x.data[0][0] < {last + 1}; }}""",
                timeout=8000,
            )
            latency = await plotted(page, "detail.latency")
            hours = [t for t in latency["times"] if t <= last]
            assert hours == [first, first + 3600, first + 7200]
            # p50 of 20, 21, 22, 23, 24 ms (within the store's 1 %), then a break.
            assert latency["values"][:3] == [pytest.approx(22.0, rel=0.01)] * 3
            assert (latency["times"][3], latency["values"][3]) == (first + 3 * 3600, None)
            await browser.screenshot("dashboard-7d-after-restart")
        assert browser.errors == []
    finally:
        for store in stores:
            store.close()
