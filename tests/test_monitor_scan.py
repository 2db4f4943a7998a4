"""Reads of every peer a slice at a time: the Monitor's lock is let go between slices."""

from __future__ import annotations

import math
import threading

import pytest

from peerscope import Monitor, Settings
from peerscope.core.model import Peer
from peerscope.slices import finish


def make_monitor(clock, peers: int = 0) -> Monitor:
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    for index in range(peers):
        monitor.record_latency(f"p{index}", 10.0 + index)
    return monitor


def score_of(peer: Peer, now: float) -> tuple[str, float | None]:
    return peer.peer_id, peer.quality_score


def test_scan_views_every_peer_in_slices_refreshed_first(clock):
    monitor = make_monitor(clock, peers=5)
    # Never ticked: the peers are still dirty, and a scan brings them up to date.
    slices = list(monitor.scan(score_of, size=2))
    assert [[peer_id for peer_id, _ in chunk] for chunk in slices] == [
        ["p0", "p1"],
        ["p2", "p3"],
        ["p4"],
    ]
    assert [score for chunk in slices for _, score in chunk] == [
        monitor.peer(f"p{index}")["quality_score"] for index in range(5)
    ]
    assert all(score is not None for chunk in slices for _, score in chunk)


def test_the_lock_is_free_between_slices(clock):
    monitor = make_monitor(clock, peers=4)
    slices = monitor.scan(score_of, size=2)
    assert len(next(slices)) == 2
    # Suspended between slices: a recording call from another thread goes through.
    worker = threading.Thread(target=monitor.record_latency, args=("p3", 99.0))
    worker.start()
    worker.join(5.0)
    assert not worker.is_alive(), "the scan held the Monitor's lock between slices"
    assert monitor.peer("p3")["latency_ms"] == 99.0
    assert [peer_id for peer_id, _ in next(slices)] == ["p2", "p3"]


def test_peers_removed_meanwhile_are_left_out_and_new_ones_not_listed(clock):
    monitor = make_monitor(clock, peers=4)
    slices = monitor.scan(score_of, size=2)
    assert [peer_id for peer_id, _ in next(slices)] == ["p0", "p1"]
    monitor.remove_peer("p2")
    monitor.record_latency("late", 5.0)
    monitor.remove_peer("p3")
    monitor.record_latency("p3", 7.0)  # a new peer under an old id: not the one scanned
    assert list(slices) == [[]]


def test_a_slice_size_below_one_is_refused_at_once(clock):
    monitor = make_monitor(clock, peers=1)
    with pytest.raises(ValueError, match=r"^size: must be at least 1, got 0$"):
        monitor.scan(score_of, size=0)


def test_peers_are_the_peer_slices_joined(clock):
    monitor = make_monitor(clock, peers=7)
    clock.advance(1)
    assert monitor.peers() == [entry for chunk in monitor.peer_slices(3) for entry in chunk]
    assert [entry["client_id"] for entry in monitor.peers()] == [f"p{i}" for i in range(7)]


def test_server_stats_in_steps_match_and_average_every_peer(clock):
    monitor = make_monitor(clock, peers=300)  # three slices of the default size
    monitor.add_peer("unmeasured")
    clock.advance(2.5)
    steps = monitor.server_stats_steps()
    stats = finish(steps)
    assert stats == monitor.server_stats()
    # Each peer's smoothed latency is its one sample: 10, 11, ... 309.
    assert stats.average_latency_ms == pytest.approx(math.fsum(10.0 + i for i in range(300)) / 300)
    assert stats.active_connections == 301
    assert stats.uptime_seconds == monitor.uptime_seconds == 2.5
