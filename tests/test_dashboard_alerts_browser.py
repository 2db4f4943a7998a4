"""The dashboard's alerts panel in headless Chromium against a real server with alerting.

Each test serves ``create_app(monitor, alerting=Alerting(monitor, rules))`` with uvicorn on
an ephemeral loopback port. Peers are probed for real (TWAMP Light to a ``Reflector`` on
127.0.0.1 that the test stops, so the peer goes down, and starts again on the same port, so
it comes back) or fed latencies (``PeerFeed``). The page is read as a user sees it: the
Active rows, the silences, the Recent events and the section's heading; what the page did is
checked against the server's REST answers.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from playwright.async_api import Page, Response, WebSocketRoute

from peerscope import Monitor, Settings
from peerscope.alerting import Alerting
from peerscope.core.alerts import AlertRule
from peerscope.core.probe_target import ProbeTarget
from peerscope.core.quality import StatusRules
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.server import create_app
from tests.browser_support import PeerFeed, browser_page
from tests.server_support import LiveServer, live_server

TICK_S = 0.25
FOR_S = 1.0
PROBE_S = 0.2
PROBE_TIMEOUT_S = 0.3
# A busy CI machine may run a tick late, and the page polls: this much on top of a bound.
SLACK_S = 1.0
# Unanswered after 2 lost probes, disconnected after 4: a peer goes down in about a second.
STATUS = StatusRules(
    no_reply_after_failures=2, degraded_after_failures=2, disconnected_after_failures=4
)
PEER_DOWN = AlertRule("peer_down", "status", "==", "disconnected", for_s=FOR_S, severity="critical")
# The fed peers, not the page's own /ws connection (a client, measured too).
FED = {"kind": "peer"}
XSS_ID = "<img src=x onerror=alert(1)>"
TOKEN = "s3cret-alerts-token"

ACTIVE_ROWS = """() => [...document.querySelectorAll('#alerts-active li[data-key]')].map((li) => ({
  key: li.dataset.key, classes: [...li.classList],
  severity: li.querySelector('.severity').textContent,
  rule: li.querySelector('.rule').textContent,
  peer: li.querySelector('.peer')?.textContent ?? null,
  figure: li.querySelector('.figure').textContent,
  since: li.querySelector('.since').textContent,
  silenced: !li.querySelector('.silenced').hidden,
  can_silence: !li.querySelector('.actions').hidden,
}))"""
RECENT = """() => [...document.querySelectorAll('#alerts-recent li[data-id]')].map((li) => ({
  id: Number(li.dataset.id), classes: [...li.classList],
  state: li.querySelector('.state').textContent,
  message: li.querySelector('.message').textContent,
  silenced: li.querySelector('.silenced') !== null,
}))"""
SILENCES = """() => [...document.querySelectorAll('#alerts-silences li[data-id]')].map((li) => ({
  id: li.dataset.id, matchers: li.querySelector('.matchers').textContent,
  until: li.querySelector('.until').textContent,
}))"""


async def active_rows(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await page.evaluate(ACTIVE_ROWS)
    return rows


async def recent(page: Page) -> list[dict[str, Any]]:
    """The Recent list, newest first, as shown."""
    events: list[dict[str, Any]] = await page.evaluate(RECENT)
    return events


async def silences_shown(page: Page) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = await page.evaluate(SILENCES)
    return shown


async def heading(page: Page) -> str:
    return await page.locator("#alerts-title").inner_text()


async def wait_until(page: Page, check: str, timeout_s: float, what: str) -> float:
    """Seconds until the page's ``check`` (a JS expression) holds."""
    start = time.monotonic()
    try:
        await page.wait_for_function(f"() => {check}", timeout=timeout_s * 1000, polling=50)
    except Exception as error:
        raise AssertionError(f"not within {timeout_s} s: {what}") from error
    return time.monotonic() - start


def table_status_is(peer_id: str, status: str) -> str:
    return (
        f"document.querySelector('#peers tr[data-peer=\"{peer_id}\"] td.col-status')"
        f"?.textContent === '{status}'"
    )


def row_selector(key: str) -> str:
    return f'#alerts-active li[data-key="{key}"]'


def probing_monitor(**overrides: Any) -> Monitor:
    values: dict[str, Any] = {
        "metrics_interval": TICK_S,
        "ws_ping_interval": 0.5,
        "status": STATUS,
    }
    values.update(overrides)
    return Monitor(Settings(**values))


@contextlib.asynccontextmanager
async def alerting_server(
    monitor: Monitor, rules: list[AlertRule]
) -> AsyncIterator[tuple[LiveServer, Alerting]]:
    """``monitor`` served with alerting on ``rules``."""
    alerting = Alerting(monitor, rules)
    await alerting.start()
    try:
        async with live_server(monitor, app=create_app(monitor, alerting=alerting)) as live:
            yield live, alerting
    finally:
        await alerting.stop()


@contextlib.asynccontextmanager
async def probed_peer(monitor: Monitor, peer_id: str) -> AsyncIterator[Reflector]:
    """``peer_id`` probed (TWAMP Light) through a reflector on loopback, which the caller may
    stop and start again on its port (``reflector.port``)."""
    reflector = Reflector()
    port = await reflector.start("127.0.0.1", 0)
    try:
        async with Prober(monitor, interval_s=PROBE_S, timeout_s=PROBE_TIMEOUT_S) as prober:
            prober.add(ProbeTarget.parse(f"127.0.0.1:{port}", peer_id=peer_id))
            yield reflector
    finally:
        reflector.stop()


async def test_a_peer_that_goes_down_fires_is_silenced_from_the_page_and_resolves_when_back():
    monitor = probing_monitor()
    async with (
        alerting_server(monitor, [PEER_DOWN]) as (live, alerting),
        probed_peer(monitor, "fading") as reflector,
        live.http() as http,
        browser_page() as browser,
    ):
        page = browser.page
        await page.goto(live.url + "/")
        await wait_until(page, table_status_is("fading", "connected"), 5, "fading connected")
        assert await heading(page) == "Alerts"
        assert await page.locator("#alerts-active").inner_text() == "No active alerts"
        assert await page.locator("#alerts-silences").inner_text() == "No silences"
        assert await page.locator("#alerts-recent").inner_text() == "No alerts yet"
        assert await page.locator("#alerts-off").is_hidden()

        # The peer goes down: its row appears once the breach has lasted `for`, by the next
        # tick (the frame of the tick that fires it lists it).
        port = reflector.port
        reflector.stop()
        await wait_until(page, table_status_is("fading", "disconnected"), 10, "disconnected")
        waited = await wait_until(
            page,
            f"document.querySelector('{row_selector('peer_down/fading')}') !== null",
            FOR_S + TICK_S + SLACK_S,
            "the peer_down row",
        )
        assert waited >= FOR_S - TICK_S - 0.1, waited  # not while pending
        (firing,) = (await http.get("/api/alerts")).json()["alerts"]
        assert (firing["state"], firing["key"]) == ("firing", "peer_down/fading")
        assert FOR_S <= firing["started_at"] - firing["since"] <= FOR_S + TICK_S + 0.5
        (row,) = await active_rows(page)
        assert re.fullmatch(r"for \d+ s", row.pop("since")), row
        assert row == {
            "key": "peer_down/fading",
            "classes": ["severity-critical"],
            "severity": "critical",
            "rule": "peer_down",
            "peer": "fading",
            "figure": "status disconnected (threshold disconnected)",
            "silenced": False,
            "can_silence": True,
        }
        assert await heading(page) == "Alerts (1 firing)"
        (fired,) = await recent(page)
        assert fired == {
            "id": firing_event_id(await http.get("/api/alerts/history")),
            "classes": ["severity-critical", "state-firing"],
            "state": "fired",
            "message": "peer_down: peer fading status disconnected == disconnected",
            "silenced": False,
        }

        # Its peer link opens the peer's charts, as a click in the table does.
        active = page.locator(row_selector("peer_down/fading"))
        await active.locator("button.peer").click()
        await page.locator("#peer-detail").wait_for(state="visible", timeout=3000)
        assert "fading" in await page.locator("#peer-title").inner_text()

        # Silenced from the page for 15 min: the row says so, the silence is listed, and the
        # server holds it.
        await active.locator("select.silence-for").select_option(label="15 min")
        async with page.expect_response(silence_posted) as answered:
            await active.locator("button.silence").click()
        response = await answered.value
        assert response.status == 201, await response.text()
        assert response.request.post_data_json == {
            "matchers": {"alertname": "peer_down", "peer_id": "fading"},
            "duration_s": 900,
            "created_by": "dashboard",
        }
        await active.locator(".silenced").wait_for(state="visible", timeout=3000)
        assert await active.locator(".actions").is_hidden()
        assert await heading(page) == "Alerts (1 firing, 1 silenced)"
        (silence,) = (await http.get("/api/alerts/silences")).json()["silences"]
        assert silence["matchers"] == {"alertname": "peer_down", "peer_id": "fading"}
        assert 899 <= silence["ends_at"] - silence["starts_at"] <= 901
        await wait_until(page, "document.querySelector('#alerts-silences li[data-id]')", 3, "")
        (listed,) = await silences_shown(page)
        assert (listed["id"], listed["matchers"]) == (
            silence["id"],
            "alertname=peer_down, peer_id=fading",
        )
        assert listed["until"].startswith("until ")
        assert await page.locator("#alerts-error").is_hidden()
        await browser.screenshot("dashboard-alerts-silenced")

        # The peer comes back: the row leaves Active and Recent shows the resolve, newest
        # first, distinct from the firing (and silenced: the silence still holds).
        await reflector.start("127.0.0.1", port)
        await wait_until(
            page,
            f"document.querySelector('{row_selector('peer_down/fading')}') === null",
            10,
            "the row to leave Active",
        )
        assert await page.locator("#alerts-active").inner_text() == "No active alerts"
        assert await heading(page) == "Alerts"
        await wait_until(
            page,
            "document.querySelectorAll('#alerts-recent li').length === 2",
            3,
            "the resolve in Recent",
        )
        resolved, fired_again = await recent(page)
        assert fired_again == fired
        assert resolved["id"] == fired["id"] + 1
        assert resolved["classes"] == ["severity-critical", "state-resolved"]
        assert resolved["state"] == "resolved"
        assert resolved["message"].startswith("resolved peer_down: peer fading status ")
        # Its firing reached the notifiers before the silence: so does its resolve.
        assert resolved["silenced"] is False
        events = (await http.get("/api/alerts/history")).json()["events"]
        assert [(e["id"], e["state"]) for e in events] == [
            (fired["id"], "firing"),
            (resolved["id"], "resolved"),
        ]

        # Unsilenced from the page: gone from the list and from the server.
        async with page.expect_response(
            lambda r: r.request.method == "DELETE" and silence["id"] in r.url
        ) as deleted:
            await page.locator("#alerts-silences button.unsilence").click()
        assert (await deleted.value).status == 204
        await wait_until(
            page,
            "document.querySelector('#alerts-silences').textContent === 'No silences'",
            3,
            "the silence to leave the list",
        )
        assert (await http.get("/api/alerts/silences")).json()["silences"] == []
        assert alerting.silences() == []
        await browser.screenshot("dashboard-alerts-resolved")
    assert browser.errors == []


def firing_event_id(response: Any) -> int:
    (event,) = response.json()["events"]
    assert event["state"] == "firing"
    return int(event["id"])


def silence_posted(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/api/alerts/silences")


async def test_after_a_reconnect_the_page_reads_what_it_missed_and_a_reload_keeps_recent():
    """Events the page saw pushed stay; one that happened while its /ws was down is read
    with ``?after=`` the last id it saw; a reload reads the log again: the same list."""
    monitor = probing_monitor()
    rule = AlertRule("peer_down", "status", "==", "disconnected", severity="critical")
    async with (
        alerting_server(monitor, [rule]) as (live, alerting),
        probed_peer(monitor, "fading") as reflector,
        browser_page() as browser,
    ):
        page = browser.page
        await page.goto(live.url + "/")
        await wait_until(page, table_status_is("fading", "connected"), 5, "fading connected")
        port = reflector.port
        reflector.stop()  # fires: pushed
        await wait_until(
            page,
            "document.querySelectorAll('#alerts-recent li[data-id]').length === 1",
            10,
            "the firing pushed",
        )
        await reflector.start("127.0.0.1", port)  # resolves: pushed
        await wait_until(
            page,
            "document.querySelectorAll('#alerts-recent li[data-id]').length === 2",
            10,
            "the resolve pushed",
        )
        seen = await recent(page)
        assert [e["state"] for e in seen] == ["resolved", "fired"]

        # The page's /ws goes down; meanwhile the peer goes down again.
        await page.evaluate("window.peerscopeDashboard.client.close()")
        reflector.stop()
        deadline = time.monotonic() + 10
        while alerting.last_event_id < seen[0]["id"] + 1:
            assert time.monotonic() < deadline, "the peer did not fire again"
            await page.wait_for_timeout(50)
        assert await recent(page) == seen  # nothing pushed to a closed page
        async with page.expect_request(lambda r: "/api/alerts/history" in r.url) as asked:
            await page.evaluate("window.peerscopeDashboard.client.connect()")
        query = parse_qs(urlsplit((await asked.value).url).query)
        assert query["after"] == [str(seen[0]["id"])]
        await wait_until(
            page,
            "document.querySelectorAll('#alerts-recent li[data-id]').length === 3",
            5,
            "the missed firing",
        )
        caught_up = await recent(page)
        assert caught_up[1:] == seen
        assert (caught_up[0]["id"], caught_up[0]["state"]) == (seen[0]["id"] + 1, "fired")
        await wait_until(
            page,
            f"document.querySelector('{row_selector('peer_down/fading')}')",
            3,
            "the row back in Active",
        )

        # A reload: the same events from the log, none twice.
        await page.reload()
        await wait_until(
            page,
            "document.querySelectorAll('#alerts-recent li[data-id]').length === 3",
            5,
            "Recent after the reload",
        )
        assert await recent(page) == caught_up
    assert browser.errors == []


async def test_an_event_that_ws_left_out_is_read_from_the_log():
    """/ws may leave an event out (a slow reader misses some rather than hold others up):
    the next one's id jumps, and the page reads the ones between from the log."""
    monitor = probing_monitor()
    rule = AlertRule("slow", "latency_ms", ">", 1.0, severity="warning", match=FED)
    dropped: list[int] = []

    async def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            decoded = orjson.loads(message)
            if decoded.get("type") == "performance_alert" and decoded["id"] == 2:
                dropped.append(decoded["id"])
            else:
                ws.send(message)

        server.on_message(from_server)

    async with (
        alerting_server(monitor, [rule]) as (live, alerting),
        browser_page() as browser,
    ):
        page = browser.page
        await page.route_web_socket(re.compile(r"/ws(\?|$)"), relay)
        async with page.expect_response(lambda r: r.url.endswith("/api/alerts/silences")):
            await page.goto(live.url + "/")  # caught up: nothing happened yet
        async with (
            page.expect_request(lambda r: "/api/alerts/history" in r.url) as asked,
            PeerFeed(monitor, ["a", "b", "c"], interval=TICK_S),
        ):
            await wait_until(
                page,
                "document.querySelectorAll('#alerts-recent li[data-id]').length === 3",
                5,
                "three events in Recent",
            )
        assert dropped == [2]
        assert parse_qs(urlsplit((await asked.value).url).query)["after"] == ["1"]
        assert [e["id"] for e in await recent(page)] == [3, 2, 1]
        assert alerting.last_event_id == 3
    assert browser.errors == []


async def test_recent_and_active_stay_bounded_with_many_alerts():
    """120 peers each fire: the page draws 100 Active rows and counts the rest, and keeps
    the 50 newest events, pushed or read after a reload."""
    peers = [f"p{k:03d}" for k in range(120)]
    monitor = probing_monitor()
    rule = AlertRule("slow", "latency_ms", ">", 1.0, severity="warning", match=FED)
    async with (
        alerting_server(monitor, [rule]) as (live, alerting),
        browser_page() as browser,
    ):
        page = browser.page
        await page.goto(live.url + "/")
        await wait_until(page, "document.querySelector('#peers tbody tr')", 5, "connected")
        async with PeerFeed(monitor, peers, interval=TICK_S):
            await wait_until(
                page,
                "document.getElementById('alerts-title').textContent === 'Alerts (120 firing)'",
                10,
                "120 firing",
            )
            assert len(await active_rows(page)) == 100
            more = page.locator("#alerts-active li:not([data-key])")
            assert await more.inner_text() == "… and 20 more (GET /api/alerts lists all)"
            assert alerting.last_event_id == 120
            pushed = await recent(page)
            assert [e["id"] for e in pushed] == list(range(120, 70, -1))
            await page.reload()
            await wait_until(
                page,
                "document.querySelectorAll('#alerts-recent li[data-id]').length === 50",
                5,
                "Recent after the reload",
            )
            assert await recent(page) == pushed
    assert browser.errors == []


async def test_with_a_token_silencing_works_and_a_wrong_token_shows_the_servers_error():
    monitor = probing_monitor(token=TOKEN)
    rules = [
        AlertRule("slow", "latency_ms", ">", 1.0, severity="warning", match=FED),
        AlertRule("host_up", "cpu_percent", ">=", 0.0, severity="info"),
    ]
    async with (
        alerting_server(monitor, rules) as (live, _),
        PeerFeed(monitor, [XSS_ID]),
        live.http(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        browser_page() as browser,
    ):
        page = browser.page
        await page.goto(live.url + "/")
        await page.locator("#token-prompt").wait_for(state="visible", timeout=3000)
        await page.fill("#token-input", TOKEN)
        await page.click("#token-form button")
        await wait_until(
            page,
            "document.getElementById('alerts-title').textContent === 'Alerts (2 firing)'",
            5,
            "two firing",
        )
        rows = {row["key"]: row for row in await active_rows(page)}
        assert rows[f"slow/{XSS_ID}"]["peer"] == XSS_ID  # text, never an element
        assert rows["host_up"]["peer"] is None
        assert rows["host_up"]["classes"] == ["severity-info"]
        assert await page.locator("#alerts img").count() == 0

        # The token the page holds is wrong now (rotated on the server, say): the server's
        # refusal shows in the panel, and nothing was silenced.
        await page.evaluate("sessionStorage.setItem('peerscope.token', 'wrong')")
        slow = page.locator(f"#alerts-active li[data-key='slow/{XSS_ID}']")
        async with page.expect_response(silence_posted) as answered:
            await slow.locator("button.silence").click()
        assert (await answered.value).status == 401
        error = page.locator("#alerts-error")
        await error.wait_for(state="visible", timeout=3000)
        assert await error.inner_text() == (
            f"Could not silence alertname=slow, peer_id={XSS_ID}: "
            "unauthorized: missing or wrong bearer token"
        )
        assert (await http.get("/api/alerts/silences")).json()["silences"] == []
        assert [row["silenced"] for row in await active_rows(page)] == [False, False]

        # The right token again, and a duration the server does not take (no choice of the
        # page's, made here): its 422 names the field.
        await page.evaluate(f"sessionStorage.setItem('peerscope.token', '{TOKEN}')")
        await slow.locator("select.silence-for option:checked").evaluate(
            "(o) => { o.value = '0'; }"
        )
        async with page.expect_response(silence_posted) as answered:
            await slow.locator("button.silence").click()
        refused = await answered.value
        assert refused.status == 422
        refusal = await refused.json()
        (problem,) = refusal["detail"]
        assert problem["field"] == "duration_s"
        await wait_until(
            page,
            "document.getElementById('alerts-error').textContent.includes('duration_s')",
            3,
            "the 422 in the panel",
        )
        assert await error.inner_text() == (
            f"Could not silence alertname=slow, peer_id={XSS_ID}: "
            f"{refusal['error']}: duration_s: {problem['message']}"
        )
        assert (await http.get("/api/alerts/silences")).json()["silences"] == []

        # A host alert is silenced by its rule alone.
        host = page.locator(row_selector("host_up"))
        async with page.expect_response(silence_posted) as answered:
            await host.locator("button.silence").click()
        response = await answered.value
        assert response.status == 201
        assert response.request.headers["authorization"] == f"Bearer {TOKEN}"
        assert response.request.post_data_json["matchers"] == {"alertname": "host_up"}
        assert response.request.post_data_json["duration_s"] == 3600  # the default
        await host.locator(".silenced").wait_for(state="visible", timeout=3000)
        await error.wait_for(state="hidden", timeout=3000)
        (silence,) = (await http.get("/api/alerts/silences")).json()["silences"]
        assert silence["matchers"] == {"alertname": "host_up"}
        assert await heading(page) == "Alerts (2 firing, 1 silenced)"
        await browser.screenshot("dashboard-alerts-token")
    # Chromium logs the refusals (401s of the page's reads before the token, and of the wrong
    # one; the 422); nothing else went wrong.
    assert [e for e in browser.errors if "401" not in e and "422" not in e] == []


async def test_a_server_without_alerting_says_so_in_the_panel():
    monitor = probing_monitor()
    failures: list[tuple[int, str]] = []

    def on_response(response: Response) -> None:
        if response.status >= 400:
            failures.append((response.status, urlsplit(response.url).path))

    async with (
        live_server(monitor, app=create_app(monitor)) as live,
        PeerFeed(monitor, ["alpha"]),
        browser_page() as browser,
    ):
        page = browser.page
        page.on("response", on_response)
        await page.goto(live.url + "/")
        await page.locator("#alerts-off").wait_for(state="visible", timeout=5000)
        assert await page.locator("#alerts-off").inner_text() == "Alerting is off on this server"
        assert await heading(page) == "Alerts (off)"
        assert await page.locator("#alerts-active").is_hidden()
        assert await page.locator("#alerts-error").is_hidden()
        # The page goes on as before.
        await page.wait_for_selector('#peers tr[data-peer="alpha"]', timeout=3000)
    assert failures, "the page never asked for the alerts"
    assert all(status == 404 for status, _ in failures), failures
    assert {path for _, path in failures} <= {"/api/alerts", "/api/alerts/silences"}
    # Chromium logs each 404; nothing else went wrong.
    assert browser.errors == [
        "Failed to load resource: the server responded with a status of 404 (Not Found)"
    ] * len(failures)
