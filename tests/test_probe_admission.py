"""Which senders the reflector answers: the allow-list and the per-address token bucket.

Time is a parameter here, so the bucket's admissions are checked exactly; the reflector's
tests check the same over real sockets.
"""

from __future__ import annotations

import re
import tracemalloc
from ipaddress import IPv4Network, IPv6Network

import pytest

from peerscope.core.admission import (
    DEFAULT_BURST,
    DEFAULT_MAX_SOURCES,
    DEFAULT_RATE_LIMIT,
    SourceGate,
    parse_network,
)

S = 1_000_000_000  # ns


def admitted(gate: SourceGate, host: str, now_s: float, tries: int) -> int:
    return sum(gate.admit(host, round(now_s * S)) for _ in range(tries))


def test_a_burst_at_once_then_the_rate():
    gate = SourceGate(rate_limit=10.0, burst=3)
    assert admitted(gate, "192.0.2.1", 0.0, 10) == 3
    assert gate.rate_limited == 7
    # One token every 0.1 s.
    assert admitted(gate, "192.0.2.1", 0.1, 5) == 1
    assert admitted(gate, "192.0.2.1", 0.25, 5) == 1
    assert admitted(gate, "192.0.2.1", 0.3, 5) == 1
    # Idle for long, the bucket is full again, and holds no more than the burst.
    assert admitted(gate, "192.0.2.1", 100.0, 10) == 3
    assert gate.rate_limited == 7 + 4 + 4 + 4 + 7
    assert gate.not_allowed == 0


def test_a_sender_at_the_rate_is_never_limited():
    gate = SourceGate(rate_limit=1000.0, burst=200)
    # 1,000 probes a second for a minute, in batches of 200 every 0.2 s (the Prober's way).
    for batch in range(300):
        assert admitted(gate, "10.0.0.1", batch * 0.2, 200) == 200, batch
    assert gate.rate_limited == 0


def test_one_address_over_its_rate_leaves_the_others_alone():
    gate = SourceGate(rate_limit=1.0, burst=2)
    assert admitted(gate, "192.0.2.1", 0.0, 50) == 2
    assert admitted(gate, "192.0.2.2", 0.0, 2) == 2
    assert admitted(gate, "2001:db8::1", 0.0, 2) == 2
    assert gate.rate_limited == 48


def test_the_table_is_bounded_and_forgets_the_address_seen_first():
    gate = SourceGate(rate_limit=1.0, burst=2, max_sources=3)
    for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert admitted(gate, host, 0.0, 5) == 2
    assert gate.sources == 3
    assert admitted(gate, "192.0.2.4", 0.0, 1) == 1  # forgets 192.0.2.1
    assert gate.sources == 3
    assert admitted(gate, "192.0.2.2", 0.0, 1) == 0  # still remembered: limited
    assert admitted(gate, "192.0.2.1", 0.0, 5) == 2  # forgotten: a full bucket again
    assert gate.sources == 3


@pytest.mark.slow
def test_a_million_forged_addresses_keep_the_table_at_its_cap():
    gate = SourceGate(max_sources=1000)
    tracemalloc.start()
    try:
        for i in range(200_000):
            gate.admit(f"2001:db8::{i:x}", i * 1000)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert gate.sources == 1000
    assert held < 1000 * 400  # about 170 bytes an address
    assert gate.rate_limited == 0  # each forged address sent one probe: all answered


@pytest.mark.parametrize(
    ("allow", "host", "answered"),
    [
        (["10.0.0.0/8"], "10.200.3.4", True),
        (["10.0.0.0/8"], "11.0.0.1", False),
        (["10.0.0.7"], "10.0.0.7", True),
        (["10.0.0.7"], "10.0.0.8", False),
        (["10.0.0.0/8", "192.168.1.0/24"], "192.168.1.9", True),
        (["2001:db8::/32"], "2001:db8:5::1", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        # IPv4 senders as a dual-stack socket sees them, against IPv4 and IPv4-mapped networks.
        (["10.0.0.0/8"], "::ffff:10.1.2.3", True),
        (["10.0.0.0/8"], "::ffff:11.1.2.3", False),
        (["::ffff:10.0.0.0/104"], "10.1.2.3", True),
        (["::ffff:10.0.0.0/104"], "::ffff:10.1.2.3", True),
        # A version never matches the other's networks.
        (["0.0.0.0/0"], "2001:db8::1", False),
        (["::/0"], "10.0.0.1", False),
        (["fe80::/10"], "fe80::1%lo", True),  # link-local, with its scope as sockets give it
    ],
)
def test_allow_list(allow: list[str], host: str, answered: bool):
    gate = SourceGate(allow=allow)
    assert gate.admit(host, 0) is answered
    assert gate.not_allowed == (0 if answered else 1)
    # A refused address takes no place in the table, so forging addresses outside the list
    # cannot push real senders out of it.
    assert gate.sources == (1 if answered else 0)


def test_an_empty_allow_list_answers_everyone():
    gate = SourceGate(allow=[])
    assert gate.admit("203.0.113.9", 0)
    assert gate.admit("2001:db8::9", 0)
    assert gate.not_allowed == 0


@pytest.mark.parametrize(
    ("entry", "network"),
    [
        ("10.0.0.0/8", IPv4Network("10.0.0.0/8")),
        (" 10.0.0.7 ", IPv4Network("10.0.0.7/32")),
        ("2001:db8::/32", IPv6Network("2001:db8::/32")),
        ("::1", IPv6Network("::1/128")),
        ("::ffff:192.168.0.0/112", IPv4Network("192.168.0.0/16")),
        ("::ffff:0:0/96", IPv4Network("0.0.0.0/0")),
    ],
)
def test_parse_network(entry: str, network: IPv4Network | IPv6Network):
    assert parse_network(entry) == network


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.999", "not an IP address or network: '10.0.0.999'"),
        ("", "not an IP address or network: ''"),
        ("example.com", "not an IP address or network: 'example.com'"),
        ("10.0.0.0/33", "not an IP address or network: '10.0.0.0/33'"),
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set; the network is '10.0.0.0/8'"),
        ("2001:db8::1/32", "'2001:db8::1/32' has host bits set; the network is '2001:db8::/32'"),
    ],
)
def test_parse_network_names_the_bad_entry(entry: str, message: str):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_network(entry)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_limit": 0.0}, "rate_limit: must be > 0 probes a second, got 0.0"),
        ({"rate_limit": float("nan")}, "rate_limit: must be a finite number"),
        ({"rate_limit": float("inf")}, "rate_limit: must be a finite number"),
        ({"rate_limit": True}, "rate_limit: must be a real number, got bool True"),
        ({"burst": 0}, "burst: must be an integer >= 1, got 0"),
        ({"burst": 1.5}, "burst: must be an integer >= 0, got 1.5"),
        ({"max_sources": 0}, "max_sources: must be an integer >= 1, got 0"),
        ({"allow": "10.0.0.0/8"}, "allow: must be a list of networks, not one string"),
        (
            {"allow": ["10.0.0.0/8", "10.0.0.999"]},
            "allow: not an IP address or network: '10.0.0.999'",
        ),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        SourceGate(**kwargs)  # type: ignore[arg-type]


def test_the_defaults_never_limit_the_benchmarks_sender():
    """benchmarks/bench_probe.py: 1,000 peers behind one reflector, probed once a second from
    one address, in the Prober's batches of 200; and the same sender after its loop stalled
    for 2 s, sending all that fell due meanwhile at once."""
    assert (DEFAULT_RATE_LIMIT, DEFAULT_BURST, DEFAULT_MAX_SOURCES) == (2000.0, 2000, 16_384)
    gate = SourceGate()
    for batch in range(300):
        assert admitted(gate, "10.0.0.1", batch * 0.2, 200) == 200, batch
    assert admitted(gate, "10.0.0.1", 62.0, 2000) == 2000
    for batch in range(50):
        assert admitted(gate, "10.0.0.1", 62.2 + batch * 0.2, 200) == 200, batch
    assert gate.rate_limited == 0
    # What the defaults do hold back: a flood from one address.
    assert admitted(gate, "10.0.0.2", 0.0, 10_000) == DEFAULT_BURST
