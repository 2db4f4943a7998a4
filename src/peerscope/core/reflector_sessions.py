"""The reflector's test sessions: one sequence of reply numbers per sender, from 0.

A stateful reflector numbers its replies per test session, from 0 and up by one for each
reply it sends (RFC 5357 §4.2.1; RFC 8762 §4.2.1), so a sender sees loss split by
direction: a gap in its own sequence numbers the reply echoes is a probe lost on either
way, a gap in the reflector's a reply lost on the way back, and what is left lost on the
way out. With one counter for all senders, every other sender's probes open gaps too:
an independent sender (twampy) computed outbound loss from ours as −5 % and −20 %.

TWAMP Light sets no session up, so a session here is what RFC 8762 §4 says identifies
one: the sender's address and port (and the reflector's own port, since one reflector may
listen on two: TWAMP's and STAMP's). It ends:

- after ``idle_s`` without a probe. The default is RFC 5357's REFWAIT, 900 s (§4.2: the
  reflector MAY end a session after REFWAIT seconds without a packet; its default SHALL be
  900 s). A sender probing a peer pauses for no longer than that, and a shorter wait only
  restarts sessions of slow senders, each restart a gap their loss figures must explain;
- when the sender's sequence number is 0: a sender numbers its probes from 0 (RFC 5357
  §4.1.2), so 0 is a sender that started again, often from the same port (twampy's
  default), whose outbound-loss arithmetic would go negative against a reflector counting
  on from its previous run;
- when a new sender finds ``max_sessions`` kept: the one idle longest is forgotten
  (``evicted``); should it come back, it starts again at 0.

Pure: no clock, no I/O; ``now_ns`` is a parameter (monotonic nanoseconds).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Literal

from peerscope.core.validation import validate_count, validate_number

ReflectorMode = Literal["stateful", "stateless"]  # stateless: the sender's seq, copied
DEFAULT_SESSION_IDLE_S = 900.0  # RFC 5357 §4.2, REFWAIT
# About 320 bytes a session (its key and address string, two numbers, the table's slot,
# measured with tracemalloc): 16,384, as many as the rate table keeps addresses
# (core.admission), take ~5 MiB.
DEFAULT_MAX_SESSIONS = 16_384
MAX_SESSION_IDLE_S = 86_400.0
_SEQ_MASK = 0xFFFF_FFFF


class ReflectorSessions:
    """Reply sequence numbers per session: ``next_seq(key, sender_seq, now_ns)``."""

    __slots__ = ("_idle_ns", "_max_sessions", "_table", "evicted", "expired")

    def __init__(
        self,
        *,
        idle_s: float = DEFAULT_SESSION_IDLE_S,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        idle = validate_number(idle_s, "session_idle_s", high=MAX_SESSION_IDLE_S)
        if not idle:
            raise ValueError(f"session_idle_s: must be > 0 seconds, got {idle_s!r}")
        if validate_count(max_sessions, "max_sessions") < 1:
            raise ValueError(f"max_sessions: must be an integer >= 1, got {max_sessions!r}")
        self._idle_ns = round(idle * 1e9)
        self._max_sessions = max_sessions
        # Least recently seen first: the sessions to expire or evict are always at the front.
        self._table: OrderedDict[Hashable, tuple[int, int]] = OrderedDict()
        self.evicted = 0  # forgotten to make room for a new sender
        self.expired = 0  # ended after idle_s without a probe

    def __len__(self) -> int:
        return len(self._table)

    def next_seq(self, key: Hashable, sender_seq: int, now_ns: int) -> int:
        """The sequence number of the reply to a probe of session ``key`` (its sender's
        ``sender_seq``) sent at ``now_ns``: 0 for a new session, else one more than the last."""
        table = self._table
        oldest_kept = now_ns - self._idle_ns
        while table:
            first = next(iter(table))
            if table[first][1] >= oldest_kept:
                break
            del table[first]
            self.expired += 1
        entry = table.get(key)
        if entry is None or sender_seq == 0:
            seq = 0
            if entry is None and len(table) >= self._max_sessions:
                table.popitem(last=False)
                self.evicted += 1
        else:
            seq = entry[0]
        table[key] = ((seq + 1) & _SEQ_MASK, now_ns)
        table.move_to_end(key)
        return seq
