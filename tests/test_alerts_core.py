"""core/alerts: rule validation, the per-subject state machine, and the default rules."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.alerts import (
    DEFAULT_RULES,
    Alert,
    AlertRule,
    Notification,
    metric_scope,
)
from peerscope.core.quality import QualityConfig

CPU = AlertRule("cpu", "cpu_percent", ">", 80.0, clear=70.0, for_s=10.0)


def run(
    alert: Alert, series: Sequence[tuple[float, object]]
) -> tuple[Alert, list[tuple[str, float, object]]]:
    """Step through (time, value) pairs; return the last state and (kind, at, value) told."""
    told: list[tuple[str, float, object]] = []
    for now, value in series:
        alert, notices = alert.step(value, now)
        told += [(n.kind, n.at, n.value) for n in notices]
    return alert, told


# --- pending, firing, resolving ----------------------------------------------------------------


def test_a_breach_waits_for_s_pending_then_fires_once():
    alert, told = run(Alert(CPU), [(0, 90), (5, 95), (9.9, 85)])
    assert (alert.state, alert.since, told) == ("pending", 0, [])
    alert, notices = alert.step(81, 10)
    assert alert.state == "firing"
    assert notices == (Notification("firing", CPU, None, 81.0, 10, 10),)
    alert, told = run(alert, [(11, 99), (100, 85)])
    assert (alert.state, alert.fired_at, told) == ("firing", 10, [])


def test_a_pending_breach_that_clears_goes_back_silently():
    alert, told = run(Alert(CPU), [(0, 90), (5, 80), (20, 79)])
    assert (alert, told) == (Alert(CPU), [])
    # A new breach starts a new wait from its own start.
    alert, told = run(alert, [(21, 90), (30, 90), (31, 90)])
    assert (alert.state, told) == ("firing", [("firing", 31, 90.0)])


def test_for_zero_fires_on_the_first_breach():
    rule = AlertRule("cpu", "cpu_percent", ">=", 80.0)
    alert, notices = Alert(rule).step(80, 3.5)
    assert alert.state == "firing"
    assert [(n.kind, n.started_at, n.at) for n in notices] == [("firing", 3.5, 3.5)]


def test_a_firing_alert_holds_inside_the_hysteresis_band_and_resolves_past_clear():
    alert, _ = run(Alert(CPU), [(0, 90), (10, 90)])
    alert, told = run(alert, [(11, 80), (12, 71), (13, 75.5), (14, 79.9)])
    assert (alert.state, told) == ("firing", [])
    alert, notices = alert.step(70, 15)  # > 70 breaches the clear line, so 70 is ok
    assert alert == Alert(CPU)
    assert notices == (Notification("resolved", CPU, None, 70.0, 10, 15),)


def test_hysteresis_works_downwards_for_a_below_rule():
    rule = AlertRule("q", "quality_score", "<", 60.0, clear=65.0)
    alert, told = run(Alert(rule, "p1"), [(0, 59), (1, 60), (2, 64.9), (3, 30), (4, 65.1), (5, 10)])
    assert told == [("firing", 0, 59.0), ("resolved", 4, 65.1), ("firing", 5, 10.0)]
    assert (alert.subject, alert.state) == ("p1", "firing")


def test_keep_firing_for_holds_the_alert_after_it_cleared_and_restarts_on_a_breach():
    rule = AlertRule("cpu", "cpu_percent", ">", 80.0, keep_firing_for_s=5.0)
    alert, told = run(Alert(rule), [(0, 90), (1, 10), (5.9, 10)])
    assert (alert.state, alert.cleared_at, told[1:]) == ("firing", 1, [])
    # A breach in between forgets the clear: the hold starts again from the next ok value.
    alert, told = run(alert, [(6, 95), (7, 10), (11.9, 10)])
    assert (alert.state, alert.cleared_at, told) == ("firing", 7, [])
    alert, told = run(alert, [(12, 10)])
    assert (alert.state, told) == ("inactive", [("resolved", 12, 10.0)])


def test_repeats_fall_on_the_grid_from_the_firing_time_and_a_gap_sends_one():
    rule = AlertRule("cpu", "cpu_percent", ">", 80.0, repeat_s=10.0)
    alert, told = run(
        Alert(rule), [(0, 90), (5, 90), (9.9, 90), (10, 90), (15, 90), (21, 90), (65, 90)]
    )
    assert told == [
        ("firing", 0, 90.0),
        ("repeat", 10, 90.0),
        ("repeat", 21, 90.0),
        ("repeat", 65, 90.0),
    ]
    assert alert.next_repeat_at == 70
    alert, told = run(alert, [(69, 90), (70, 90), (75, 1)])
    assert told == [("repeat", 70, 90.0), ("resolved", 75, 1.0)]


def test_no_repeat_by_default():
    _, told = run(Alert(CPU), [(float(t), 90) for t in range(0, 10_000, 7)])
    assert [kind for kind, _, _ in told] == ["firing"]


# --- no data -----------------------------------------------------------------------------------


def nodata_rule(mode: str) -> AlertRule:
    return AlertRule("lat", "latency_ms", ">", 100.0, nodata=mode, for_s=2.0)  # type: ignore[arg-type]


def test_nodata_ok_counts_as_ok():
    alert, told = run(Alert(nodata_rule("ok")), [(0, None), (5, 150), (7, 150), (8, None)])
    assert (alert.state, told) == ("inactive", [("firing", 7, 150.0), ("resolved", 8, None)])
    # And a pending breach cut by no data starts over.
    alert, told = run(alert, [(10, 150), (11, None), (12, 150), (13, 150)])
    assert (alert.state, alert.since, told) == ("pending", 12, [])


def test_nodata_alerting_counts_as_a_breach():
    _, told = run(Alert(nodata_rule("alerting")), [(0, None), (1, None), (2, None), (3, 50)])
    assert told == [("firing", 2, None), ("resolved", 3, 50.0)]


def test_nodata_keep_leaves_the_state_as_it_is():
    rule = nodata_rule("keep")
    assert run(Alert(rule), [(0, None), (9, None)]) == (Alert(rule), [])
    pending, _ = Alert(rule).step(150, 0)
    assert pending.step(None, 5) == (pending, ())
    # The wait counts from the first breach: the next breach after for_s fires.
    alert, told = run(pending, [(5, None), (6, 150)])
    assert told == [("firing", 6, 150.0)]
    alert, told = run(alert, [(7, None), (500, None)])
    assert (alert.state, told) == ("firing", [])


def test_nodata_keep_still_repeats_a_firing_alert():
    rule = AlertRule("lat", "latency_ms", ">", 100.0, repeat_s=10.0)
    _, told = run(Alert(rule), [(0, 150), (10, None)])
    assert told == [("firing", 0, 150.0), ("repeat", 10, None)]


# --- status rules ------------------------------------------------------------------------------


def test_a_status_rule_fires_on_the_word_and_resolves_when_it_changes():
    rule = AlertRule("down", "status", "==", "disconnected", severity="critical")
    alert, told = run(
        Alert(rule, "vpn-1"),
        [
            (0, "connected"),
            (1, "degraded"),
            (2, "disconnected"),
            (3, "disconnected"),
            (4, "degraded"),
        ],
    )
    assert told == [("firing", 2, "disconnected"), ("resolved", 4, "degraded")]
    assert alert.state == "inactive"


def test_a_not_equal_status_rule():
    rule = AlertRule("unwell", "status", "!=", "connected", for_s=5.0)
    _, told = run(
        Alert(rule), [(0, "degraded"), (3, "disconnected"), (5, "degraded"), (6, "connected")]
    )
    assert told == [("firing", 5, "degraded"), ("resolved", 6, "connected")]


@pytest.mark.parametrize(
    ("rule", "value", "message"),
    [
        (DEFAULT_RULES[-1], "gone", "value: must be one of connected, degraded, disconnected"),
        (DEFAULT_RULES[-1], 3.0, "value: must be one of"),
        (CPU, "high", "value: must be a real number"),
        (CPU, math.nan, "value: must be a finite number"),
        (CPU, math.inf, "value: must be a finite number"),
        (CPU, True, "value: must be a real number"),
    ],
)
def test_a_value_the_rule_cannot_compare_is_refused_and_the_state_kept(rule, value, message):
    alert, _ = Alert(rule).step(None, 0)
    with pytest.raises(ValueError, match=f"^{message}"):
        alert.step(value, 1)


# --- removal -----------------------------------------------------------------------------------


def test_resolve_tells_a_firing_alert_is_over_and_nothing_for_the_others():
    rule = AlertRule("lat", "latency_ms", ">", 100.0, for_s=5.0)
    firing, _ = run(Alert(rule, "p9"), [(0, 150), (5, 150)])
    assert firing.resolve(7) == (
        Alert(rule, "p9"),
        (Notification("resolved", rule, "p9", None, 5, 7),),
    )
    pending, _ = Alert(rule, "p9").step(150, 0)
    assert pending.resolve(1) == (Alert(rule, "p9"), ())
    assert Alert(rule, "p9").resolve(1) == (Alert(rule, "p9"), ())


# --- rules -------------------------------------------------------------------------------------


def test_metric_scope_names_the_owner_of_each_metric():
    assert metric_scope("cpu_percent") == "host"
    assert metric_scope("loop_lag_ms") == "server"
    assert metric_scope("status") == "peer"
    assert AlertRule("m", "mos", "<", 3.0).scope == "peer"
    with pytest.raises(ValueError, match=r"^metric: must be one of cpu_percent"):
        metric_scope("fps")


def test_a_matcher_compares_labels_and_the_peer_kind():
    rule = AlertRule("eu", "latency_ms", ">", 50.0, match={"region": "eu", "kind": "client"})
    assert rule.matches("client", {"region": "eu", "x": "y"})
    assert not rule.matches("peer", {"region": "eu"})
    assert not rule.matches("client", {"region": "us"})
    assert not rule.matches("client", {})
    assert AlertRule("all", "latency_ms", ">", 50.0).matches("peer", {})


def test_a_rule_owns_copies_of_its_labels():
    labels = {"team": "ops"}
    rule = AlertRule("cpu", "cpu_percent", ">", 80, labels=labels)
    labels["team"] = "dev"
    assert rule.labels == {"team": "ops"}
    assert type(rule.threshold) is float


GOOD = {"name": "r", "metric": "latency_ms", "op": ">", "threshold": 100.0}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "name: must be 1-128 printable characters"),
        ({"name": "a\nb"}, "name: must be 1-128 printable characters"),
        ({"metric": "fps"}, "metric: must be one of"),
        ({"op": "=>"}, "op: must be one of >, >=, <, <=, ==, !="),
        ({"threshold": "high"}, "threshold: must be a real number"),
        ({"threshold": math.nan}, "threshold: must be a finite number"),
        (
            {"metric": "status", "op": "==", "threshold": "down"},
            "threshold: must be one of connected",
        ),
        (
            {"metric": "status", "op": ">", "threshold": "degraded"},
            "op: must be == or != for status",
        ),
        ({"clear": 120.0}, "clear: must be <= threshold 100.0"),
        ({"op": "<", "clear": 90.0}, "clear: must be >= threshold 100.0"),
        ({"op": "==", "clear": 90.0}, "clear: needs an ordering op"),
        ({"clear": math.inf}, "clear: must be a finite number"),
        (
            {"metric": "status", "op": "==", "threshold": "degraded", "clear": 1.0},
            "clear: needs an ordering op",
        ),
        ({"for_s": -1}, "for_s: must be >= 0"),
        ({"for_s": math.inf}, "for_s: must be a finite number"),
        ({"keep_firing_for_s": -0.5}, "keep_firing_for_s: must be >= 0"),
        ({"nodata": "maybe"}, "nodata: must be one of ok, alerting, keep"),
        ({"severity": "fatal"}, "severity: must be one of info, warning, critical"),
        ({"repeat_s": 0}, "repeat_s: must be > 0 or None"),
        ({"labels": {"bad key": "x"}}, "labels: key 'bad key' must be an identifier"),
        ({"match": ["region"]}, "match: must be a dict of str to str"),
        ({"match": {"region": 1}}, "match: value of 'region' must be printable text"),
        ({"metric": "cpu_percent", "match": {"region": "eu"}}, "match: only peer metrics"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_field(changes, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        AlertRule(**{**GOOD, **changes})


def test_the_default_rules_are_the_seeds_four_and_three_more():
    by_name = {rule.name: rule for rule in DEFAULT_RULES}
    seen = {
        name: (rule.metric, rule.op, rule.threshold, rule.severity)
        for name, rule in by_name.items()
    }
    assert seen == {
        "high_cpu": ("cpu_percent", ">", 80.0, "warning"),
        "high_memory": ("memory_percent", ">", 85.0, "warning"),
        "high_latency": ("latency_ms", ">", 100.0, "warning"),
        "stale_client": ("idle_seconds", ">", 60.0, "info"),
        "high_loss": ("loss_percent", ">", 5.0, "warning"),
        "poor_quality": ("quality_score", "<", QualityConfig().fair_min, "warning"),
        "peer_disconnected": ("status", "==", "disconnected", "critical"),
    }
    assert by_name["stale_client"].match == {"kind": "client"}
    assert all(rule.repeat_s is None and rule.nodata == "keep" for rule in DEFAULT_RULES)
    # Stale clients and disconnected peers are debounced upstream; they fire at once.
    assert [r.name for r in DEFAULT_RULES if r.for_s == 0] == ["stale_client", "peer_disconnected"]


# --- properties --------------------------------------------------------------------------------

# Whole seconds and whole values keep the arithmetic exact, so the repeat grid is checked
# without rounding slack; the rule fires above 50 and clears at or below `clear`.
THRESHOLD = 50.0
values = st.one_of(st.none(), st.integers(0, 100).map(float))
series = st.lists(st.tuples(st.integers(0, 4), values), max_size=80)
rules = st.builds(
    lambda clear, for_s, keep, repeat, nodata: AlertRule(
        "p",
        "latency_ms",
        ">",
        THRESHOLD,
        clear=clear,
        for_s=for_s,
        keep_firing_for_s=keep,
        repeat_s=repeat,
        nodata=nodata,
    ),
    st.one_of(st.none(), st.integers(30, 50).map(float)),
    st.integers(0, 6).map(float),
    st.integers(0, 6).map(float),
    st.one_of(st.none(), st.integers(1, 7).map(float)),
    st.sampled_from(["ok", "alerting", "keep"]),
)


@given(rules, series)
def test_any_series_notifies_once_per_episode_and_repeats_on_the_grid(rule, steps):
    alert = Alert(rule, "peer")
    now = previous = 0.0
    kinds: list[str] = []
    for dt, value in steps:
        now += dt
        before = alert
        alert, notices = alert.step(value, now)
        assert len(notices) <= 1
        kind = notices[0].kind if notices else None
        if kind is not None:
            kinds.append(kind)
            assert (notices[0].subject, notices[0].at, notices[0].value) == ("peer", now, value)
        # Each notice belongs to exactly one transition; pending and inactive are silent.
        if before.state != "firing" and alert.state == "firing":
            assert kind == "firing"
            if before.state == "inactive":
                assert rule.for_s == 0
            else:
                assert before.since is not None
                assert now - before.since >= rule.for_s
            assert notices[0].started_at == now
        elif before.state == "firing" and alert.state != "firing":
            assert kind == "resolved"
            assert alert == Alert(rule, "peer")
            assert notices[0].started_at == before.fired_at
            assert before.cleared_at is None or now - before.cleared_at >= rule.keep_firing_for_s
        elif before.state == "firing":
            # Still firing: a repeat exactly when this step passed a point fired_at + k·repeat_s.
            assert before.fired_at is not None
            passed = rule.repeat_s is not None and math.floor(
                (now - before.fired_at) / rule.repeat_s
            ) > math.floor((previous - before.fired_at) / rule.repeat_s)
            assert kind == ("repeat" if passed else None)
        else:
            assert kind is None
        previous = now
    # Episodes: firing, its repeats, one resolved; only the last may still be open.
    text = "".join({"firing": "F", "repeat": "r", "resolved": "R"}[k] for k in kinds)
    assert re.fullmatch("(Fr*R)*(Fr*)?", text), text
    _, last = alert.resolve(now + 1)
    assert [n.kind for n in last] == (["resolved"] if alert.state == "firing" else [])


@given(
    st.integers(1, 20).map(float),
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 20)), max_size=60),
)
def test_a_value_oscillating_inside_the_band_never_notifies_once_firing(band, steps):
    rule = AlertRule("b", "cpu_percent", ">", THRESHOLD, clear=THRESHOLD - band, for_s=3.0)
    alert, told = run(Alert(rule), [(0, 90), (3, 90)])
    assert told == [("firing", 3, 90.0)]
    now = 3.0
    for dt, position in steps:
        now += dt
        # Strictly above the clear line and at most the threshold: neither breach nor clear.
        value = THRESHOLD - band + band * max(position, 1) / 100
        alert, notices = alert.step(value, now)
        assert (alert.state, notices) == ("firing", ())


@given(
    st.sampled_from(["ok", "keep"]),
    st.lists(st.one_of(st.none(), st.integers(0, 50)), max_size=60),
)
def test_a_series_that_never_breaches_never_leaves_inactive(nodata, steps):
    rule = AlertRule("n", "cpu_percent", ">", THRESHOLD, clear=40.0, nodata=nodata)
    alert, told = run(Alert(rule), [(float(t), v) for t, v in enumerate(steps)])
    assert (alert, told) == (Alert(rule), [])
