"""What the LANrage adapter's tests share: collectors on a Monitor whose clock the test moves,
and the scores written out, so the tests do not lean on the code under test."""

from __future__ import annotations

from peerscope import Monitor, Settings
from peerscope.compat.lanrage.metrics import MetricsCollector, lanrage_settings
from peerscope.testing import ManualClock


def make(clock: ManualClock, *, system: bool = False, **settings: object) -> MetricsCollector:
    """A collector wrapping a Monitor of peerscope's settings (smoothed status)."""
    settings.setdefault("unknown_peer", "raise")
    monitor = Monitor(Settings(enable_system_metrics=system, **settings), clock=clock)
    return MetricsCollector(object(), monitor=monitor)


def make_lanrage(clock: ManualClock, *, system: bool = False) -> MetricsCollector:
    """A collector on a Monitor with the settings the collector gives its own Monitor."""
    monitor = Monitor(lanrage_settings(enable_system_metrics=system), clock=clock)
    return MetricsCollector(object(), monitor=monitor)


def score(latency: float, loss: float = 0.0, jitter: float = 0.0) -> float:
    """peerscope's default (impairment) formula: the seed's weights and slopes, each part
    taken off the whole."""
    return max(0.0, min(100.0, 100 - 0.40 * latency / 1.5 - 0.35 * loss * 20 - 0.25 * jitter * 2))


def lanrage_advanced(
    latency: float, jitter: float, loss: float, bandwidth: float, stability: float
) -> float:
    """LANrage's second score as LANrage computed it: each part normalised to 0..100 and
    weighted (latency 0.30, jitter 0.15, loss 0.25, bandwidth 0.15, stability 0.15)."""
    parts = (
        (0.30, 100 - min(100.0, latency / 2)),
        (0.15, 100 - min(100.0, jitter * 2)),
        (0.25, 100 - min(100.0, loss)),
        (0.15, min(100.0, bandwidth * 5)),
        (0.15, min(100.0, stability)),
    )
    return sum(weight * part for weight, part in parts)
