"""ICMP where this process may not open ICMP sockets: one warning, lost probes, no crash."""

from __future__ import annotations

import logging
import socket

from icmplib.exceptions import SocketPermissionError

from peerscope.core.probe_target import ProbeTarget
from peerscope.probe import icmp
from peerscope.probe.one_shot import probe_series


class Denied:
    """What icmplib raises for a process outside ping_group_range and without CAP_NET_RAW
    (this suite runs as root, so the refusal is acted out)."""

    def __init__(self, privileged: bool) -> None:
        raise SocketPermissionError(privileged)


async def test_without_permission_probes_are_lost_with_one_warning(monkeypatch, caplog):
    monkeypatch.setitem(icmp._SOCKETS, socket.AF_INET, Denied)
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


async def test_with_permission_echo_replies_are_timed():
    target = ProbeTarget.parse("127.0.0.1", method="icmp")
    results = [
        result async for result in probe_series(target, count=3, interval_s=0.01, timeout_s=1.0)
    ]
    assert [result.arrival for result in results] == ["on_time"] * 3
    assert all(0.0 <= result.rtt_ms < 50.0 for result in results)
