"""An outage as it happens: nftables drops every probe to one reflector for 20 s.

The peer must read as dead within a probe timeout or two (figures null, reason ``no_reply``,
score 0), its history must show outage buckets for exactly that span, and it must recover.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from peerscope import Monitor, Settings
from peerscope.core.probe_target import ProbeTarget
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from tests.nftables_support import dropping, require_nftables
from tests.server_support import live_server

INTERVAL_S = 0.5  # probes to the peer
TIMEOUT_S = 1.0  # before an unanswered probe is lost
TICK_S = 0.25
OUTAGE_S = 20.0
STEP_S = 2.0  # history buckets


async def poll(check, timeout_s: float, every_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(every_s)


@pytest.mark.slow
async def test_an_outage_reads_as_dead_shows_where_it_happened_and_recovers():
    require_nftables()
    monitor = Monitor(Settings(enable_system_metrics=False, metrics_interval=TICK_S))
    reflector = Reflector()
    port = await reflector.start("127.0.0.1", 0)
    try:
        async with (
            live_server(monitor) as live,
            Prober(monitor, interval_s=INTERVAL_S, timeout_s=TIMEOUT_S) as prober,
        ):
            prober.add(ProbeTarget.parse(f"127.0.0.1:{port}", peer_id="far"))
            healthy = await poll(
                lambda: (p := monitor.peer("far"))["probes"]["received"] >= 6 and p, 15
            )
            assert healthy, "the peer never answered"
            assert healthy["status_reason"]["kind"] == "ok"
            assert healthy["latency_ms"] is not None

            with dropping(f"ip daddr 127.0.0.1 udp dport {port}"):
                began = time.time()
                dead = await poll(
                    lambda: (p := monitor.peer("far"))["status_reason"]["kind"] == "no_reply" and p,
                    OUTAGE_S,
                )
                noticed = time.time() - began
                assert dead, "never read as unanswered"
                # The second lost probe: sent at most 2 intervals after the drop began, lost a
                # timeout later; read by the next refresh. A stalled CI machine adds a second.
                assert noticed <= 2 * INTERVAL_S + TIMEOUT_S + TICK_S + 1.0, noticed
                for figure in ("latency_ms", "smoothed_latency_ms", "jitter_ms", "mos"):
                    assert dead[figure] is None, figure
                assert dead["quality_score"] == 0.0
                assert (dead["band"], dead["grade"]) == ("bad", "F")
                assert dead["last_measured_at"] <= began + 0.01
                assert dead["status_text"].startswith("no reply to the last ")
                await asyncio.sleep(max(0.0, began + OUTAGE_S - time.time()))
                ended = time.time()
            back = await poll(
                lambda: (
                    (p := monitor.peer("far"))["status_reason"]["kind"] != "no_reply"
                    and p["latency_ms"] is not None
                    and p
                ),
                10,
            )
            assert back, "never recovered"
            # Answering again, figures back; the outage's probes are still in the 100-outcome
            # loss window, so loss is now the reason (the score climbs as they leave it).
            assert back["status_reason"]["kind"] == "loss"
            assert 5.0 < back["status_reason"]["value"] < 100.0
            assert back["jitter_ms"] is not None
            await asyncio.sleep(3 * STEP_S)  # a few healthy buckets after the outage

            async with live.http() as http:
                response = await http.get(
                    "/api/metrics/peers/far/latency",
                    params={"from": began - 6 * STEP_S, "step": STEP_S},
                )
            assert response.status_code == 200, response.text
            buckets = response.json()["buckets"]
    finally:
        reflector.stop()

    outages = [b for b in buckets if b["outage"]]
    assert outages, buckets
    first, last = outages[0]["timestamp"], outages[-1]["timestamp"]
    print(
        f"unanswered {noticed:.2f} s after the drop; outage buckets "
        f"{first - began:+.1f} .. {last + STEP_S - ended:+.1f} s from the drop's start and end"
    )
    # Exactly the span of the drop, to within one bucket at each end.
    assert began - STEP_S <= first <= began + STEP_S, (began, first)
    assert ended - 2 * STEP_S <= last <= ended + STEP_S, (ended, last)
    inside = [b for b in buckets if first <= b["timestamp"] <= last]
    # Between the first and last outage bucket nothing came back; the edges may be partial.
    assert all(b["samples"] == 0 for b in inside[1:-1]), inside
    assert all(b["score"] == 0.0 and b["p50"] is None for b in outages)
    before = [b for b in buckets if b["timestamp"] < first - STEP_S]
    after = [b for b in buckets if b["timestamp"] > last + STEP_S]
    assert before, buckets
    assert after, buckets
    assert all(b["lost"] == 0 and b["samples"] > 0 for b in before), before
    assert all(b["samples"] > 0 for b in after), after
    expected = OUTAGE_S / INTERVAL_S
    lost = sum(b["lost"] for b in buckets)
    assert expected - 3 <= lost <= expected + 3, lost
