"""The dashboard's profiler panel in headless Chromium against a real server.

Each test serves ``create_app(monitor, profiler=profiler)`` with uvicorn on an ephemeral
loopback port, over a ``Profiler`` of the test's own whose functions the test calls, and
opens the page. What the panel shows (its rows, switch, sample and saved report) is checked
against the server's own REST answers; busy functions for the pyinstrument sample run on
the server's loop (the test's own: ``live_server`` serves in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, Request, Route

from peerscope import Monitor, Settings
from peerscope.profiler import Profiler
from peerscope.server import create_app
from tests.browser_support import BrowserPage, browser_page
from tests.server_support import LiveServer, eventually, live_server

XSS = "<img src=x onerror=alert(1)>"
TOKEN = "s3cret-profiler-token"
READ_EVERY_S = 3.0  # the panel's pace (profiler_panel.js)
SLACK_S = 2.0  # a busy CI machine may answer late

# The names table as shown: one dict per row, in the page's order.
NAMES = """() => [...document.querySelectorAll('#profiler-names tbody tr[data-name]')].map(
  (tr) => ({ name: tr.dataset.name, classes: [...tr.classList],
             text: tr.cells[0].firstChild.textContent,
             slow: tr.querySelector('.tag.slow') !== null,
             cells: [...tr.cells].slice(1).map((td) => td.textContent) }))"""
SAMPLE_ROWS = """() => [...document.querySelectorAll('#profiler-sample tbody tr')].map(
  (tr) => [...tr.cells].map((td) => td.textContent))"""


def fine_ms(value: float | None) -> str:
    """format.js's fineMs: three decimals below 1 ms, two below 10, else one."""
    if value is None:
        return "–"
    if value < 1:
        return f"{value:.3f} ms"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def quiet_monitor(**settings: Any) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False, metrics_interval=0.5, **settings))


def spin_for_the_panel(seconds: float) -> int:
    """Busy on the loop's thread: what the panel's sample must list by name."""
    end = time.perf_counter() + seconds
    turns = 0
    while time.perf_counter() < end:
        turns += 1
    return turns


def hostile_spinner() -> Callable[[float], int]:
    """``spin_for_the_panel``'s twin whose function name and file name are HTML."""
    code = compile(
        "def spin(seconds):\n"
        "    end = clock() + seconds\n"
        "    turns = 0\n"
        "    while clock() < end:\n"
        "        turns += 1\n"
        "    return turns\n",
        f"/tmp/{XSS}.py",
        "exec",
    )
    space: dict[str, Any] = {"clock": time.perf_counter}
    exec(code, space)
    spin: Callable[[float], int] = space["spin"]
    spin.__code__ = spin.__code__.replace(co_name=XSS, co_qualname=XSS)
    return spin


@contextlib.asynccontextmanager
async def busy_loop() -> AsyncIterator[None]:
    """Keeps the running loop (the server's) busy in both spinners until the block ends."""
    hostile = hostile_spinner()

    async def run() -> None:
        while True:
            spin_for_the_panel(0.008)
            hostile(0.004)
            await asyncio.sleep(0.004)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def profiled_server(monitor: Monitor, profiler: Profiler) -> AsyncIterator[LiveServer]:
    async with live_server(monitor, app=create_app(monitor, profiler=profiler)) as live:
        yield live


def sampling(http: httpx.AsyncClient) -> Callable[[], Awaitable[bool]]:
    """Whether the server says a sample is running."""

    async def check() -> bool:
        return bool((await http.get("/api/profiler")).json()["sampling"])

    return check


def to_path(path: str) -> Callable[[str], bool]:
    """A URL matcher for Playwright's routes: the requests to ``path`` (any query)."""
    return lambda url: urlsplit(url).path == path


# Kept: page.unroute() takes the very matcher page.route() was given.
TO_PROFILER = to_path("/api/profiler")
TO_SAMPLE = to_path("/api/profiler/sample")


# These servers have no alerting: the alerts panel's reads are refused, and it says so.
ALERTS_OFF = {(404, "/api/alerts"), (404, "/api/alerts/silences")}
REFUSED_LINE = "Failed to load resource: the server responded with a status of"


def refusals(page: Page) -> set[tuple[int, str]]:
    """Filled as the page goes: (status, path) of each answer of 400 or more it gets."""
    seen: set[tuple[int, str]] = set()
    page.on(
        "response",
        lambda r: seen.add((r.status, urlsplit(r.url).path)) if r.status >= 400 else None,
    )
    return seen


def other_errors(browser: BrowserPage) -> list[str]:
    """The page's console errors but Chromium's lines for refused or aborted requests
    (which the test checks through ``refusals`` and its routes)."""
    return [e for e in browser.errors if REFUSED_LINE not in e and "net::ERR_FAILED" not in e]


async def names_shown(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await page.evaluate(NAMES)
    return rows


async def wait_until(page: Page, check: str, timeout_s: float, what: str) -> None:
    try:
        await page.wait_for_function(f"() => {check}", timeout=timeout_s * 1000, polling=50)
    except Exception as error:
        raise AssertionError(f"not within {timeout_s} s: {what}") from error


def text_of(selector: str) -> str:
    return f"document.querySelector('{selector}').textContent"


async def test_the_panel_lists_the_profiled_names_and_switches_and_resets_the_profiler():
    profiler = Profiler()

    @profiler.profile(cpu=True)
    def handle(fail: bool) -> None:
        if fail:
            raise RuntimeError("bad message")

    @profiler.profile(name="slow step")
    def slow_step() -> None:
        time.sleep(0.015)

    calls = 7
    for k in range(calls):
        with pytest.raises(RuntimeError) if k % 3 == 0 else contextlib.nullcontext():
            handle(k % 3 == 0)
    for _ in range(2):
        slow_step()
    with profiler.profile_block(XSS):
        pass
    monitor = quiet_monitor()
    async with (
        profiled_server(monitor, profiler) as live,
        live.http() as http,
        browser_page() as browser,
    ):
        page = browser.page
        refused = refusals(page)
        await page.goto(live.url + "/")
        await wait_until(
            page,
            "document.querySelectorAll('#profiler-names tr[data-name]').length === 3",
            5,
            "three names",
        )
        state = (await http.get("/api/profiler")).json()
        rows = await names_shown(page)
        # By total time, as the server lists them, each figure as it says.
        assert [row["name"] for row in rows] == [entry["name"] for entry in state["functions"]]
        slow_names = {entry["name"] for entry in state["slow"]}
        assert slow_names == {"slow step"}  # its p95 is above 10 ms; nothing else's is
        for row, entry in zip(rows, state["functions"], strict=True):
            assert row["text"] == entry["name"]
            assert row["slow"] is (entry["name"] in slow_names)
            assert ("slow" in row["classes"]) is row["slow"]
            assert "hotspot" in row["classes"]  # three names: all in the top 10
            assert row["cells"] == [
                str(entry["calls"]),
                str(entry["errors"]),
                *(fine_ms(entry[key]) for key in ("avg_ms", "p95_ms", "p99_ms", "max_ms")),
                fine_ms(entry["total_ms"]),
                fine_ms(entry["cpu_ms"]),
            ]
        by_name = {row["name"]: row for row in rows}
        (handle_name,) = [name for name in by_name if name.endswith("handle")]
        assert by_name[handle_name]["cells"][:2] == [str(calls), "3"]
        assert by_name["slow step"]["cells"][0] == "2"
        assert rows[0]["name"] == "slow step"  # the most total time
        assert by_name["slow step"]["cells"][-1] == "–"  # CPU not measured for it
        assert by_name[handle_name]["cells"][-1].endswith(" ms")  # measured for it
        # The hostile block's name is text, nothing was made of it.
        assert by_name[XSS]["text"] == XSS
        assert await page.locator("#profiler-panel img").count() == 0
        process = await page.locator("#profiler-process").inner_text()
        assert re.fullmatch(
            r"process: CPU \d+\.\d %, RSS \d+\.\d MB, \d+ threads, \d+ open fds", process
        ), process
        assert await page.locator("#profiler-state").inner_text() == "on"
        assert await page.locator("#profiler-enabled").is_checked()
        await browser.screenshot("dashboard-profiler")

        # Off from the page: the server says so, and its answer is what the panel shows.
        async with page.expect_response(lambda r: r.request.method == "PUT") as answered:
            await page.locator("#profiler-enabled").click()
        put = await answered.value
        assert put.request.post_data_json == {"enabled": False}
        assert (await put.json())["enabled"] is False
        await wait_until(page, f"{text_of('#profiler-state')} === 'off'", 3, "off")
        assert not await page.locator("#profiler-enabled").is_checked()
        assert (await http.get("/api/profiler")).json()["enabled"] is False
        handle(False)  # not timed while off
        # On again from the page.
        await page.locator("#profiler-enabled").click()
        await wait_until(page, f"{text_of('#profiler-state')} === 'on'", 3, "on again")
        assert (await http.get("/api/profiler")).json()["enabled"] is True

        # Another client switches it off: the panel follows within a read.
        assert (await http.put("/api/profiler", json={"enabled": False})).status_code == 200
        await wait_until(
            page,
            f"{text_of('#profiler-state')} === 'off'",
            READ_EVERY_S + SLACK_S,
            "the server's off",
        )
        assert not await page.locator("#profiler-enabled").is_checked()
        assert (await http.put("/api/profiler", json={"enabled": True})).status_code == 200

        # Reset empties the table (and the server's figures).
        async with page.expect_response(lambda r: r.request.method == "PUT") as answered:
            await page.locator("#profiler-reset").click()
        assert (await answered.value).request.post_data_json == {"reset": True}
        await wait_until(
            page,
            "document.querySelectorAll('#profiler-names tr[data-name]').length === 0",
            3,
            "an empty table",
        )
        assert await page.locator("#profiler-names tbody").inner_text() == "Nothing profiled yet"
        assert (await http.get("/api/profiler")).json()["functions"] == []
        # New calls show at the next read.
        handle(False)
        handle(False)
        await wait_until(
            page,
            "document.querySelector('#profiler-names tr[data-name]')?.cells[1].textContent === '2'",
            READ_EVERY_S + SLACK_S,
            "two new calls",
        )
        assert await page.locator("#profiler-error").is_hidden()
    assert other_errors(browser) == []
    assert refused <= ALERTS_OFF


async def test_a_sample_lists_the_busy_function_and_the_html_report_is_saved(tmp_path):
    monitor = quiet_monitor()
    async with (
        profiled_server(monitor, Profiler()) as live,
        live.http() as http,
        busy_loop(),
        browser_page() as browser,
    ):
        page = browser.page
        refused = refusals(page)
        await page.goto(live.url + "/")
        await page.locator("#profiler-seconds").fill("1")
        button = page.locator("#profiler-sample-button")
        posted = page.expect_response(lambda r: r.url.split("?")[0].endswith("/sample"))
        async with posted as answered:
            await button.click()
            # While it runs: said, and neither button takes another.
            assert await page.locator("#profiler-sample-status").inner_text() == "sampling…"
            assert await button.is_disabled()
            assert await page.locator("#profiler-report-button").is_disabled()
        response = await answered.value
        assert response.request.method == "POST"
        assert "seconds=1&format=json" in response.request.url
        report = await response.json()
        await wait_until(page, "!document.getElementById('profiler-sample').hidden", 3, "rows")
        assert await button.is_enabled()
        assert await page.locator("#profiler-sample-status").inner_text() == ""
        rows = await page.evaluate(SAMPLE_ROWS)
        assert rows == [
            [
                entry["function"],
                f"{entry['file']}:{entry['line']}",
                f"{entry['share'] * 100:.1f} %",
                ms(entry["self_s"] * 1000),
            ]
            for entry in report["top"]
        ]
        functions = [row[0] for row in rows]
        mine = rows[functions.index("spin_for_the_panel")]
        assert re.fullmatch(r".*test_dashboard_profiler_browser\.py:\d+", mine[1]), mine
        # The hostile twin: its name and file shown as text, nothing made of them.
        hostile = rows[functions.index(XSS)]
        # pyinstrument shortens the path against sys.path ("/tmp/…" or "../…", as the
        # working directory lies): the hostile file name is what must show, as text.
        assert re.fullmatch(r".*/<img src=x onerror=alert\(1\)>\.py:\d+", hostile[1]), hostile
        assert await page.locator("#profiler-panel img").count() == 0
        summary = await page.locator("#profiler-sample-summary").inner_text()
        assert summary == (
            f"{report['duration_s']:.2f} s sampled: {report['sample_count']} stacks, "
            f"CPU {report['cpu_time_s']:.2f} s"
        )

        # The HTML report: a file the browser saves.
        async with page.expect_download(timeout=10_000) as downloading:
            await page.locator("#profiler-report-button").click()
        download = await downloading.value
        assert re.fullmatch(r"peerscope-profile-\d{8}-\d{6}\.html", download.suggested_filename)
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        page_text = saved.read_text()
        assert "spin_for_the_panel" in page_text
        await wait_until(
            page, f"{text_of('#profiler-sample-status')}.startsWith('saved ')", 3, "saved"
        )
        assert await page.locator("#profiler-sample-status").inner_text() == (
            f"saved {download.suggested_filename}"
        )

        # A sample already running (another client's): the server's 409, in words.
        other = asyncio.create_task(http.post("/api/profiler/sample", params={"seconds": 2}))
        await eventually(sampling(http), timeout=3)
        await button.click()
        await wait_until(
            page,
            f"{text_of('#profiler-sample-status')} === 'a sample is already running'",
            3,
            "the 409",
        )
        assert await button.is_enabled()
        assert (await other).status_code == 200

        # Seconds out of range: said, and nothing asked of the server.
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        for value in ("0", "61", ""):
            await page.locator("#profiler-seconds").fill(value)
            await button.click()
            assert await page.locator("#profiler-sample-status").inner_text() == (
                "seconds: must be a number from 1 to 60"
            )
        assert not [url for url in asked if "/sample" in url]
        await browser.screenshot("dashboard-profiler-sample")
    # The one refusal of the page's own: the 409.
    assert other_errors(browser) == []
    assert refused - ALERTS_OFF == {(409, "/api/profiler/sample")}


async def test_failures_show_in_the_panel_as_text():
    profiler = Profiler()

    @profiler.profile
    def handle() -> None:
        return None

    handle()
    monitor = quiet_monitor(token=TOKEN)
    async with (
        profiled_server(monitor, profiler) as live,
        browser_page() as browser,
    ):
        page = browser.page
        refused = refusals(page)
        await page.goto(live.url + "/")
        # No token yet: the 401 in words, and the page asks for the token.
        error = page.locator("#profiler-error")
        await error.wait_for(state="visible", timeout=5000)
        assert await error.inner_text() == (
            "Could not read the profiler: unauthorized: missing or wrong bearer token"
        )
        await page.locator("#token-prompt").wait_for(state="visible", timeout=3000)
        await page.fill("#token-input", TOKEN)
        await page.click("#token-form button")
        await page.locator("#profiler-names tr[data-name]").wait_for(timeout=3000)
        await error.wait_for(state="hidden", timeout=3000)

        # The network fails: the next read says so; once it works the words go.
        await page.route(TO_PROFILER, lambda route: route.abort())
        await error.wait_for(state="visible", timeout=(READ_EVERY_S + SLACK_S) * 1000)
        assert await error.inner_text() == "Could not read the profiler: Failed to fetch"
        await page.unroute(TO_PROFILER)
        await error.wait_for(state="hidden", timeout=(READ_EVERY_S + SLACK_S) * 1000)

        # A switch that fails leaves the switch as the server last said.
        async def refuse_writes(route: Route, request: Request) -> None:
            await (route.abort() if request.method == "PUT" else route.continue_())

        await page.route(TO_PROFILER, refuse_writes)
        await page.locator("#profiler-enabled").click()
        await wait_until(
            page, f"{text_of('#profiler-error')}.startsWith('Could not switch')", 3, "refusal"
        )
        assert await error.inner_text() == "Could not switch the profiler off: Failed to fetch"
        assert await page.locator("#profiler-enabled").is_checked()
        assert await page.locator("#profiler-state").inner_text() == "on"
        await page.unroute(TO_PROFILER)

        # A sample whose request fails.
        await page.route(TO_SAMPLE, lambda route: route.abort())
        await page.locator("#profiler-seconds").fill("1")
        await page.locator("#profiler-sample-button").click()
        await wait_until(
            page, f"{text_of('#profiler-sample-status')}.startsWith('Could not')", 3, "sample"
        )
        assert await page.locator("#profiler-sample-status").inner_text() == (
            "Could not sample: Failed to fetch"
        )
        assert await page.locator("#profiler-sample-button").is_enabled()
    # Refused: reads without the token, and nothing else.
    assert other_errors(browser) == []
    assert {status for status, path in refused - ALERTS_OFF} == {401}


async def test_reads_are_one_at_a_time_and_stop_while_the_page_is_hidden():
    monitor = quiet_monitor()
    in_flight = 0
    most = 0
    started: list[float] = []
    slow = True

    async def slow_read(route: Route, request: Request) -> None:
        nonlocal in_flight, most
        if not slow:
            await route.continue_()
            return
        in_flight += 1
        most = max(most, in_flight)
        started.append(time.monotonic())
        try:
            await asyncio.sleep(READ_EVERY_S + 1)  # a server slower than the pace
            await route.continue_()
        finally:
            in_flight -= 1

    async with (
        profiled_server(monitor, Profiler()) as live,
        browser_page() as browser,
    ):
        page = browser.page
        refused = refusals(page)
        await page.route(TO_PROFILER, slow_read)
        await page.goto(live.url + "/")
        await eventually(lambda: len(started) >= 2, timeout=2 * (READ_EVERY_S + 1) + SLACK_S + 2)
        assert most == 1
        # The next read waited for the answer to the one before, then the pace.
        assert started[1] - started[0] >= 2 * READ_EVERY_S + 1 - 0.5, started
        slow = False

        # Hidden (another tab in front; headless Chromium never hides a page, so the page is
        # told as a browser tells it): no read until it shows again, then one at once.
        await page.evaluate(
            """() => { Object.defineProperty(document, 'hidden', {value: true,
                                                                  configurable: true});
                       document.dispatchEvent(new Event('visibilitychange')); }"""
        )
        count: list[float] = []  # reads asked for from now (the one under way was before)
        page.on(
            "request",
            lambda r: count.append(time.monotonic()) if TO_PROFILER(r.url) else None,
        )
        # The read under way ends, then the next one falls due, and is not made.
        await eventually(lambda: in_flight == 0, timeout=READ_EVERY_S + 1 + SLACK_S)
        await page.wait_for_timeout((READ_EVERY_S + 1) * 1000)
        assert count == []
        shown_at = time.monotonic()
        await page.evaluate(
            """() => { Object.defineProperty(document, 'hidden', {value: false,
                                                                  configurable: true});
                       document.dispatchEvent(new Event('visibilitychange')); }"""
        )
        await eventually(lambda: count, timeout=2)
        assert count[0] - shown_at < 1.0
    assert other_errors(browser) == []
    assert refused <= ALERTS_OFF
