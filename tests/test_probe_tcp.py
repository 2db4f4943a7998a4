"""TCP probes over real loopback sockets: an open port answers; a closed one refuses, which is
a failed check saying so (``tcp_refused="fail"``) or a round trip (``"reachable"``)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from peerscope import Monitor, Settings
from peerscope.core.probe_target import ProbeTarget
from peerscope.core.quality import StatusRules
from peerscope.probe.prober import Prober
from peerscope.probe.tcp import TcpConnector
from tests.server_support import eventually


def closed_port() -> int:
    """A loopback port nothing listens on: bound for a moment to pick it, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def listening(port: int = 0) -> AsyncIterator[int]:
    """A TCP server on loopback that accepts and closes every connection; its port."""

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", port)
    async with server:
        yield server.sockets[0].getsockname()[1]


def make_monitor() -> Monitor:
    return Monitor(
        Settings(
            enable_system_metrics=False,
            metrics_interval=0.05,
            status=StatusRules(
                no_reply_after_failures=2, degraded_after_failures=2, disconnected_after_failures=4
            ),
        )
    )


class Outcomes:
    """What a connector reported: (seq, rtt_ms) replies and (seq, kind, detail) failures."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, float]] = []
        self.failures: list[tuple[int, str, str]] = []

    def on_reply(self, seq: int, rtt_ms: float) -> None:
        self.replies.append((seq, rtt_ms))

    def on_failure(self, seq: int, kind: str, detail: str) -> None:
        self.failures.append((seq, kind, detail))


async def connect_both(refused: Any) -> Outcomes:
    """Probe seq 0 to an open port and seq 1 to a closed one; what came of them."""
    outcomes = Outcomes()
    connector = TcpConnector(refused=refused)
    try:
        async with listening() as open_port:
            for seq, port in ((0, open_port), (1, closed_port())):
                connector.send(
                    ProbeTarget.parse(f"127.0.0.1:{port}", method="tcp"),
                    seq,
                    10.0,
                    outcomes.on_reply,
                    on_failure=outcomes.on_failure,
                )
            await eventually(lambda: len(outcomes.replies) + len(outcomes.failures) == 2)
    finally:
        await connector.close()
    return outcomes


async def test_a_refused_connection_is_a_closed_port_at_once_not_a_round_trip():
    outcomes = await connect_both("fail")
    assert outcomes.failures == [(1, "port_closed", "connection refused")]
    (seq, rtt_ms), *more = outcomes.replies
    assert (seq, more) == (0, [])
    assert 0.0 < rtt_ms < 1000.0


async def test_with_tcp_refused_reachable_the_refusal_is_a_round_trip():
    outcomes = await connect_both("reachable")
    assert outcomes.failures == []
    assert sorted(seq for seq, _ in outcomes.replies) == [0, 1]
    assert all(0.0 < rtt_ms < 1000.0 for _, rtt_ms in outcomes.replies)


def test_an_unknown_refused_mode_is_refused():
    with pytest.raises(ValueError, match=r"^tcp_refused: must be 'fail' or 'reachable', got 'x'"):
        TcpConnector(refused="x")  # type: ignore[arg-type]


def closed_and_failed(monitor: Monitor, peer_id: str, failures: int) -> dict[str, Any] | None:
    peer = monitor.peer(peer_id) if peer_id in monitor else None
    if peer is None or peer["probes"]["lost"] < failures:
        return None
    return peer


async def test_a_probed_closed_port_is_the_peers_reason_its_loss_and_a_score_of_0():
    monitor = make_monitor()
    port = closed_port()
    # A timeout of a minute: every probe counted lost within the test was refused, not
    # timed out.
    async with monitor, Prober(monitor, interval_s=0.05, timeout_s=60.0) as prober:
        prober.add(ProbeTarget.parse(f"127.0.0.1:{port}", method="tcp", peer_id="db"))
        peer = await eventually(lambda: closed_and_failed(monitor, "db", 4), 10)
        assert peer["status_reason"] == {
            "kind": "port_closed",
            "value": None,
            "threshold": None,
            "detail": "connection refused",
        }
        assert peer["status_text"] == "port closed (connection refused)"
        assert peer["probes"]["received"] == 0
        assert peer["probes"]["in_flight"] <= 1  # the refusals came back at once
        assert peer["packet_loss_percent"] == 100.0
        assert peer["quality_score"] == 0.0
        assert (peer["latency_ms"], peer["mos"]) == (None, None)
        assert peer["status"] == "disconnected"  # 4 failures in a row

        # The service comes up on that port: the next answer clears the reason.
        async with listening(port):
            peer = await eventually(
                lambda: (p := monitor.peer("db"))["probes"]["received"] >= 2 and p, 10
            )
        assert peer["status_reason"]["kind"] != "port_closed"
        assert peer["latency_ms"] is not None


async def test_a_probed_open_port_answers():
    monitor = make_monitor()
    async with (
        listening() as port,
        monitor,
        Prober(monitor, interval_s=0.05, timeout_s=5.0) as prober,
    ):
        prober.add(ProbeTarget.parse(f"127.0.0.1:{port}", method="tcp", peer_id="web"))
        await eventually(lambda: monitor.peer("web")["probes"]["received"] >= 3, 10)
        peer = monitor.peer("web")
    assert peer["probes"]["lost"] == 0
    assert peer["status_reason"]["kind"] == "ok"
    assert peer["quality_score"] > 90.0


async def test_with_tcp_refused_reachable_a_closed_port_is_a_reachable_peer():
    monitor = make_monitor()
    port = closed_port()
    async with (
        monitor,
        Prober(monitor, interval_s=0.05, timeout_s=5.0, tcp_refused="reachable") as prober,
    ):
        prober.add(ProbeTarget.parse(f"127.0.0.1:{port}", method="tcp", peer_id="host"))
        await eventually(lambda: monitor.peer("host")["probes"]["received"] >= 3, 10)
        peer = monitor.peer("host")
    assert peer["probes"]["lost"] == 0
    assert peer["status_reason"]["kind"] == "ok"
    assert peer["latency_ms"] is not None
    assert peer["quality_score"] > 90.0
