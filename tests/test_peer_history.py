"""peer_history: a peer's past in buckets — latency spread, loss, outages, jitter, score, MOS."""

from __future__ import annotations

import pytest

from peerscope.core import quality
from peerscope.core.peer_history import peer_buckets
from peerscope.core.quality import QualityConfig

CONFIG = QualityConfig()


def test_spread_percentiles_and_empty_buckets_left_out():
    # Bucket [100, 110): 20 samples 1..20 ms, shuffled; p50 = sorted[10] = 11,
    # p95 = sorted[19] = 20. [110, 120) holds nothing and is left out. [120, 130): one sample.
    values = [
        float(v) for v in (7, 3, 20, 1, 15, 9, 12, 5, 18, 2, 11, 14, 4, 19, 6, 16, 8, 13, 10, 17)
    ]
    samples = [(100.0 + k * 0.4, value) for k, value in enumerate(values)] + [(125.0, 42.0)]
    buckets = peer_buckets(samples, [], 0.0, 200.0, 10.0, CONFIG)
    assert [
        (b["timestamp"], b["samples"], b["min"], b["p50"], b["p95"], b["max"]) for b in buckets
    ] == [
        (100.0, 20, 1.0, 11.0, 20.0, 20.0),
        (120.0, 1, 42.0, 42.0, 42.0, 42.0),
    ]
    assert all(b["lost"] == 0 and b["loss_percent"] == 0.0 for b in buckets)
    assert not any(b["outage"] for b in buckets)
    assert peer_buckets([], [], 0.0, 200.0, 10.0, CONFIG) == []
    with pytest.raises(ValueError, match="step"):
        peer_buckets(samples, [], 0.0, 200.0, 0.0, CONFIG)


def test_loss_lands_in_the_bucket_where_the_probes_were_sent():
    # One sample a second from 0 to 59 s, except 20..39 s where every probe was lost.
    samples = [(float(t), 10.0) for t in range(60) if not 20 <= t < 40]
    losses = [float(t) for t in range(20, 40)]
    buckets = peer_buckets(samples, losses, -1.0, 60.0, 10.0, CONFIG)
    assert [(b["timestamp"], b["sent"], b["lost"], b["outage"]) for b in buckets] == [
        (0.0, 10, 0, False),
        (10.0, 10, 0, False),
        (20.0, 10, 10, True),
        (30.0, 10, 10, True),
        (40.0, 10, 0, False),
        (50.0, 10, 0, False),
    ]
    outage = buckets[2]
    assert outage["loss_percent"] == 100.0
    assert (outage["min"], outage["p50"], outage["max"], outage["jitter_ms"], outage["mos"]) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert outage["score"] == 0.0
    healthy = buckets[0]
    assert healthy["score"] == pytest.approx(quality.quality_score(10.0, 0.0, 0.0), abs=1e-9)
    assert healthy["mos"] == pytest.approx(quality.mos(10.0, 0.0, 0.0), abs=1e-12)


def test_partial_loss_is_a_share_of_what_was_sent():
    samples = [(float(t), 20.0) for t in (0, 1, 2)]
    buckets = peer_buckets(samples, [3.0], -1.0, 10.0, 10.0, CONFIG)
    (bucket,) = buckets
    assert (bucket["samples"], bucket["sent"], bucket["lost"]) == (3, 4, 1)
    assert bucket["loss_percent"] == 25.0
    assert bucket["score"] == quality.quality_score(20.0, 25.0, 0.0) == 0.0  # 25 % loss
    assert bucket["outage"] is False


def test_jitter_is_the_running_rfc3550_estimate_at_the_buckets_last_sample():
    # Alternating 10/26 ms: |D| = 16 each step. The estimate runs over the whole ring, so the
    # second bucket continues from the first rather than starting again at 0.
    samples = [(float(t), 26.0 if t % 2 else 10.0) for t in range(20)]
    buckets = peer_buckets(samples, [], 9.5, 20.0, 10.0, CONFIG)
    expected = 0.0
    for _ in range(19):
        expected = quality.rfc3550_jitter(expected, 10.0, 26.0)
    (bucket,) = buckets
    assert bucket["timestamp"] == 10.0
    assert bucket["jitter_ms"] == pytest.approx(expected, abs=1e-9)


def test_the_stddev_method_takes_each_buckets_own_spread():
    config = QualityConfig(jitter_method="stddev")
    samples = [(0.0, 20.0), (1.0, 30.0), (2.0, 40.0)]
    (bucket,) = peer_buckets(samples, [], -1.0, 10.0, 10.0, config)
    assert bucket["jitter_ms"] == 10.0
    assert bucket["score"] == quality.quality_score(30.0, 0.0, 10.0, config)


def test_only_the_range_asked_for_is_bucketed():
    samples = [(float(t), 10.0) for t in range(30)]
    losses = [5.0, 25.0]
    buckets = peer_buckets(samples, losses, 9.0, 19.0, 10.0, CONFIG)
    # (9, 19]: 10..19 s in bucket 10; the 9 s sample is excluded and so are both losses
    assert [(b["timestamp"], b["samples"], b["lost"]) for b in buckets] == [(10.0, 10, 0)]
