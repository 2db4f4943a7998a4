"""LossTracker: loss from probe sequence numbers, with in-flight, late, reordered, duplicates."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.core.loss import LossTracker

T = 1_700_000_000.0


def counters(tracker):
    return {
        "sent": tracker.sent_total,
        "received": tracker.received_total,
        "lost": tracker.lost_total,
        "in_flight": tracker.in_flight,
        "late": tracker.late,
        "reordered": tracker.reordered,
        "duplicates": tracker.duplicates,
        "unknown": tracker.unknown,
    }


def reply(tracker, seq, now):
    """A reply at ``now``, taken as the Monitor takes one: what timed out before it first."""
    tracker.expire(now)
    return tracker.arrived(seq)


def zero(**changes):
    base = {
        "sent": 0,
        "received": 0,
        "lost": 0,
        "in_flight": 0,
        "late": 0,
        "reordered": 0,
        "duplicates": 0,
        "unknown": 0,
    }
    base.update(changes)
    return base


# --- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 0}, "window"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"timeout_s": -1.0}, "timeout_s"),
        ({"timeout_s": math.nan}, "timeout_s"),
        ({"max_in_flight": 0}, "max_in_flight"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LossTracker(**kwargs)


def test_fresh_tracker():
    t = LossTracker()
    assert t.loss_percent == 0.0
    assert t.timeout_s == 2.0
    assert counters(t) == zero()


# --- in flight and timeouts -------------------------------------------------------------------


def test_probes_in_flight_are_not_counted_as_lost():
    t = LossTracker(timeout_s=2.0)
    for seq in range(5):
        t.sent(seq, T)
    assert t.in_flight == 5
    assert t.loss_percent == 0.0
    assert t.expire(T + 1.999) == 0
    assert t.loss_percent == 0.0
    assert counters(t) == zero(sent=5, in_flight=5)
    t.record(False)
    assert t.loss_percent == 100.0  # the one outcome: none of the five is in the window


def test_a_probe_exactly_timeout_old_is_lost():
    t = LossTracker(timeout_s=2.0)
    t.sent(1, T)
    t.sent(2, T + 0.5)
    assert t.expire(T + 2.0) == 1  # seq 1 is exactly 2 s old
    assert t.loss_percent == 100.0
    assert counters(t) == zero(sent=2, lost=1, in_flight=1)
    assert t.expire(T + 2.5) == 1
    assert counters(t) == zero(sent=2, lost=2)
    assert t.expire(T + 100) == 0


def test_next_expiry_tells_when_expire_could_first_find_a_probe():
    t = LossTracker(timeout_s=2.0)
    assert t.next_expiry == math.inf  # nothing in flight
    t.sent(1, T)
    t.sent(2, T + 1.0)
    assert T + 1.999 < t.next_expiry <= T + 2.0  # the oldest's timeout, a hair early
    assert t.expire(T + 1.5) == 0
    assert t.expire(T + 2.0) == 1
    assert T + 2.999 < t.next_expiry <= T + 3.0  # now seq 2's
    assert reply(t, 2, T + 2.1) == "on_time"
    assert t.next_expiry == math.inf  # answered: nothing left to time out


def test_next_expiry_may_be_early_but_never_late():
    t = LossTracker(timeout_s=2.0)
    t.sent(1, T)
    t.sent(2, T + 1.0)
    assert t.arrived(1) == "on_time"  # the oldest answered; the bound stays at its timeout
    assert t.next_expiry <= T + 2.0
    assert t.expire(T + 2.5) == 0  # finds nothing, and moves the bound to seq 2's
    assert T + 2.999 < t.next_expiry <= T + 3.0
    assert t.expire(T + 3.0) == 1


def test_a_shorter_timeout_applies_to_the_probes_in_flight_at_once():
    t = LossTracker(timeout_s=2.0)
    t.sent(1, T)
    t.set_timeout(0.5)
    assert t.timeout_s == 0.5
    assert t.expire(T + 0.6) == 1
    with pytest.raises(ValueError, match="timeout_s"):
        t.set_timeout(0.0)
    assert t.timeout_s == 0.5


def test_replies_on_time():
    t = LossTracker()
    for seq in range(4):
        t.sent(seq, T)
    assert [reply(t, seq, T + 0.05) for seq in range(4)] == ["on_time"] * 4
    assert t.loss_percent == 0.0
    assert counters(t) == zero(sent=4, received=4)


def test_arrived_after_expire_is_received():
    t = LossTracker(timeout_s=2.0)
    t.sent(1, T)
    t.sent(2, T + 1.0)
    assert t.expire(T + 2.5) == 1
    assert [t.arrived(2), t.arrived(1), t.arrived(2), t.arrived(7)] == [
        "on_time",
        "late",
        "duplicate",
        "unknown",
    ]
    assert counters(t) == zero(sent=2, received=2, late=1, reordered=1, duplicates=1, unknown=1)


# --- late, reordered, duplicate, unknown -------------------------------------------------------


def test_a_late_reply_takes_the_loss_back():
    t = LossTracker(timeout_s=2.0)
    for seq in range(1, 5):
        t.sent(seq, T)
    for seq in (1, 2, 3):
        reply(t, seq, T + 0.1)
    t.expire(T + 2.5)
    assert t.loss_percent == 25.0  # 1 of 4 outcomes
    assert t.lost_total == 1
    assert reply(t, 4, T + 3.0) == "late"
    assert t.loss_percent == 0.0  # taken back inside the window percentage too
    assert counters(t) == zero(sent=4, received=4, late=1)
    # A second reply to the late probe is a duplicate.
    assert reply(t, 4, T + 3.1) == "duplicate"
    assert counters(t) == zero(sent=4, received=4, late=1, duplicates=1)
    t.record(False)
    assert t.loss_percent == 20.0  # 1 of 5: the late reply added no outcome of its own


def test_late_reply_for_an_outcome_already_out_of_the_window():
    t = LossTracker(window=2, timeout_s=1.0)
    t.sent(1, T)
    t.expire(T + 1.0)  # outcome 0: lost
    for seq in (2, 3):  # outcomes 1 and 2: received; the window now holds only these
        t.sent(seq, T + 1.0)
        reply(t, seq, T + 1.1)
    assert t.loss_percent == 0.0
    assert t.lost_total == 1
    assert reply(t, 1, T + 1.2) == "late"
    assert t.loss_percent == 0.0  # not pushed below zero
    assert counters(t) == zero(sent=3, received=3, late=1, reordered=1)


def test_only_the_last_window_losses_are_remembered_for_late_replies():
    t = LossTracker(window=2, timeout_s=1.0)
    for seq in (1, 2, 3):
        t.sent(seq, T)
    t.expire(T + 1.0)  # all three lost; seq 1 is forgotten (window 2)
    assert t.lost_total == 3
    assert reply(t, 1, T + 1.5) == "unknown"
    assert reply(t, 3, T + 1.5) == "late"
    assert reply(t, 2, T + 1.5) == "late"
    assert t.loss_percent == 0.0  # last 2 outcomes (seqs 2, 3) both taken back
    assert counters(t) == zero(sent=3, received=2, lost=1, late=2, reordered=1, unknown=1)


def test_reordered_replies_are_counted_and_not_lost():
    t = LossTracker()
    for seq in (1, 2, 3):
        t.sent(seq, T)
    assert reply(t, 2, T + 0.01) == "on_time"
    assert reply(t, 1, T + 0.02) == "on_time"  # lower than 2: reordered
    assert reply(t, 3, T + 0.03) == "on_time"
    assert t.loss_percent == 0.0
    assert counters(t) == zero(sent=3, received=3, reordered=1)


def test_duplicates_are_counted_apart():
    t = LossTracker()
    t.sent(1, T)
    assert reply(t, 1, T + 0.01) == "on_time"
    assert reply(t, 1, T + 0.02) == "duplicate"
    assert reply(t, 1, T + 0.03) == "duplicate"
    assert t.loss_percent == 0.0
    assert counters(t) == zero(sent=1, received=1, duplicates=2)
    t.record(False)
    assert t.loss_percent == 50.0  # 1 of 2: the duplicates are no outcomes


def test_unknown_sequence_numbers_change_nothing_else():
    t = LossTracker()
    t.sent(1, T)
    assert reply(t, 99, T + 0.01) == "unknown"
    assert counters(t) == zero(sent=1, in_flight=1, unknown=1)
    t.record(False)
    assert t.loss_percent == 100.0  # the only outcome: the unknown reply is none


# --- outcomes without sequence numbers -----------------------------------------------------


def test_record_outcomes():
    t = LossTracker()
    for ok in (True, True, True, False):
        t.record(ok)
    assert t.loss_percent == 25.0
    assert counters(t) == zero(sent=4, received=3, lost=1)


def test_window_rollover():
    t = LossTracker(window=4)
    t.record(False)
    t.record(False)
    t.record(True)
    t.record(True)
    assert t.loss_percent == 50.0
    t.record(True)  # pushes out the first loss
    assert t.loss_percent == 25.0
    t.record(True)  # pushes out the second
    assert t.loss_percent == 0.0
    t.record(False)
    assert t.loss_percent == 25.0  # 1 of 4: the window holds 4 outcomes, not the 7 recorded
    assert counters(t) == zero(sent=7, received=4, lost=3)


def test_outage_recovers_after_a_window_of_successes():
    t = LossTracker(window=100)
    for _ in range(50):
        t.record(False)
    assert t.loss_percent == 100.0
    for k in range(1, 101):
        t.record(True)
        if k == 50:
            assert t.loss_percent == 50.0
    assert t.loss_percent == 0.0
    assert t.lost_total == 50


def test_loss_percent_in_a_part_filled_window():
    t = LossTracker(window=100)
    for ok in (True, False, True):
        t.record(ok)
    assert t.loss_percent == pytest.approx(100.0 / 3.0, abs=1e-12)


# --- max_in_flight and resending -------------------------------------------------------


def test_max_in_flight_declares_the_oldest_lost():
    t = LossTracker(max_in_flight=3)
    for seq in (1, 2, 3):
        t.sent(seq, T)
    assert t.lost_total == 0
    t.sent(4, T + 0.1)  # 4 in flight > 3: seq 1 is lost at once
    assert t.in_flight == 3
    assert t.loss_percent == 100.0
    assert counters(t) == zero(sent=4, lost=1, in_flight=3)
    assert reply(t, 1, T + 0.2) == "late"
    assert t.loss_percent == 0.0
    assert counters(t) == zero(sent=4, received=1, late=1, in_flight=3)


@pytest.mark.parametrize("stage", ["in_flight", "received", "lost"])
def test_sending_a_sequence_number_twice_is_refused(stage):
    t = LossTracker(timeout_s=1.0)
    t.sent(7, T)
    if stage == "received":
        reply(t, 7, T + 0.1)
    elif stage == "lost":
        t.expire(T + 1.0)
    before = counters(t)
    with pytest.raises(ValueError, match="seq: 7"):
        t.sent(7, T + 1.5)
    assert counters(t) == before


def test_a_forgotten_sequence_number_may_be_sent_again():
    t = LossTracker(window=2)
    for seq in (1, 2, 3):
        t.sent(seq, T)
        reply(t, seq, T + 0.01)
    t.sent(1, T + 1)  # seq 1 was pushed out of the last `window` received
    assert t.in_flight == 1
    assert t.sent_total == 4


# --- property: invariants against a reference model ---------------------------------------


class ReferenceTracker:
    """Loss from a plain list of outcomes; a late reply flips its outcome back to received."""

    def __init__(self, window, timeout, max_in_flight):
        self.window, self.timeout, self.max_in_flight = window, timeout, max_in_flight
        self.in_flight = OrderedDict()
        self.outcomes = []  # True = lost
        self.lost_index = {}
        self.sent_count = 0  # every sent() and record()

    def sent(self, seq, now):
        self.sent_count += 1
        self.in_flight[seq] = now
        if len(self.in_flight) > self.max_in_flight:
            oldest, _ = self.in_flight.popitem(last=False)
            self._lose(oldest)

    def _lose(self, seq):
        self.lost_index[seq] = len(self.outcomes)
        self.outcomes.append(True)

    def expire(self, now):
        for seq, at in list(self.in_flight.items()):
            if at <= now - self.timeout:
                del self.in_flight[seq]
                self._lose(seq)

    def received(self, seq, now):
        self.expire(now)
        if seq in self.in_flight:
            del self.in_flight[seq]
            self.outcomes.append(False)
        elif seq in self.lost_index:
            self.outcomes[self.lost_index.pop(seq)] = False

    def record(self, ok):
        self.sent_count += 1
        self.outcomes.append(not ok)

    @property
    def loss_percent(self):
        recent = self.outcomes[-self.window :]
        return 100.0 * sum(recent) / len(recent) if recent else 0.0


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("sent"), st.integers(0, 1_500)),
        st.tuples(st.just("received"), st.integers(0, 1_500), st.integers(0, 40)),
        st.tuples(st.just("expire"), st.integers(0, 1_500)),
        st.tuples(st.just("record"), st.booleans()),
    ),
    max_size=60,
)


@given(window=st.integers(1, 12), max_in_flight=st.integers(1, 8), ops=_ops)
def test_loss_invariants_under_arbitrary_operations(window, max_in_flight, ops):
    timeout = 1.0
    t = LossTracker(window=window, timeout_s=timeout, max_in_flight=max_in_flight)
    ref = ReferenceTracker(window, timeout, max_in_flight)
    now_ms, next_seq = 0, 0
    for op in ops:
        if op[0] == "sent":
            now_ms += op[1]
            t.sent(next_seq, T + now_ms / 1000)
            ref.sent(next_seq, T + now_ms / 1000)
            next_seq += 1
        elif op[0] == "received":
            now_ms += op[1]
            seq = op[2]
            outcome = reply(t, seq, T + now_ms / 1000)
            assert outcome in ("on_time", "late", "duplicate", "unknown")
            if seq >= next_seq:
                assert outcome == "unknown"
            ref.received(seq, T + now_ms / 1000)
        elif op[0] == "expire":
            now_ms += op[1]
            t.expire(T + now_ms / 1000)
            ref.expire(T + now_ms / 1000)
        else:
            t.record(op[1])
            ref.record(op[1])
        assert 0.0 <= t.loss_percent <= 100.0
        assert t.sent_total == ref.sent_count
        assert t.lost_total + t.received_total + t.in_flight == t.sent_total
        assert min(counters(t).values()) >= 0
        assert t.in_flight <= max_in_flight
        assert t.in_flight == len(ref.in_flight)
        assert t.loss_percent == ref.loss_percent
    # One more loss shows how many outcomes each window holds, in its share.
    t.record(False)
    ref.record(False)
    assert t.loss_percent == ref.loss_percent


@given(
    st.lists(st.sampled_from(["ok", "deferred", "lost", "read"]), max_size=300), st.integers(1, 20)
)
def test_pending_successes_fold_in_exactly_like_record(ops, window):
    """The hot path's `pending_successes += 1` must equal record(True), in order."""
    deferred = LossTracker(window=window)
    direct = LossTracker(window=window)
    for op in ops:
        if op == "read":
            assert deferred.loss_percent == direct.loss_percent
            continue
        if op == "deferred":
            deferred.pending_successes += 1
        else:
            deferred.record(op == "ok")
        direct.record(op != "lost")
    assert deferred.loss_percent == direct.loss_percent
    assert deferred.received_total == direct.received_total
    assert deferred.sent_total == direct.sent_total
    # One more loss shows how many outcomes each window holds, in its share.
    deferred.record(False)
    direct.record(False)
    assert deferred.loss_percent == direct.loss_percent
