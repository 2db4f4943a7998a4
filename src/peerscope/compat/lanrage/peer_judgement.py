"""How LANrage judged its peers, on the Monitor's figures: the settings that make status
follow the latest sample, the second scorer's measurement taken from a peer's entry, and
``predict_connection_quality``."""

from __future__ import annotations

from typing import Any

from peerscope.compat.lanrage.connection_quality import (
    ConnectionQualityMonitor,
    ConnectionQualitySample,
)
from peerscope.config import Settings
from peerscope.core import quality
from peerscope.core.validation import validate_number
from peerscope.message import PeerDetail

__all__ = ["lanrage_settings", "predict_connection_quality", "score_measurement"]

# LANrage judged a peer from its latest sample alone: no smoothing of the latency the score
# takes, no margin to climb back over, and one failed measurement degrades it (scoring 0).
_LATEST_SAMPLE_QUALITY = {"latency_smoothing": 1.0}
_LATEST_SAMPLE_STATUS = {
    "recover_margin": 0.0,
    "no_reply_after_failures": 1,
    "degraded_after_failures": 1,
}
_BYTES_PER_MIB = 1024 * 1024
# What LANrage took for a peer's bandwidth before any byte was counted.
_UNCOUNTED_BANDWIDTH_MBPS = 10.0


def lanrage_settings(**overrides: Any) -> Settings:
    """``PEERSCOPE_*`` settings with LANrage's status semantics: what the collector's own
    Monitor is built from (give them to a Monitor of your own for the same).

    Status follows the latest sample (``quality.latency_smoothing = 1``, no
    ``status.recover_margin``) and one failed measurement degrades a peer and scores it 0;
    unknown peers are refused so the collector can ignore them. ``overrides`` are
    :meth:`Settings.load`'s; ``quality`` and ``status`` as dicts, merged with these.
    """
    for name, lanrage in (("quality", _LATEST_SAMPLE_QUALITY), ("status", _LATEST_SAMPLE_STATUS)):
        overrides[name] = {**lanrage, **overrides.get(name, {})}
    overrides.setdefault("unknown_peer", "raise")
    return Settings.load(**overrides)


def score_measurement(
    scorer: ConnectionQualityMonitor, entry: PeerDetail, latency_ms: float
) -> ConnectionQualitySample:
    """Have ``scorer`` score an answered measurement of the peer ``entry`` shows (as
    ``Monitor.peer`` gave it just after the sample was recorded).

    Loss and jitter are the Monitor's; stability is the answered share of the Monitor's
    measurements of the peer; bandwidth is the kernel's delivery rate of its watched TCP
    connection where there is one, else LANrage's stand-in: the MiB moved both ways so far
    (10 before any).
    """
    probes = entry["probes"]
    outcomes = probes["received"] + probes["lost"]
    tcp = entry["tcp"]
    rate = None if tcp is None else tcp["delivery_rate_bps"]
    if rate is not None:
        bandwidth = rate / 1e6
    else:
        moved = entry["bytes_sent"] + entry["bytes_received"]
        bandwidth = moved / _BYTES_PER_MIB if moved else _UNCOUNTED_BANDWIDTH_MBPS
    return scorer.record_measurement(
        entry["client_id"],
        latency_ms,
        packet_loss_percent=entry["packet_loss_percent"],
        bandwidth_mbps=bandwidth,
        jitter_ms=entry["jitter_ms"],
        stability_percent=100.0 * probes["received"] / outcomes if outcomes else None,
    )


def predict_connection_quality(
    latency_ms: float, packet_loss_percent: float = 0.0, jitter_ms: float = 0.0
) -> tuple[float, str]:
    """Score 0..100 and band (excellent/good/fair/poor/bad) from the default quality formula."""
    latency = validate_number(latency_ms, "latency_ms")
    loss = validate_number(packet_loss_percent, "packet_loss_percent", high=100.0)
    jitter = validate_number(jitter_ms, "jitter_ms")
    score = quality.quality_score(latency, loss, jitter)
    return score, quality.quality_band(score)
