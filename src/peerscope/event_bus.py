"""The Monitor's event bus: events queue as they happen and reach handlers at the next tick.

Events are raised under the Monitor's lock, from any thread; handlers run later, on the
thread that dispatches (the tick, on the Monitor's event loop), with no lock held, so a
handler may call the Monitor.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from peerscope.events import Event

logger = logging.getLogger(__name__)

Handler = Callable[[Event], None]


class EventBus:
    """Subscribers and the events waiting for them.

    Events wait only while someone listens, and at most ``max_pending`` of them (the oldest
    go first, counted in ``dropped``): a Monitor that never ticks, or ticks rarely under a
    flood of add/remove calls, holds bounded memory.
    """

    def __init__(self, max_pending: int) -> None:
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: deque[Event] = deque()
        self._handlers: list[Handler] = []
        self.dropped = 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` with every event from now on; returns a function that unsubscribes."""
        with self._lock:
            self._handlers.append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers:
                    self._handlers.remove(handler)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Queue ``event`` for the next dispatch, if anyone is subscribed."""
        if not self._handlers:
            return
        with self._lock:
            pending = self._pending
            if len(pending) >= self._max_pending:
                pending.popleft()
                self.dropped += 1
            pending.append(event)

    def dispatch(self) -> None:
        """Hand every queued event to every handler; one that raises is logged and stays."""
        with self._lock:
            events, self._pending = self._pending, deque()
            handlers = list(self._handlers)
        for event in events:
            for handler in handlers:
                try:
                    handler(event)
                except Exception:
                    logger.exception("peerscope event handler %r failed", handler)
