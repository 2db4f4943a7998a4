"""The probe methods by name: ``open_method("twamp" | "icmp" | "tcp")`` gives a fresh sender
that follows :class:`peerscope.probe.method_protocol.ProbeMethod`."""

from __future__ import annotations

from peerscope.core.probe_target import Method
from peerscope.probe.icmp import IcmpPinger
from peerscope.probe.method_protocol import ProbeMethod
from peerscope.probe.tcp import TcpConnector
from peerscope.probe.twamp_sender import TwampSender


def open_method(method: Method) -> ProbeMethod:
    """A fresh sender for ``method``; close it with ``await sender.close()``."""
    if method == "twamp":
        return TwampSender()
    if method == "icmp":
        return IcmpPinger()
    if method == "tcp":
        return TcpConnector()
    raise ValueError(f"method: must be twamp, icmp or tcp, got {method!r}")
