"""TWAMP-Test packet codec (RFC 5357 §4.1.2, §4.2.1), STAMP's base packets (RFC 8762), NTP
and PTP timestamps, error estimates."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerscope.probe.sender_session import SenderSession
from peerscope.probe.twamp import (
    ERROR_ESTIMATE,
    MAX_DATAGRAM,
    NTP_UNIX_OFFSET_S,
    PTP_FORMAT,
    REFLECTOR_SIZE,
    REPLY_MIN_SIZE,
    SENDER_PADDING,
    SENDER_SIZE,
    STAMP_PADDING,
    STAMP_SIZE,
    SYNCHRONIZED,
    TAI_UTC_OFFSET_S,
    ReflectorPacket,
    SenderPacket,
    error_estimate_for,
    error_seconds,
    ntp_difference_ms,
    ntp_from_unix_ns,
    parse_reply,
    reply_to,
    unix_ns_from_timestamp,
)
from peerscope.probe.twamp_sender import encode_probe

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
# Any S and Z bit, scale and multiplier but 0 (RFC 4656 forbids a multiplier of 0).
error_estimates = st.integers(0, 2**16 - 1).filter(lambda value: value & 0xFF)
# 1900 .. 2172: NTP eras 0 and 1, as a sender's or reflector's clock may read.
unix_ns = st.integers(-NTP_UNIX_OFFSET_S * 10**9, (2**33 - NTP_UNIX_OFFSET_S) * 10**9 - 1)
# How far apart two timestamps of one probe (t1..t4) may be: a day either way.
spans_ns = st.integers(-86_400 * 10**9, 86_400 * 10**9)


def test_sizes_follow_the_rfcs():
    assert (SENDER_SIZE, REFLECTOR_SIZE, SENDER_PADDING, REPLY_MIN_SIZE) == (14, 41, 27, 36)
    assert (STAMP_SIZE, STAMP_PADDING) == (44, 30)  # RFC 8762 §4.2.1 and §4.3.1
    assert len(SenderPacket(1, 2).encode()) == REFLECTOR_SIZE  # padded to the reply's size


def test_a_stamp_probe_gets_a_stamp_reply_with_three_mbz_octets_after_the_ttl():
    probe = SenderPacket(seq=5, timestamp=6, error_estimate=0x8001, padding=STAMP_PADDING)
    assert len(probe.encode()) == STAMP_SIZE
    data = reply_to(probe, seq=0, received=7, sent=8, ttl=61).encode()
    assert len(data) == STAMP_SIZE
    assert data[40] == 61  # RFC 8762 §4.3.1: the TTL, then 3 octets of MBZ
    assert data[41:] == bytes(3)
    assert ReflectorPacket.decode(data).padding == 3


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


@given(st.binary(max_size=SENDER_SIZE - 1), st.binary(max_size=REPLY_MIN_SIZE - 1))
def test_short_datagrams_are_rejected(probe, reply):
    with pytest.raises(ValueError, match="too short"):
        SenderPacket.decode(probe)
    with pytest.raises(ValueError, match=r"too short: \d+ octets, need >= 36"):
        ReflectorPacket.decode(reply)
    with pytest.raises(ValueError, match="too short"):
        parse_reply(reply)


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
    else:  # the Z bit (PTP timestamps, RFC 8762 §4.2.1) is taken too
        probe = SenderPacket.decode(data)
        assert (probe.seq, probe.error_estimate) == (
            int.from_bytes(data[:4]),
            int.from_bytes(data[12:14]),
        )


def test_almost_every_random_datagram_passes_for_a_probe():
    """An unauthenticated probe (RFC 5357 §4.1.2, RFC 8762 §4.2.1) constrains only its error
    estimate's multiplier (not 0): 255/256 of random datagrams of 41-1,472 octets pass, the
    reason the reflector limits whom it answers."""
    rng = random.Random(10)
    trials = 20_000
    taken = 0
    for _ in range(trials):
        try:
            SenderPacket.decode(rng.randbytes(rng.randint(41, MAX_DATAGRAM)))
        except ValueError:
            continue
        taken += 1
    assert abs(taken / trials - 255 / 256) < 0.003, taken / trials


def test_a_reply_with_dirty_mbz_or_a_zero_multiplier_is_read_all_the_same():
    """Other reflectors leave MBZ fields dirty; what a sender needs is read regardless."""
    good = reply_to(SenderPacket(9, 2), seq=3, received=4, sent=5, ttl=60).encode()
    for offset in (14, 15, 38, 39, 13):  # both MBZ fields, and a multiplier of 0
        bad = bytearray(good)
        bad[offset] = 0 if offset == 13 else 0xFF
        packet = ReflectorPacket.decode(bytes(bad))
        assert (packet.seq, packet.sender_seq, packet.receive_timestamp, packet.sender_ttl) == (
            3,
            9,
            4,
            60,
        )


@pytest.mark.parametrize(
    ("packet", "field"),
    [
        (SenderPacket(1, 2, error_estimate=0x0100), "error_estimate"),
        (ReflectorPacket(1, 2, 3, 4, 5, error_estimate=0x8000), "error_estimate: multiplier"),
        (ReflectorPacket(1, 2, 3, 4, 5, sender_error_estimate=0x0100), "sender_error_estimate"),
        (ReflectorPacket(1, 2, 3, 4, 5, sender_ttl=None), "sender_ttl"),
        (ReflectorPacket(1, 2, 3, 4, 5, padding=MAX_DATAGRAM), "padding"),
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


@given(u32, u64, error_estimates, st.integers(0, 100))
def test_the_senders_fast_encoding_is_the_codecs(seq, timestamp, error, padding):
    assert encode_probe(seq, timestamp, error, padding) == (
        SenderPacket(seq, timestamp, error, padding).encode()
    )


@given(u32, u64, u64, u32, u64, error_estimates, st.integers(0, 255), error_estimates)
def test_the_senders_fast_decoding_is_the_codecs(
    seq, timestamp, received, sender_seq, sender_timestamp, sender_error, ttl, error
):
    packet = ReflectorPacket(
        seq, timestamp, received, sender_seq, sender_timestamp, sender_error, ttl, error
    )
    assert parse_reply(packet.encode()) == (
        seq,
        timestamp,
        error,
        received,
        sender_seq,
        sender_timestamp,
        ttl,
    )


def test_rfc_5357_replies_41_octets_and_padded_are_read():
    probe = SenderPacket(seq=7, timestamp=100, error_estimate=0x0203, padding=27 + 60)
    for padding in (SENDER_PADDING, 27 + 60):
        data = reply_to(
            SenderPacket(7, 100, 0x0203, padding), seq=2, received=300, sent=400, ttl=57
        ).encode()
        assert len(data) == SENDER_SIZE + padding
        assert parse_reply(data) == (
            2,
            400,
            ERROR_ESTIMATE,
            300,
            7,
            100,
            57,
        )
    assert ReflectorPacket.decode(reply_to(probe, seq=2, received=3, sent=4).encode()).padding == 60


def test_a_38_octet_reply_without_mbz_and_ttl_is_read_with_ttl_none():
    """twampy's reflector answers with 38 octets: the 24-octet reply header and the probe's
    first 14 echoed, no trailing MBZ and TTL."""
    data = struct.pack("!IQHHQ", 4, 0x1111, 0x3FFF, 0, 0x2222) + struct.pack("!IQH", 9, 0x33, 1)
    assert len(data) == 38
    assert parse_reply(data) == (4, 0x1111, 0x3FFF, 0x2222, 9, 0x33, -1)
    packet = ReflectorPacket.decode(data)
    assert (packet.sender_seq, packet.sender_error_estimate, packet.sender_ttl) == (9, 1, None)
    assert packet.padding == 0
    assert ReflectorPacket.decode(data[:36]).sender_error_estimate is None


@pytest.mark.parametrize(
    ("data", "why"),
    [(bytes(REPLY_MIN_SIZE - 1), "too short"), (bytes(MAX_DATAGRAM + 1), "too long")],
)
def test_the_senders_fast_decoding_rejects_what_the_codec_does(data, why):
    with pytest.raises(ValueError, match=why):
        ReflectorPacket.decode(data)
    with pytest.raises(ValueError, match=why):
        parse_reply(data)


# --- error estimates and timestamps ----------------------------------------------------------


@given(st.floats(2.0**-32, 2.0**31), st.booleans())
def test_the_error_estimate_states_at_least_the_error_asked_within_a_factor_of_two(
    seconds, synchronized
):
    estimate = error_estimate_for(seconds, synchronized=synchronized)
    assert estimate & 0xFF  # a multiplier of 0 is forbidden
    assert bool(estimate & SYNCHRONIZED) == synchronized
    assert not estimate & PTP_FORMAT
    stated = error_seconds(estimate)
    assert seconds <= stated <= 2 * seconds


@given(st.integers(0, 63), st.integers(1, 255), st.booleans())
def test_error_seconds_reads_scale_and_multiplier(scale, multiplier, synchronized):
    estimate = (SYNCHRONIZED if synchronized else 0) | PTP_FORMAT | scale << 8 | multiplier
    assert error_seconds(estimate) == multiplier * 2.0 ** (scale - 32)


def test_tiny_and_huge_errors_are_clamped_to_what_the_field_can_state():
    assert error_estimate_for(0.0, synchronized=False) == 0x0001  # 2^-32 s, the least
    assert error_seconds(error_estimate_for(1e30, synchronized=False)) == 255 * 2.0**31


@given(unix_ns, spans_ns)
def test_an_ntp_timestamp_reads_back_in_the_era_nearest_our_clock(ns, span):
    # A timestamp carries no era: it is read in the one nearest our clock (within 68 years).
    stamp = ntp_from_unix_ns(ns)
    assert abs(unix_ns_from_timestamp(stamp, 0x0001, ns + span) - ns) <= 1


def test_an_ntp_timestamp_of_era_1_is_read_as_2036_and_later():
    after = (2**32 - NTP_UNIX_OFFSET_S) * 10**9 + 5 * 10**9  # 5 s into era 1
    stamp = ntp_from_unix_ns(after)
    assert stamp >> 32 == 5
    assert unix_ns_from_timestamp(stamp, 0x0001, after - 10**12) == after
    in_1900 = -NTP_UNIX_OFFSET_S * 10**9
    assert unix_ns_from_timestamp(stamp, 0x0001, in_1900) == after - 2**32 * 10**9  # era 0


@given(st.integers(TAI_UTC_OFFSET_S, 2**32 - 1), st.integers(0, 10**9 - 1), u64)
def test_a_ptp_timestamp_is_tai_seconds_and_ns_whatever_our_clock(tai_seconds, ns, near):
    stamp = tai_seconds << 32 | ns
    assert unix_ns_from_timestamp(stamp, PTP_FORMAT | 1, near) == (
        (tai_seconds - TAI_UTC_OFFSET_S) * 10**9 + ns
    )


def test_hold_time_in_ptp_format():
    packet = ReflectorPacket(
        1, (100 << 32) | 250_000_000, (99 << 32) | 750_000_000, 2, 3, error_estimate=PTP_FORMAT | 1
    )
    assert packet.hold_ms == pytest.approx(500.0)


def test_the_sender_remembers_probes_for_remember_s_and_grows_to_keep_them():
    from peerscope.probe.twamp_sender import _SentProbes

    sent = _SentProbes(remember_ns=10 * 10**9)
    session = SenderSession()
    here = ("127.0.0.1", 862)
    handlers = [lambda seq, rtt: None for _ in range(3000)]
    for wire_seq in range(3000):  # 3,000 within 3 s: more than the first 1,024 slots
        sent.add(wire_seq, wire_seq * 10**6, 0, here, wire_seq + 7, handlers[wire_seq], session, 0)
    slot = sent.find(5, 4 * 10**9, here)
    assert (sent._seqs[slot], sent._handlers[slot], sent._sent_ns[slot]) == (
        12,
        handlers[5],
        5 * 10**6,
    )
    assert sent._seqs[sent.find(2999, 4 * 10**9, here)] == 3006
    assert sent.find(5, 4 * 10**9, ("127.0.0.2", 862)) == -1  # from another address
    assert sent.find(5, 4 * 10**9, ("127.0.0.1", 863)) == -1
    assert sent.find(3000, 4 * 10**9, here) == -1  # never sent
    assert sent.find(5, 11 * 10**9, here) == -1  # forgotten after 10 s
    # A probe older than remember_s gives up its slot rather than grow the slots further.
    sent.add(4096 + 5, 20 * 10**9, 0, here, 1, handlers[0], session, 0)
    assert sent._seqs[sent.find(4096 + 5, 20 * 10**9, here)] == 1
    assert sent.find(5, 12 * 10**9, here) == -1
