"""Both directions of a probed path: loss and one-way delay out and back, and path changes.

A TWAMP or STAMP reply carries four timestamps (t1 sent, t2 reached the reflector, t3 left
it, t4 back) and two sequence numbers: the sender's, and the reflector's, which a stateful
reflector counts per session (RFC 5357 Appendix I, RFC 8762 §4.2). The sender turns each
first reply into a :class:`PathSample` (how many probes it had sent to that reflector, how
many the reflector had received, how many replies came back, all counted from the start of
the session), and a peer's :class:`PathState` keeps the recent ones. Between its oldest and
newest sample:

- probes sent − probes the reflector received = lost on the way out (forward loss);
- probes the reflector received − replies received = lost on the way back (return loss),

so the two add up to the loss over the same span. A stateless reflector copies the
sender's sequence number, which says nothing of direction: ``reached`` is None and only
the total is known.

One-way delays subtract timestamps of two clocks (t2 − t1, t4 − t3), so they are only as
good as the clocks' agreement: they count as *synchronized* only when both ends' error
estimates set the S bit, and are *offset-affected* otherwise (their sum, the round trip less
the reflector's hold, is exact either way). The probe's IP TTL as the reflector saw it
counts the hops out; a change is a path change.
"""

from __future__ import annotations

from array import array
from typing import Literal, NamedTuple

from typing_extensions import TypedDict  # pydantic (the API) reads it on Python < 3.12

DelayClock = Literal["synchronized", "offset-affected"]
_SMOOTHING = 1.0 / 16.0  # RFC 3550's gain, as for jitter: a delay that moves shows in seconds


class PathSample(NamedTuple):
    """What one first reply says about both directions; counts run from the session's
    start (``epoch`` names the session: a new one restarts them)."""

    epoch: int
    sent: int  # probes sent to this reflector, up to and including the one answered
    reached: int | None  # of them, received by the reflector; None: it does not say
    answered: int  # replies received, this one included
    forward_ms: float  # t2 − t1
    return_ms: float  # t4 − t3
    synchronized: bool  # both clocks' error estimates say synchronized to UTC
    clock_error_ms: float  # the two error estimates, added
    ttl: int | None  # the probe's IP TTL at the reflector; None: the reply does not carry it


class PathChange(NamedTuple):
    at: float
    previous_ttl: int
    ttl: int


class PathFigures(TypedDict):
    """What a :class:`PathState` adds up to. Loss by direction is None while the reflector
    does not number replies per session (stateless mode, one counter for every sender) or
    fewer than two replies span it. One-way delays are smoothed; ``delay_clock`` says
    whether both clocks claim synchronisation ("synchronized") or the delays carry the
    clocks' offset ("offset-affected": only their sum means something). ``ttl`` is the IP
    TTL the probes reached the reflector with (None if it does not say); each change is a
    path change, ``previous_ttl`` the TTL before the last one."""

    forward_loss_percent: float | None
    return_loss_percent: float | None
    forward_delay_ms: float | None
    return_delay_ms: float | None
    delay_clock: DelayClock
    clock_error_ms: float
    ttl: int | None
    path_changes: int
    previous_ttl: int | None


class PathState:
    """The recent samples of one peer's path, and what they add up to.

    Only the counts of the last ``window`` samples are kept, in one ring of machine ints
    (24 octets a sample: a peer probed by TWAMP keeps 2.4 KB at the default window, not
    a tuple per reply); the delays and the TTL are folded in as they come.
    """

    __slots__ = (
        "_counts",
        "_epoch",
        "_next",
        "_size",
        "_window",
        "changes",
        "clock_error_ms",
        "forward_ms",
        "last_change",
        "return_ms",
        "synchronized",
        "ttl",
    )

    def __init__(self, window: int = 100) -> None:
        self._window = window
        # (sent, reached, answered) of each kept sample; reached −1: the reflector did not say
        self._counts = array("q", bytes(24 * window))
        self._next = 0  # where the next sample goes
        self._size = 0
        self._epoch = 0
        self.forward_ms: float | None = None
        self.return_ms: float | None = None
        self.synchronized = False
        self.clock_error_ms = 0.0
        self.ttl: int | None = None
        self.changes = 0
        self.last_change: PathChange | None = None

    def add(self, sample: PathSample, now: float) -> PathChange | None:
        """Take in a sample; the path change it shows (a new TTL), if any."""
        if sample.epoch != self._epoch:
            self._epoch, self._size = sample.epoch, 0  # a new session: counts restarted
        counts, at = self._counts, 3 * self._next
        counts[at] = sample.sent
        counts[at + 1] = -1 if sample.reached is None else sample.reached
        counts[at + 2] = sample.answered
        self._next = (self._next + 1) % self._window
        self._size = min(self._size + 1, self._window)
        if self.forward_ms is None or self.return_ms is None:
            self.forward_ms, self.return_ms = sample.forward_ms, sample.return_ms
        else:
            self.forward_ms += (sample.forward_ms - self.forward_ms) * _SMOOTHING
            self.return_ms += (sample.return_ms - self.return_ms) * _SMOOTHING
        self.synchronized = sample.synchronized
        self.clock_error_ms = sample.clock_error_ms
        ttl, previous = sample.ttl, self.ttl
        if ttl is None:
            return None
        self.ttl = ttl
        if previous is None or previous == ttl:
            return None
        self.changes += 1
        self.last_change = PathChange(now, previous, ttl)
        return self.last_change

    @property
    def directions(self) -> tuple[float, float] | None:
        """(forward, return) loss in % of the probes sent over the recent samples; None
        while the reflector does not number per session or fewer than two samples span it."""
        if self._size < 2:
            return None
        counts, window = self._counts, self._window
        newest = 3 * ((self._next - 1) % window)
        oldest = 3 * ((self._next - self._size) % window)
        first_reached, last_reached = counts[oldest + 1], counts[newest + 1]
        sent = counts[newest] - counts[oldest]
        if first_reached < 0 or last_reached < 0 or sent <= 0:
            return None
        reached = min(sent, max(0, last_reached - first_reached))
        answered = min(reached, max(0, counts[newest + 2] - counts[oldest + 2]))
        return (sent - reached) * 100.0 / sent, (reached - answered) * 100.0 / sent

    @property
    def delay_clock(self) -> DelayClock:
        return "synchronized" if self.synchronized else "offset-affected"

    def figures(self) -> PathFigures:
        directions = self.directions
        change = self.last_change
        return {
            "forward_loss_percent": None if directions is None else directions[0],
            "return_loss_percent": None if directions is None else directions[1],
            "forward_delay_ms": self.forward_ms,
            "return_delay_ms": self.return_ms,
            "delay_clock": self.delay_clock,
            "clock_error_ms": self.clock_error_ms,
            "ttl": self.ttl,
            "path_changes": self.changes,
            "previous_ttl": None if change is None else change.previous_ttl,
        }
