"""The probe methods by name: ``open_method("twamp" | "stamp" | "icmp" | "tcp")`` gives a
fresh sender that follows :class:`peerscope.probe.method_protocol.ProbeMethod`."""

from __future__ import annotations

from peerscope.core.probe_target import Method, TcpRefused
from peerscope.probe.icmp import IcmpPinger
from peerscope.probe.method_protocol import ProbeMethod
from peerscope.probe.tcp import TcpConnector
from peerscope.probe.twamp_sender import TwampSender


def open_method(method: Method, *, tcp_refused: TcpRefused = "fail") -> ProbeMethod:
    """A fresh sender for ``method``; close it with ``await sender.close()``.

    ``tcp_refused``: what a refused TCP connection is (see :mod:`peerscope.probe.tcp`).
    """
    if method == "twamp" or method == "stamp":
        # One sender speaks both: STAMP's base packets are TWAMP-Test packets padded to 44.
        return TwampSender()
    if method == "icmp":
        return IcmpPinger()
    if method == "tcp":
        return TcpConnector(refused=tcp_refused)
    raise ValueError(f"method: must be twamp, stamp, icmp or tcp, got {method!r}")
