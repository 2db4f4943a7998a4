"""The ICMP pinger: one socket per family for every target, replies matched to their probe,
foreign and stale replies dropped and counted, and no crash where ICMP is not allowed.

Real echo requests to loopback addresses (the suite runs as root: raw sockets, or datagram
ones where ping_group_range allows); replies from elsewhere are acted out by handing the
socket crafted datagrams, as the kernel would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peerscope.core.probe_target import ProbeTarget
from peerscope.probe import icmp
from peerscope.probe.icmp import ECHO, IcmpPinger
from peerscope.probe.one_shot import probe_series

ROOT = Path(__file__).resolve().parent.parent


def loopback(count: int) -> list[str]:
    return [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(count)]


class Replies:
    def __init__(self) -> None:
        self.got: list[tuple[str, int, float]] = []  # (address, seq, rtt_ms)

    def to(self, address: str):
        return lambda seq, rtt_ms: self.got.append((address, seq, rtt_ms))


async def eventually(check, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_replies_are_matched_to_their_probe_across_many_targets():
    pinger, replies = IcmpPinger(), Replies()
    addresses = loopback(300)
    try:
        for n, address in enumerate(addresses):
            target = ProbeTarget.parse(address, method="icmp")
            pinger.send(target, 1000 + n, 1.0, replies.to(address))
        await eventually(lambda: len(replies.got) == len(addresses))
        await asyncio.sleep(0.05)  # nothing else comes: no reply is handed over twice
        assert sorted((address, seq) for address, seq, _ in replies.got) == sorted(
            (address, 1000 + n) for n, address in enumerate(addresses)
        )
        assert all(0.0 <= rtt_ms < 50.0 for _, _, rtt_ms in replies.got)
        assert (pinger.malformed, pinger.unmatched, pinger.errors) == (0, 0, 0)
        assert list(pinger._sockets) == [socket.AF_INET]  # one socket for all 300
    finally:
        await pinger.close()


async def test_ipv6_loopback_beside_ipv4():
    # Never skipped: this machine and CI's have ::1 (a host without IPv6 fails here, saying so).
    assert ipv6_loopback(), "no IPv6 on loopback: this test needs ::1"
    pinger, replies = IcmpPinger(), Replies()
    try:
        for n, address in enumerate(["::1", "127.0.0.1", "::1"]):
            pinger.send(ProbeTarget.parse(address, method="icmp"), n, 1.0, replies.to(address))
        await eventually(lambda: len(replies.got) == 3)
        assert sorted((address, seq) for address, seq, _ in replies.got) == [
            ("127.0.0.1", 1),
            ("::1", 0),
            ("::1", 2),
        ]
        assert all(0.0 <= rtt_ms < 50.0 for _, _, rtt_ms in replies.got)
        assert set(pinger._sockets) == {socket.AF_INET, socket.AF_INET6}
    finally:
        await pinger.close()


class Captured:
    """Echo requests taken off the wire before they leave (as if lost on the way), so the
    test can answer them itself."""

    def __init__(self, pinger: IcmpPinger, family: int = socket.AF_INET) -> None:
        self.echo = pinger._sockets[family]
        self.requests: list[bytes] = []
        self.echo.endpoint.sendto = self._keep  # type: ignore[method-assign]

    def _keep(self, data: bytes, address: tuple[str, int]) -> bool:
        self.requests.append(data)
        return True

    def answer(
        self,
        request: bytes,
        source: str,
        *,
        identifier: int | None = None,
        payload: int | None = None,
    ) -> None:
        """Hand the socket an echo reply to ``request`` from ``source``, as the kernel would
        (after the IPv4 header on a raw IPv4 socket), arriving 1.5 ms after it left."""
        _, _, _, ident, wire_seq, sent_ns = ECHO.unpack(request)
        reply = ECHO.pack(
            0,
            0,
            0,
            ident if identifier is None else identifier,
            wire_seq,
            sent_ns if payload is None else payload,
        )
        if self.echo.raw and self.echo.family == socket.AF_INET:
            reply = bytes([0x45]) + bytes(19) + reply
        self.echo.received(reply, (source, 0), sent_ns + 1_500_000)


async def sent_and_captured(pinger: IcmpPinger, address: str, replies: Replies) -> Captured:
    pinger.send(ProbeTarget.parse(address, method="icmp"), 7, 1.0, replies.to(address))
    captured = Captured(pinger)
    await eventually(lambda: len(captured.requests) == 1)
    return captured


async def test_a_reply_from_the_right_address_is_timed_by_its_arrival():
    pinger, replies = IcmpPinger(), Replies()
    try:
        captured = await sent_and_captured(pinger, "127.0.0.2", replies)
        captured.answer(captured.requests[0], "127.0.0.2")
        captured.answer(captured.requests[0], "127.0.0.2")  # a duplicate reaches it too
        assert replies.got == [("127.0.0.2", 7, 1.5), ("127.0.0.2", 7, 1.5)]
    finally:
        await pinger.close()


async def test_foreign_and_garbled_replies_are_dropped_and_counted():
    pinger, replies = IcmpPinger(), Replies()
    try:
        captured = await sent_and_captured(pinger, "127.0.0.2", replies)
        request = captured.requests[0]
        captured.answer(request, "127.0.0.9")  # another address than the probe went to
        _, _, _, _, _, sent_ns = ECHO.unpack(request)
        captured.answer(request, "127.0.0.2", payload=sent_ns ^ 0xFF)  # garbled payload
        assert (pinger.unmatched, pinger.malformed) == (2, 0)
        captured.echo.received(b"\x45" + bytes(19) + b"\x00\x00", ("127.0.0.2", 0), sent_ns)
        assert pinger.malformed == 1  # too short to be an echo reply
        if captured.echo.raw:  # a datagram socket never sees another identifier's replies
            captured.answer(request, "127.0.0.2", identifier=captured.echo.identifier ^ 1)
            assert pinger.malformed == 2
        assert replies.got == []
    finally:
        await pinger.close()


async def test_a_reply_after_the_probe_is_forgotten_is_no_reply():
    pinger, replies = IcmpPinger(remember_s=0.05), Replies()
    try:
        captured = await sent_and_captured(pinger, "127.0.0.3", replies)
        request = captured.requests[0]
        _, _, _, _, _, sent_ns = ECHO.unpack(request)
        # Arriving after remember_s: 60 ms after it left.
        reply = ECHO.pack(0, 0, 0, captured.echo.identifier, 1, sent_ns)
        if captured.echo.raw:
            reply = bytes([0x45]) + bytes(19) + reply
        captured.echo.received(reply, ("127.0.0.3", 0), sent_ns + 60_000_000)
        assert replies.got == []
        assert pinger.unmatched == 1
    finally:
        await pinger.close()


async def test_a_lost_probe_times_out_with_no_reply(monkeypatch):
    target = ProbeTarget.parse("127.0.0.4", method="icmp")
    original = icmp.IcmpPinger._send_outbox
    flushes = []

    def lose_the_second(self: IcmpPinger) -> None:
        # The second of the series never leaves: the kernel has nothing to answer.
        flushes.append(len(self._outbox))
        if len(flushes) == 2:
            self._outbox.clear()
        original(self)

    monkeypatch.setattr(icmp.IcmpPinger, "_send_outbox", lose_the_second)
    results = [
        result async for result in probe_series(target, count=3, interval_s=0.05, timeout_s=0.2)
    ]
    assert sorted((result.seq, result.arrival) for result in results) == [
        (0, "on_time"),
        (1, "timeout"),
        (2, "on_time"),
    ]
    timeout = next(result for result in results if result.seq == 1)
    assert timeout.rtt_ms is None
    assert flushes == [1, 1, 1]  # one probe a batch


def test_wire_seqs_wrap_and_memory_stays_bounded():
    """70,000 probes in one memory span: the slots stop at one per 16-bit wire seq, the
    newest probes are found, one whose wire seq was reused since is not."""
    sent = icmp._SentProbes(remember_ns=10**12)
    handler = Replies().to("x")
    for n in range(70_000):
        sent.add((n + 1) & 0xFFFF, 1_000 + n, "127.0.0.1", n, handler)
    assert len(sent._wire_seqs) == 1 << 16
    newest = 69_999
    assert sent.find((newest + 1) & 0xFFFF, 1_000 + newest, "127.0.0.1", 2_000) == (
        newest,
        handler,
    )
    assert sent.find(5, 1_004, "127.0.0.1", 2_000) is None  # seq 4's slot went to seq 65,540


class Denied:
    """What socket() raises for a process outside ping_group_range and without CAP_NET_RAW
    (this suite runs as root, so the refusal is acted out); the kinds asked for are kept."""

    def __init__(self, allow_raw: bool = False) -> None:
        self.allow_raw = allow_raw
        self.kinds: list[int] = []
        self.real = icmp.UdpEndpoint

    def __call__(self, *args, kind: int, **kwargs):
        self.kinds.append(kind)
        if kind == socket.SOCK_RAW and self.allow_raw:
            return self.real(*args, kind=kind, **kwargs)
        raise PermissionError(13, "Permission denied")


async def test_without_permission_probes_are_lost_with_one_warning(monkeypatch, caplog):
    denied = Denied()
    monkeypatch.setattr(icmp, "UdpEndpoint", denied)
    target = ProbeTarget.parse("127.0.0.1", method="icmp")
    with caplog.at_level(logging.WARNING, logger="peerscope.probe.icmp"):
        results = [
            result async for result in probe_series(target, count=4, interval_s=0.01, timeout_s=0.1)
        ]
    assert [result.arrival for result in results] == ["timeout"] * 4
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "net.ipv4.ping_group_range" in warnings[0]
    assert "CAP_NET_RAW" in warnings[0]
    # Datagram first, then raw, once: the other probes try no socket at all.
    assert denied.kinds == [socket.SOCK_DGRAM, socket.SOCK_RAW]


async def test_where_only_raw_sockets_are_allowed_the_raw_one_answers(monkeypatch):
    denied = Denied(allow_raw=True)
    monkeypatch.setattr(icmp, "UdpEndpoint", denied)
    pinger, replies = IcmpPinger(), Replies()
    try:
        for n, address in enumerate(loopback(20)):
            pinger.send(ProbeTarget.parse(address, method="icmp"), n, 1.0, replies.to(address))
        await eventually(lambda: len(replies.got) == 20)
        assert sorted(seq for _, seq, _ in replies.got) == list(range(20))
        echo = pinger._sockets[socket.AF_INET]
        assert echo.raw
        assert denied.kinds == [socket.SOCK_DGRAM, socket.SOCK_RAW]
        # The kernel's filter passes echo replies only: not the 20 requests sent to ourselves.
        assert (pinger.malformed, pinger.unmatched) == (0, 0)
    finally:
        await pinger.close()


_DATAGRAM_CHILD = """
import asyncio, json, socket
from peerscope.core.probe_target import ProbeTarget
from peerscope.probe.icmp import IcmpPinger

async def main():
    pinger, got = IcmpPinger(), []
    for n in range(20):
        address = f"127.0.0.{n + 1}"
        pinger.send(ProbeTarget.parse(address, method="icmp"), n, 1.0,
                    lambda seq, rtt, a=address: got.append([a, seq, rtt]))
    for _ in range(200):
        if len(got) == 20:
            break
        await asyncio.sleep(0.01)
    echo = pinger._sockets[socket.AF_INET]
    print(json.dumps({"got": got, "raw": echo.raw, "unmatched": pinger.unmatched}))
    await pinger.close()

asyncio.run(main())
"""


@pytest.mark.slow
def test_datagram_sockets_where_ping_group_range_allows():
    # Never skipped: .ci/run runs as root, and util-linux, iproute2 and procps are there.
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("unshare", "ip", "sysctl")):
        pytest.fail("needs root, unshare, ip and sysctl for a network namespace of its own")
    """In a network namespace of its own (the host's ping_group_range is left alone), with
    this process's group allowed: the datagram socket, the kernel's identifier."""
    script = (
        "ip link set lo up && "
        f"sysctl -q -w net.ipv4.ping_group_range='{os.getgid()} {os.getgid()}' && "
        f'exec "{sys.executable}" -c "$CHILD"'
    )
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "CHILD": _DATAGRAM_CHILD, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["raw"] is False
    assert sorted((address, seq) for address, seq, _ in found["got"]) == sorted(
        (f"127.0.0.{n + 1}", n) for n in range(20)
    )
    assert all(0.0 <= rtt < 50.0 for _, _, rtt in found["got"])
    assert found["unmatched"] == 0
