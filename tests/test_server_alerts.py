"""Alerts over HTTP and /ws on a real server: /api/alerts and its paths, the alerts of the
metrics message, ``performance_alert`` pushes, the badge, and ``/metrics``.

The Monitors run on a ManualClock with an hour between ticks: each test ticks by hand
(``monitor.tick()``), so every alert fires and resolves exactly when the test says.
"""

from __future__ import annotations

import asyncio
import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from peerscope import Monitor, Settings
from peerscope.alerting import Alerting
from peerscope.core.alerts import AlertRule
from peerscope.export.metrics_app import MetricsApp
from peerscope.server import create_app
from peerscope.server.schemas import AlertRuleBody
from peerscope.testing import ManualClock
from tests.notifier_support import Recorder
from tests.server_support import (
    T0,
    LiveServer,
    eventually,
    live_server,
    next_of_type,
    quality_score,
)

TOKEN = "s3cret-Token_42"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# Fires at once on an EU peer losing over 5 %: no wait, so a tick decides it.
LOSSY = AlertRule("lossy", "loss_percent", ">", 5.0, match={"region": "eu"})
# Waits a minute: pending for as long as a test runs.
SLOW = AlertRule("slow", "latency_ms", ">", 100.0, for_s=60.0, severity="critical")
SVG = "{http://www.w3.org/2000/svg}"
ALERT_PATHS = [
    ("GET", "/api/alerts"),
    ("GET", "/api/alerts/history"),
    ("GET", "/api/alerts/rules"),
    ("PUT", "/api/alerts/rules"),
    ("GET", "/api/alerts/silences"),
    ("POST", "/api/alerts/silences"),
    ("DELETE", "/api/alerts/silences/abc"),
    ("GET", "/api/alerts/notifiers"),
]


def quiet_monitor(clock: ManualClock, **settings: Any) -> Monitor:
    clock.now = T0
    values: dict[str, Any] = {"metrics_interval": 3600.0, "enable_system_metrics": False}
    values.update(settings)
    monitor = Monitor(Settings(**values), clock=clock)
    monitor.add_peer("eu-1", name="Paris", labels={"region": "eu"})
    monitor.add_peer("us-1", labels={"region": "us"})
    monitor.record_latency("eu-1", 20.0)
    monitor.record_latency("us-1", 150.0)
    return monitor


@dataclasses.dataclass
class Served:
    live: LiveServer
    monitor: Monitor
    alerting: Alerting
    clock: ManualClock


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    monitor = quiet_monitor(clock)
    alerting = Alerting(monitor, [LOSSY, SLOW])
    async with live_server(monitor, app=create_app(monitor, alerting=alerting)) as live:
        yield Served(live, monitor, alerting, clock)
    await alerting.stop()


async def get(live: LiveServer, path: str, **params: Any) -> Any:
    async with live.http() as http:
        response = await http.get(path, params=params)
    assert response.status_code == 200, (path, response.text)
    return response.json()


def fire(served: Served, loss: float = 50.0) -> None:
    """A second later eu-1 loses ``loss`` % (us-1 stays slow); one tick."""
    tick_with_loss(served.monitor, served.clock, loss)


def tick_with_loss(monitor: Monitor, clock: ManualClock, loss: float) -> None:
    clock.advance(1.0)
    monitor.record_loss("eu-1", loss)
    monitor.tick()


# --- /api/alerts and history -------------------------------------------------------------


async def test_active_alerts_firing_first_with_their_figures(served: Served):
    fire(served)
    body = await get(served.live, "/api/alerts")
    assert body["last_event_id"] == 1
    lossy, slow = body["alerts"]
    assert lossy == {
        "key": "lossy/eu-1",
        "state": "firing",
        "rule": "lossy",
        "metric": "loss_percent",
        "severity": "warning",
        "peer_id": "eu-1",
        "labels": {"region": "eu", "alertname": "lossy", "severity": "warning", "peer_id": "eu-1"},
        "value": 50.0,
        "threshold": 5.0,
        "since": T0 + 1,
        "started_at": T0 + 1,
        "message": "lossy: peer eu-1 loss_percent 50 > 5",
        "silenced": False,
    }
    # Pending (a minute to wait) though critical: firing ones come first.
    assert (slow["key"], slow["state"], slow["started_at"]) == ("slow/us-1", "pending", None)
    assert slow["since"] == T0  # breached since the server's first tick
    only_pending = await get(served.live, "/api/alerts", state="pending")
    assert [a["key"] for a in only_pending["alerts"]] == ["slow/us-1"]
    only_firing = await get(served.live, "/api/alerts", state="firing")
    assert [a["key"] for a in only_firing["alerts"]] == ["lossy/eu-1"]


async def test_the_metrics_message_lists_the_firing_alerts(served: Served):
    current = await get(served.live, "/api/metrics/current")
    assert current["alerts"] == []  # pending ones are not listed
    fire(served)
    current = await get(served.live, "/api/metrics/current")
    assert current["timestamp"] == T0 + 1
    assert [alert["key"] for alert in current["alerts"]] == ["lossy/eu-1"]
    assert current["alerts"] == (await get(served.live, "/api/alerts", state="firing"))["alerts"]
    # The Monitor's own message is shared, never changed.
    assert served.monitor.last_message is not None
    assert served.monitor.last_message["alerts"] == []


async def test_history_is_read_incrementally_and_by_time(served: Served):
    fire(served)  # 1: lossy fires at T0+1
    fire(served, loss=0.0)  # 2: resolves at T0+2
    fire(served, loss=80.0)  # 3: fires again at T0+3
    body = await get(served.live, "/api/alerts/history")
    assert body["last_event_id"] == 3
    events = body["events"]
    assert [(e["id"], e["state"], e["timestamp"]) for e in events] == [
        (1, "firing", T0 + 1),
        (2, "resolved", T0 + 2),
        (3, "firing", T0 + 3),
    ]
    assert events[1] == {
        "id": 2,
        "state": "resolved",
        "repeat": False,
        "rule": "lossy",
        "metric": "loss_percent",
        "severity": "warning",
        "peer_id": "eu-1",
        "labels": {"region": "eu", "alertname": "lossy", "severity": "warning", "peer_id": "eu-1"},
        "value": 0.0,
        "threshold": 5.0,
        "started_at": T0 + 1,
        "timestamp": T0 + 2,
        "message": "resolved lossy: peer eu-1 loss_percent 0",
        "silenced": False,
        "reason": None,
    }
    after = await get(served.live, "/api/alerts/history", after=1)
    assert [e["id"] for e in after["events"]] == [2, 3]
    assert (await get(served.live, "/api/alerts/history", after=3))["events"] == []
    ranged = await get(served.live, "/api/alerts/history", **{"from": T0 + 2, "to": T0 + 3})
    assert [e["id"] for e in ranged["events"]] == [2, 3]
    limited = await get(served.live, "/api/alerts/history", limit=2)
    assert [e["id"] for e in limited["events"]] == [1, 2]  # the oldest first
    assert limited["last_event_id"] == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": -1}, "query.after"),
        ({"after": "x"}, "query.after"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 10_001}, "query.limit"),
        ({"from": "nan"}, "query.from"),
        ({"to": "-5"}, "query.to"),
        ({"state": "resolved"}, "query.state"),
    ],
)
async def test_bad_history_and_state_parameters_are_422_naming_them(
    served: Served, params: dict[str, Any], field: str
):
    path = "/api/alerts" if "state" in params else "/api/alerts/history"
    async with served.live.http() as http:
        response = await http.get(path, params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"].startswith("unprocessable")
    assert [problem["field"] for problem in body["detail"]] == [field]


# --- rules ---------------------------------------------------------------------------------


def test_the_rule_body_has_alert_rules_fields_and_defaults():
    body = AlertRuleBody.model_fields
    fields = dataclasses.fields(AlertRule)
    assert list(body) == [field.name for field in fields]
    for field in fields:
        default = (
            field.default_factory()
            if field.default_factory is not dataclasses.MISSING
            else field.default
        )
        if default is dataclasses.MISSING:
            assert body[field.name].is_required(), field.name
        else:
            assert body[field.name].get_default(call_default_factory=True) == default, field.name


async def test_rules_read_back_as_written_and_a_new_set_runs(served: Served):
    body = await get(served.live, "/api/alerts/rules")
    assert body == {"rules": [dataclasses.asdict(LOSSY), dataclasses.asdict(SLOW)]}
    assert body["rules"][0] == {
        "name": "lossy",
        "metric": "loss_percent",
        "op": ">",
        "threshold": 5.0,
        "clear": None,
        "for_s": 0.0,
        "keep_firing_for_s": 0.0,
        "nodata": "keep",
        "severity": "warning",
        "repeat_s": None,
        "labels": {},
        "match": {"region": "eu"},
    }
    fire(served)
    new = {
        "rules": [
            {"name": "down", "metric": "status", "op": "==", "threshold": "disconnected"},
            {"name": "slow_now", "metric": "latency_ms", "op": ">", "threshold": 100, "clear": 80},
        ]
    }
    async with served.live.http() as http:
        response = await http.put("/api/alerts/rules", json=new)
    assert response.status_code == 200, response.text
    rules = response.json()["rules"]
    assert [(r["name"], r["threshold"], r["clear"]) for r in rules] == [
        ("down", "disconnected", None),
        ("slow_now", 100.0, 80.0),
    ]
    assert rules == (await get(served.live, "/api/alerts/rules"))["rules"]
    assert [rule.name for rule in served.alerting.rules] == ["down", "slow_now"]
    # The firing alert of the rule taken away resolved; the new rule fires on the next tick.
    history = (await get(served.live, "/api/alerts/history", after=1))["events"]
    assert [(e["rule"], e["state"], e["reason"]) for e in history] == [
        ("lossy", "resolved", "rule_changed")
    ]
    served.monitor.tick()
    firing = (await get(served.live, "/api/alerts"))["alerts"]
    assert [a["key"] for a in firing] == ["slow_now/us-1"]


GOOD = {"name": "ok", "metric": "cpu_percent", "op": ">", "threshold": 90}


@pytest.mark.parametrize(
    ("rules", "problems"),
    [
        (
            [GOOD, {**GOOD, "name": "hyst", "clear": 95}],
            [("rules[1].clear", "must be <= threshold 90.0 (its ok side), got 95.0")],
        ),
        ([{**GOOD, "metric": "speed"}], [("rules[0].metric", "must be one of cpu_percent")]),
        ([GOOD, {**GOOD, "op": "~"}], [("rules[1].op", "Input should be '>'")]),
        ([{**GOOD, "for": 30}], [("rules[0].for", "Extra inputs are not permitted")]),
        ([{**GOOD, "severity": "fatal"}], [("rules[0].severity", "Input should be 'info'")]),
        ([GOOD, GOOD], [("rules[1].name", "'ok' is used twice")]),
        ([{**GOOD, "threshold": "high"}], [("rules[0].threshold", "must be a real number")]),
        (
            [{**GOOD, "match": {"region": "eu"}}],
            [("rules[0].match", "only peer metrics match peer labels")],
        ),
        (
            [{**GOOD, "for_s": -1}, {**GOOD, "name": "b", "repeat_s": 0}],
            [("rules[0].for_s", "must be >= 0"), ("rules[1].repeat_s", "must be > 0 or None")],
        ),
        ([{"metric": "cpu_percent", "op": ">", "threshold": 1}], [("rules[0].name", "Field")]),
    ],
)
async def test_a_bad_rule_is_422_naming_its_field_and_the_rules_stay(
    served: Served, rules: list[dict[str, Any]], problems: list[tuple[str, str]]
):
    before = (await get(served.live, "/api/alerts/rules"))["rules"]
    async with served.live.http() as http:
        response = await http.put("/api/alerts/rules", json={"rules": rules})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    found = sorted((p["field"], p["message"]) for p in detail)
    assert len(found) == len(problems), detail
    for (field, message), (want_field, want_start) in zip(found, sorted(problems), strict=True):
        assert field == want_field, detail
        assert message.startswith(want_start), detail
    assert (await get(served.live, "/api/alerts/rules"))["rules"] == before
    assert served.alerting.rules == (LOSSY, SLOW)


async def test_a_body_that_is_not_json_is_422_and_not_an_object_too(served: Served):
    async with served.live.http() as http:
        broken = await http.put(
            "/api/alerts/rules", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 422
        assert broken.json()["detail"][0]["field"].startswith("body")
        wrong = await http.put("/api/alerts/rules", json={"rules": 5})
        assert wrong.status_code == 422
        assert [p["field"] for p in wrong.json()["detail"]] == ["rules"]
    assert served.alerting.rules == (LOSSY, SLOW)


# --- silences ------------------------------------------------------------------------------


async def test_a_silence_is_made_listed_and_deleted(served: Served):
    async with served.live.http() as http:
        made = await http.post(
            "/api/alerts/silences",
            json={
                "matchers": {"alertname": "lossy"},
                "duration_s": 600,
                "comment": "maintenance",
                "created_by": "ops",
            },
        )
        assert made.status_code == 201, made.text
        entry = made.json()
        assert entry == {
            "id": entry["id"],
            "matchers": {"alertname": "lossy"},
            "starts_at": T0,
            "ends_at": T0 + 600,
            "comment": "maintenance",
            "created_by": "ops",
        }
        until = await http.post(
            "/api/alerts/silences",
            json={"matchers": {"peer_id": "us-1"}, "ends_at": T0 + 60},
        )
        assert until.status_code == 201
        assert until.json()["ends_at"] == T0 + 60
        listed = (await http.get("/api/alerts/silences")).json()["silences"]
        assert [s["id"] for s in listed] == [entry["id"], until.json()["id"]]
        deleted = await http.delete(f"/api/alerts/silences/{entry['id']}")
        assert deleted.status_code == 204
        assert deleted.content == b""
        again = await http.delete(f"/api/alerts/silences/{entry['id']}")
        assert again.status_code == 404
        assert again.json() == {
            "error": "not found",
            "detail": f"silence_id: no silence {entry['id']!r} is in force",
        }
        listed = (await http.get("/api/alerts/silences")).json()["silences"]
        assert [s["id"] for s in listed] == [until.json()["id"]]
    served.clock.advance(61)  # it ends
    assert (await get(served.live, "/api/alerts/silences"))["silences"] == []


@pytest.mark.parametrize(
    ("body", "field", "start"),
    [
        ({"matchers": {"alertname": "x"}}, "ends_at", "give ends_at"),
        (
            {"matchers": {"alertname": "x"}, "ends_at": T0 + 60, "duration_s": 60},
            "duration_s",
            "give ends_at or duration_s, not both",
        ),
        ({"matchers": {"alertname": "x"}, "ends_at": T0 - 1}, "ends_at", "must lie ahead"),
        ({"matchers": {"alertname": "x"}, "ends_at": T0 + 31 * 86400}, "ends_at", "must be at"),
        ({"matchers": {"alertname": "x"}, "duration_s": 0}, "duration_s", "Input should be"),
        ({"matchers": {"alertname": "x"}, "duration_s": 31 * 86400}, "duration_s", "Input"),
        ({"matchers": {}, "duration_s": 60}, "matchers", "Dictionary should have at least"),
        ({"matchers": {"not a key": "x"}, "duration_s": 60}, "matchers", "key 'not a key'"),
        ({"matchers": {"alertname": "x"}, "duration_s": 60, "until": 1}, "until", "Extra"),
        ({"matchers": {"a": "x"}, "duration_s": 60, "comment": "a\nb"}, "comment", "must be"),
    ],
)
async def test_a_bad_silence_is_422_naming_its_field(
    served: Served, body: dict[str, Any], field: str, start: str
):
    async with served.live.http() as http:
        response = await http.post("/api/alerts/silences", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [p["field"] for p in detail] == [field]
    assert detail[0]["message"].startswith(start), detail
    assert served.alerting.silences() == []


async def test_a_silenced_alert_is_shown_silenced_and_told_to_no_notifier(clock: ManualClock):
    monitor = quiet_monitor(clock)
    recorder = Recorder()
    loud = AlertRule("loud", "loss_percent", ">", 5.0)
    alerting = Alerting(monitor, [LOSSY, loud], notifiers=[recorder])
    await alerting.start()
    app = create_app(monitor, alerting=alerting)
    async with live_server(monitor, app=app) as live, live.http() as http:
        made = await http.post(
            "/api/alerts/silences",
            json={"matchers": {"alertname": "lossy", "peer_id": "eu-1"}, "duration_s": 600},
        )
        assert made.status_code == 201
        tick_with_loss(monitor, clock, 50.0)
        active = {a["key"]: a for a in (await http.get("/api/alerts")).json()["alerts"]}
        assert active["lossy/eu-1"]["silenced"] is True
        assert active["loud/eu-1"]["silenced"] is False
        events = (await http.get("/api/alerts/history")).json()["events"]
        assert {(e["rule"], e["silenced"]) for e in events} == {("lossy", True), ("loud", False)}
        # The unsilenced one reaches the notifier; the silenced one never does.
        await eventually(lambda: recorder.events)
        await asyncio.sleep(0.1)
        assert [e["rule"] for e in recorder.events] == ["loud"]
        stats = (await http.get("/api/alerts/notifiers")).json()["notifiers"]
        assert stats == [
            {
                "name": "recorder",
                "sent": 1,
                "failed": 0,
                "retried": 0,
                "dropped": 0,
                "queued": 0,
                "last_error": None,
            }
        ]
    await alerting.stop()


async def test_an_alert_silenced_after_it_fired_still_tells_the_notifiers_it_resolved(
    clock: ManualClock,
):
    monitor = quiet_monitor(clock)
    recorder = Recorder()
    alerting = Alerting(monitor, [LOSSY], notifiers=[recorder])
    await alerting.start()
    tick_with_loss(monitor, clock, 50.0)
    await eventually(lambda: recorder.events)
    alerting.silence({"alertname": "lossy"}, clock.now + 600)
    tick_with_loss(monitor, clock, 0.0)
    await eventually(lambda: len(recorder.events) == 2)
    assert [(e["state"], e["silenced"]) for e in recorder.events] == [
        ("firing", False),
        ("resolved", False),
    ]
    # Silenced before it fires again: neither that firing nor its resolve is told.
    tick_with_loss(monitor, clock, 50.0)
    tick_with_loss(monitor, clock, 0.0)
    await asyncio.sleep(0.1)
    assert len(recorder.events) == 2
    assert [(e["state"], e["silenced"]) for e in alerting.history()] == [
        ("firing", False),
        ("resolved", False),
        ("firing", True),
        ("resolved", True),
    ]
    await alerting.stop()


# --- without alerting, and the token ------------------------------------------------------


async def test_without_alerting_every_alerts_path_is_404_json(clock: ManualClock):
    monitor = quiet_monitor(clock, alerts={"enabled": False})  # the agent builds none
    async with live_server(monitor) as live, live.http() as http:
        for method, path in ALERT_PATHS:
            body = {"rules": []} if method == "PUT" else {"matchers": {"a": "b"}}
            response = await http.request(
                method, path, json=body if method in ("PUT", "POST") else None
            )
            assert response.status_code == 404, (method, path)
            assert response.json() == {
                "error": "alerting: not enabled on this server",
                "detail": "alerting: this server was started without alerting; "
                "/api/alerts needs it",
            }
        # Even a bad body: the missing alerting is said first.
        bad = await http.put("/api/alerts/rules", json={"rules": 5})
        assert bad.status_code == 404
        assert (await http.get("/api/metrics/current")).json()["alerts"] == []


async def test_alerts_paths_need_the_token(clock: ManualClock):
    monitor = quiet_monitor(clock, token=TOKEN)
    alerting = Alerting(monitor, [LOSSY])
    async with (
        live_server(monitor, app=create_app(monitor, alerting=alerting)) as live,
        live.http() as http,
    ):
        for method, path in ALERT_PATHS:
            body = {"rules": []} if method == "PUT" else {"matchers": {"a": "b"}}
            json = body if method in ("PUT", "POST") else None
            refused = await http.request(method, path, json=json)
            assert refused.status_code == 401, (method, path)
            assert refused.json() == {
                "error": "unauthorized",
                "detail": "missing or wrong bearer token",
            }
            wrong = await http.request(
                method, path, json=json, headers={"Authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401
            allowed = await http.request(method, path, json=json, headers=BEARER)
            # In: the answer is the path's own (a silence without an end is a 422, an
            # unknown one a 404).
            assert allowed.status_code != 401, (method, path)
        assert alerting.rules == ()  # the PUT with the token went through
        assert (await http.get("/api/badge.svg")).status_code == 401
        assert (await http.get("/api/badge.svg", headers=BEARER)).status_code == 200
    await alerting.stop()


async def test_badge_public_serves_the_badge_without_the_token(clock: ManualClock):
    monitor = quiet_monitor(clock, token=TOKEN, badge_public=True)
    async with live_server(monitor) as live, live.http() as http:
        badge = await http.get("/api/badge.svg", params={"peer": "eu-1"})
        assert badge.status_code == 200
        assert badge.headers["content-type"] == "image/svg+xml"
        # Only the badge: the rest still needs the token.
        assert (await http.get("/api/metrics/peers/eu-1")).status_code == 401
        assert (await http.get("/api/alerts")).status_code == 401


# --- /ws -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mounted", [False, True], ids=["served", "mounted"])
async def test_ws_pushes_fire_and_resolve_and_lists_the_firing_alert(
    clock: ManualClock, mounted: bool
):
    monitor = quiet_monitor(clock)
    alerting = Alerting(monitor, [LOSSY])
    app = create_app(monitor, alerting=alerting)
    async with live_server(monitor, app=app, mounted=mounted) as live:
        ws = await live.ws()

        async def subscribed() -> bool:
            health = await get(live, "/api/health")
            return bool(health["websocket_subscribers"] == 1)

        await eventually(subscribed)
        clock.advance(1.0)
        monitor.record_loss("eu-1", 50.0)
        monitor.tick()
        fired = await next_of_type(ws, "performance_alert")
        assert fired == {
            "type": "performance_alert",
            "id": 1,
            "state": "firing",
            "repeat": False,
            "rule": "lossy",
            "metric": "loss_percent",
            "severity": "warning",
            "peer_id": "eu-1",
            "labels": {
                "region": "eu",
                "alertname": "lossy",
                "severity": "warning",
                "peer_id": "eu-1",
            },
            "value": 50.0,
            "threshold": 5.0,
            "started_at": T0 + 1,
            "timestamp": T0 + 1,
            "message": "lossy: peer eu-1 loss_percent 50 > 5",
            "silenced": False,
            "reason": None,
        }
        # The message of the same tick follows it and lists the alert.
        message = await next_of_type(ws, "metrics")
        assert message["timestamp"] == T0 + 1
        assert [(a["key"], a["state"], a["value"]) for a in message["alerts"]] == [
            ("lossy/eu-1", "firing", 50.0)
        ]
        clock.advance(1.0)
        monitor.record_loss("eu-1", 0.0)
        monitor.tick()
        resolved = await next_of_type(ws, "performance_alert")
        assert (resolved["id"], resolved["state"], resolved["value"]) == (2, "resolved", 0.0)
        assert resolved["started_at"] == T0 + 1
        message = await next_of_type(ws, "metrics")
        assert (message["timestamp"], message["alerts"]) == (T0 + 2, [])
        await ws.close()
    await alerting.stop()


async def test_a_peer_removed_resolves_its_alert_on_ws_at_once(clock: ManualClock):
    monitor = quiet_monitor(clock)
    alerting = Alerting(monitor, [LOSSY])
    async with live_server(monitor, app=create_app(monitor, alerting=alerting)) as live:
        monitor.record_loss("eu-1", 50.0)
        monitor.tick()
        ws = await live.ws()
        await eventually(lambda: len(alerting.firing()) == 1)

        async def subscribed() -> bool:
            return bool((await get(live, "/api/health"))["websocket_subscribers"] == 1)

        await eventually(subscribed)
        monitor.remove_peer("eu-1")
        monitor.tick()  # events reach subscribers at the tick
        resolved = await next_of_type(ws, "performance_alert")
        assert (resolved["state"], resolved["reason"], resolved["value"]) == (
            "resolved",
            "removed",
            None,
        )
        assert resolved["message"] == "resolved (removed) lossy: peer eu-1"
        await ws.close()
    await alerting.stop()


# --- the badge -----------------------------------------------------------------------------


def badge_parts(svg: str) -> tuple[str, str, str]:
    """(label, status, status colour) of a badge, read as XML."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("height") == "20"
    texts = [text.text or "" for text in root.iter(f"{SVG}text") if text.get("fill") is None]
    assert len(texts) == 2, texts
    rects = [rect for rect in root.iter(f"{SVG}rect") if rect.get("fill")]
    label, status = texts
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == f"{label}: {status}"
    assert root.get("aria-label") == f"{label}: {status}"
    # The boxes tile the badge.
    widths = [float(rect.get("width", "0")) for rect in rects]
    assert sum(widths) == pytest.approx(float(root.get("width", "0")), abs=0.2)
    return label, status, rects[-1].get("fill", "")


async def badge(live: LiveServer, peer: str | None = None, status: int = 200) -> tuple[str, ...]:
    async with live.http() as http:
        response = await http.get("/api/badge.svg", params={} if peer is None else {"peer": peer})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "no-cache"
    return badge_parts(response.text)


async def test_a_peers_badge_shows_its_score_and_band_or_down_or_no_data(clock: ManualClock):
    monitor = quiet_monitor(clock, alerts={"enabled": False})  # the agent builds none
    monitor.add_peer("fresh", name="New one")
    monitor.add_peer('odd<&"id>')
    monitor.record_latency('odd<&"id>', 60.0)
    monitor.add_peer("gone")
    for _ in range(10):  # disconnected_after_failures
        monitor.record_latency("gone", None)
    monitor.add_peer("silent")
    monitor.record_latency("silent", 30.0)
    monitor.record_latency("silent", None)
    monitor.record_latency("silent", None)  # unanswered: score 0, no figures
    monitor.add_peer("named", name="A very long display name that will not fit")
    monitor.record_latency("named", 200.0)
    monitor.add_peer("far")
    monitor.record_latency("far", 400.0)
    async with live_server(monitor) as live:
        score = quality_score(20.0, 0.0, 0.0)
        assert await badge(live, "eu-1") == ("Paris", f"{score:.0f} excellent", "#16a34a")
        us = quality_score(150.0, 0.0, 0.0)  # 60: fair
        assert await badge(live, "us-1") == ("us-1", f"{us:.0f} fair", "#d97706")
        odd = quality_score(60.0, 0.0, 0.0)
        assert await badge(live, 'odd<&"id>') == ('odd<&"id>', f"{odd:.0f} good", "#65a30d")
        assert await badge(live, "gone") == ("gone", "down", "#dc2626")
        assert await badge(live, "silent") == ("silent", "down", "#dc2626")
        assert await badge(live, "fresh") == ("New one", "no data", "#64748b")
        label, status, colour = await badge(live, "named")
        assert label == "A very long display name that w…"
        assert len(label) == 32
        assert (status, colour) == (f"{quality_score(200.0, 0.0, 0.0):.0f} poor", "#ea580c")
        # Measured and terrible is a score, not "down": the peer answers.
        assert await badge(live, "far") == ("far", "0 bad", "#dc2626")
        assert await badge(live, "nobody", status=404) == ("nobody", "unknown", "#64748b")
        # Without alerting, the host's badge says so.
        assert await badge(live) == ("alerts", "off", "#64748b")
        async with live.http() as http:
            assert (await http.get("/api/badge.svg", params={"peer": ""})).status_code == 422
            too_long = await http.get("/api/badge.svg", params={"peer": "x" * 129})
            assert too_long.status_code == 422
            assert [p["field"] for p in too_long.json()["detail"]] == ["query.peer"]


async def test_the_escaped_text_is_in_the_raw_svg(clock: ManualClock):
    monitor = quiet_monitor(clock)
    monitor.add_peer("a<b>&\"c'")
    async with live_server(monitor) as live, live.http() as http:
        raw = (await http.get("/api/badge.svg", params={"peer": "a<b>&\"c'"})).text
    assert "a&lt;b&gt;&amp;&quot;c&apos;" in raw
    assert "<b>" not in raw


async def test_the_hosts_badge_counts_firing_alerts_coloured_by_the_worst(clock: ManualClock):
    monitor = quiet_monitor(clock)
    down = AlertRule("lossy_now", "loss_percent", ">", 5.0, severity="critical")
    alerting = Alerting(monitor, [LOSSY, down, SLOW])
    async with live_server(monitor, app=create_app(monitor, alerting=alerting)) as live:
        monitor.tick()
        assert await badge(live) == ("alerts", "0", "#16a34a")  # slow is only pending
        monitor.record_loss("us-1", 50.0)  # lossy_now (critical), not lossy (eu only)
        monitor.record_loss("eu-1", 50.0)  # both
        monitor.tick()
        assert await badge(live) == ("alerts", "3 firing", "#dc2626")
        alerting.set_rules([LOSSY])
        assert await badge(live) == ("alerts", "1 firing", "#d97706")
    await alerting.stop()


# --- /metrics ------------------------------------------------------------------------------


async def test_metrics_serves_the_alerts(clock: ManualClock):
    monitor = quiet_monitor(clock)
    alerting = Alerting(monitor, [LOSSY, SLOW])
    app = create_app(monitor, alerting=alerting, metrics=MetricsApp(monitor, alerting=alerting))
    async with live_server(monitor, app=app) as live, live.http() as http:
        monitor.record_loss("eu-1", 50.0)
        monitor.tick()
        text = (await http.get("/metrics")).text
    firing = {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "peerscope_alert_firing"
        for sample in family.samples
    }
    assert firing == {
        (
            ("alertstate", "firing"),
            ("peer_id", "eu-1"),
            ("rule", "lossy"),
            ("severity", "warning"),
        ): 1.0,
        (
            ("alertstate", "pending"),
            ("peer_id", "us-1"),
            ("rule", "slow"),
            ("severity", "critical"),
        ): 1.0,
    }
    assert "peerscope_peer_up{" in text  # after the Monitor's own series
    await alerting.stop()
