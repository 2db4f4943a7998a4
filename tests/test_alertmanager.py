"""The Alertmanager notifier: what it posts (against a receiver that records it), and a real
Alertmanager that holds a peer's alert while it fires, keeps it alive through the re-posts,
routes it to its own receiver, and ends it when it resolves.

The real one is ``/usr/bin/prometheus-alertmanager`` (Debian package
``prometheus-alertmanager``, installed by ``.ci/run``), started by the test on a free
loopback port with its own config and storage (``tests/alertmanager_support.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from peerscope import Monitor
from peerscope.alerting.notifiers import AlertmanagerNotifier
from peerscope.alerting.notifiers.alertmanager import label_set, rfc3339
from peerscope.core.alerts import AlertRule
from peerscope.testing import ManualClock
from tests.alertmanager_support import Alertmanager, alertmanager, parse_time
from tests.notifier_support import alerting_with, make_monitor, settled
from tests.receiver_support import Receiver, Request

SLOW_PEER = AlertRule(
    "peer_slow", "latency_ms", ">", 100.0, clear=80.0, severity="critical", labels={"team": "ops"}
)
FAST = {"backoff_s": 0.05, "max_backoff_s": 0.2}


def slow_down(monitor: Monitor, clock: ManualClock, peer_id: str) -> None:
    for _ in range(3):
        monitor.record_latency(peer_id, 300.0)
        clock.advance(1)
    monitor.tick()


def speed_up(monitor: Monitor, clock: ManualClock, peer_id: str) -> None:
    """Quick replies until the smoothed latency is under the clear line (a dozen or so)."""
    for _ in range(40):
        monitor.record_latency(peer_id, 10.0)
        clock.advance(1)
        (reading,) = [r for r in monitor.tick().changed if r.peer_id == peer_id]
        if reading.smoothed_latency_ms is not None and reading.smoothed_latency_ms < 80.0:
            return
    raise AssertionError(f"{peer_id}'s latency never came under 80 ms")


def test_labels_are_made_valid_for_alertmanager():
    assert label_set(
        {"région": "eu", "r_gion": "kept", "rack": "", "zone-2": "b", "alertname": "x"}
    ) == {"r_gion": "kept", "zone_2": "b", "alertname": "x"}


def test_times_are_rfc3339_utc_to_the_millisecond():
    assert rfc3339(1_700_000_000.0) == "2023-11-14T22:13:20.000Z"
    assert rfc3339(1_700_000_000.2506) == "2023-11-14T22:13:20.250Z"


@pytest.mark.slow
async def test_what_it_posts_and_re_posts(clock):
    monitor = make_monitor(clock)
    monitor.add_peer("eu-1", labels={"région": "eu", "rack": ""})
    monitor.add_peer("us-1")
    async with Receiver() as receiver:
        notifier = AlertmanagerNotifier(
            receiver.url + "/am/",
            resend_s=0.25,
            generator_url="http://127.0.0.1:8700/#alerts",
        )
        assert notifier.name == f"alertmanager {receiver.url}"
        async with alerting_with(monitor, [SLOW_PEER], [notifier], **FAST) as alerting:
            slow_down(monitor, clock, "eu-1")
            (first,) = await receiver.wait_for(1)
            slow_down(monitor, clock, "us-1")
            await settled(alerting, sent=2)
            fired_eu, fired_us = alerting.history()

            # The first post: the one alert, labels made valid, endsAt 4 periods ahead.
            assert (first.method, first.target) == ("POST", "/am/api/v2/alerts")
            assert first.headers["content-type"] == "application/json"
            (posted,) = first.json()
            assert posted == {
                "labels": {
                    "alertname": "peer_slow",
                    "severity": "critical",
                    "peer_id": "eu-1",
                    "team": "ops",
                    "r_gion": "eu",
                },
                "annotations": {
                    "summary": fired_eu["message"],
                    "metric": "latency_ms",
                    "value": "300",
                    "threshold": "100",
                },
                "startsAt": rfc3339(fired_eu["started_at"]),
                "endsAt": posted["endsAt"],
                "generatorURL": "http://127.0.0.1:8700/#alerts",
            }
            assert posted["startsAt"] == "2023-11-14T22:13:23.000Z"
            # Made just before it was sent (and cut to the millisecond).
            assert 0 <= first.at + 4 * 0.25 - parse_time(posted["endsAt"]) < 1.0

            # Re-posts carry both firing alerts, each time with endsAt moved on.
            reposts = await receiver.wait_for(2, where=lambda r: len(r.json()) == 2)
            for repost in reposts:
                assert {a["labels"]["peer_id"] for a in repost.json()} == {"eu-1", "us-1"}
            ends = [parse_time(r.json()[0]["endsAt"]) for r in reposts]
            assert ends[1] > ends[0]

            # A resolve goes once, endsAt the moment it resolved, as its firing was labelled.
            speed_up(monitor, clock, "eu-1")
            await settled(alerting, sent=3)
            resolved = alerting.history()[-1]
            assert resolved["state"] == "resolved"
            (resolve,) = await receiver.wait_for(1, where=is_resolve)
            (ended,) = resolve.json()
            assert ended == {**posted, "endsAt": rfc3339(resolved["timestamp"])}
            # ...and is not re-posted: the re-posts after it carry us-1 alone.
            after = len(receiver.requests)
            later = await receiver.wait_for(after + 2)
            assert [[a["labels"]["peer_id"] for a in r.json()] for r in later[after:]] == [
                ["us-1"],
                ["us-1"],
            ]
            assert fired_us["peer_id"] == "us-1"
        # Stopped: no more posts.
        count = len(receiver.requests)
        await asyncio.sleep(0.6)
        assert len(receiver.requests) == count


def is_resolve(request: Request) -> bool:
    alerts: list[dict[str, Any]] = request.json()
    return len(alerts) == 1 and parse_time(alerts[0]["endsAt"]) < time.time()


async def test_nothing_is_re_posted_when_nothing_fires(clock):
    monitor = make_monitor(clock)
    async with Receiver() as receiver:
        notifier = AlertmanagerNotifier(receiver.url, resend_s=0.1)
        async with alerting_with(monitor, [SLOW_PEER], [notifier]):
            monitor.add_peer("eu-1")
            monitor.tick()
            await asyncio.sleep(0.4)  # four periods
    assert receiver.requests == []


async def test_a_refused_post_is_not_retried_and_a_failing_re_post_is_logged_once(clock, caplog):
    monitor = make_monitor(clock)
    caplog.set_level(logging.INFO, logger="peerscope.alerting")
    # The post is refused (400); the re-posts fail (503) twice, then work.
    async with Receiver([400, 503, 503]) as receiver:
        notifier = AlertmanagerNotifier(receiver.url, resend_s=0.1)
        async with alerting_with(monitor, [SLOW_PEER], [notifier], retries=3, **FAST) as alerting:
            slow_down(monitor, clock, "eu-1")
            (stats,) = await settled(alerting, failed=1)
            await receiver.wait_for(5)
            deadline = time.monotonic() + 10
            while not reposting(caplog, logging.INFO) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
    assert (stats["sent"], stats["retried"]) == (0, 0)
    assert "HTTP 400" in str(stats["last_error"])
    warnings = reposting(caplog)
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.INFO]
    assert "re-posting 1 firing alert(s) failed" in warnings[0].getMessage()
    assert warnings[1].getMessage().endswith("re-posting works again")


def reposting(caplog: pytest.LogCaptureFixture, level: int = 0) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "re-posting" in r.getMessage() and r.levelno >= level]


async def am_alerts(manager: Alertmanager, **params: Any) -> list[dict[str, Any]]:
    return await asyncio.to_thread(manager.alerts, **params)


async def until(check: Any, what: str, manager: Alertmanager, timeout_s: float = 20.0) -> Any:
    """``await check()`` once it returns something true."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s:g} s{manager.logs()}")
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_real_alertmanager_holds_the_alert_while_it_fires_and_ends_it(tmp_path):
    # Events in the recent past on Alertmanager's clock, so a resolve is over already.
    clock = ManualClock(time.time() - 120)
    monitor = make_monitor(clock)
    monitor.add_peer("eu-1", labels={"région": "eu"})
    wanted = {"alertname": "peer_slow", "peer_id": "eu-1"}
    async with Receiver() as hook:
        with alertmanager(tmp_path, webhook_url=hook.url + "/from-alertmanager") as manager:
            notifier = AlertmanagerNotifier(manager.url, resend_s=1.0, timeout_s=5.0)
            async with alerting_with(monitor, [SLOW_PEER], [notifier], **FAST) as alerting:
                slow_down(monitor, clock, "eu-1")
                (stats,) = await settled(alerting, sent=1)
                assert stats["last_error"] is None  # Alertmanager took it (the label too)
                (fired,) = alerting.history()

                async def listed() -> list[dict[str, Any]]:
                    return await am_alerts(manager, filter=wanted, active=True)

                (alert,) = await until(listed, "Alertmanager did not list the alert", manager)
                assert alert["labels"] == {
                    "alertname": "peer_slow",
                    "severity": "critical",
                    "peer_id": "eu-1",
                    "team": "ops",
                    "r_gion": "eu",
                }
                assert alert["status"]["state"] == "active"
                assert alert["annotations"]["summary"] == fired["message"]
                assert parse_time(alert["startsAt"]) == pytest.approx(fired["started_at"], abs=1e-3)
                assert parse_time(alert["endsAt"]) - parse_time(alert["updatedAt"]) == (
                    pytest.approx(4.0, abs=1.0)
                )

                # Alertmanager routes it to its receiver.
                (told,) = await hook.wait_for(1, timeout_s=20.0)
                assert told.target == "/from-alertmanager"
                assert told.json()["status"] == "firing"
                assert told.json()["alerts"][0]["labels"] == alert["labels"]

                # The re-posts keep it alive: updatedAt and endsAt move on.
                async def refreshed() -> list[dict[str, Any]]:
                    now = await listed()
                    return [a for a in now if a["updatedAt"] != alert["updatedAt"]]

                (again,) = await until(refreshed, "no re-post reached Alertmanager", manager)
                assert parse_time(again["updatedAt"]) > parse_time(alert["updatedAt"])
                assert parse_time(again["endsAt"]) > parse_time(alert["endsAt"])
                assert again["startsAt"] == alert["startsAt"]

                # Resolved: no longer listed, and Alertmanager tells its receiver so.
                speed_up(monitor, clock, "eu-1")
                await settled(alerting, sent=2)

                async def gone() -> bool:
                    return not await listed() and not await am_alerts(manager, filter=wanted)

                await until(gone, "Alertmanager still lists the resolved alert", manager)
                resolved = await hook.wait_for(
                    1, timeout_s=20.0, where=lambda r: r.json()["status"] == "resolved"
                )
                assert resolved[0].json()["alerts"][0]["labels"] == alert["labels"]
                # It stays resolved: nothing re-posts it (three re-post periods on).
                await asyncio.sleep(3.0)
                assert await am_alerts(manager, filter=wanted) == []
