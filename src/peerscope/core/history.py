"""The host's recent history: one ring per system figure, one sample per tick."""

from __future__ import annotations

from peerscope.core.model import SystemSample
from peerscope.core.series import Series
from peerscope.core.stats import Aggregate, aggregate

SYSTEM_SERIES = (
    "cpu_percent",
    "memory_percent",
    "network_sent_rate",
    "network_recv_rate",
    "process_cpu_percent",
    "process_rss_mb",
)


class SystemHistory:
    def __init__(self, capacity: int) -> None:
        self._series = {name: Series(capacity) for name in SYSTEM_SERIES}

    def add(self, sample: SystemSample) -> None:
        """Keep an available sample; an unavailable one (psutil failed) holds no figures."""
        if sample.available:
            for name, series in self._series.items():
                series.append(sample.timestamp, getattr(sample, name))

    def series(self, name: str) -> Series:
        found = self._series.get(name)
        if found is None:
            raise ValueError(f"name: must be one of {', '.join(SYSTEM_SERIES)}, got {name!r}")
        return found

    def window(self, name: str, duration_s: float, now: float) -> list[tuple[float, float]]:
        return list(self.series(name).window(duration_s, now))

    def stats(self, name: str, window_s: float, now: float) -> Aggregate:
        return aggregate(self.series(name), window_s, now)
