"""One test session of the TWAMP/STAMP sender, as the reflector sees it: the probes sent to
one reflector address from one socket, and how the reflector's sequence numbers count them.

A stateful reflector numbers the probes of a session from 0 (RFC 5357 Appendix I, RFC 8762
§4.2), counting only those it received; so, beside the sender's own count of probes sent
and replies received, its number for a probe says how many reached it: the split of loss by
direction (peerscope.core.path). :meth:`SenderSession.counts` keeps that arithmetic honest
against reflectors that do something else: one that kept a session of ours from before
(its numbers start higher), one that forgets the session and numbers from 0 again (a new
epoch), probes that overtook each other on the way out (not a new epoch), and one counter
for every sender (more received than we sent: direction unknown).
"""

from __future__ import annotations

# How far probes may overtake each other on the way out before a lower reflector seq means
# that it numbers from 0 again rather than that the probes were reordered (less early in a
# session: half the count so far).
_REORDERED = 64


class SenderSession:
    """The probes sent to one reflector address from one socket, and its replies: a TWAMP
    test session as the reflector sees it (RFC 5357 Appendix I keys it by the two
    addresses and ports)."""

    __slots__ = (
        "answered",
        "base",
        "epoch",
        "last_ordinal",
        "last_reached",
        "sent",
        "shared",
        "start",
    )

    def __init__(self) -> None:
        self.sent = 0  # probes sent: the next one's ordinal
        # The reflector's numbering as of ``start`` (the ordinal its epoch began with):
        # ``base`` is the seq it gave, or would have given, that probe.
        self.epoch = 0
        self.start = 0
        self.base: int | None = None  # None until the epoch's first reply
        self.answered = 0  # first replies received this epoch
        self.last_ordinal = -1
        self.last_reached = -1
        self.shared = False  # its numbering counts other senders' probes too

    def counts(self, ordinal: int, reflector_seq: int | None) -> tuple[int, int | None] | None:
        """(sent, reached) of this epoch up to the probe numbered ``ordinal``: probes sent,
        and of them received by the reflector by its seq for this one (None when its
        numbering says nothing of ours: ``reflector_seq`` None, a stateless copy). None for
        a reply to a probe of an epoch gone by."""
        if ordinal < self.start:
            return None
        if reflector_seq is None or self.shared:
            self.answered += 1
            return ordinal - self.start + 1, None
        base = self.base
        if base is None:
            # A reflector that counts from 0 per session numbers our first probe 0; one that
            # numbered more than we sent had counted before we came (a session of ours it
            # kept, another sender's): take what it has as our start.
            base = self.base = max(0, reflector_seq - (ordinal - self.start))
        elif (
            reflector_seq < self.last_reached - min(_REORDERED, self.last_reached // 2)
            and ordinal > self.last_ordinal
        ):
            # It numbers from 0 again: it forgot the session (idle, restarted). Counts
            # restart. (A later probe numbered a little lower only overtook an earlier one.)
            self.epoch += 1
            self.start = ordinal
            self.answered = 0
            base = self.base = reflector_seq
        sent = ordinal - self.start + 1
        reached = reflector_seq - base + 1
        self.answered += 1
        if reached > sent:
            # More received than sent: the reflector counts other senders' probes with ours
            # (one counter for all, as peerscope's did before 0.9). It says nothing of
            # direction.
            self.shared = True
            return sent, None
        if ordinal > self.last_ordinal:
            self.last_ordinal, self.last_reached = ordinal, reflector_seq
        return sent, reached
