"""The alert log: the newest events, each with an id that grows by one, read incrementally
(``after`` an id, as Netdata's alarm log is) or by time."""

from __future__ import annotations

from collections import deque

from peerscope.alerting.records import AlertEvent


class AlertLog:
    """At most ``size`` events; the oldest go first. Ids keep growing across that."""

    def __init__(self, size: int) -> None:
        self._events: deque[AlertEvent] = deque(maxlen=size)
        self.last_id = 0

    @property
    def size(self) -> int:
        return self._events.maxlen or 0

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def append(self, event: AlertEvent) -> None:
        self._events.append(event)

    def restore(self, events: list[AlertEvent]) -> None:
        """Start from the events of an earlier run (oldest first), before any new one.
        They are numbered afresh from 1: reading ``after`` an id relies on ids that follow
        one another, which a store that dropped one would not keep."""
        for event in events[-self.size :]:
            self.append({**event, "id": self.next_id()})

    def read(
        self,
        *,
        after: int | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int | None = None,
    ) -> list[AlertEvent]:
        """Events oldest first: those with an id above ``after``, a timestamp within
        ``start``..``end``; the first ``limit`` of them."""
        events = self._events
        if after is not None:
            # Ids are consecutive within the deque: skip straight to the first one wanted.
            first = events[0]["id"] if events else 0
            skip = max(0, after - first + 1)
            selected = [events[i] for i in range(skip, len(events))]
        else:
            selected = list(events)
        if start is not None or end is not None:
            low = float("-inf") if start is None else start
            high = float("inf") if end is None else end
            selected = [event for event in selected if low <= event["timestamp"] <= high]
        return selected if limit is None else selected[:limit]
