"""The score and figures tell the truth for any run of outcomes (hypothesis, through a Monitor)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from peerscope import Monitor, Settings
from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.testing import ManualClock

RULES = StatusRules()
CONFIG = QualityConfig()

_outcome = st.one_of(
    st.floats(0.0, 500.0, allow_nan=False),  # an answered measurement, in ms
    st.none(),  # a failed one
    st.just("silent"),  # nothing at all
)
_gap = st.sampled_from((0.2, 1.0, 3.0, 16.0))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_outcome, _gap), min_size=1, max_size=60),
    st.sampled_from((4, 10, 100)),
)
def test_any_run_of_outcomes_reads_truthfully(run, window):
    clock = ManualClock()
    monitor = Monitor(
        Settings(
            enable_system_metrics=False,
            metrics_interval=3600,
            quality=QualityConfig(loss_window=window),
        ),
        clock=clock,
    )
    monitor.add_peer("p")
    last_success = None
    for outcome, gap in run:
        clock.advance(gap)
        if outcome != "silent":
            monitor.record_latency("p", outcome)
            if outcome is not None:
                last_success = clock.now
        peer = monitor.peer("p")
        score, loss = peer["quality_score"], peer["packet_loss_percent"]
        if loss >= 100.0:
            assert score == 0.0
            assert (peer["band"], peer["grade"]) == ("bad", "F")
        if loss >= 50.0 and score is not None:
            assert score <= CONFIG.poor_min
            assert peer["band"] in ("poor", "bad")
        measured_at = peer["last_measured_at"]
        if last_success is None:
            assert measured_at is None
        else:  # kept to the millisecond
            assert abs(measured_at - last_success) <= 0.001
        if measured_at is None or clock.now - measured_at >= RULES.degraded_after_idle_s:
            for figure in ("latency_ms", "smoothed_latency_ms", "jitter_ms", "mos"):
                assert peer[figure] is None, figure
        if peer["latency_ms"] is None and measured_at is not None:
            assert peer["status_reason"]["kind"] in ("no_reply", "idle", "stale")
        if peer["status_reason"]["kind"] == "no_reply":
            assert score == 0.0
            assert peer["smoothed_latency_ms"] is None


def test_a_dead_peer_reads_dead_and_recovers():
    # The case: 1 good sample and then 20 failed measurements.
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False, metrics_interval=3600), clock=clock)
    monitor.record_latency("p", 30.0)
    for _ in range(20):
        clock.advance(1.0)
        monitor.record_latency("p", None)
    peer = monitor.peer("p")
    assert peer["status"] == "disconnected"
    assert (peer["quality_score"], peer["band"], peer["grade"]) == (0.0, "bad", "F")
    assert peer["latency_ms"] is None
    assert peer["jitter_ms"] is None
    assert peer["mos"] is None
    assert abs(peer["last_measured_at"] - (clock.now - 20)) <= 0.001
    assert peer["status_reason"] == {
        "kind": "no_reply",
        "value": 20.0,
        "threshold": 2.0,
        "detail": None,
    }
    assert peer["status_text"] == "no reply to the last 20 measurements; last reply 20 s ago"
    clock.advance(1.0)
    monitor.record_latency("p", 30.0)
    back = monitor.peer("p")
    assert back["latency_ms"] == 30.0
    assert back["status_reason"]["kind"] == "loss"  # 20 of 22 lost: still terrible, not dead


def test_a_peer_never_answered_scores_zero_once_a_measurement_fails():
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False, metrics_interval=3600), clock=clock)
    monitor.add_peer("p")
    assert monitor.peer("p")["quality_score"] is None  # unknown, not perfect
    monitor.record_latency("p", None)
    peer = monitor.peer("p")
    assert peer["quality_score"] == 0.0
    assert peer["status_text"] == "not measured yet"
    monitor.record_latency("p", None)
    assert monitor.peer("p")["status_text"] == "no reply to the last 2 measurements; never answered"


def test_a_stale_peers_tick_reading_hides_its_latency_as_its_entry_does():
    # Heard from (messages) but not measured for the status window: the figures describe
    # no current link, in the tick's readings as in the entries.
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False, metrics_interval=3600), clock=clock)
    monitor.record_latency("p", 30.0)
    assert monitor.tick().changed[0].latency_ms == 30.0
    clock.advance(16.0)
    monitor.record_message("p", size=10, direction="in")
    (reading,) = monitor.tick().changed
    assert (reading.latency_ms, reading.smoothed_latency_ms, reading.jitter_ms) == (
        None,
        None,
        None,
    )
    entry = monitor.peer("p")
    assert entry["status_reason"]["kind"] == "stale"
    assert entry["latency_ms"] is None
    assert reading.quality_score is None
