"""Loss split by direction, proved against the kernel: nftables drops 10 % of the probes on
their way to a real Reflector on loopback, then 10 % of its replies, and the TWAMP sender's
path figures must put the loss on the side it happened.

On loopback a packet passes the ``input`` hook once, on its way to the receiving socket:
``udp dport PORT`` there is a probe reaching the reflector (forward), ``udp sport PORT`` a
reply leaving it (return). The reflector's own counter (``reflected``: probes it got and
answered) is the ground truth each way. Needs root and ``nft`` (tests/nftables_support.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from peerscope import Monitor, Settings
from peerscope.core.probe_target import ProbeTarget
from peerscope.core.quality import QualityConfig
from peerscope.probe.one_shot import probe_series
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.probe.report import summarize
from tests.nftables_support import dropping, require_nftables
from tests.server_support import eventually

PROBES = 1_000  # 10 s at 100 a second: 10 % of them lost within ±3 points at 3 sigma
INTERVAL_S = 0.01
TIMEOUT_S = 0.5
PEER = "reflector"


async def probe_through(rule: str) -> tuple[dict[str, Any], int, int]:
    """Probe a Reflector ``PROBES`` times from a Prober into a Monitor while ``rule`` (with
    ``{port}``) drops packets: (the peer once every probe is settled, probes sent, probes
    the reflector answered)."""
    # A loss window past the run's length: the peer's loss covers the same probes as the
    # path's figures.
    monitor = Monitor(
        Settings(
            enable_system_metrics=False,
            metrics_interval=0.1,
            quality=QualityConfig(loss_window=2 * PROBES),
        )
    )
    async with Reflector() as reflector:
        port = reflector.port
        with dropping(rule.format(port=port)):
            async with monitor:
                prober = Prober(monitor, interval_s=INTERVAL_S, timeout_s=TIMEOUT_S)
                prober.add(ProbeTarget.parse(f"127.0.0.1:{port}", peer_id=PEER))
                async with prober:
                    await eventually(lambda: prober.sent >= PROBES, 3 * PROBES * INTERVAL_S)
                sent = prober.sent
                # Every probe settled: answered, or past its timeout (expired on query).
                peer = await eventually(
                    lambda: (p := monitor.peer(PEER))["probes"]["in_flight"] == 0 and p,
                    2 * TIMEOUT_S + 5,
                )
    return peer, sent, reflector.reflected


def check_split(peer: dict[str, Any], sent: int, reflected: int, *, lost_way: str) -> None:
    probes = peer["probes"]
    assert probes["sent"] == sent
    received = probes["received"]
    path = peer["path"]
    assert path is not None, peer
    forward, back = path["forward_loss_percent"], path["return_loss_percent"]
    assert forward is not None, path
    assert back is not None, path
    # The ground truth each way, from the reflector's count of what it got.
    true_forward = 100.0 * (sent - reflected) / sent
    true_back = 100.0 * (reflected - received) / sent
    # The path's figures span the first answered probe to the last: a few probes fewer.
    # (And the truth counts as lost on the way back the replies to the last probes, which
    # found the sender's socket closed when the Prober stopped.)
    assert forward == pytest.approx(true_forward, abs=0.5), (path, sent, reflected, received)
    assert back == pytest.approx(true_back, abs=0.5), (path, sent, reflected, received)
    lossy, clean = (forward, back) if lost_way == "forward" else (back, forward)
    assert abs(lossy - 10.0) <= 3.0, path
    assert clean <= 3.0, path
    # Together, the peer's loss over the same probes.
    total = 100.0 * probes["lost"] / (sent - probes["in_flight"])
    assert peer["packet_loss_percent"] == pytest.approx(total, abs=0.01)
    assert forward + back == pytest.approx(total, abs=1.0), (path, probes)


@pytest.mark.slow
async def test_probes_dropped_on_the_way_out_are_forward_loss():
    require_nftables()
    peer, sent, reflected = await probe_through("udp dport {port} numgen random mod 10 < 1")
    check_split(peer, sent, reflected, lost_way="forward")


@pytest.mark.slow
async def test_replies_dropped_on_the_way_back_are_return_loss():
    require_nftables()
    peer, sent, reflected = await probe_through("udp sport {port} numgen random mod 10 < 1")
    check_split(peer, sent, reflected, lost_way="return")


@pytest.mark.slow
async def test_peerscope_probe_summary_splits_the_loss_the_same_way():
    """``peerscope probe``'s summary (report.summarize over probe_series) on the same
    path, replies dropped: the return loss, to the probe, is what the reflector sent and
    the sender never got."""
    require_nftables()
    count = 500
    async with Reflector() as reflector:
        port = reflector.port
        target = ProbeTarget.parse(f"127.0.0.1:{port}")
        with dropping(f"udp sport {port} numgen random mod 10 < 1"):
            results = [
                result
                async for result in probe_series(
                    target, count=count, interval_s=INTERVAL_S, timeout_s=TIMEOUT_S
                )
            ]
    summary = summarize(results, count)
    path = summary.path
    assert path is not None
    assert reflector.reflected == count  # nothing lost on the way out
    assert path["forward_loss_percent"] == 0.0
    true_back = 100.0 * (count - summary.received) / count
    assert path["return_loss_percent"] == pytest.approx(true_back, abs=0.6)
    assert abs(true_back - 10.0) <= 4.0  # what nftables was asked to drop, 500 draws
    assert path["return_loss_percent"] == pytest.approx(summary.loss_percent, abs=0.6)
    assert not summary.stateless_reflector


async def test_nothing_dropped_is_no_loss_either_way():
    """The control: the same probing, nothing dropped, no loss either way."""
    monitor = Monitor(Settings(enable_system_metrics=False, metrics_interval=0.1))
    async with Reflector() as reflector, monitor:
        target = ProbeTarget.parse(f"127.0.0.1:{reflector.port}", peer_id=PEER)
        async with Prober(monitor, interval_s=INTERVAL_S, timeout_s=TIMEOUT_S) as prober:
            prober.add(target)
            peer = await eventually(
                lambda: (p := monitor.peer(PEER))["probes"]["received"] >= 20 and p, 10
            )
    path = peer["path"]
    assert (path["forward_loss_percent"], path["return_loss_percent"]) == (0.0, 0.0)
    assert path["forward_delay_ms"] >= 0.0
    assert path["delay_clock"] in ("synchronized", "offset-affected")
