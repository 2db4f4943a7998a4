"""TWAMP-Test packet codec (RFC 5357 §4.1.2, §4.2.1) and NTP timestamps."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.probe.twamp import (
    MAX_DATAGRAM,
    NTP_UNIX_OFFSET_S,
    REFLECTOR_SIZE,
    SENDER_PADDING,
    SENDER_SIZE,
    ReflectorPacket,
    SenderPacket,
    ntp_difference_ms,
    ntp_from_unix_ns,
    reply_seq_and_hold,
    reply_to,
)
from peerscope.probe.twamp_sender import encode_probe

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
error_estimates = st.integers(0, 2**16 - 1).filter(
    lambda value: value & 0xFF and not value & 0x4000
)
# 1900 .. 2172: NTP eras 0 and 1, as a sender's or reflector's clock may read.
unix_ns = st.integers(-NTP_UNIX_OFFSET_S * 10**9, (2**33 - NTP_UNIX_OFFSET_S) * 10**9 - 1)
# How far apart two timestamps of one probe (t1..t4) may be: a day either way.
spans_ns = st.integers(-86_400 * 10**9, 86_400 * 10**9)


def test_sizes_follow_the_rfc():
    assert (SENDER_SIZE, REFLECTOR_SIZE, SENDER_PADDING) == (14, 41, 27)
    assert len(SenderPacket(1, 2).encode()) == REFLECTOR_SIZE  # padded to the reply's size


def test_layout_of_a_sender_packet():
    data = SenderPacket(
        seq=7, timestamp=0x0102030405060708, error_estimate=0x8001, padding=3
    ).encode()
    assert data == bytes.fromhex("0000000701020304050607088001000000")


def test_layout_of_a_reflector_packet():
    packet = ReflectorPacket(
        seq=1,
        timestamp=2,
        receive_timestamp=3,
        sender_seq=4,
        sender_timestamp=5,
        sender_error_estimate=0x0101,
        sender_ttl=64,
        error_estimate=0x0102,
        padding=0,
    )
    assert packet.encode() == struct.pack("!IQHHQIQHHB", 1, 2, 0x0102, 0, 3, 4, 5, 0x0101, 0, 64)


def test_ntp_epoch_and_a_known_instant():
    assert ntp_from_unix_ns(0) == NTP_UNIX_OFFSET_S << 32
    assert ntp_from_unix_ns(1_500_000_000) == (NTP_UNIX_OFFSET_S + 1) << 32 | 2**31
    assert ntp_from_unix_ns(2) == NTP_UNIX_OFFSET_S << 32 | 9  # 8.59 units, to the nearest


@given(unix_ns, spans_ns)
def test_a_difference_of_timestamps_is_exact_to_ntp_resolution(ns, span):
    # What the sender and the reflector do with timestamps: stamp two instants, take the
    # difference. Each stamp is rounded to the nearest unit (2**-32 s, 0.23 ns), so the
    # difference is off by less than one unit (and the float's own rounding), across an era
    # wrap too.
    later = ntp_from_unix_ns(ns + span)
    assert 0 <= later < 2**64
    assert abs(ntp_difference_ms(later, ntp_from_unix_ns(ns)) - span / 1e6) < 1.1e3 / 2**32


def test_era_wrap_in_2036():
    before, after = (2**32 - NTP_UNIX_OFFSET_S) * 10**9 - 1, (2**32 - NTP_UNIX_OFFSET_S) * 10**9
    assert ntp_from_unix_ns(after) == 0  # era 1's first instant
    assert ntp_from_unix_ns(before) == 2**64 - 4  # era 0's last nanosecond, 4.29 units
    assert ntp_difference_ms(ntp_from_unix_ns(after), ntp_from_unix_ns(before)) == pytest.approx(
        1e-6, abs=3e-7
    )  # 1 ns, to NTP resolution (0.23 ns)


@given(u32, u64, error_estimates, st.integers(0, MAX_DATAGRAM - SENDER_SIZE))
def test_sender_round_trip(seq, timestamp, error_estimate, padding):
    packet = SenderPacket(seq, timestamp, error_estimate, padding)
    data = packet.encode()
    assert len(data) == SENDER_SIZE + padding
    assert SenderPacket.decode(data) == packet


@given(
    u32,
    u64,
    u64,
    u32,
    u64,
    error_estimates,
    st.integers(0, 255),
    error_estimates,
    st.integers(0, MAX_DATAGRAM - REFLECTOR_SIZE),
)
def test_reflector_round_trip(
    seq, timestamp, received, sender_seq, sender_timestamp, sender_error, ttl, error, padding
):
    packet = ReflectorPacket(
        seq, timestamp, received, sender_seq, sender_timestamp, sender_error, ttl, error, padding
    )
    assert ReflectorPacket.decode(packet.encode()) == packet


@given(st.binary(max_size=SENDER_SIZE - 1))
def test_short_datagrams_are_rejected(data):
    with pytest.raises(ValueError, match="too short"):
        SenderPacket.decode(data)
    with pytest.raises(ValueError, match="too short"):
        ReflectorPacket.decode(data + bytes(REFLECTOR_SIZE - SENDER_SIZE))


def test_oversized_datagrams_are_rejected():
    with pytest.raises(ValueError, match="too long: 1473 octets"):
        SenderPacket.decode(SenderPacket(1, 2).encode() + bytes(MAX_DATAGRAM + 1 - 41))
    with pytest.raises(ValueError, match="too long"):
        ReflectorPacket.decode(bytes(MAX_DATAGRAM + 1))


@given(st.binary(min_size=SENDER_SIZE, max_size=MAX_DATAGRAM))
def test_garbage_is_a_probe_only_if_its_error_estimate_is_valid(data):
    if data[13] == 0:
        with pytest.raises(ValueError, match="multiplier must not be 0"):
            SenderPacket.decode(data)
    elif data[12] & 0x40:
        with pytest.raises(ValueError, match="Z bit set"):
            SenderPacket.decode(data)
    else:
        assert SenderPacket.decode(data).seq == int.from_bytes(data[:4], "big")


def test_about_half_of_random_datagrams_pass_for_probes():
    """An unauthenticated probe (RFC 5357 §4.1.2) constrains only its error estimate: a
    multiplier other than 0 and, as spoken here, Z = 0. So 255/512 of random datagrams of
    41-1,472 octets pass, the reason the reflector limits whom it answers."""
    rng = random.Random(10)
    trials = 20_000
    taken = 0
    for _ in range(trials):
        try:
            SenderPacket.decode(rng.randbytes(rng.randint(41, MAX_DATAGRAM)))
        except ValueError:
            continue
        taken += 1
    assert abs(taken / trials - 255 / 512) < 0.01, taken / trials


def test_reflector_packet_with_nonzero_mbz_is_rejected():
    good = bytearray(reply_to(SenderPacket(1, 2), seq=1, received=3, sent=4).encode())
    for offset in (14, 38):
        bad = bytearray(good)
        bad[offset] = 1
        with pytest.raises(ValueError, match="MBZ"):
            ReflectorPacket.decode(bytes(bad))


@pytest.mark.parametrize(
    ("packet", "field"),
    [
        (SenderPacket(1, 2, error_estimate=0x0100), "error_estimate"),
        (SenderPacket(1, 2, error_estimate=0x4001), "error_estimate: Z bit"),
        (SenderPacket(1, 2, padding=-1), "padding"),
        (SenderPacket(1, 2, padding=MAX_DATAGRAM), "padding"),
    ],
)
def test_encoding_refuses_invalid_fields(packet, field):
    with pytest.raises(ValueError, match=field):
        packet.encode()


def test_reply_echoes_the_probe_and_keeps_the_size():
    probe = SenderPacket(seq=9, timestamp=1234, error_estimate=0x0203, padding=27 + 100)
    reply = reply_to(probe, seq=1, received=5000, sent=6000, ttl=64)
    assert (
        reply.sender_seq,
        reply.sender_timestamp,
        reply.sender_error_estimate,
        reply.sender_ttl,
    ) == (9, 1234, 0x0203, 64)
    assert len(reply.encode()) == len(probe.encode())


@given(u32, u64)
def test_the_senders_fast_encoding_is_the_codecs(seq, timestamp):
    assert encode_probe(seq, timestamp) == SenderPacket(seq, timestamp).encode()


@given(u32, u64, u64, u32, u64, error_estimates, error_estimates)
def test_the_senders_fast_decoding_is_the_codecs(
    seq, timestamp, received, sender_seq, sender_timestamp, sender_error, error
):
    packet = ReflectorPacket(
        seq, timestamp, received, sender_seq, sender_timestamp, sender_error, error_estimate=error
    )
    assert reply_seq_and_hold(packet.encode()) == (sender_seq, packet.hold_ms)


@pytest.mark.parametrize(
    ("data", "why"),
    [(bytes(REFLECTOR_SIZE - 1), "too short"), (bytes(REFLECTOR_SIZE), "multiplier")],
)
def test_the_senders_fast_decoding_rejects_what_the_codec_does(data, why):
    with pytest.raises(ValueError, match=why):
        ReflectorPacket.decode(data)
    with pytest.raises(ValueError, match=why):
        reply_seq_and_hold(data)


def test_the_sender_remembers_probes_for_remember_s_and_grows_to_keep_them():
    from peerscope.probe.twamp_sender import _SentProbes

    sent = _SentProbes(remember_ns=10 * 10**9)
    handlers = [lambda seq, rtt: None for _ in range(3000)]
    for wire_seq in range(3000):  # 3,000 within 3 s: more than the first 1,024 slots
        sent.add(wire_seq, wire_seq * 10**6, ("127.0.0.1", 862), wire_seq + 7, handlers[wire_seq])
    assert sent.find(5, 4 * 10**9, ("127.0.0.1", 862)) == (12, handlers[5], 5 * 10**6)
    assert sent.find(2999, 4 * 10**9, ("127.0.0.1", 862)) == (3006, handlers[2999], 2999 * 10**6)
    assert sent.find(5, 4 * 10**9, ("127.0.0.2", 862)) is None  # from another address
    assert sent.find(5, 4 * 10**9, ("127.0.0.1", 863)) is None
    assert sent.find(3000, 4 * 10**9, ("127.0.0.1", 862)) is None  # never sent
    assert sent.find(5, 11 * 10**9, ("127.0.0.1", 862)) is None  # forgotten after 10 s
    # A probe older than remember_s gives up its slot rather than grow the slots further.
    sent.add(4096 + 5, 20 * 10**9, ("127.0.0.1", 862), 1, handlers[0])
    assert sent.find(4096 + 5, 20 * 10**9, ("127.0.0.1", 862)) == (1, handlers[0], 20 * 10**9)
    assert sent.find(5, 12 * 10**9, ("127.0.0.1", 862)) is None
