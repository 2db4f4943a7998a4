"""What the Monitor tells its subscribers, told in the log (logger ``peerscope.monitor_log``).

At INFO: a peer's status change with its reason (``peer eu-1: connected -> degraded (loss 12
% (over 5.0 %))``) and a session started or ended; at DEBUG: a peer added or removed. Each
record about a peer carries ``peer_id``, about a session ``session_id``. Nothing per sample:
the events come from the Monitor's bus, a tick at a time, never from its hot path.

An outage that turns thousands of peers at once would write thousands of lines in one tick
(and hold the loop while it does): past :data:`STATUS_LINES_PER_TICK` in a tick, the rest
are counted and told in one line at the tick's end. Alerts are not told here: the alerting's
log notifier (``peerscope.alerts``) writes each alert event once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from peerscope.core.quality import Status
from peerscope.events import (
    Event,
    MetricsTick,
    PeerAdded,
    PeerPathChanged,
    PeerRemoved,
    PeerStatusChanged,
    SessionEnded,
    SessionStarted,
)
from peerscope.monitor import Monitor

__all__ = ["STATUS_LINES_PER_TICK", "MonitorLog"]

logger = logging.getLogger(__name__)

# A line each for the peers a tick turns, up to this many; an operator reads which peers
# went, and the count of the rest.
STATUS_LINES_PER_TICK = 50


class MonitorLog:
    """A Monitor subscriber (:meth:`attach`) that logs its status changes and sessions."""

    def __init__(
        self, monitor: Monitor, *, status_lines_per_tick: int = STATUS_LINES_PER_TICK
    ) -> None:
        self._monitor = monitor
        self._lines_per_tick = status_lines_per_tick
        self._told = 0  # status lines written since the last tick
        self._untold: Counter[Status] = Counter()  # changes past the limit, by new status

    def attach(self) -> Callable[[], None]:
        """Log the Monitor's events from now on; returns a function that stops it."""
        return self._monitor.subscribe(self)

    def __call__(self, event: Event) -> None:
        if isinstance(event, MetricsTick):  # first: one comes every tick
            if self._untold:
                self._tell_untold()
            self._told = 0
        elif isinstance(event, PeerStatusChanged):
            self._status_changed(event)
        elif isinstance(event, SessionStarted | SessionEnded):
            self._session(event)
        elif isinstance(event, PeerPathChanged):
            logger.info(
                "peer %s: path changed, probes arrive with TTL %d (was %d)",
                event.peer_id,
                event.ttl,
                event.previous_ttl,
                extra={"peer_id": event.peer_id, "ttl": event.ttl},
            )
        elif isinstance(event, PeerAdded):
            logger.debug("peer added: %s", event.peer_id, extra={"peer_id": event.peer_id})
        elif isinstance(event, PeerRemoved):
            logger.debug(
                "peer removed: %s (%s)",
                event.peer_id,
                event.reason,
                extra={"peer_id": event.peer_id, "reason": event.reason},
            )

    def _status_changed(self, event: PeerStatusChanged) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        if self._told >= self._lines_per_tick:
            self._untold[event.status] += 1
            return
        self._told += 1
        fields: dict[str, object] = {
            "peer_id": event.peer_id,
            "previous": event.previous,
            "status": event.status,
        }
        try:
            # The event names no reason; the peer's entry has it, as the tick left it.
            entry = self._monitor.peer(event.peer_id)
        except KeyError:  # removed before this handler ran
            why = ""
        else:
            fields["status_reason"] = entry["status_reason"]["kind"]
            fields["status_text"] = entry["status_text"]
            why = f" ({entry['status_text']})"
        logger.info(
            "peer %s: %s -> %s%s",
            event.peer_id,
            event.previous,
            event.status,
            why,
            extra=fields,
        )

    def _tell_untold(self) -> None:
        counts = dict(sorted(self._untold.items()))
        total = sum(counts.values())
        self._untold.clear()
        logger.info(
            "... and %d more peers changed status (%s)",
            total,
            ", ".join(f"{status}: {count}" for status, count in counts.items()),
            extra={"changes": counts},
        )

    def _session(self, event: SessionStarted | SessionEnded) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        fields: dict[str, object] = {"session_id": event.session_id, "session_name": event.name}
        try:
            session = self._monitor.session(event.session_id)
        except KeyError:  # forgotten already (session_history is full)
            session = None
        if isinstance(event, SessionStarted):
            peers = ""
            if session is not None:
                count = fields["peers"] = len(session.peer_ids)
                peers = f" with {count} peer{'' if count == 1 else 's'}"
            logger.info("session started: %s%s", event.name, peers, extra=fields)
            return
        summary = ""
        if session is not None:
            duration = session.duration(event.timestamp)
            fields.update(duration_s=duration, samples=session.count)
            samples = session.count
            summary = (
                f" after {duration:.0f} s, {samples} latency sample{'' if samples == 1 else 's'}"
            )
        logger.info("session ended: %s%s", event.name, summary, extra=fields)
