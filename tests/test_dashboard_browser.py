"""The dashboard in headless Chromium against a real server fed with peers.

Each test starts uvicorn on an ephemeral loopback port over a Monitor whose peers a
background task measures (``PeerFeed``), or whose peers' minutes of past a script records
first (``ScriptedPeers``), or that probes TWAMP reflectors on loopback, opens the page, and
reads what it shows: the table's cells, and the data and loss marks of uPlot's charts.
"""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Page, Request, Route

from peerscope import Monitor, Settings
from peerscope.core.quality import StatusRules
from peerscope.probe.reflector import Reflector
from tests.browser_support import PeerFeed, ReplayClock, ScriptedPeers, browser_page
from tests.server_support import cli_env, live_server, peer_named

XSS_NAME = "<img src=x onerror=alert(1)>"


def fed_monitor(**overrides: Any) -> Monitor:
    values: dict[str, Any] = {"metrics_interval": 0.5, "ws_ping_interval": 0.5}
    values.update(overrides)
    return Monitor(Settings(**values))


# The peers table as {peer id: {column key: {text, note, classes}}}: a cell's own text, the
# smaller line under it ("" when hidden) and its classes.
ROWS = """() => Object.fromEntries([...document.querySelectorAll('#peers tbody tr')].map(
  (tr) => [tr.dataset.peer, Object.fromEntries([...tr.cells].map((td) => {
    const note = td.querySelector('.note, .tag');
    return [td.classList[0].slice('col-'.length),
            { text: td.firstChild ? td.firstChild.textContent : '',
              note: note && !note.hidden ? note.textContent : '',
              classes: [...td.classList] }];
  }))]))"""


async def table_cells(page: Page) -> dict[str, dict[str, dict[str, Any]]]:
    cells: dict[str, dict[str, dict[str, Any]]] = await page.evaluate(ROWS)
    return cells


async def row_texts(page: Page) -> dict[str, dict[str, str]]:
    """The peers table as {peer id: {column key: the cell's text}}."""
    return {
        peer: {key: cell["text"] for key, cell in row.items()}
        for peer, row in (await table_cells(page)).items()
    }


# What one chart plots: its x range and the times of the points drawn, in epoch seconds.
CHART_VIEW = """(name) => {
  const chart = name.split(".").reduce((o, key) => o[key], window.peerscopeDashboard);
  return { min: chart.plot.scales.x.min, max: chart.plot.scales.x.max,
           times: Array.from(chart.plot.data[0]) };
}"""


async def chart_view(page: Page, name: str) -> dict[str, Any]:
    """``name``: a chart's path under ``window.peerscopeDashboard`` (``detail.jitter``)."""
    view: dict[str, Any] = await page.evaluate(CHART_VIEW, name)
    return view


async def status_of(page: Page, peer_id: str) -> str | None:
    return (await row_texts(page)).get(peer_id, {}).get("status")


async def wait_for_status(page: Page, peer_id: str, status: str, timeout: float) -> float:
    """Seconds until the table shows ``status`` for ``peer_id``."""
    start = time.monotonic()
    while await status_of(page, peer_id) != status:
        assert time.monotonic() - start < timeout, (
            f"{peer_id} still {await status_of(page, peer_id)!r}, not {status!r}"
        )
        await page.wait_for_timeout(100)
    return time.monotonic() - start


async def test_live_page_charts_table_detail_and_xss_name_as_text():
    monitor = fed_monitor()
    peer_ids = [f"peer-{k:02d}" for k in range(12)]
    monitor.add_peer("evil", name=XSS_NAME, labels={"region": "eu"})
    monitor.start_session(XSS_NAME, ["peer-00", "evil"], session_id="match-1")
    monitor.record_latency("peer-00", 12.0)
    monitor.end_session("match-1")
    async with (
        live_server(monitor) as live,
        PeerFeed(monitor, [*peer_ids, "evil"]),
        browser_page() as browser,
    ):
        page = browser.page
        await page.goto(live.url + "/")
        # Charts hold live points within 3 s of opening the page.
        await page.wait_for_function(
            "() => window.peerscopeDashboard?.hostCharts.resources.points >= 2"
            " && window.peerscopeDashboard.hostCharts.messages.points >= 2",
            timeout=3000,
        )
        # Hovering one chart moves the cursor of the others (uPlot cursor.sync).
        over = page.locator("#host-charts .u-over").first
        box = await over.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
        await page.wait_for_function(
            "() => window.peerscopeDashboard.hostCharts.network.plot.cursor.left > 0"
        )
        rows = await row_texts(page)
        assert set(peer_ids) | {"evil"} <= set(rows)
        row = rows["peer-03"]
        assert row["name"] == ""  # fed peers have no display name
        assert (row["id"], row["status"], row["reason"]) == ("peer-03", "connected", "healthy")
        assert row["latency"].endswith(" ms")
        # The hostile name is shown as its characters and never became an element.
        assert rows["evil"]["name"] == XSS_NAME
        assert await page.locator("#peers img").count() == 0
        # Sessions and alerts have their panels (no alert rules exist yet: none active).
        session = page.locator("#sessions tbody tr").first
        await session.wait_for(timeout=3000)
        cells = await session.locator("td").all_inner_texts()
        assert (cells[0], cells[3], cells[4]) == (XSS_NAME, "2", "12.0 ms")
        assert await page.locator("#alerts-active").inner_text() == "No active alerts"
        header = await page.locator("#header").inner_text()
        assert "Network score" in header
        assert "Connected" in header
        # The server's event-loop lag: the worst since the last frame, the minute's p99.
        assert re.search(r"Loop lag\s*[\d.]+ ms \(p99 [\d.]+ ms\)", header), header
        # Clicking a row opens that peer's charts, with a latency band from REST.
        await page.locator('#peers tr[data-peer="peer-03"]').click()
        await page.wait_for_function(
            "() => window.peerscopeDashboard.detail.latency.points >= 1"
            " && window.peerscopeDashboard.detail.jitter.points >= 1",
            timeout=8000,
        )
        assert await page.locator("#peer-detail").is_visible()
        assert await page.locator("#peer-title").inner_text() == "peer-03"
        # Filtering keeps matching rows only (here by label); a header click sorts.
        await page.fill("#peer-filter", "region=eu")
        await page.wait_for_function(
            "() => document.querySelectorAll('#peers tbody tr').length === 1"
        )
        await page.fill("#peer-filter", "")
        await page.locator('#peers th[data-key="id"]').click()
        await page.wait_for_function(
            "() => document.querySelectorAll('#peers tbody tr').length === 14"
        )
        ids = list(await row_texts(page))
        assert ids == sorted(ids)
        assert ids[0] == "evil"
        await page.locator('#peers th[data-key="id"]').click()  # again: descending
        assert list(await row_texts(page)) == sorted(ids, reverse=True)
        # A range reads the host history with its step, and the peer's band with its own.
        async with (
            page.expect_request(
                lambda r: (
                    "/api/metrics/system/history" in r.url
                    and "duration=86400" in r.url
                    and "step=60" in r.url
                )
            ),
            page.expect_request(lambda r: "/latency?" in r.url and "step=900" in r.url),
        ):
            await page.get_by_role("button", name="24 h").click()
        await browser.screenshot("dashboard-live")
        # The page itself is a measured peer: it answers pings and reports its fps.
        async with live.http() as http:
            dashboard = await peer_named(http, "dashboard")
            assert dashboard is not None
            assert dashboard["latency_ms"] is not None
            assert dashboard["fps"] is not None
            assert dashboard["fps"] > 0
    assert browser.errors == []


def asked_window(url: str, server_time: float) -> tuple[float, float]:
    """The ``(from, to]`` window a history request asks for, ``server_time`` being the
    server's clock when it was asked (the server's own now for a request without ``to``)."""
    query = parse_qs(urlsplit(url).query)
    end = float(query["to"][0]) if "to" in query else server_time
    start = float(query["from"][0]) if "from" in query else end - float(query["duration"][0])
    return start, end


@pytest.mark.parametrize("shift_s", [300.0, -300.0], ids=["ahead", "behind"])
async def test_a_page_whose_clock_is_minutes_off_keeps_to_the_server_clock(shift_s: float):
    """The browser's clock runs 5 min ahead of the server's, or behind it: the charts still
    end at the server's now with the latest points in view, the peer's charts fill with
    points at the server's times, "ago" is right, and every history window asked for ends
    at the server's now."""
    monitor = fed_monitor()
    asked: list[tuple[float, str]] = []  # (the server's clock, URL) of each history request

    def on_request(request: Request) -> None:
        if urlsplit(request.url).path.endswith(("/system/history", "/latency")):
            asked.append((monitor.now(), request.url))

    async with (
        live_server(monitor) as live,
        PeerFeed(monitor, ["alpha", "beta"]),
        browser_page() as browser,
    ):
        page = browser.page
        page.on("request", on_request)
        # Installed at a shifted time, Playwright's clock then runs at the real pace (timers,
        # animation frames and performance.now() keep theirs): only the wall clock is off.
        await page.clock.install(time=time.time() + shift_s)
        await page.goto(live.url + "/")
        # Drawn points: the messages chart takes them from frames only (no REST history).
        await page.wait_for_function(
            "() => window.peerscopeDashboard?.hostCharts.messages.plot.data[0].length >= 2",
            timeout=3000,
        )
        assert abs(await page.evaluate("Date.now() / 1000") - monitor.now() - shift_s) < 5
        # Each host chart shows the last 5 min by the server's clock, its latest point in view.
        for name in ("hostCharts.resources", "hostCharts.network", "hostCharts.messages"):
            view = await chart_view(page, name)
            assert abs(view["max"] - monitor.now()) < 3, (name, view["max"], monitor.now())
            assert view["max"] - view["min"] == 300, name
            assert view["min"] <= view["times"][-1] <= view["max"], (name, view)
        # "Last seen" of a peer measured five times a second.
        assert re.fullmatch(r"[0-2] s ago", (await row_texts(page))["alpha"]["seen"])
        # The peer's charts show its past (buckets of 5 s) and then its live figures, each
        # point at a server time.
        opened_at = monitor.now()
        await page.locator('#peers tr[data-peer="alpha"]').click()
        await page.wait_for_function(
            """() => { const d = window.peerscopeDashboard.detail;
                       return d.latency.plot.data[0].length >= 1
                              && d.jitter.plot.data[0].length >= 3
                              && d.quality.plot.data[0].length >= 3; }""",
            timeout=8000,
        )
        for name in ("detail.latency", "detail.jitter", "detail.quality"):
            view = await chart_view(page, name)
            assert abs(view["max"] - monitor.now()) < 3, (name, view["max"], monitor.now())
            assert view["min"] <= view["times"][-1] <= view["max"], (name, view)
        for name in ("detail.latency", "detail.jitter", "detail.quality"):
            times = (await chart_view(page, name))["times"]
            assert times[0] >= opened_at - 300 - 5 - 1, (name, times)
            assert opened_at - 1 <= times[-1] <= monitor.now() + 1, (name, times)
        # A long range: the host history for the last 24 h by the server's clock.
        async with page.expect_request(
            lambda r: "/system/history" in r.url and "duration=86400" in r.url
        ):
            await page.get_by_role("button", name="24 h").click()
        await page.wait_for_function(
            """() => { const x = window.peerscopeDashboard.hostCharts.resources.plot.scales.x;
                       return x.max - x.min === 86400; }""",
            timeout=3000,
        )
        view = await chart_view(page, "hostCharts.resources")
        assert abs(view["max"] - monitor.now()) < 3
        assert view["times"]
        assert all(view["min"] <= t <= view["max"] for t in view["times"]), view
        # The page learned how far the server's clock is from its own.
        offset = await page.evaluate("window.peerscopeDashboard.clock.offset")
        assert abs(offset + shift_s) < 2
        # The page's clock is set to the other side of the server's: the next frame tells.
        await page.clock.set_system_time(time.time() - shift_s)
        await page.wait_for_function(
            f"() => Math.abs(window.peerscopeDashboard.clock.offset - {shift_s}) < 2", timeout=3000
        )
    windows = [(url, server_time, asked_window(url, server_time)) for server_time, url in asked]
    assert {end - start for _, _, (start, end) in windows} == {300, 86400}
    for url, server_time, (_, end) in windows:
        assert abs(end - server_time) < 3, url
    assert browser.errors == []


async def test_a_peer_whose_reflector_stops_turns_degraded_then_disconnected():
    """Two peers probed for real (TWAMP, POST /api/peers) through reflectors on loopback;
    one reflector stops, and the table shows its peer degraded, with no latency and why,
    then disconnected."""
    rules = StatusRules(degraded_after_failures=3, disconnected_after_failures=8)
    monitor = fed_monitor(
        status=rules, metrics_interval=0.25, probe_interval=0.2, probe_timeout=0.3
    )
    async with (
        Reflector() as steady,
        Reflector() as fading,
        live_server(monitor) as live,
        live.http() as http,
        browser_page() as browser,
    ):
        for peer_id, reflector in (("steady", steady), ("fading", fading)):
            added = await http.post(
                "/api/peers", json={"id": peer_id, "address": f"127.0.0.1:{reflector.port}"}
            )
            assert added.status_code == 201, added.text
        page = browser.page
        await page.goto(live.url + "/dashboard")
        await wait_for_status(page, "fading", "connected", timeout=3)
        fading.stop()
        stopped_at = time.monotonic()
        # Degraded by its score as soon as its loss tells (one lost probe of a few can).
        await wait_for_status(page, "fading", "degraded", timeout=3)
        await browser.screenshot("dashboard-degraded")
        # Two probes in a row unanswered: no figures shown, score 0, and the row says why.
        await page.wait_for_function(
            """() => document.querySelector('#peers tr[data-peer="fading"] td.col-reason')
                     .classList.contains('reason-no_reply')""",
            timeout=3000,
        )
        row = (await table_cells(page))["fading"]
        assert row["reason"]["text"].startswith("no reply to the last"), row["reason"]
        assert row["latency"]["text"] == "–"
        assert row["quality"]["text"] == "0 F bad"
        await wait_for_status(page, "fading", "disconnected", timeout=5)
        assert time.monotonic() - stopped_at >= 1.6  # eight lost probes
        assert await status_of(page, "steady") == "connected"
        badge = page.locator('#peers tr[data-peer="fading"] td.col-status')
        assert "status-disconnected" in (await badge.get_attribute("class") or "")
        await browser.screenshot("dashboard-disconnected")
        # A TWAMP peer's detail splits its path: no loss either way here, delays each way.
        await page.locator('#peers tr[data-peer="steady"]').click()
        await page.wait_for_function(
            """() => { const p = document.querySelector('#peer-path');
                       return !p.hidden && p.textContent.includes('back:'); }""",
            timeout=5000,
        )
        path_text = await page.locator("#peer-path").inner_text()
        assert "out: loss 0.0 %, delay " in path_text, path_text
        assert "back: loss 0.0 %, delay " in path_text, path_text
        assert re.search(r"TTL at reflector \d+", path_text), path_text  # as the probes arrived
    assert browser.errors == []


async def test_a_token_protected_server_asks_for_the_token_then_works():
    monitor = fed_monitor(token="s3cret")
    async with (
        live_server(monitor) as live,
        PeerFeed(monitor, ["alpha"]),
        browser_page() as browser,
    ):
        page = browser.page
        await page.goto(live.url + "/")
        prompt = page.locator("#token-prompt")
        await prompt.wait_for(state="visible", timeout=3000)
        await page.fill("#token-input", "wrong")
        await page.click("#token-form button")
        await prompt.wait_for(state="visible", timeout=3000)
        assert "refused" in await page.locator("#token-prompt .note").inner_text()
        await page.fill("#token-input", "s3cret")
        await page.click("#token-form button")
        await page.wait_for_selector('#peers tr[data-peer="alpha"]', timeout=3000)
        await page.wait_for_function(
            "() => window.peerscopeDashboard.hostCharts.resources.points >= 1", timeout=3000
        )
        assert await prompt.is_hidden()
        assert await page.evaluate("sessionStorage.getItem('peerscope.token')") == "s3cret"
        await browser.screenshot("dashboard-token")
    # The refusals before the right token were 401s on REST: nothing else went wrong.
    assert [e for e in browser.errors if "401" not in e] == []


async def test_a_refusal_of_a_token_since_replaced_does_not_ask_again():
    """A read sent with a wrong token whose 401 arrives after the user gave the right one
    says nothing of the right one: the prompt stays closed."""
    monitor = fed_monitor(token="s3cret")
    release = asyncio.Event()
    held: list[Request] = []

    async def hold_wrong(route: Route) -> None:
        if route.request.headers.get("authorization") == "Bearer wrong":
            held.append(route.request)
            await release.wait()
        await route.continue_()

    async with (
        live_server(monitor) as live,
        PeerFeed(monitor, ["alpha"]),
        browser_page() as browser,
    ):
        page = browser.page
        await page.route("**/api/metrics/sessions*", hold_wrong)
        await page.goto(live.url + "/")
        prompt = page.locator("#token-prompt")
        await prompt.wait_for(state="visible", timeout=3000)
        await page.fill("#token-input", "wrong")
        await page.click("#token-form button")
        await prompt.wait_for(state="visible", timeout=3000)  # /ws refused the wrong one
        deadline = time.monotonic() + 3
        while not held:  # the page read its sessions with the wrong token: held here
            assert time.monotonic() < deadline, "no sessions read with the wrong token"
            await page.wait_for_timeout(50)
        await page.fill("#token-input", "s3cret")
        await page.click("#token-form button")
        await page.wait_for_selector('#peers tr[data-peer="alpha"]', timeout=3000)
        async with page.expect_response(lambda r: r.request in held) as late:
            release.set()
        assert (await late.value).status == 401
        await page.wait_for_timeout(300)  # the page has handled the late refusal
        assert await prompt.is_hidden()
    assert [e for e in browser.errors if "401" not in e] == []


async def test_more_than_a_page_of_peers_pages_through_rest_and_the_page_rides_out_a_restart():
    # Measured once each, with distinct latencies, so the worst-first order holds still
    # between a frame and a REST page. The page's own connection is measured once (the
    # server pings once at connect, then not for an hour).
    monitor = fed_monitor(metrics_interval=1.0, ws_ping_interval=3600.0)
    for k in range(230):
        monitor.record_latency(f"p{k:03d}", 10.0 + 0.25 * k)
    async with browser_page() as browser:
        page = browser.page
        async with live_server(monitor) as live:
            await page.goto(live.url + "/")
            await page.wait_for_function(
                "() => document.querySelectorAll('#peers tbody tr').length === 200", timeout=4000
            )
            # 230 fed peers and the page's own /ws connection.
            assert await page.locator("#peer-page").inner_text() == "1–200 of 231"
            first_page = set(await row_texts(page))
            await page.click("#peer-next")
            await page.wait_for_function(
                "() => document.querySelectorAll('#peers tbody tr').length === 31"
            )
            assert await page.locator("#peer-page").inner_text() == "201–231 of 231"
            second_page = set(await row_texts(page))
            assert first_page.isdisjoint(second_page)
            assert len(first_page | second_page) == 231
            assert await page.locator("#disconnected-banner").is_hidden()
        # The server is gone: the banner says so while the page retries.
        banner = page.locator("#disconnected-banner")
        await banner.wait_for(state="visible", timeout=5000)
        assert "Disconnected from server: reconnecting in" in await banner.inner_text()
        await browser.screenshot("dashboard-disconnected-banner")
        # Back on the same port: the page reconnects by itself (backoff 0.5, 1, 2 s, ...).
        async with live_server(monitor, port=live.port):
            await banner.wait_for(state="hidden", timeout=8000)
            frames_before = await page.evaluate(
                "window.peerscopeDashboard.hostCharts.messages.points"
            )
            await page.wait_for_function(
                f"() => window.peerscopeDashboard.hostCharts.messages.points > {frames_before}",
                timeout=3000,
            )
    # Reconnection attempts to the stopped server fail by design; nothing else may.
    assert [
        e
        for e in browser.errors
        if "WebSocket" not in e and "Failed to fetch" not in e and "ERR_CONNECTION_REFUSED" not in e
    ] == []


async def test_the_demo_dashboard_lists_the_simulated_peers_measured(
    processes: list[subprocess.Popen[str]],
):
    """`peerscope demo` as a newcomer runs it (`make demo`): its page lists the five
    simulated peers with latencies that their reflectors' delays explain."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "peerscope.cli", "demo", "--port", "0", "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    processes.append(demo)
    assert demo.stdout is not None
    url = None
    while url is None:
        line = await asyncio.wait_for(asyncio.to_thread(demo.stdout.readline), 20)
        assert line, f"the demo ended: {demo.stderr.read() if demo.stderr else ''}"
        found = re.search(r"dashboard at (http://127\.0\.0\.1:\d+)/", line)
        url = found[1] if found else None
    async with browser_page() as browser:
        page = browser.page
        await page.goto(url + "/")
        expected = {"sim-lan": (0.3, 10.0), "sim-eu": (24.0, 40.0), "sim-us": (85.0, 110.0)}
        for peer_id in (*expected, "sim-wifi", "sim-flaky"):
            await page.wait_for_selector(f'#peers tr[data-peer="{peer_id}"]', timeout=5000)
        deadline = time.monotonic() + 5
        rows = await row_texts(page)
        while (
            any(rows[p]["latency"] in ("", "–") for p in expected) and time.monotonic() < deadline
        ):
            await page.wait_for_timeout(200)
            rows = await row_texts(page)
        cells = await table_cells(page)
        for peer_id, (low, high) in expected.items():
            row = rows[peer_id]
            assert cells[peer_id]["name"]["note"] == "simulated"  # the tag beside its name
            assert row["status"] == "connected", row
            assert low < float(row["latency"].removesuffix(" ms")) < high, row
        await browser.screenshot("dashboard-demo")
    assert browser.errors == []


# --- outages and the past ---------------------------------------------------------------------

STEP = 5.0  # seconds per bucket of the 5 min range (ranges.js bandStep)
PAST_S = 180.0  # minutes of past recorded before the page opens


def steady(t: float) -> float:
    return 10.0 + t % 3.0


def flaky(t: float) -> float | None:
    """Down from 60 s to 90 s into the script, healthy before and after."""
    return None if 60.0 <= t < 90.0 else 20.0 + t % 2.0


def dead(t: float) -> float | None:
    """Stops answering 45 s before the page opens, for good."""
    return None if t >= PAST_S - 45.0 else 30.0


async def scripted() -> tuple[Monitor, ScriptedPeers, float]:
    """A Monitor with PAST_S seconds of past recorded for steady, flaky and dead (one
    measurement each every 0.5 s, never within 0.25 s of a bucket's edge), then measured
    live; and where the replayed past ends."""
    clock = ReplayClock(math.floor(time.time()) - PAST_S + 0.25)
    # Rings long enough for the whole past and the test's live seconds.
    monitor = Monitor(
        Settings(metrics_interval=0.5, ws_ping_interval=0.5, latency_samples=4000), clock=clock
    )
    script = ScriptedPeers(monitor, clock, {"steady": steady, "flaky": flaky, "dead": dead})
    return monitor, script, script.replay(step=0.5)


def buckets_of(recorded: list[tuple[float, float | None]], until: float) -> dict[float, list[int]]:
    """{bucket start: [answered, lost]} of what was recorded before ``until``."""
    found: dict[float, list[int]] = {}
    for t, latency in recorded:
        if t < until:
            counts = found.setdefault(math.floor(t / STEP) * STEP, [0, 0])
            counts[latency is None] += 1
    return found


# One chart of the open peer: x, each series (undefined as the string "undefined": no point of
# that series there), whether a series' line spans its nulls, the loss marks drawn, and what
# its legend shows.
DETAIL_CHART = """(name) => {
  const chart = window.peerscopeDashboard.detail[name];
  const plain = (column) => Array.from(column, (v) => (v === undefined ? "undefined" : v));
  return {
    times: Array.from(chart.plot.data[0]),
    series: chart.plot.data.slice(1).map(plain),
    spanGaps: chart.plot.series.slice(1).map((s) => s.spanGaps),
    marks: chart.marks,
    legend: Object.fromEntries([...chart.node.querySelectorAll(".u-legend tr.u-series")].map(
      (tr) => [tr.querySelector(".u-label").textContent,
               tr.querySelector(".u-value").textContent])),
  };
}"""


async def detail_chart(page: Page, name: str) -> dict[str, Any]:
    chart: dict[str, Any] = await page.evaluate(DETAIL_CHART, name)
    return chart


async def open_peer(page: Page, peer_id: str) -> float:
    """Click ``peer_id``'s row and wait for its charts: the past read, live points after it.
    Returns where the past's complete buckets end (live points from there)."""
    await page.locator(f'#peers tr[data-peer="{peer_id}"]').click()
    await page.wait_for_function(
        """(id) => { const d = window.peerscopeDashboard.detail;
                     return d.id === id && d.past !== null && d.past.times.length > 0
                            && d.live.some((p) => p.time >= d.pastEnd)
                            && d.latency.plot.data[0].length > d.past.times.length; }""",
        arg=peer_id,
        timeout=8000,
    )
    past_end: float = await page.evaluate("window.peerscopeDashboard.detail.pastEnd")
    return past_end


def seconds_ago(text: str) -> int:
    """ "last reply 1 min 5 s ago" -> 65."""
    found = re.fullmatch(r"last reply (?:(\d+) min )?(\d+) s ago", text)
    assert found is not None, text
    return int(found[1] or 0) * 60 + int(found[2])


def ms_text(value: float) -> str:
    """A latency as format.js prints it."""
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def check_buckets(chart: dict[str, Any], expected: dict[float, list[int]], past_end: float) -> int:
    """Each expected bucket the chart's window holds, as the page draws it: a gap (null p50
    and p95) and an outage mark where nothing came back, a line elsewhere, and a loss mark in
    the colour class of its loss wherever something was lost, and nowhere else. Returns how
    many outage buckets there were."""
    times = chart["times"]
    p50, p95, loss = chart["series"]
    at = {t: i for i, t in enumerate(times) if t < past_end}
    marks = {mark["time"]: mark["label"] for mark in chart["marks"]}
    # The page's window begins at its now less 5 min; the expected ones end before past_end.
    shown = {start: counts for start, counts in expected.items() if times[0] < start < past_end}
    outages = 0
    for start, (answered, lost) in shown.items():
        assert start in at, f"bucket {start} missing"
        i = at[start]
        percent = 100.0 * lost / (answered + lost)
        assert loss[i] == pytest.approx(percent), (start, answered, lost, loss[i])
        if answered == 0:
            outages += 1
            assert (p50[i], p95[i]) == (None, None), (start, p50[i], p95[i])
            assert marks[start] == "outage", (start, marks.get(start))
            continue
        assert p50[i] is not None, (start, answered, lost)
        assert p95[i] is not None, (start, answered, lost)
        if lost:
            label = next(
                label
                for below, label in ((5, "< 5 %"), (20, "< 20 %"), (50, "< 50 %"), (100, "≥ 50 %"))
                if percent < below
            )
            assert marks[start] == label, (start, percent, marks[start])
    last = max(shown)
    assert {t for t in marks if t <= last} == {t for t, (_, lost) in shown.items() if lost}
    return outages


async def test_an_outage_shows_as_dashes_a_reason_a_gap_and_loss_marks_in_its_buckets():
    """Three peers with 3 min of past: one healthy, one that was down for 30 s a while ago,
    one that stopped answering 45 s before the page opened. The table shows "–" and why for
    the dead one; each peer's latency chart breaks its line over exactly the buckets in which
    nothing came back, marks loss where it happened, and its legend shows the latest values."""
    monitor, script, replayed_until = await scripted()
    last_dead_reply = max(t for t, latency in script.recorded["dead"] if latency is not None)
    async with live_server(monitor) as live, script, browser_page() as browser:
        page = browser.page
        await page.goto(live.url + "/")
        await page.wait_for_function(
            """() => { const tr = document.querySelector('#peers tr[data-peer="dead"]');
                       return tr && tr.querySelector('td.col-reason').textContent
                                      .startsWith('no reply to the last'); }""",
            timeout=5000,
        )
        cells = await table_cells(page)
        dead_row = cells["dead"]
        for key in ("latency", "jitter", "mos"):
            assert dead_row[key]["text"] == "–", (key, dead_row[key])
        assert dead_row["status"]["text"] == "disconnected"
        assert dead_row["quality"]["text"] == "0 F bad"
        assert "band-bad" in dead_row["quality"]["classes"]
        assert "reason-no_reply" in dead_row["reason"]["classes"]
        assert "last reply" in dead_row["reason"]["text"]
        # How long ago it last answered, under its latency: by the frame's clock.
        ago = seconds_ago(dead_row["latency"]["note"])
        assert abs(ago - (monitor.now() - last_dead_reply)) < 3, (ago, dead_row)
        steady_row = cells["steady"]
        assert steady_row["reason"]["text"] == "healthy"
        assert "reason-ok" in steady_row["reason"]["classes"]
        assert steady_row["latency"]["text"].endswith(" ms")
        assert steady_row["latency"]["note"] == ""
        assert steady_row["quality"]["text"].endswith("A excellent")
        assert "band-excellent" in steady_row["quality"]["classes"]

        # The peer that was down for 30 s: a gap over its outage, the line either side.
        past_end = await open_peer(page, "flaky")
        latency = await detail_chart(page, "latency")
        expected = buckets_of(script.recorded["flaky"], math.floor(replayed_until / STEP) * STEP)
        assert check_buckets(latency, expected, past_end) >= 5  # 30 s: 5 or 6 whole buckets
        p50 = latency["series"][0]
        assert latency["spanGaps"] == [False, False, False]  # a null is drawn as a gap
        gap = [i for i, v in enumerate(p50) if v is None]
        assert p50[gap[0] - 1] is not None  # a gap, with the line on either side
        assert p50[gap[-1] + 1] is not None
        # Live points follow the past: the peer's latency each frame, no p95 or loss of their
        # own; the legend, the cursor off the chart, shows the latest of each.
        live_from = next(i for i, t in enumerate(latency["times"]) if t >= past_end)
        tail = p50[live_from:]
        assert tail
        assert all(isinstance(v, float) for v in tail), tail
        assert set(latency["series"][1][live_from:]) == {"undefined"}
        assert latency["legend"]["p50"] == ms_text(tail[-1])
        assert latency["legend"]["loss"] == "0.0 %"
        await browser.screenshot("dashboard-outage-past")

        # The dead peer: outage buckets up to now, and live points that are gaps too.
        past_end = await open_peer(page, "dead")
        latency = await detail_chart(page, "latency")
        expected = buckets_of(script.recorded["dead"], math.floor(replayed_until / STEP) * STEP)
        assert check_buckets(latency, expected, past_end) >= 7  # 45 s, the last still filling
        live_from = next(i for i, t in enumerate(latency["times"]) if t >= past_end)
        assert latency["series"][0][live_from:] == [None] * (len(latency["times"]) - live_from)
        assert latency["legend"]["p50"] == "–"
        assert latency["legend"]["loss"] == "100.0 %"
        jitter = await detail_chart(page, "jitter")
        assert jitter["legend"]["jitter"] == "–"
        quality = await detail_chart(page, "quality")
        assert quality["legend"]["score"] == "0"
        assert quality["legend"]["MOS"] == "–"
        assert "no reply to the last" in await page.locator("#peer-reason").inner_text()
        await browser.screenshot("dashboard-outage-now")
    assert browser.errors == []


async def test_opening_a_peer_shows_its_past_in_every_chart():
    """After 3 minutes of a peer's life, opening it shows that past in every chart (latency
    band, jitter, score and MOS), from the history's buckets, and then its live figures."""
    monitor, script, _ = await scripted()
    async with live_server(monitor) as live, script, browser_page() as browser:
        page = browser.page
        await page.goto(live.url + "/")
        await page.wait_for_selector('#peers tr[data-peer="steady"]', timeout=5000)
        opened_at = monitor.now()
        past_end = await open_peer(page, "steady")
        charts = {name: await detail_chart(page, name) for name in ("latency", "jitter", "quality")}
        for name, chart in charts.items():
            times = chart["times"]
            for index, column in enumerate(chart["series"]):
                if (name, index) == ("latency", 2):
                    continue  # loss: 0 in every bucket
                past = [
                    t for t, v in zip(times, column, strict=True) if t < past_end and v is not None
                ]
                # Every bucket of the last 3 minutes, from the first measurement on.
                assert past, (name, index)
                assert past[0] <= opened_at - PAST_S + 2 * STEP, (name, index, past[0], opened_at)
                assert len(past) >= (PAST_S - STEP) / STEP, (name, index, len(past))
        p50, p95, loss = charts["latency"]["series"]
        past = [i for i, t in enumerate(charts["latency"]["times"]) if t < past_end]
        assert all(10.0 <= p50[i] <= p95[i] < 13.0 for i in past)  # steady: 10-13 ms
        assert all(loss[i] == 0.0 for i in past)
        assert charts["latency"]["marks"] == []
        score, mos = charts["quality"]["series"]
        assert all(score[i] > 90 and 4.0 < mos[i] <= 4.5 for i in past)
        assert all(0 <= charts["jitter"]["series"][0][i] < 3 for i in past)
        # The legends show the latest figures without hovering.
        for chart in charts.values():
            assert "–" not in chart["legend"].values(), chart["legend"]
        await browser.screenshot("dashboard-peer-past")
    assert browser.errors == []
