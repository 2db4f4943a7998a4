"""The evaluator steps only what a tick changed; it must tell exactly what stepping every rule
for every peer on every tick would. Hypothesis drives a real Monitor through random traffic,
failures, label changes, removals, rule changes and clock jumps, and compares the two."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerscope.alerting import Alerting
from peerscope.alerting.evaluator import Evaluator, check_rules, peer_value
from peerscope.config import Settings
from peerscope.core.alerts import DEFAULT_RULES, Alert, AlertRule, Notification
from peerscope.events import Event, MetricsTick, PeerReading, PeerRemoved
from peerscope.monitor import Monitor
from peerscope.testing import ManualClock

RULES = (
    AlertRule("lat", "latency_ms", ">", 100.0, clear=80.0, for_s=3.0),
    AlertRule("lat_eu", "latency_ms", ">=", 150.0, match={"region": "eu"}, repeat_s=4.0),
    AlertRule("loss", "loss_percent", ">", 5.0, keep_firing_for_s=2.0),
    AlertRule("quality", "quality_score", "<", 60.0, clear=65.0, nodata="alerting", for_s=1.0),
    AlertRule("mos", "mos", "<", 3.5, nodata="ok"),
    AlertRule("idle", "idle_seconds", ">", 10.0, match={"kind": "client"}),
    AlertRule("idle_long", "idle_seconds", ">=", 30.0, for_s=2.0, repeat_s=5.0),
    AlertRule("down", "status", "==", "disconnected", severity="critical"),
    AlertRule("up", "status", "!=", "connected", keep_firing_for_s=1.5),
    AlertRule("crowd", "active_connections", ">", 2.0, clear=1.0),
)
OTHER_RULES = (
    RULES[0],
    replace(RULES[2], threshold=1.0),
    AlertRule("idle_any", "idle_seconds", ">", 5.0),
    RULES[7],
)

PEERS = ("a", "b", "c", "d")
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from(PEERS),
            st.sampled_from(["peer", "client"]),
            st.sampled_from(["eu", "us"]),
        ),
        st.tuples(
            st.just("latency"),
            st.sampled_from(PEERS),
            st.sampled_from([10.0, 90.0, 100.0, 120.0, 150.0, 400.0, None]),
        ),
        st.tuples(st.just("traffic"), st.sampled_from(PEERS)),
        st.tuples(st.just("remove"), st.sampled_from(PEERS)),
        st.tuples(st.just("labels"), st.sampled_from(PEERS), st.sampled_from(["eu", "us"])),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0, 31.0])),
        st.tuples(st.just("tick")),
        st.tuples(st.just("tick")),
        st.tuples(st.just("rules"), st.sampled_from([RULES, OTHER_RULES])),
    ),
    max_size=80,
)


class Everything:
    """The reference: every rule stepped for every known peer on every tick."""

    def __init__(self, rules: tuple[AlertRule, ...]) -> None:
        self.rules = rules
        self.alerts: dict[tuple[str, str | None], Alert] = {}
        self.readings: dict[str, PeerReading] = {}
        self.told: list[Notification] = []

    def on_event(self, event: Event) -> None:
        if isinstance(event, PeerRemoved):
            self.readings.pop(event.peer_id, None)
            for key in [key for key in self.alerts if key[1] == event.peer_id]:
                self.told.extend(self.alerts.pop(key).resolve(event.timestamp)[1])
        elif isinstance(event, MetricsTick):
            self.tick(event)

    def replace_rules(self, rules: tuple[AlertRule, ...], now: float) -> None:
        wanted = {rule.name: rule for rule in rules}
        for key in list(self.alerts):
            if wanted.get(key[0]) != self.alerts[key].rule:
                self.told.extend(self.alerts.pop(key).resolve(now)[1])
        self.rules = rules

    def tick(self, tick: MetricsTick) -> None:
        now = tick.timestamp
        for reading in tick.changed:
            self.readings[reading.peer_id] = reading
        for rule in self.rules:
            if rule.scope != "peer":
                value = float(tick.server.active_connections)
                self.step((rule.name, None), rule, value, now)
                continue
            for peer_id, reading in self.readings.items():
                key = (rule.name, peer_id)
                if rule.matches(reading.kind, reading.labels):
                    self.step(key, rule, peer_value(rule.metric, reading, now), now)
                elif key in self.alerts:
                    self.told.extend(self.alerts.pop(key).resolve(now)[1])

    def step(self, key: tuple[str, str | None], rule: AlertRule, value: object, now: float) -> None:
        alert = self.alerts.get(key) or Alert(rule, key[1])
        new, told = alert.step(value, now)
        self.told.extend(told)
        if new.state == "inactive":
            self.alerts.pop(key, None)
        else:
            self.alerts[key] = new


def told_as(note: Notification) -> tuple[object, ...]:
    return (note.kind, note.rule.name, note.subject, note.value, note.started_at, note.at)


def event_as(event: dict[str, object]) -> tuple[object, ...]:
    kind = "resolved" if event["state"] == "resolved" else "repeat" if event["repeat"] else "firing"
    return (
        kind,
        event["rule"],
        event["peer_id"],
        event["value"],
        event["started_at"],
        event["timestamp"],
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_stepping_what_changed_tells_what_stepping_everything_would(ops):
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False, peer_ttl_s=40.0), clock=clock)
    alerting = Alerting(monitor, RULES)
    reference = Everything(RULES)
    monitor.subscribe(reference.on_event)
    events: list[dict[str, object]] = []
    alerting.listen(lambda event: events.append(dict(event)))
    for op in ops:
        name, *args = op
        if name == "add":
            monitor.add_peer(args[0], kind=args[1], labels={"region": args[2]})
        elif name == "latency" and args[0] in monitor:
            monitor.record_latency(args[0], args[1])
        elif name == "traffic" and args[0] in monitor:
            monitor.record_traffic(args[0], bytes_sent=10, bytes_received=10)
        elif name == "remove":
            monitor.remove_peer(args[0])
        elif name == "labels" and args[0] in monitor:
            monitor.add_peer(args[0], labels={"region": args[1]})
        elif name == "advance":
            clock.advance(args[0])
        elif name == "tick":
            monitor.tick()
        elif name == "rules":
            alerting.set_rules(args[0])
            reference.replace_rules(args[0], clock.now)
    monitor.tick()
    clock.advance(100.0)
    monitor.tick()  # the last waits fall due
    assert sorted(map(event_as, events), key=repr) == sorted(map(told_as, reference.told), key=repr)
    assert [event["id"] for event in events] == list(range(1, len(events) + 1))


def test_a_client_unheard_past_the_idle_line_fires_on_the_tick_after_it_crosses():
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    alerting = Alerting(monitor, [AlertRule("idle", "idle_seconds", ">", 10.0)])
    monitor.add_peer("p", kind="client")
    monitor.tick()
    clock.advance(10.0)
    monitor.tick()  # exactly at the line: not over it
    assert alerting.active() == []
    clock.advance(0.5)
    monitor.tick()
    (alert,) = alerting.active()
    assert (alert["rule"], alert["peer_id"], alert["state"], alert["value"]) == (
        "idle",
        "p",
        "firing",
        10.5,
    )
    monitor.record_traffic("p", bytes_sent=1, bytes_received=1)
    monitor.tick()
    assert alerting.active() == []
    assert [(e["state"], e["value"]) for e in alerting.history()] == [
        ("firing", 10.5),
        ("resolved", 0.0),
    ]


def test_a_peer_that_is_removed_resolves_its_alerts_once_with_the_reason():
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    alerting = Alerting(monitor, [AlertRule("slow", "latency_ms", ">", 100.0)])
    monitor.add_peer("p", labels={"region": "eu"})
    monitor.record_latency("p", 500.0)
    monitor.tick()
    monitor.remove_peer("p")
    clock.advance(1.0)
    monitor.tick()
    monitor.tick()
    events = alerting.history()
    assert [(e["state"], e["reason"], e["peer_id"]) for e in events] == [
        ("firing", None, "p"),
        ("resolved", "removed", "p"),
    ]
    assert events[1]["labels"] == {
        "region": "eu",
        "alertname": "slow",
        "severity": "warning",
        "peer_id": "p",
    }
    assert events[1]["message"] == "resolved (removed) slow: peer p"
    assert alerting.active() == []


def test_a_peer_whose_labels_stop_matching_resolves_and_one_that_starts_fires():
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    alerting = Alerting(
        monitor, [AlertRule("slow_eu", "latency_ms", ">", 100.0, match={"region": "eu"})]
    )
    monitor.add_peer("p", labels={"region": "us"})
    monitor.record_latency("p", 500.0)
    monitor.tick()
    assert alerting.active() == []
    monitor.add_peer("p", labels={"region": "eu"})
    monitor.tick()
    assert [a["peer_id"] for a in alerting.active()] == ["p"]
    monitor.add_peer("p", labels={"region": "us"})
    monitor.tick()
    assert alerting.active() == []
    assert [e["state"] for e in alerting.history()] == ["firing", "resolved"]


def test_changing_the_rules_keeps_the_unchanged_ones_and_resolves_the_rest():
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    slow = AlertRule("slow", "latency_ms", ">", 100.0)
    lossy = AlertRule("lossy", "latency_ms", ">", 200.0)
    alerting = Alerting(monitor, [slow, lossy])
    monitor.record_latency("p", 500.0)
    monitor.tick()
    assert {a["rule"] for a in alerting.active()} == {"slow", "lossy"}
    stricter = replace(lossy, threshold=1000.0)
    new_rule = AlertRule("very_slow", "latency_ms", ">", 300.0)
    alerting.set_rules([slow, stricter, new_rule])
    assert [(e["rule"], e["state"], e["reason"]) for e in alerting.history()[2:]] == [
        ("lossy", "resolved", "rule_changed"),
    ]
    clock.advance(1.0)
    monitor.tick()  # no new reading: a new rule still reads every known peer
    assert {a["rule"] for a in alerting.active()} == {"slow", "very_slow"}
    assert alerting.rules == (slow, stricter, new_rule)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([DEFAULT_RULES[0], DEFAULT_RULES[0]], "rules[1].name: 'high_cpu' is used twice"),
        ([DEFAULT_RULES[0], {"name": "x"}], "rules[1]: must be an AlertRule"),
    ],
)
def test_bad_rules_are_refused_naming_the_item_and_the_running_ones_stay(rules, message):
    monitor = Monitor(Settings(enable_system_metrics=False), clock=ManualClock())
    alerting = Alerting(monitor)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        alerting.set_rules(rules)
    assert alerting.rules == DEFAULT_RULES
    with pytest.raises(ValueError, match="is used twice"):
        check_rules([DEFAULT_RULES[1], DEFAULT_RULES[1]])


def test_no_data_from_the_host_keeps_a_host_rule_as_it_is():
    evaluator = Evaluator([AlertRule("cpu", "cpu_percent", ">", 80.0)])
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    tick = monitor.tick()  # system sampling off: the sample is not available
    assert evaluator.evaluate(tick) == []
    assert list(evaluator.alerts()) == []
