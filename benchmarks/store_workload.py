"""Synthetic monitoring history for ``bench_store``: what a host probing N peers at 1 Hz ticks.

Every peer has its own level of latency (20-80 ms) with gaussian noise of 1-4 ms on each
probe, RFC 3550 jitter over those samples (smooth, as the Monitor's), loss over the last
100 probes, the default quality score, and traffic counters growing at its own rate
(2-50 kB/s each way, ±20 % from second to second). A few percent of the peers are lossy:
3 % of their probes are lost, and now and then they go dark for 5-60 s (no latency, no
jitter, a score of 0). No peer is watched over TCP, so its two TCP figures are absent, as
on an agent that only probes. The host's and the server's figures wander around their
levels. The figures are made as a tick carries them (``MetricsTick``), so the store takes
them exactly as it takes the Monitor's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from peerscope.core.model import ServerStats, SystemSample
from peerscope.core.quality import impairment_score
from peerscope.events import MetricsTick, PeerReading
from peerscope.message import NetworkEntry

LOSSY_SHARE = 0.03
LOSS_RATE = 0.03
OUTAGE_EVERY_S = 600.0  # a lossy peer goes dark about once in this many seconds
OUTAGE_S = (5, 60)
STALE_AFTER = 5  # lost probes in a row before the Monitor stops showing a jitter
LOSS_WINDOW = 100
SMOOTHING = 0.125
# Figures a probed peer's reading holds as values (of the 11 the store keeps per peer):
# all but the two TCP figures; latency and MOS only on a probe answered, jitter only while
# the peer is not dark.
PEER_FIGURES = 11


@dataclass(slots=True)
class _Peer:
    peer_id: str
    level: float
    noise: float
    lossy: bool
    rate_sent: float
    rate_received: float
    latency: float
    smoothed: float
    jitter: float = 0.0
    sent: int = 0
    lost: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    dark_for: int = 0
    lost_in_row: int = 0
    measured_at: float | None = None
    window: list[bool] = field(default_factory=list)
    window_lost: int = 0


class Fleet:
    """``peers`` probed peers, the host and the server, one tick per call to :meth:`tick`."""

    def __init__(self, peers: int, seed: int = 14) -> None:
        self._rng = rng = random.Random(seed)
        self.peers: list[_Peer] = []
        for index in range(peers):
            level = rng.uniform(20.0, 80.0)
            self.peers.append(
                _Peer(
                    peer_id=f"peer-{index:05d}",
                    level=level,
                    noise=rng.uniform(1.0, 4.0),
                    lossy=rng.random() < LOSSY_SHARE,
                    rate_sent=rng.uniform(2e3, 5e4),
                    rate_received=rng.uniform(2e3, 5e4),
                    latency=level,
                    smoothed=level,
                    bytes_sent=rng.randrange(10**6),
                    bytes_received=rng.randrange(10**6),
                )
            )
        self._messages = 0
        self._memory = 40.0
        self.present = 0  # figure values (not absent ones) handed out so far

    def tick(self, now: float) -> MetricsTick:
        """Every peer probed once more at ``now``, and the tick that lists them."""
        rng = self._rng
        gauss, uniform = rng.gauss, rng.random
        readings: list[PeerReading] = []
        present = 0
        for peer in self.peers:
            peer.sent += 1
            lost = False
            if peer.lossy:
                if peer.dark_for:
                    peer.dark_for -= 1
                    lost = True
                elif uniform() < 1.0 / OUTAGE_EVERY_S:
                    peer.dark_for = rng.randint(*OUTAGE_S) - 1
                    lost = True
                else:
                    lost = uniform() < LOSS_RATE
            latency: float | None = None
            if lost:
                peer.lost += 1
                peer.lost_in_row += 1
            else:
                latency = max(0.1, gauss(peer.level, peer.noise))
                peer.jitter += (abs(latency - peer.latency) - peer.jitter) / 16.0
                peer.latency = latency
                peer.smoothed += SMOOTHING * (latency - peer.smoothed)
                peer.lost_in_row = 0
                peer.measured_at = now
            window = peer.window
            window.append(lost)
            peer.window_lost += lost
            if len(window) > LOSS_WINDOW:
                peer.window_lost -= window.pop(0)
            loss = 100.0 * peer.window_lost / len(window)
            dark = peer.lost_in_row >= STALE_AFTER
            jitter = None if dark else peer.jitter
            score = 0.0 if dark else impairment_score(peer.smoothed, loss, peer.jitter)
            peer.bytes_sent += max(0, round(gauss(peer.rate_sent, 0.2 * peer.rate_sent)))
            peer.bytes_received += max(
                0, round(gauss(peer.rate_received, 0.2 * peer.rate_received))
            )
            # Absent: the two TCP figures; latency and MOS without an answer; jitter dark.
            present += PEER_FIGURES - 2 - (2 if latency is None else 0) - (jitter is None)
            readings.append(
                PeerReading(
                    peer.peer_id,
                    "peer",
                    {},
                    "disconnected" if dark else "connected",
                    latency,
                    None if dark else peer.smoothed,
                    jitter,
                    loss,
                    score,
                    peer.bytes_sent,
                    peer.bytes_received,
                    now,
                    peer.sent,
                    peer.lost,
                    None,
                    None,
                    peer.measured_at,
                )
            )
        self._memory += gauss(0.0, 0.02)
        messages = max(0.0, gauss(1000.0, 50.0))
        self._messages += round(messages)
        system = SystemSample(
            now,
            cpu_percent=max(0.0, gauss(30.0, 5.0)),
            memory_percent=self._memory,
            network_sent_rate=max(0.0, gauss(5e6, 5e5)),
            network_recv_rate=max(0.0, gauss(5e6, 5e5)),
            process_cpu_percent=max(0.0, gauss(10.0, 2.0)),
            process_rss_mb=200.0 + gauss(0.0, 0.5),
        )
        peers = len(self.peers)
        server = ServerStats(
            uptime_seconds=now,
            active_connections=peers,
            total_connections=peers,
            total_messages=self._messages,
            messages_per_second=messages,
            messages_in_per_second=messages / 2,
            messages_out_per_second=messages / 2,
            average_latency_ms=max(0.0, gauss(50.0, 2.0)),
        )
        self.present += present + 6 + 7  # the host's 6 figures, the server's 7
        network: NetworkEntry = {
            "score": 90.0,
            "grade": "A",
            "band": "excellent",
            "peers_by_status": {"connected": peers, "degraded": 0, "disconnected": 0},
        }
        return MetricsTick(now, system, server, network, tuple(readings), (), peers)
