"""Which senders the reflector answers: an allow-list of networks and a rate per source address.

TWAMP Light has no handshake and no authentication, and about half of all random datagrams
of 41-1,472 octets parse as probes (the error estimate is the only field the RFC constrains),
so a reflector reachable beyond loopback answers whatever address a packet claims to come
from. It never sends more bytes than it got, but it would relay a flood 1:1 toward a forged
source. Two defences, both checked for each probe before it is answered:

- ``allow``: networks (CIDR or single addresses, IPv4 and IPv6) whose senders are answered;
  empty means everyone. An IPv4 sender seen by a dual-stack socket as ``::ffff:a.b.c.d``
  matches IPv4 networks, and an IPv4-mapped network (``::ffff:10.0.0.0/104``) is read as
  the IPv4 one.
- a token bucket per source *address* (not address and port: forged packets aimed at one
  victim share its address, whatever ports they claim): ``burst`` probes at once, refilled
  at ``rate_limit`` a second.

The buckets live in a table of at most ``max_sources`` addresses, since a forger can claim
millions; when a new address finds it full, the address first seen longest ago is forgotten,
and if it comes back it starts again with a full bucket. Forgetting never costs a real
sender a probe (it comes back to a full bucket); it lets a forger who cycles through
``max_sources`` addresses regain one burst toward one victim, every reply still answering a
packet the forger had to send.

Pure: no clock and no I/O, ``now_ns`` is a parameter (monotonic nanoseconds: whole numbers,
so a sender exactly at the rate never loses a probe to rounding).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Literal

from peerscope.core.validation import validate_count, validate_number

# Real probing from one address: peerscope's Prober sends probe_count / probe_interval probes
# a second per peer (1 by default); the heaviest real case in this project is one sender
# probing 1,000 peers that all sit behind one reflector (benchmarks/bench_probe.py), 1,000 a
# second in batches of up to 200. The rate allows twice that, and the burst a 2 s stall of
# such a sender's loop (it then sends all that fell due at once) or ten of its batches.
DEFAULT_RATE_LIMIT = 2000.0
DEFAULT_BURST = 2000
# About 170 bytes an address (its string, the time, the table's slot): 16,384 take ~2.7 MiB.
DEFAULT_MAX_SOURCES = 16_384

# What the reflector does with a probe shorter than its reply (RFC 5357 asks senders to pad
# by 27 octets): answering it sends more bytes than came in, toward whatever address the
# probe claims, so refusing is the default.
ReflectorUnpadded = Literal["refuse", "answer"]
Network = IPv4Network | IPv6Network
_MAPPED = IPv6Network("::ffff:0:0/96")


def parse_network(entry: str) -> Network:
    """A network from ``10.0.0.0/8``, ``10.0.0.7``, ``2001:db8::/32``; ValueError if not one."""
    text = entry.strip()
    try:
        network = ip_network(text)
    except ValueError:
        try:
            loose = ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
        raise ValueError(f"{entry!r} has host bits set; the network is '{loose}'") from None
    if isinstance(network, IPv6Network) and network.subnet_of(_MAPPED):
        return IPv4Network((int(network.network_address) & 0xFFFF_FFFF, network.prefixlen - 96))
    return network


class SourceGate:
    """Admits probes by source address: ``admit(host, now_ns)``; counts what it refuses."""

    __slots__ = (
        "_interval",
        "_max_sources",
        "_networks",
        "_table",
        "_tolerance",
        "not_allowed",
        "rate_limited",
    )

    def __init__(
        self,
        *,
        rate_limit: float = DEFAULT_RATE_LIMIT,
        burst: int = DEFAULT_BURST,
        max_sources: int = DEFAULT_MAX_SOURCES,
        allow: Iterable[str] = (),
    ) -> None:
        rate = validate_number(rate_limit, "rate_limit")
        if not rate:
            raise ValueError(f"rate_limit: must be > 0 probes a second, got {rate_limit!r}")
        for value, name in ((burst, "burst"), (max_sources, "max_sources")):
            if validate_count(value, name) < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
        if isinstance(allow, str):
            raise ValueError(f"allow: must be a list of networks, not one string: {allow!r}")
        try:
            self._networks = tuple(parse_network(entry) for entry in allow)
        except ValueError as error:
            raise ValueError(f"allow: {error}") from None
        self._max_sources = max_sources
        # The bucket as GCRA keeps it (the same admissions as a token bucket): one number per
        # address, the time its bucket will be full again. A probe is admitted while that
        # lies no more than burst - 1 intervals ahead, and pushes it one interval on.
        self._interval = max(1, round(1e9 / rate))
        self._tolerance = (burst - 1) * self._interval
        self._table: OrderedDict[str, int] = OrderedDict()  # first seen first
        self.not_allowed = 0
        self.rate_limited = 0

    @property
    def sources(self) -> int:
        """Addresses whose bucket is kept (at most ``max_sources``)."""
        return len(self._table)

    def admit(self, host: str, now_ns: int) -> bool:
        """True to answer a probe from ``host`` (an address as the socket gives it)."""
        table = self._table
        full_at = table.get(host)
        if full_at is None:
            # Only an address not in the table is looked up in the allow-list: one parse
            # per new sender, not one per probe.
            if self._networks and not self._allows(host):
                self.not_allowed += 1
                return False
            if len(table) >= self._max_sources:
                table.popitem(last=False)
            table[host] = now_ns + self._interval
            return True
        if full_at < now_ns:
            full_at = now_ns
        elif full_at - now_ns > self._tolerance:
            self.rate_limited += 1
            return False
        table[host] = full_at + self._interval
        return True

    def _allows(self, host: str) -> bool:
        address: IPv4Address | IPv6Address = ip_address(host)
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)
