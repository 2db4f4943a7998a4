"""ProbeTarget.parse: HOST[:PORT] for each method, IPv6 in brackets, errors naming the field."""

from __future__ import annotations

import pytest

from peerscope.core.probe_target import ProbeTarget


@pytest.mark.parametrize(
    ("address", "method", "host", "port"),
    [
        ("127.0.0.1", "twamp", "127.0.0.1", 8701),
        ("127.0.0.1:9000", "twamp", "127.0.0.1", 9000),
        ("example.org", "twamp", "example.org", 8701),
        ("[::1]:8702", "twamp", "::1", 8702),
        ("[::1]", "twamp", "::1", 8701),
        ("::1", "icmp", "::1", None),
        ("0:0::1", "icmp", "::1", None),  # written as replies will name it
        ("10.0.0.1", "icmp", "10.0.0.1", None),
        ("db.lan:5432", "tcp", "db.lan", 5432),
        ("10.0.0.255", "icmp", "10.0.0.255", None),
        ("1.2.3.example", "twamp", "1.2.3.example", 8701),  # a name, if numeric labels
    ],
)
def test_parse(address, method, host, port):
    target = ProbeTarget.parse(address, method=method)
    assert (target.host, target.port, target.method) == (host, port, method)
    assert target.peer_id == f"{method}:{address}"


def test_address_round_trips_and_ids_and_names_are_kept():
    target = ProbeTarget.parse("[::1]:9", peer_id="vpn-7", name="Office")
    assert (target.address, target.peer_id, target.name) == ("[::1]:9", "vpn-7", "Office")
    assert target.is_literal
    assert not ProbeTarget.parse("example.org").is_literal


@pytest.mark.parametrize(
    ("address", "method", "message"),
    [
        ("", "twamp", "address"),
        ("host:0", "twamp", "address: port must be 1..65535"),
        ("host:65536", "twamp", "address: port"),
        ("host:http", "twamp", "address: port"),
        ("host:", "twamp", "address: port"),
        (":80", "tcp", "address: bad host"),
        ("a b:80", "tcp", "address: bad host"),
        ("[::1", "twamp", "address: expected"),
        ("[::1]x", "twamp", "address: expected"),
        ("[10.0.0.1]:80", "twamp", "not a valid IPv6 address"),
        ("1::2::3", "icmp", "address: '1::2::3' is not a valid IPv6 address$"),
        # Digits and dots are an IPv4 address or a mistake: never a name to resolve.
        ("999.1.1.1", "twamp", "^address: '999.1.1.1' is not a valid IPv4 address$"),
        (
            "10.0.0.999:80",
            "tcp",
            "^address: '10.0.0.999' is not a valid IPv4 address "
            r"\(in '10.0.0.999:80'\)$",
        ),
        ("10.1", "icmp", "^address: '10.1' is not a valid IPv4 address$"),
        ("1.2.3.4.5", "icmp", "^address: '1.2.3.4.5' is not a valid IPv4 address$"),
        ("db.lan", "tcp", "address: TCP probes need a port"),
        ("10.0.0.1:7", "icmp", "address: ICMP probes take no port"),
        ("10.0.0.1", "udp", "method: must be one of twamp, stamp, icmp, tcp"),
        ("x" * 300, "icmp", "^address: host: must be 1-256"),
    ],
)
def test_bad_input_names_the_field(address, method, message):
    with pytest.raises(ValueError, match=message):
        ProbeTarget.parse(address, method=method)


def test_bad_peer_id_is_refused():
    with pytest.raises(ValueError, match="peer_id"):
        ProbeTarget.parse("10.0.0.1", peer_id="")
