"""The one pass over a tick's readings for all peer rules keeps every reading that breaches
one of the rules it covers, and says which rules it cannot cover."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from peerscope.alerting.evaluator import breaching
from peerscope.alerting.prefilter import compile_prefilter
from peerscope.core.alerts import DEFAULT_RULES, AlertRule
from peerscope.events import PeerReading

NOW = 1_700_000_100.0
figures = st.one_of(st.none(), st.floats(min_value=0.0, max_value=500.0))
readings = st.builds(
    PeerReading,
    peer_id=st.text(alphabet="abcdef", min_size=1, max_size=4),
    kind=st.sampled_from(["peer", "client"]),
    labels=st.just({}),
    status=st.sampled_from(["connected", "degraded", "disconnected"]),
    latency_ms=figures,
    smoothed_latency_ms=figures,
    jitter_ms=figures,
    loss_percent=st.floats(min_value=0.0, max_value=100.0),
    quality_score=figures,
    bytes_sent=st.just(0),
    bytes_received=st.just(0),
    last_seen=st.floats(min_value=NOW - 200.0, max_value=NOW),
)
numeric = st.builds(
    AlertRule,
    name=st.just("r"),
    metric=st.sampled_from(["latency_ms", "jitter_ms", "loss_percent", "quality_score"]),
    op=st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    threshold=st.sampled_from([0.0, 5.0, 60.0, 100.0]),
    nodata=st.sampled_from(["ok", "alerting", "keep"]),
)
idle = st.builds(
    AlertRule,
    name=st.just("r"),
    metric=st.just("idle_seconds"),
    op=st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    threshold=st.sampled_from([0.0, 10.0, 60.0]),
)
status = st.builds(
    AlertRule,
    name=st.just("r"),
    metric=st.just("status"),
    op=st.sampled_from(["==", "!="]),
    threshold=st.sampled_from(["connected", "disconnected"]),
    nodata=st.sampled_from(["ok", "alerting"]),
)


@given(st.lists(st.one_of(numeric, idle, status), min_size=1, max_size=5), st.lists(readings))
def test_it_keeps_every_reading_a_covered_rule_would_find_breaching(rules, batch):
    rules = [
        AlertRule(f"r{i}", r.metric, r.op, r.threshold, nodata=r.nodata)
        for i, r in enumerate(rules)
    ]
    prefilter = compile_prefilter(rules)
    kept = prefilter(batch, NOW)
    assert all(reading in batch for reading in kept)
    for rule in rules:
        found = breaching(rule, batch, NOW)
        if rule.name in prefilter.rules:
            assert breaching(rule, kept, NOW) == found


def test_what_it_cannot_express_is_left_to_the_rules_own_pass():
    rules = [
        AlertRule("mos", "mos", "<", 3.5),
        AlertRule("fresh", "idle_seconds", "<", 5.0),
        AlertRule("any_idle", "idle_seconds", ">=", 0.0),
        AlertRule("cpu", "cpu_percent", ">", 80.0),
        *DEFAULT_RULES,
    ]
    covered = compile_prefilter(rules).rules
    assert covered == {
        "high_latency",
        "stale_client",
        "high_loss",
        "poor_quality",
        "peer_disconnected",
    }
    assert compile_prefilter([AlertRule("cpu", "cpu_percent", ">", 80.0)])([], NOW) == []
