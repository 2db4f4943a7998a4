"""The server's own figures: connections and application messages, counted as they happen."""

from __future__ import annotations

from peerscope.core.model import ServerStats
from peerscope.core.rate import SlidingCounter


class ServerCounters:
    """Totals and one-second message rates. Not locked itself: the Monitor counts under its
    lock, where the calls that change these are recorded."""

    __slots__ = (
        "_messages_in",
        "_messages_out",
        "started_at",
        "total_connections",
        "total_messages",
    )

    def __init__(self, started_at: float) -> None:
        self._messages_in = SlidingCounter(1.0)
        self._messages_out = SlidingCounter(1.0)
        self.total_messages = 0
        self.total_connections = 0
        self.started_at = started_at

    def message(self, now: float, *, inbound: bool) -> None:
        self.total_messages += 1
        (self._messages_in if inbound else self._messages_out).add(now)

    def uptime(self, now: float) -> float:
        return max(0.0, now - self.started_at)

    def stats(
        self,
        now: float,
        active_connections: int,
        average_latency_ms: float,
        loop_lag: tuple[float | None, float | None] = (None, None),
    ) -> ServerStats:
        rate_in = self._messages_in.rate(now)
        rate_out = self._messages_out.rate(now)
        return ServerStats(
            uptime_seconds=self.uptime(now),
            active_connections=active_connections,
            total_connections=self.total_connections,
            total_messages=self.total_messages,
            messages_per_second=rate_in + rate_out,
            messages_in_per_second=rate_in,
            messages_out_per_second=rate_out,
            average_latency_ms=average_latency_ms,
            loop_lag_ms=loop_lag[0],
            loop_lag_p99_ms=loop_lag[1],
        )
