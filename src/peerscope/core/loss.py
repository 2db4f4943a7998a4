"""Packet loss from probe sequence numbers.

A probe is *in flight* from ``sent`` until its reply arrives or ``timeout_s`` passes; only
then is it an outcome. In-flight probes never count as lost, so loss does not spike at the
start of every round. A reply that arrives after its probe was declared lost takes the loss
back (it was late, not lost); a reply that arrives before an earlier one is *reordered* and
is not a loss; a second reply to the same probe is a *duplicate*, counted apart.

``loss_percent`` covers the last ``window`` outcomes, so a peer recovers from an old
outage; the ``*_total`` counters cover the tracker's whole life.

Successes reported through ``pending_successes`` (the Monitor's hot path adds 1 per answered
measurement, which is cheaper than a call) are folded into the window, in order, before
anything else reads or writes it.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

Arrival = Literal["on_time", "late", "duplicate", "unknown"]
_EMPTY: OrderedDict[Any, Any] = OrderedDict()  # shared, never written to
# next_expiry is set this much early, so that skipping expire() before it never differs from
# what expire()'s own test (sent <= now - timeout) would decide, whatever the rounding: 1 µs
# is over 4 ulps of a Unix time in seconds.
_EARLY_S = 1e-6


@functools.cache
def _mask(window: int) -> int:
    """All-ones for ``window`` bits; cached, so trackers of one window share one int."""
    return (1 << window) - 1


class LossTracker:
    __slots__ = (
        "_highest_received",
        "_in_flight",
        "_lost_at",
        "_mask",
        "_max_in_flight",
        "_outcome_count",
        "_outcomes",
        "_received",
        "_received_seqs",
        "_timeout_s",
        "_window",
        "duplicates",
        "late",
        "lost_total",
        "next_expiry",
        "pending_successes",
        "reordered",
        "unknown",
        "window_lost",
    )

    def __init__(
        self, window: int = 100, timeout_s: float = 2.0, max_in_flight: int = 1024
    ) -> None:
        if window < 1:
            raise ValueError(f"window: must be >= 1, got {window}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s: must be > 0, got {timeout_s!r}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight: must be >= 1, got {max_in_flight}")
        self._window = window
        self._timeout_s = timeout_s
        # No probe in flight can time out before this: callers skip expire() until then. It
        # may be early (a probe answered since), never late, so a skipped call never misses.
        self.next_expiry = math.inf
        self._max_in_flight = max_in_flight
        # Sequence bookkeeping is only needed by probes that send sequence numbers; peers fed
        # by record() alone share these empty maps until their first sent() (saves ~400 B).
        self._in_flight: OrderedDict[int, float] = _EMPTY  # seq -> sent at, oldest first
        self._lost_at: OrderedDict[int, int] = _EMPTY  # seq -> outcome index
        self._received_seqs: OrderedDict[int, None] = _EMPTY
        # The window as bits of an int, newest outcome in bit 0, 1 = lost: ~40 bytes for 100
        # outcomes, and folding in n successes is one shift.
        self._outcomes = 0
        self._mask = _mask(window)
        self._outcome_count = 0
        # Lost outcomes in the window. Pending successes can only lower it, so 0 here means
        # no loss whatever is pending; readers use that to skip loss_percent.
        self.window_lost = 0
        self._highest_received: int | None = None
        self._received = 0
        self.pending_successes = 0
        self.lost_total = 0
        self.late = 0
        self.reordered = 0
        self.duplicates = 0
        self.unknown = 0

    @property
    def received_total(self) -> int:
        return self._received + self.pending_successes

    @property
    def sent_total(self) -> int:
        """Every probe or measurement: received + lost + still in flight."""
        return self.received_total + self.lost_total + len(self._in_flight)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def loss_percent(self) -> float:
        """Lost share of the last ``window`` outcomes, 0..100 (0 before any outcome)."""
        if not self.window_lost:
            return 0.0  # folding in pending successes can only remove losses
        if self.pending_successes:
            self._settle()
        n = self._outcome_count
        if n > self._window:
            n = self._window
        return 100.0 * self.window_lost / n if n else 0.0

    # --- outcomes without sequence numbers -------------------------------------------------

    def record(self, ok: bool) -> None:
        """Count one outcome: a measurement (or probe) that got its answer, or did not.

        Sources with no sequence numbers call this directly; the probe bookkeeping below
        ends in it too, so the window is written in one place.
        """
        if self.pending_successes:
            self._settle()
        if ok:
            self._received += 1
            lost = 0
        else:
            self.lost_total += 1
            lost = 1
        self._outcomes = ((self._outcomes << 1) | lost) & self._mask
        if lost or self.window_lost:  # a success into a loss-free window changes nothing
            self.window_lost = self._outcomes.bit_count()
        self._outcome_count += 1

    def _settle(self) -> None:
        """Fold ``pending_successes`` into the window, in order: one shift, O(1)."""
        pending, self.pending_successes = self.pending_successes, 0
        self._received += pending
        if self.window_lost:  # else the window holds no 1 bits, and shifting changes nothing
            self._outcomes = (self._outcomes << min(pending, self._window)) & self._mask
            self.window_lost = self._outcomes.bit_count()
        self._outcome_count += pending

    # --- probes with sequence numbers --------------------------------------------------------

    def sent(self, seq: int, now: float) -> None:
        if self.pending_successes:
            self._settle()
        if self._in_flight is _EMPTY:
            self._in_flight, self._lost_at, self._received_seqs = (
                OrderedDict(),
                OrderedDict(),
                OrderedDict(),
            )
        if seq in self._in_flight or seq in self._received_seqs or seq in self._lost_at:
            raise ValueError(f"seq: {seq} was already sent")
        self._in_flight[seq] = now
        if len(self._in_flight) == 1:
            self.next_expiry = now + self._timeout_s - _EARLY_S
        if len(self._in_flight) > self._max_in_flight:
            oldest, _ = self._in_flight.popitem(last=False)
            self._mark_lost(oldest)

    def arrived(self, seq: int) -> Arrival:
        """Account for a reply. Call :meth:`expire` with the reply's time first, so that a
        probe which timed out before it counts as lost (the Monitor does, and counts the
        expired probes as failures too)."""
        if self._in_flight.pop(seq, None) is not None:
            if not self._in_flight:
                self.next_expiry = math.inf
            self._note_received(seq)
            self.pending_successes += 1  # record(True), folded in later: the common case
            return "on_time"
        index = self._lost_at.pop(seq, None)
        if index is not None:
            self._note_received(seq)
            self.lost_total -= 1
            self._received += 1
            self.late += 1
            age = self._outcome_count - 1 - index  # 0 = the newest outcome
            if age < self._window:
                self._outcomes &= ~(1 << age)
                self.window_lost = self._outcomes.bit_count()
            return "late"
        if seq in self._received_seqs:
            self.duplicates += 1
            return "duplicate"
        self.unknown += 1
        return "unknown"

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    def set_timeout(self, timeout_s: float) -> None:
        """Change ``timeout_s`` for every probe in flight (a shorter one may be due now)."""
        if not timeout_s > 0:
            raise ValueError(f"timeout_s: must be > 0, got {timeout_s!r}")
        self._timeout_s = timeout_s
        self.next_expiry = -math.inf

    def refused(self, seq: int) -> float | None:
        """The target answered probe ``seq`` with a refusal (a closed port): lost now, not at
        its timeout. Returns when it was sent; None if it was not in flight."""
        sent_at = self._in_flight.pop(seq, None)
        if sent_at is None:
            return None
        if not self._in_flight:
            self.next_expiry = math.inf
        self._mark_lost(seq)
        return sent_at

    def expire(self, now: float, on_lost: Callable[[float], None] | None = None) -> int:
        """Declare lost every probe in flight for longer than ``timeout_s``; return how many.

        ``on_lost`` is told each lost probe's send time."""
        if now < self.next_expiry:
            return 0
        if self.pending_successes:
            self._settle()
        expired = 0
        timeout = self._timeout_s
        horizon = now - timeout
        in_flight = self._in_flight
        self.next_expiry = math.inf
        while in_flight:
            seq = next(iter(in_flight))  # the oldest: nothing after it is due if it is not
            sent_at = in_flight[seq]
            if sent_at > horizon:
                self.next_expiry = sent_at + timeout - _EARLY_S
                break
            del in_flight[seq]
            self._mark_lost(seq)
            if on_lost is not None:
                on_lost(sent_at)
            expired += 1
        return expired

    def _mark_lost(self, seq: int) -> None:
        self._lost_at[seq] = self._outcome_count
        self.record(False)
        while len(self._lost_at) > self._window:
            self._lost_at.popitem(last=False)

    def _note_received(self, seq: int) -> None:
        if self._highest_received is not None and seq < self._highest_received:
            self.reordered += 1
        else:
            self._highest_received = seq
        self._received_seqs[seq] = None
        while len(self._received_seqs) > self._window:
            self._received_seqs.popitem(last=False)
