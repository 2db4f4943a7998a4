"""The host as the Monitor keeps it: the latest psutil sample and the recent history of each
system figure, one sample per tick."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from peerscope.core.history import SystemHistory
from peerscope.core.model import SystemSample
from peerscope.core.stats import Aggregate
from peerscope.system import SystemSampler


class HostMetrics:
    """Samples the host on demand (the tick asks each time) and remembers the samples.

    With sampling disabled it holds one unavailable sample and an empty history.
    """

    def __init__(self, clock: Callable[[], float], history_samples: int, *, enabled: bool) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sampler = SystemSampler(clock) if enabled else None
        self._latest = SystemSample(timestamp=clock(), available=False)
        self._history = SystemHistory(history_samples)

    @property
    def enabled(self) -> bool:
        return self._sampler is not None

    @property
    def latest(self) -> SystemSample:
        return self._latest

    def sample(self) -> SystemSample:
        """Read the host now (outside any lock: psutil reads /proc) and keep the sample."""
        if self._sampler is None:
            raise RuntimeError("system metrics are disabled (enable_system_metrics=False)")
        sample = self._sampler.sample()
        with self._lock:
            self._latest = sample
            self._history.add(sample)
        return sample

    def restore(self, samples: Iterable[SystemSample]) -> None:
        """Put samples from before a restart (oldest first) in the history, before any new."""
        with self._lock:
            for sample in samples:
                self._history.add(sample)

    def history(self, name: str, duration_s: float) -> list[tuple[float, float]]:
        now = self._clock()
        with self._lock:
            return self._history.window(name, duration_s, now)

    def stats(self, name: str, window_s: float) -> Aggregate:
        now = self._clock()
        with self._lock:
            return self._history.stats(name, window_s, now)
