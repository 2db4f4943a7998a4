"""Monitor hooks for sequence-numbered probes, with a hand-moved clock: exact outcomes."""

from __future__ import annotations

import math

import pytest

from peerscope import Monitor, Settings
from peerscope.core.quality import QualityConfig, StatusRules


def make_monitor(clock, **overrides) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False, **overrides), clock=clock)


def test_in_flight_probes_are_not_loss_and_an_answer_is_a_latency_sample(clock):
    monitor = make_monitor(clock)
    monitor.record_probe_sent("p1", 1)
    monitor.record_probe_sent("p1", 2)
    peer = monitor.peer("p1")
    assert peer["packet_loss_percent"] == 0.0
    assert peer["probes"]["in_flight"] == 2
    assert peer["latency_ms"] is None
    clock.advance(0.01)
    assert monitor.record_probe_reply("p1", 1, 12.5) == "on_time"
    peer = monitor.peer("p1")
    assert peer["latency_ms"] == 12.5
    assert peer["last_seen"] == clock.now
    assert peer["probes"] == {
        "sent": 2,
        "received": 1,
        "lost": 0,
        "in_flight": 1,
        "late": 0,
        "reordered": 0,
        "duplicates": 0,
        "unknown": 0,
    }
    assert monitor.latency_history("p1", 60) == [(clock.now, 12.5)]


def test_an_unanswered_probe_expires_at_the_tick_without_any_further_reply(clock):
    rules = StatusRules(degraded_after_failures=2, disconnected_after_failures=3)
    monitor = make_monitor(clock, status=rules)
    monitor.record_probe_sent("p1", 1, timeout_s=1.0)
    monitor.record_probe_reply("p1", 1, 5.0)
    for seq in (2, 3, 4):
        monitor.record_probe_sent("p1", seq, timeout_s=1.0)
    clock.advance(0.999)
    message = monitor.tick().message()
    assert message["clients"][0]["packet_loss_percent"] == 0.0
    clock.advance(0.001)
    message = monitor.tick().message()
    client = message["clients"][0]
    assert client["packet_loss_percent"] == 75.0
    assert client["status"] == "disconnected"  # three failed measurements in a row


def test_expiry_also_happens_when_the_peer_is_queried(clock):
    monitor = make_monitor(clock)
    monitor.record_probe_sent("p1", 7, timeout_s=0.5)
    clock.advance(0.5)
    peer = monitor.peer("p1")
    assert peer["packet_loss_percent"] == 100.0
    assert peer["probes"]["lost"] == 1
    assert peer["probes"]["in_flight"] == 0


def test_failures_degrade_then_disconnect_and_replies_recover(clock):
    rules = StatusRules(degraded_after_failures=2, disconnected_after_failures=4)
    monitor = make_monitor(clock, status=rules, quality=QualityConfig(loss_window=4))
    seqs = iter(range(100))
    statuses = []
    for answered in (True, False, False, False, False, True, True, True, True):
        seq = next(seqs)
        monitor.record_probe_sent("p1", seq, timeout_s=1.0)
        if answered:
            monitor.record_probe_reply("p1", seq, 10.0)
        clock.advance(1.0)
        statuses.append(monitor.tick().message()["clients"][0]["status"])
    assert statuses == [
        "connected",
        "degraded",  # 1 lost of 2 in a 4-outcome window: 50 % loss is never better than poor
        "degraded",
        "degraded",
        "disconnected",
        "degraded",
        "degraded",
        "degraded",
        "connected",
    ]


def test_a_late_reply_takes_its_loss_back_and_is_a_sample(clock):
    monitor = make_monitor(clock)
    monitor.record_probe_sent("p1", 1, timeout_s=1.0)
    clock.advance(1.5)
    assert monitor.peer("p1")["packet_loss_percent"] == 100.0
    assert monitor.record_probe_reply("p1", 1, 1500.0) == "late"
    peer = monitor.peer("p1")
    assert peer["packet_loss_percent"] == 0.0
    assert peer["latency_ms"] == 1500.0
    assert peer["probes"]["late"] == 1
    assert peer["probes"]["lost"] == 0


def test_a_reply_past_the_timeout_before_any_refresh_counts_as_a_failure_then_late(clock):
    rules = StatusRules(degraded_after_failures=1, disconnected_after_failures=5)
    monitor = make_monitor(clock, status=rules)
    monitor.record_probe_sent("p1", 1, timeout_s=1.0)
    monitor.record_probe_sent("p1", 2, timeout_s=1.0)
    clock.advance(2.0)
    assert monitor.record_probe_reply("p1", 2, 2000.0) == "late"
    peer = monitor.peer("p1")
    assert peer["probes"]["lost"] == 1  # seq 1 stays lost
    assert peer["packet_loss_percent"] == 50.0


def test_reordered_and_duplicate_replies_are_counted_not_lost(clock):
    monitor = make_monitor(clock)
    for seq in (1, 2, 3):
        monitor.record_probe_sent("p1", seq)
    assert monitor.record_probe_reply("p1", 2, 3.0) == "on_time"
    assert monitor.record_probe_reply("p1", 1, 4.0) == "on_time"
    assert monitor.record_probe_reply("p1", 1, 4.0) == "duplicate"
    assert monitor.record_probe_reply("p1", 99, 4.0) == "unknown"
    peer = monitor.peer("p1")
    assert peer["probes"]["reordered"] == 1
    assert peer["probes"]["duplicates"] == 1
    assert peer["probes"]["unknown"] == 1
    assert peer["packet_loss_percent"] == 0.0
    # Only the two first replies are samples.
    assert [value for _, value in monitor.latency_history("p1", 60)] == [3.0, 4.0]


def test_hot_path_samples_and_probes_mix_in_order(clock):
    monitor = make_monitor(clock, quality=QualityConfig(loss_window=4))
    monitor.record_latency("p1", 10.0)  # folded in later through pending_successes
    monitor.record_latency("p1", 10.0)
    monitor.record_probe_sent("p1", 1, timeout_s=1.0)
    monitor.record_latency("p1", None)
    monitor.record_latency("p1", 10.0)
    clock.advance(1.0)
    monitor.tick()  # seq 1 expires: outcomes ok, ok, lost, ok, lost
    peer = monitor.peer("p1")
    assert peer["probes"]["sent"] == 5
    assert peer["probes"]["lost"] == 2
    assert peer["packet_loss_percent"] == 50.0  # the last four: ok, lost, ok, lost
    monitor.record_latency("p1", 10.0)
    monitor.record_latency("p1", 10.0)
    assert monitor.peer("p1")["packet_loss_percent"] == 25.0
    assert monitor.record_probe_reply("p1", 1, 1000.0) == "late"  # takes its loss back
    assert monitor.peer("p1")["packet_loss_percent"] == 0.0


def test_probe_replies_feed_sessions(clock):
    monitor = make_monitor(clock)
    monitor.add_peer("p1")
    sid = monitor.start_session("match", ["p1"])
    monitor.record_probe_sent("p1", 1)
    monitor.record_probe_reply("p1", 1, 8.0)
    assert monitor.end_session(sid).latency_stats()["avg_latency"] == 8.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seq": -1}, "seq"),
        ({"seq": 1.5}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": 1, "timeout_s": 0.0}, "timeout_s"),
        ({"seq": 1, "timeout_s": -1.0}, "timeout_s"),
        ({"seq": 1, "timeout_s": math.nan}, "timeout_s"),
    ],
)
def test_bad_probe_sent_raises_and_records_nothing(clock, kwargs, field):
    monitor = make_monitor(clock)
    monitor.add_peer("p1")
    before = monitor.peer("p1")
    with pytest.raises(ValueError, match=field):
        monitor.record_probe_sent("p1", **kwargs)
    assert monitor.peer("p1") == before


def test_a_seq_sent_twice_is_refused(clock):
    monitor = make_monitor(clock)
    monitor.record_probe_sent("p1", 1)
    before = monitor.peer("p1")
    with pytest.raises(ValueError, match="seq: 1 was already sent"):
        monitor.record_probe_sent("p1", 1)
    assert monitor.peer("p1") == before


@pytest.mark.parametrize(
    ("seq", "rtt", "field"),
    [
        (-1, 1.0, "seq"),
        ("1", 1.0, "seq"),
        (1, math.nan, "rtt_ms"),
        (1, -0.5, "rtt_ms"),
        (1, math.inf, "rtt_ms"),
        (1, "3", "rtt_ms"),
    ],
)
def test_bad_probe_reply_raises_and_records_nothing(clock, seq, rtt, field):
    monitor = make_monitor(clock)
    monitor.record_probe_sent("p1", 1)
    before = monitor.peer("p1")
    with pytest.raises(ValueError, match=field):
        monitor.record_probe_reply("p1", seq, rtt)
    assert monitor.peer("p1") == before


def test_removed_probed_peer_is_no_longer_expired(clock):
    monitor = make_monitor(clock)
    monitor.record_probe_sent("p1", 1, timeout_s=1.0)
    assert monitor.remove_peer("p1")
    clock.advance(5.0)
    assert monitor.tick().message()["clients"] == []


def test_a_peer_still_probed_is_not_pruned_however_long_it_is_silent(clock):
    rules = StatusRules(degraded_after_failures=1, disconnected_after_failures=2)
    monitor = make_monitor(clock, status=rules, peer_ttl_s=30)
    for seq in range(60):  # two minutes of unanswered probes, one every 2 s
        monitor.record_probe_sent("p1", seq, timeout_s=1.0)
        clock.advance(2.0)
        message = monitor.tick().message()
        assert [client["status"] for client in message["clients"]] == (
            ["degraded"] if seq == 0 else ["disconnected"]
        )
    clock.advance(27.0)  # probing stopped 2 s ago: the TTL counts from the last probe
    assert monitor.tick().message()["clients_total"] == 1
    clock.advance(1.0)
    assert monitor.tick().message()["clients_total"] == 0


def test_batches_record_what_the_single_calls_do(clock):
    singles, batched = make_monitor(clock), make_monitor(clock)
    for seq in (1, 2, 3):
        singles.record_probe_sent("a", seq, timeout_s=1.0)
        singles.record_probe_sent("b", seq, timeout_s=1.0)
    batched.record_probes_sent(
        [(peer_id, seq) for seq in (1, 2, 3) for peer_id in "ab"], timeout_s=1.0
    )
    clock.advance(0.01)
    replies = [("a", 2, 5.0), ("a", 1, 6.0), ("a", 1, 6.0), ("b", 9, 1.0), ("b", 1, 4.0)]
    assert batched.record_probe_replies(replies) == [
        singles.record_probe_reply(*reply) for reply in replies
    ]
    assert batched.record_probe_replies([]) == []
    clock.advance(1.5)
    assert batched.record_probe_replies([("b", 2, 7.0)]) == ["late"]
    assert singles.record_probe_reply("b", 2, 7.0) == "late"
    for peer_id in "ab":
        ours, theirs = batched.peer(peer_id), singles.peer(peer_id)
        assert ours["probes"] == theirs["probes"]
        assert ours["latency_ms"] == theirs["latency_ms"]
        assert ours["packet_loss_percent"] == theirs["packet_loss_percent"]
    assert batched.peer("a")["probes"]["duplicates"] == 1
    assert batched.peer("a")["probes"]["reordered"] == 1


def test_a_batch_with_one_bad_item_records_nothing(clock):
    monitor = make_monitor(clock)
    monitor.record_probe_sent("p1", 1)
    before = monitor.peer("p1")
    with pytest.raises(ValueError, match="seq"):
        monitor.record_probes_sent([("p1", 2), ("p1", -3)])
    with pytest.raises(ValueError, match="rtt_ms"):
        monitor.record_probe_replies([("p1", 1, 5.0), ("p1", 1, math.nan)])
    assert monitor.peer("p1") == before


# --- probes the target said no to --------------------------------------------------------


def answer_probes(monitor: Monitor, peer_id: str, count: int, timeout_s: float) -> None:
    """``count`` probes to ``peer_id``, seqs 0.., each answered in 4 ms."""
    for seq in range(count):
        monitor.record_probe_sent(peer_id, seq, timeout_s=timeout_s)
        monitor.record_probe_reply(peer_id, seq, 4.0)


def test_a_refused_probe_is_lost_at_once_and_the_reason_says_the_port_is_closed(clock):
    rules = StatusRules(
        no_reply_after_failures=2, degraded_after_failures=2, disconnected_after_failures=4
    )
    monitor = make_monitor(clock, status=rules)
    answer_probes(monitor, "db", 49, timeout_s=30.0)
    assert monitor.peer("db")["status_reason"]["kind"] == "ok"
    monitor.record_probe_sent("db", 49, timeout_s=30.0)
    clock.advance(0.001)  # far within the timeout: only the refusal can make it lost
    monitor.record_probe_failure("db", 49, "port_closed", "connection refused")
    peer = monitor.peer("db")
    assert peer["status_reason"] == {
        "kind": "port_closed",
        "value": None,
        "threshold": None,
        "detail": "connection refused",
    }
    assert peer["status_text"] == "port closed (connection refused)"
    assert (peer["probes"]["lost"], peer["probes"]["in_flight"]) == (1, 0)
    assert peer["packet_loss_percent"] == 2.0
    assert peer["quality_score"] > 0  # one failure: not yet unanswered
    assert peer["latency_ms"] == 4.0
    monitor.record_probe_sent("db", 50, timeout_s=30.0)
    monitor.record_probe_failure("db", 50, "port_closed", "connection refused")
    peer = monitor.peer("db")
    assert peer["status_reason"]["kind"] == "port_closed"
    # Two failures in a row (no_reply_after_failures), at 3.9 % loss: unanswered.
    assert peer["quality_score"] == 0.0
    assert (peer["latency_ms"], peer["jitter_ms"], peer["mos"]) == (None, None, None)
    assert peer["status"] == "degraded"
    assert peer["probes"]["lost"] == 2
    # A success clears the reason.
    monitor.record_probe_sent("db", 51, timeout_s=30.0)
    monitor.record_probe_reply("db", 51, 5.0)
    peer = monitor.peer("db")
    assert peer["status_reason"]["kind"] != "port_closed"
    assert peer["latency_ms"] == 5.0


def test_a_refusal_after_the_timeout_is_not_counted_twice(clock):
    monitor = make_monitor(clock)  # no_reply_after_failures: 2
    answer_probes(monitor, "db", 49, timeout_s=1.0)
    monitor.record_probe_sent("db", 49, timeout_s=1.0)
    clock.advance(1.5)
    monitor.record_probe_failures([("db", 49, "port_closed", "connection refused")])
    peer = monitor.peer("db")
    assert peer["probes"]["lost"] == 1
    assert peer["probes"]["sent"] == 50
    assert peer["status_reason"]["kind"] == "port_closed"  # the reason is kept all the same
    assert peer["quality_score"] > 0  # one failed measurement, not two


def test_a_name_that_does_not_resolve_is_the_peers_reason(clock):
    monitor = make_monitor(clock)
    detail = "'db.invalid' does not resolve: Name or service not known"
    monitor.record_probes_sent([("db", 0), ("other", 0)], timeout_s=5.0)
    monitor.record_probe_failures(
        [("db", 0, "unresolved", detail), ("gone", 0, "unresolved", detail)], known_only=True
    )
    assert "gone" not in monitor  # known_only: no peer is brought (back) by a failure
    peer = monitor.peer("db")
    assert peer["status_reason"] == {
        "kind": "unresolved",
        "value": None,
        "threshold": None,
        "detail": detail,
    }
    assert peer["status_text"] == detail
    assert peer["probes"]["lost"] == 1
    assert monitor.peer("other")["probes"]["in_flight"] == 1  # untouched
    monitor.record_probe_failure("new", 0, "unresolved", detail)  # unknown_peer="register"
    assert monitor.peer("new")["status_reason"]["kind"] == "unresolved"
    assert monitor.peer("new")["probes"]["lost"] == 0  # never announced: nothing to count


@pytest.mark.parametrize(
    ("failure", "field"),
    [
        (("p1", -1, "port_closed", "refused"), "seq"),
        (("p1", 1, "timeout", "refused"), "kind"),
        (("p1", 1, "port_closed", ""), "detail"),
        (("p1", 1, "port_closed", "x" * 1025), "detail"),
        (("p1", 1, "port_closed", "line\nbreak"), "detail"),
        ((["p1"], 1, "port_closed", "refused"), "peer_id"),
    ],
)
def test_a_bad_probe_failure_raises_and_records_nothing(clock, failure, field):
    monitor = make_monitor(clock)
    monitor.record_probe_sent("p1", 1)
    before = monitor.peer("p1")
    with pytest.raises(ValueError, match=f"^{field}: "):
        monitor.record_probe_failures([("p1", 1, "port_closed", "refused"), failure])
    assert monitor.peer("p1") == before
