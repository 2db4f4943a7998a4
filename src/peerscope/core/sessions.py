"""Session bookkeeping: which sessions are open, which ended recently, and who is in them."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from peerscope.core.model import Peer, Session


class SessionBook:
    """Open sessions plus the last ``history`` ended ones.

    A session's peers get a link to it (``Peer.sessions``) so their samples feed it as they
    are recorded; a peer registered while a session naming it is open joins it then.
    """

    def __init__(self, history: int) -> None:
        self._open: dict[str, Session] = {}
        self._ended: deque[Session] = deque(maxlen=history)

    def open(self, session: Session, peers: Mapping[str, Peer]) -> None:
        if session.session_id in self._open:
            raise ValueError(f"session_id: {session.session_id!r} is already active")
        self._open[session.session_id] = session
        for peer_id in session.peer_ids:
            peer = peers.get(peer_id)
            if peer is not None:
                peer.sessions += (session,)

    def close(self, session_id: str, now: float, peers: Mapping[str, Peer]) -> Session:
        session = self._open.pop(session_id, None)
        if session is None:
            raise KeyError(f"no active session {session_id!r}")
        session.ended_at = now
        for peer_id in session.peer_ids:
            peer = peers.get(peer_id)
            if peer is not None:
                peer.sessions = tuple(s for s in peer.sessions if s is not session)
        self._ended.append(session)
        return session

    def restore(self, ended: Iterable[Session]) -> None:
        """Sessions that ended in an earlier run, oldest first, before any ended since."""
        # Past the size, the oldest go first, as they would have had they ended in this run.
        self._ended = deque([*ended, *self._ended], maxlen=self._ended.maxlen)

    def join(self, peer: Peer) -> None:
        """Link a newly registered peer to the open sessions that name it."""
        for session in self._open.values():
            if peer.peer_id in session.peer_ids:
                peer.sessions += (session,)

    def get(self, session_id: str) -> Session:
        found = self._open.get(session_id)
        if found is None:
            found = next((s for s in self._ended if s.session_id == session_id), None)
        if found is None:
            raise KeyError(f"no session {session_id!r}")
        return found

    def recent(self, limit: int, *, include_open: bool = True) -> list[Session]:
        """Most recent first: open sessions, then ended ones."""
        found = list(self._open.values())[::-1] if include_open else []
        found.extend(reversed(self._ended))
        return found[:limit]
