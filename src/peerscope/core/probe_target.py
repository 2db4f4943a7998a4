"""What to probe: a host, a port and a method, parsed from ``HOST[:PORT]``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from peerscope.core.validation import validate_id, validate_labels, validate_text

Method = Literal["twamp", "stamp", "icmp", "tcp"]
METHODS: tuple[Method, ...] = get_args(Method)
# What a refused TCP connection (RST) means: a failed check (the port is closed) or a round
# trip like any other (the RST crossed the path a SYN-ACK would have).
TcpRefused = Literal["fail", "reachable"]
TWAMP_PORT = 8701  # peerscope's reflector port (RFC 5357 leaves the test port to the session)
STAMP_PORT = 862  # RFC 8762 §4.1: STAMP's well-known port (also TWAMP-Control's)
DEFAULT_PORTS: dict[Method, int] = {"twamp": TWAMP_PORT, "stamp": STAMP_PORT}
# Octets after a probe's 14-octet header: TWAMP Light's 27 make replies as long as probes
# (RFC 5357 §4.2.1); STAMP's base packet has 30 (RFC 8762 §4.2.1), so 44 octets both ways.
DEFAULT_PADDING: dict[Method, int] = {"twamp": 27, "stamp": 30}
MAX_PADDING = 1472 - 14  # a probe in one unfragmented IPv4 datagram on Ethernet


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One host to probe. ``port`` is None for ICMP, required for TCP.

    ``host`` is an IP address or a name; names are resolved at probe time, asynchronously,
    so a target follows DNS changes. ``padding`` (octets after a TWAMP/STAMP probe's
    14-octet header; None: the method's default) and ``dscp`` (0..63, the probe's IP
    traffic class) are for devices that want them: see docs/PROBING.md.
    """

    peer_id: str
    host: str
    port: int | None
    method: Method = "twamp"
    name: str | None = None
    # The peer's labels, beside the probe_method the prober gives it: (key, value) pairs, so
    # that a target stays hashable.
    labels: tuple[tuple[str, str], ...] = ()
    padding: int | None = None
    dscp: int = 0
    # 4 or 6 when host is an IP address, None for a name; worked out once, not per probe.
    ip_version: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_text(self.host, "host")
        object.__setattr__(self, "ip_version", _ip_version(self.host))
        validate_id(self.peer_id)
        if self.method not in METHODS:
            raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "icmp":
            if self.port is not None:
                raise ValueError("port: ICMP has no port")
        elif (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 1 <= self.port <= 65535
        ):
            raise ValueError(f"port: must be 1..65535 for {self.method}, got {self.port!r}")
        if self.name is not None:
            validate_text(self.name, "name")
        validate_labels(dict(self.labels))
        check_padding(self.method, self.padding)
        check_dscp(self.method, self.dscp)

    @property
    def address(self) -> str:
        """``host:port`` as a user writes it (IPv6 in brackets), or the host alone."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def is_literal(self) -> bool:
        """Whether ``host`` is an IP address (no name to resolve)."""
        return self.ip_version is not None

    @classmethod
    def parse(
        cls,
        address: str,
        *,
        method: Method = "twamp",
        peer_id: str | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        padding: int | None = None,
        dscp: int = 0,
    ) -> ProbeTarget:
        """Parse ``HOST``, ``HOST:PORT``, ``[IPv6]`` or ``[IPv6]:PORT``.

        TWAMP defaults to port 8701 (peerscope's reflectors), STAMP to 862. TCP needs a
        port: no default could name the service the user means. ICMP takes none.
        ``peer_id`` defaults to ``method:address``.
        """
        if method not in METHODS:
            raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
        host, port = _split(address)
        if port is None and method in DEFAULT_PORTS:
            port = DEFAULT_PORTS[method]
        elif port is None and method == "tcp":
            raise ValueError(f"address: TCP probes need a port (HOST:PORT), got {address!r}")
        elif port is not None and method == "icmp":
            raise ValueError(f"address: ICMP probes take no port, got {address!r}")
        if _ip_version(host) is not None:
            host = ipaddress.ip_address(host).compressed  # as the kernel reports it in replies
        target_id = peer_id if peer_id is not None else f"{method}:{address}"
        pairs = tuple(validate_labels(None if labels is None else dict(labels)).items())
        try:
            return cls(target_id, host, port, method, name, pairs, padding, dscp)
        except ValueError as error:
            if str(error).startswith(("padding:", "dscp:")):
                raise
            raise ValueError(f"address: {error}") from None


def check_padding(method: Method, padding: int | None) -> int | None:
    """``padding`` if ``method`` takes it (TWAMP, STAMP: at least STAMP's 30 MBZ octets);
    else ValueError naming the field."""
    if padding is None:
        return None
    if method not in DEFAULT_PADDING:
        raise ValueError(f"padding: only TWAMP and STAMP probes are padded, not {method}")
    low = DEFAULT_PADDING["stamp"] if method == "stamp" else 0
    if (
        isinstance(padding, bool)
        or not isinstance(padding, int)
        or not low <= padding <= MAX_PADDING
    ):
        raise ValueError(
            f"padding: must be an integer within {low}..{MAX_PADDING} for {method}, got {padding!r}"
        )
    return padding


def check_dscp(method: Method, dscp: int) -> int:
    """``dscp`` if it is one (0..63) and ``method`` marks its probes; else ValueError."""
    if isinstance(dscp, bool) or not isinstance(dscp, int) or not 0 <= dscp <= 63:
        raise ValueError(f"dscp: must be an integer within 0..63, got {dscp!r}")
    if dscp and method not in DEFAULT_PADDING:
        # The ICMP and TCP senders do not mark their packets: a DSCP they would ignore
        # must not pass for one in use.
        raise ValueError(f"dscp: only TWAMP and STAMP probes are marked, not {method}")
    return dscp


def _ip_version(host: str) -> int | None:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _split(address: str) -> tuple[str, int | None]:
    if not isinstance(address, str) or not address or not address.isprintable():
        raise ValueError(f"address: must be HOST[:PORT], got {address!r}")
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"address: expected [IPv6] or [IPv6]:PORT, got {address!r}")
        _require_ip(host, address, version=6)
        return host, _port(rest[1:], address) if rest else None
    if address.count(":") > 1:
        _require_ip(address, address, version=6)  # a bare IPv6 address, no port
        return address, None
    host, colon, port = address.partition(":")
    if not host or any(char.isspace() or char in "/@?#" for char in host):
        raise ValueError(f"address: bad host in {address!r}")
    if not host.strip("0123456789."):
        # Digits and dots are meant as an IPv4 address (no top-level domain is numeric);
        # the resolver would take 999.1.1.1 as a name that never resolves, and 10.1 as
        # 10.0.0.1.
        _require_ip(host, address, version=4)
    return host, _port(port, address) if colon else None


def _require_ip(host: str, address: str, *, version: int) -> None:
    try:
        valid = ipaddress.ip_address(host).version == version
    except ValueError:
        valid = False
    if not valid:
        within = f" (in {address!r})" if address != host else ""
        raise ValueError(f"address: {host!r} is not a valid IPv{version} address{within}")


def _port(text: str, address: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"address: port must be 1..65535, got {text!r} in {address!r}")
    return int(text)
