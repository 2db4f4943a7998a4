"""The notifiers against real receivers on loopback: the log, callbacks, a webhook receiver
that accepts, fails, hangs or is down, and Apprise through its ``json://`` target.

Alerts come from a real :class:`Alerting` over a Monitor on a ManualClock, driven tick by
tick: a server rule (``active_connections``, set by adding and removing peers) stands for a
CPU-style host rule, with a ``for_s`` wait and a clear line.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from pathlib import Path

import pytest

from peerscope import Monitor
from peerscope.alerting import AlertEvent
from peerscope.alerting.notifiers import (
    AlertmanagerNotifier,
    AppriseNotifier,
    CallbackNotifier,
    LogNotifier,
    WebhookNotifier,
)
from peerscope.core.alerts import AlertRule
from peerscope.testing import LoopStalls, ManualClock
from tests.notifier_support import Recorder, alerting_with, make_monitor, settled
from tests.process_support import free_ports
from tests.receiver_support import HANG, Receiver

RULE = AlertRule("many_connections", "active_connections", ">", 2.0, clear=1.0, for_s=5.0)
# Quick retries: the tests wait for real backoffs.
FAST = {"backoff_s": 0.05, "max_backoff_s": 0.2}


def fire(monitor: Monitor, clock: ManualClock) -> None:
    """Three connections: pending at once, firing ``for_s`` later."""
    for peer_id in ("a", "b", "c"):
        monitor.add_peer(peer_id)
    monitor.tick()
    clock.advance(RULE.for_s)
    monitor.tick()


def resolve(monitor: Monitor, clock: ManualClock) -> None:
    """Down to two (inside the hysteresis band: still firing), then one (cleared)."""
    monitor.remove_peer("c")
    clock.advance(1)
    monitor.tick()
    monitor.remove_peer("b")
    clock.advance(1)
    monitor.tick()


# --- webhook ------------------------------------------------------------------------------


async def test_a_webhook_gets_firing_and_resolved_exactly_once(clock):
    monitor = make_monitor(clock)
    async with Receiver() as receiver:
        webhook = WebhookNotifier(receiver.url + "/hooks/alerts")
        async with alerting_with(monitor, [RULE], [webhook], **FAST) as alerting:
            fire(monitor, clock)
            resolve(monitor, clock)
            (stats,) = await settled(alerting, sent=2)
            events = alerting.history()
    assert [(e["state"], e["value"]) for e in events] == [("firing", 3.0), ("resolved", 1.0)]
    assert [r.json() for r in receiver.requests] == events  # the events, as JSON, once each
    for request in receiver.requests:
        assert (request.method, request.target) == ("POST", "/hooks/alerts")
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("peerscope/")
    assert stats == {
        "name": f"webhook {receiver.url}",
        "sent": 2,
        "failed": 0,
        "retried": 0,
        "dropped": 0,
        "queued": 0,
        "last_error": None,
    }


async def test_a_receiver_that_fails_twice_still_gets_each_event_once(clock, caplog):
    monitor = make_monitor(clock)
    async with Receiver([500, 500]) as receiver:
        webhook = WebhookNotifier(receiver.url)
        async with alerting_with(monitor, [RULE], [webhook], **FAST) as alerting:
            fire(monitor, clock)
            resolve(monitor, clock)
            (stats,) = await settled(alerting, sent=2)
            events = alerting.history()
    # Three tries of the firing (500, 500, accepted), then the resolve accepted at once.
    assert [r.json()["id"] for r in receiver.requests] == [events[0]["id"]] * 3 + [events[1]["id"]]
    assert (stats["sent"], stats["retried"], stats["failed"]) == (2, 2, 0)
    assert "HTTP 500" in str(stats["last_error"])
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all(r.levelno == logging.WARNING for r in retries)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503])
async def test_answers_that_say_not_now_are_retried(clock, status):
    monitor = make_monitor(clock)
    async with Receiver(then=status) as receiver:
        webhook = WebhookNotifier(receiver.url)
        async with alerting_with(monitor, [RULE], [webhook], retries=2, **FAST) as alerting:
            fire(monitor, clock)
            (stats,) = await settled(alerting, failed=1)
    assert len(receiver.requests) == 3
    assert (stats["sent"], stats["retried"], stats["failed"]) == (0, 2, 1)


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 422])
async def test_answers_that_say_never_are_given_up_at_once(clock, caplog, status):
    monitor = make_monitor(clock)
    async with Receiver(then=status) as receiver:
        webhook = WebhookNotifier(receiver.url)
        async with alerting_with(monitor, [RULE], [webhook], retries=3, **FAST) as alerting:
            fire(monitor, clock)
            (stats,) = await settled(alerting, failed=1)
    assert len(receiver.requests) == 1
    assert (stats["sent"], stats["retried"], stats["failed"]) == (0, 0, 1)
    assert f"HTTP {status}" in str(stats["last_error"])
    (record,) = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "after 1 attempt(s), not worth retrying" in record.getMessage()


async def test_a_receiver_that_is_down_is_retried_then_counted_failed(clock, caplog):
    (port,) = free_ports(1)  # nothing listens there
    monitor = make_monitor(clock)
    webhook = WebhookNotifier(f"http://127.0.0.1:{port}/hook")
    async with alerting_with(monitor, [RULE], [webhook], retries=2, **FAST) as alerting:
        fire(monitor, clock)
        resolve(monitor, clock)
        (stats,) = await settled(alerting, failed=2)
    assert (stats["sent"], stats["retried"], stats["failed"]) == (0, 4, 2)
    assert "ConnectError" in str(stats["last_error"])
    gave_up = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 2
    assert all("after 3 attempt(s): ConnectError" in message for message in gave_up)


@pytest.mark.slow
async def test_a_hanging_receiver_delays_neither_the_tick_nor_the_other_receiver(clock):
    monitor = make_monitor(clock)
    async with Receiver(then=HANG) as hanging, Receiver() as healthy:
        notifiers = [WebhookNotifier(hanging.url, timeout_s=3.0), WebhookNotifier(healthy.url)]
        async with (
            alerting_with(monitor, [RULE], notifiers, retries=0, timeout_s=30.0) as alerting,
            LoopStalls() as stalls,
        ):
            started = time.perf_counter()
            fire(monitor, clock)
            ticks_took = time.perf_counter() - started
            await healthy.wait_for(1)
            started = time.perf_counter()
            resolve(monitor, clock)  # while the hanging receiver holds the firing
            ticks_took += time.perf_counter() - started
            await healthy.wait_for(2)
            # Both events reached the healthy receiver while the hanging one still holds
            # the first request, unanswered: nothing waited for it.
            hung, ok = alerting.notifier_stats()
            assert len(hanging.requests) == 1
            assert (hung["sent"], hung["failed"], hung["queued"]) == (0, 0, 1)
            assert (ok["sent"], ok["failed"]) == (2, 0)
            assert ticks_took < 0.5  # four ticks, however long the hanging one waits
            assert stalls.worst < 1.0  # nor was the loop held
            # Then the hanging one's own timeout fires, and it moves on to the resolve.
            await hanging.wait_for(2, timeout_s=10.0)
            hung, _ = alerting.notifier_stats()
            assert hung["failed"] == 1
            assert "ReadTimeout" in str(hung["last_error"])
    assert [r.json()["state"] for r in healthy.requests] == ["firing", "resolved"]


async def test_a_webhook_sends_its_headers_and_the_urls_user_as_basic_auth(clock):
    monitor = make_monitor(clock)
    async with Receiver() as receiver:
        url = receiver.url.replace("http://", "http://alice:s3cret@") + "/hook?token=t0ken"
        webhook = WebhookNotifier(url, headers={"Authorization-Extra": "Bearer abc"})
        async with alerting_with(monitor, [RULE], [webhook]) as alerting:
            fire(monitor, clock)
            await settled(alerting, sent=1)
    (request,) = receiver.requests
    assert request.target == "/hook?token=t0ken"
    assert request.headers["authorization"] == "Basic " + "YWxpY2U6czNjcmV0"  # alice:s3cret
    assert request.headers["authorization-extra"] == "Bearer abc"


def test_a_webhooks_name_holds_no_secret():
    webhook = WebhookNotifier("https://user:pw@hooks.example.com:8443/services/T1/B2/XyZ?k=v#f")
    assert webhook.name == "webhook https://hooks.example.com:8443"
    assert WebhookNotifier("http://[::1]/x").name == "webhook http://[::1]"
    manager = AlertmanagerNotifier("http://admin:pw@127.0.0.1:9093/prefix?x=1")
    assert manager.name == "alertmanager http://127.0.0.1:9093"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: WebhookNotifier("ftp://u:SECRET@example.com/x"), "url: must be an http:// or"),
        (lambda: WebhookNotifier("https:///SECRET"), "url: must be an http:// or"),
        (lambda: WebhookNotifier("http://SECRET:x/"), "url: is not a valid URL"),
        (lambda: WebhookNotifier(42), "url: must be a string, got int"),
        (lambda: WebhookNotifier("http://h", timeout_s=0), "timeout_s: must be a finite"),
        (lambda: WebhookNotifier("http://h", timeout_s=float("nan")), "timeout_s: must be"),
        (lambda: WebhookNotifier("http://h", headers={"X": "a\nSECRET"}), "headers.X: must be"),
        (lambda: WebhookNotifier("http://h", headers={"X Y": "v"}), "headers: name 'X Y' is"),
        (lambda: AlertmanagerNotifier("http://h", resend_s=-1), "resend_s: must be a finite"),
        (
            lambda: AlertmanagerNotifier("http://h", generator_url="nope SECRET"),
            "generator_url: must be an http:// or",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_never_quoting_a_secret(call, message):
    with pytest.raises(ValueError, match="^" + message) as refused:
        call()
    assert "SECRET" not in str(refused.value)


async def test_notifiers_of_one_name_are_told_apart(clock):
    monitor = make_monitor(clock)
    async with Receiver() as receiver:
        twins = [WebhookNotifier(receiver.url + "/one"), WebhookNotifier(receiver.url + "/two")]
        async with alerting_with(monitor, [RULE], twins) as alerting:
            fire(monitor, clock)
            stats = await settled(alerting, sent=1)
    assert [entry["name"] for entry in stats] == [
        f"webhook {receiver.url}",
        f"webhook {receiver.url} #2",
    ]
    assert sorted(r.target for r in receiver.requests) == ["/one", "/two"]


# --- log ----------------------------------------------------------------------------------


async def test_the_log_notifier_writes_one_line_per_event(clock, caplog):
    monitor = make_monitor(clock)
    caplog.set_level(logging.INFO, logger="peerscope.alerts")
    async with alerting_with(monitor, [RULE], [LogNotifier()]) as alerting:
        fire(monitor, clock)
        resolve(monitor, clock)
        await settled(alerting, sent=2)
        events = alerting.history()
    records = [r for r in caplog.records if r.name == "peerscope.alerts"]
    labels = '{alertname="many_connections", severity="warning"}'
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, f"alert firing: many_connections: active_connections 3 > 2 {labels}"),
        (logging.INFO, f"alert resolved many_connections: active_connections 1 {labels}"),
    ]
    assert [r.alert_event for r in records] == events


async def test_the_log_notifier_says_when_an_alert_still_fires(clock, caplog):
    monitor = make_monitor(clock)
    rule = AlertRule("crowded", "active_connections", ">=", 1.0, severity="critical", repeat_s=10)
    caplog.set_level(logging.INFO, logger="peerscope.alerts")
    async with alerting_with(monitor, [rule], [LogNotifier()]) as alerting:
        monitor.add_peer("eu-1", labels={"region": "eu"})
        monitor.tick()
        clock.advance(10)
        monitor.tick()
        await settled(alerting, sent=2)
    firing, repeat = [r.getMessage() for r in caplog.records if r.name == "peerscope.alerts"]
    assert firing.startswith("alert firing: crowded: active_connections 1 >= 1 {")
    assert repeat.startswith("alert still firing: crowded: active_connections 1 >= 1 {")
    assert 'severity="critical"' in repeat


# --- callbacks ----------------------------------------------------------------------------


async def test_sync_and_async_callbacks_get_every_event(clock):
    monitor = make_monitor(clock)
    loop_thread = threading.get_ident()
    seen: dict[str, list[tuple[int, AlertEvent]]] = {"sync": [], "async": [], "object": []}

    def on_sync(event: AlertEvent) -> None:
        seen["sync"].append((threading.get_ident(), event))

    async def on_async(event: AlertEvent) -> None:
        await asyncio.sleep(0)
        seen["async"].append((threading.get_ident(), event))

    class Handler:  # the avatar seed's alert_handler shape: an object with an async method
        async def __call__(self, event: AlertEvent) -> None:
            seen["object"].append((threading.get_ident(), event))

    notifiers = [
        CallbackNotifier(on_sync, name="sync"),
        CallbackNotifier(on_async, name="async"),
        CallbackNotifier(Handler(), name="object"),
    ]
    async with alerting_with(monitor, [RULE], notifiers) as alerting:
        fire(monitor, clock)
        resolve(monitor, clock)
        stats = await settled(alerting, sent=2)
        events = alerting.history()
    assert [entry["name"] for entry in stats] == ["sync", "async", "object"]
    for name, calls in seen.items():
        assert [event for _, event in calls] == events, name
    assert {thread for thread, _ in seen["sync"]} != {loop_thread}  # on its own thread
    assert {thread for thread, _ in seen["async"]} == {loop_thread}
    assert {thread for thread, _ in seen["object"]} == {loop_thread}


async def test_a_sync_callback_that_returns_a_coroutine_has_it_awaited(clock):
    monitor = make_monitor(clock)
    handled: list[str] = []

    class AlertHandler:
        async def handle_alert(self, alert: AlertEvent) -> None:
            handled.append(alert["state"])

    handler = AlertHandler()
    notifier = CallbackNotifier(lambda event: handler.handle_alert(event), name="seed")
    async with alerting_with(monitor, [RULE], [notifier]) as alerting:
        fire(monitor, clock)
        resolve(monitor, clock)
        await settled(alerting, sent=2)
    assert handled == ["firing", "resolved"]


async def test_a_callback_that_raises_is_retried_and_logged_and_others_still_get_events(
    clock, caplog
):
    monitor = make_monitor(clock)
    calls: list[str] = []
    received: list[str] = []

    def broken(event: AlertEvent) -> None:
        calls.append(event["state"])
        raise RuntimeError("the handler is broken")

    notifiers = [
        CallbackNotifier(broken, name="broken"),
        CallbackNotifier(lambda event: received.append(event["state"]), name="fine"),
    ]
    async with alerting_with(monitor, [RULE], notifiers, retries=2, **FAST) as alerting:
        fire(monitor, clock)
        resolve(monitor, clock)
        await settled(alerting, timeout_s=15.0)
        deadline = time.monotonic() + 15
        while alerting.notifier_stats()[0]["failed"] < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        bad, good = alerting.notifier_stats()
    assert calls == ["firing"] * 3 + ["resolved"] * 3
    assert (bad["sent"], bad["retried"], bad["failed"]) == (0, 4, 2)
    assert bad["last_error"] == "RuntimeError('the handler is broken')"
    assert received == ["firing", "resolved"]
    assert (good["sent"], good["failed"]) == (2, 0)
    gave_up = [r for r in caplog.records if "broken gave up" in r.getMessage()]
    assert len(gave_up) == 2
    assert "the handler is broken" in gave_up[0].getMessage()


@pytest.mark.slow
async def test_a_slow_sync_callback_does_not_stall_the_loop(clock):
    monitor = make_monitor(clock)
    slow_done = threading.Event()
    quick: list[float] = []

    def slow(event: AlertEvent) -> None:
        time.sleep(1.0)
        slow_done.set()

    notifiers = [
        CallbackNotifier(slow, name="slow"),
        CallbackNotifier(lambda event: quick.append(time.monotonic()), name="quick"),
    ]
    async with alerting_with(monitor, [RULE], notifiers) as alerting, LoopStalls() as stalls:
        started = time.perf_counter()
        fire(monitor, clock)
        tick_took = time.perf_counter() - started
        deadline = time.monotonic() + 10
        while not quick and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert quick  # the quick one did not wait for the slow one
        assert not slow_done.is_set()
        await settled(alerting, sent=1)
    assert slow_done.is_set()
    assert tick_took < 0.5
    assert stalls.worst < 0.5  # the loop ran on through the second the callback slept


@pytest.mark.slow
async def test_a_hung_sync_callback_times_out_and_its_retry_never_runs_behind_it(clock):
    monitor = make_monitor(clock)
    release = threading.Event()
    calls: list[str] = []

    def hangs_once(event: AlertEvent) -> None:
        calls.append(event["state"])
        if len(calls) == 1:
            release.wait(30)

    notifier = CallbackNotifier(hangs_once, name="hangs")
    async with alerting_with(
        monitor, [RULE], [notifier], retries=1, timeout_s=0.3, backoff_s=0.05
    ) as alerting:
        fire(monitor, clock)
        (stats,) = await settled(alerting, failed=1)
        assert stats["last_error"] == "timed out"
        release.set()  # the first call returns; the retry, given up on, was never started
        resolve(monitor, clock)
        (stats,) = await settled(alerting, sent=1)
    assert calls == ["firing", "resolved"]
    assert (stats["retried"], stats["failed"]) == (1, 1)


async def test_a_callback_that_changes_its_event_changes_nothing_else(clock):
    monitor = make_monitor(clock)
    others: list[AlertEvent] = []

    def vandal(event: AlertEvent) -> None:
        event["labels"]["severity"] = "critical"
        event["message"] = "changed"

    notifiers = [CallbackNotifier(vandal, name="vandal"), CallbackNotifier(others.append)]
    async with alerting_with(monitor, [RULE], notifiers) as alerting:
        fire(monitor, clock)
        await settled(alerting, sent=1)
        (event,) = alerting.history()
    assert event["labels"]["severity"] == "warning"
    assert event["message"] == "many_connections: active_connections 3 > 2"
    assert others == [event]


def test_a_callback_must_be_callable_and_named():
    with pytest.raises(ValueError, match=r"^callback: must be callable"):
        CallbackNotifier("not a function")
    with pytest.raises(ValueError, match=r"^name: must be 1-128 printable"):
        CallbackNotifier(print, name="")


# --- Apprise ------------------------------------------------------------------------------


async def test_apprise_json_target_gets_title_body_and_type(clock):
    monitor = make_monitor(clock)
    rules = [
        AlertRule(f"connections_{severity}", "active_connections", ">", 2.0, severity=severity)
        for severity in ("critical", "warning", "info")
    ]
    async with Receiver() as receiver:
        apprise = AppriseNotifier([f"json://{receiver.url.removeprefix('http://')}/notify"])
        assert apprise.name == "apprise json"
        async with alerting_with(monitor, rules, [apprise]) as alerting:
            fire(monitor, clock)
            resolve(monitor, clock)
            await settled(alerting, sent=6)
            events = alerting.history()
    bodies = [r.json() for r in receiver.requests]
    assert [r.target for r in receiver.requests] == ["/notify"] * 6
    assert [(b["title"], b["type"]) for b in bodies] == [
        ("Critical: connections_critical", "failure"),
        ("Warning: connections_warning", "warning"),
        ("Info: connections_info", "info"),
        ("Resolved: connections_critical", "success"),
        ("Resolved: connections_warning", "success"),
        ("Resolved: connections_info", "success"),
    ]
    assert bodies[1]["message"] == (
        "connections_warning: active_connections 3 > 2\n"
        "Firing since 2023-11-14 22:13:20 UTC\n"
        'Labels: {alertname="connections_warning", severity="warning"}'
    )
    assert events[1]["started_at"] == 1_700_000_000.0
    assert bodies[4]["message"] == (
        "resolved connections_warning: active_connections 2\n"  # no clear: 2 > 2 is over
        "Firing since 2023-11-14 22:13:20 UTC\n"
        "Resolved at 2023-11-14 22:13:26 UTC\n"
        'Labels: {alertname="connections_warning", severity="warning"}'
    )


async def test_an_apprise_retry_goes_only_to_the_urls_that_failed(clock):
    monitor = make_monitor(clock)
    async with Receiver() as fine, Receiver([500, 500]) as flaky:
        urls = [f"json://{r.url.removeprefix('http://')}/a" for r in (fine, flaky)]
        async with alerting_with(monitor, [RULE], [AppriseNotifier(urls)], **FAST) as alerting:
            fire(monitor, clock)
            (stats,) = await settled(alerting, sent=1)
    assert len(fine.requests) == 1  # not sent again with the retries
    assert len(flaky.requests) == 3
    assert (stats["retried"], stats["failed"]) == (2, 0)
    assert stats["last_error"] == "RuntimeError('apprise: sending to json failed (see its log)')"


def test_an_apprise_notifiers_name_is_its_schemes_only():
    apprise = AppriseNotifier(
        ["discord://1234567/SECRETtoken", "json://127.0.0.1:9/x", "jsons://u:SECRET@h/x"]
    )
    assert apprise.name == "apprise discord, json, jsons"


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ([], "urls: must hold at least one"),
        ("json://h/x", "urls: must be a list of URLs"),
        (["json://h/x", "no scheme SECRET"], r"urls\[1\]: must be a URL such as"),
        (["nosuchservice://SECRET@h"], r"urls\[0\]: Apprise cannot notify this nosuchservice://"),
    ],
)
def test_bad_apprise_urls_are_refused_without_quoting_them(urls, message):
    with pytest.raises(ValueError, match="^" + message) as refused:
        AppriseNotifier(urls)
    assert "SECRET" not in str(refused.value)


def test_the_apprise_urls_in_the_docs_are_ones_it_takes():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "ALERTS.md").read_text()
    section = docs[docs.index("### Apprise") :]
    urls = [url for url in re.findall(r"`([a-z]+://[^`]+)`", section) if "..." not in url]
    assert len(urls) >= 8
    for url in urls:
        assert AppriseNotifier([url]).name == f"apprise {url.split('://')[0]}"


# --- the dispatcher's extensions ----------------------------------------------------------


class Background(Recorder):
    """A notifier of the test's own whose background work fails at once."""

    name = "background"

    async def background(self) -> None:
        raise RuntimeError("the background broke")


async def test_a_failing_background_is_logged_and_sending_goes_on(clock, caplog):
    monitor = make_monitor(clock)
    notifier = Background()
    async with alerting_with(monitor, [RULE], [notifier]) as alerting:
        await asyncio.sleep(0.05)
        fire(monitor, clock)
        await settled(alerting, sent=1)
    assert [event["state"] for event in notifier.events] == ["firing"]
    (record,) = [r for r in caplog.records if "background work failed" in r.getMessage()]
    assert record.getMessage() == "alert notifier background: its background work failed"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "the background broke"
