"""TWAMP-Test packets in unauthenticated mode ("TWAMP Light", RFC 5357 §4.1.2 and §4.2.1,
Appendix I) and STAMP's unauthenticated base packets (RFC 8762 §4.2.1 and §4.3.1).

Sender → reflector (14 octets, then padding; STAMP: 30 octets of MBZ, 44 in all)::

    0       4               12      14
    | seq   | timestamp (t1)| error | padding ...

Reflector → sender (41 octets, then padding; STAMP: 3 octets of MBZ, 44 in all)::

    0     4             12    14    16             24           28            36    38    40  41
    | seq | timestamp t3| err | MBZ | receive ts t2| sender seq | sender ts t1| err | MBZ | TTL |

STAMP was made to interoperate with TWAMP Light (RFC 8762 §4.6): its base packets are
TWAMP-Test packets with 30 octets of padding one way and 3 the other, so one codec and one
reflector serve both, and a probe padded to 44 octets gets a 44-octet reply from either.

Timestamps are NTP 64-bit (32 bits of seconds since 1900, 32 bits of fraction), or, when the
error estimate's Z bit says so (RFC 8762 §4.2.1), PTPv2 truncated (32 bits of TAI seconds
since 1970, 32 bits of ns). The error estimate is RFC 4656's: S (clock synchronised to UTC),
Z, a 6-bit scale and an 8-bit multiplier (error = multiplier × 2^(scale − 32) s), whose
multiplier must not be 0. All fields are big-endian.

Other implementations do not all send what the RFC shows: some reflectors answer with 38
octets (no trailing MBZ and TTL) or leave MBZ fields dirty, some send unpadded probes. So a
reply is read liberally: anything of 36 octets and up carries what a sender needs (both
sequence numbers and the three timestamps), and the rest is read where present.

Only this module knows the layout; it reads no clock and opens no socket.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

NTP_UNIX_OFFSET_S = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
# TAI − UTC since 2017-01-01 (no leap second since): PTP timestamps count TAI seconds.
TAI_UTC_OFFSET_S = 37
MAX_DATAGRAM = 1472  # UDP payload of a 1500-octet Ethernet frame, IPv4: no fragmentation
_SENDER = struct.Struct("!IQH")
_REFLECTOR = struct.Struct("!IQHHQIQHHB")
# What a reply must carry for a round trip: seq, t3, error, MBZ, t2, sender seq and t1.
_REPLY_CORE = struct.Struct("!IQHxxQIQ")
SENDER_SIZE = _SENDER.size  # 14
REFLECTOR_SIZE = _REFLECTOR.size  # 41
REPLY_MIN_SIZE = _REPLY_CORE.size  # 36
STAMP_SIZE = 44  # RFC 8762's unauthenticated base packet, both ways
# RFC 5357 §4.2.1: the reflector shortens the padding by the 27 octets its longer header
# adds, so a sender that pads by 27 gets replies as long as its probes (symmetric sizes).
SENDER_PADDING = REFLECTOR_SIZE - SENDER_SIZE
STAMP_PADDING = STAMP_SIZE - SENDER_SIZE  # the 30 octets of MBZ after a STAMP probe's header
# Not synchronised to UTC, NTP format, scale 22 and multiplier 1: ±2^-10 s, about 1 ms.
ERROR_ESTIMATE = (22 << 8) | 1
SYNCHRONIZED = 0x8000  # the S bit
PTP_FORMAT = 0x4000  # the Z bit
TTL_UNKNOWN = 255  # what a reflector reports when it cannot read the probe's IP TTL

_FRACTION = 1 << 32
_NS = 1_000_000_000
_HALF_RANGE = 1 << 63
_RANGE = 1 << 64
_MASK32 = _FRACTION - 1
_MASK64 = _RANGE - 1
_NTP_UNIX_OFFSET_NS = NTP_UNIX_OFFSET_S * _NS
_NTP_ERA_NS = _FRACTION * _NS  # 2^32 s: one NTP era


def ntp_from_unix_ns(unix_ns: int) -> int:
    """An NTP 64-bit timestamp from nanoseconds since the Unix epoch (era wraps in 2036)."""
    # Whole seconds times 2^32 divide by 10^9 exactly, so rounding the whole count of NTP
    # units rounds only the fraction, which stays < 2^32 for every ns < 10^9; the era wrap
    # is the 64-bit one. One expression: it runs twice per probe.
    return ((((unix_ns + _NTP_UNIX_OFFSET_NS) << 32) + _NS // 2) // _NS) & _MASK64


def ntp_difference_ms(later: int, earlier: int) -> float:
    """``later - earlier`` in ms, across an era wrap (timestamps within 68 years)."""
    delta = (later - earlier + _HALF_RANGE) % _RANGE - _HALF_RANGE
    return delta * 1000.0 / _FRACTION


def unix_ns_from_timestamp(timestamp: int, error_estimate: int, near_ns: int) -> int:
    """Unix ns of a timestamp in the format its ``error_estimate`` names (Z bit: PTP), the
    NTP era taken as the one nearest ``near_ns`` (a clock reading of ours)."""
    if error_estimate & PTP_FORMAT:
        seconds = (timestamp >> 32) - TAI_UTC_OFFSET_S
        return seconds * _NS + (timestamp & _MASK32)
    unix_ns = ((timestamp * _NS) >> 32) - _NTP_UNIX_OFFSET_NS
    eras = round((near_ns - unix_ns) / _NTP_ERA_NS)
    return unix_ns + eras * _NTP_ERA_NS


def error_seconds(error_estimate: int) -> float:
    """The error an estimate states, in seconds: multiplier × 2^(scale − 32)."""
    return (error_estimate & 0xFF) * 2.0 ** (((error_estimate >> 8) & 0x3F) - 32)


def error_estimate_for(seconds: float, *, synchronized: bool) -> int:
    """The estimate (NTP format) stating an error of at least ``seconds``: the smallest
    scale whose multiplier fits in 8 bits, the multiplier rounded up."""
    seconds = max(seconds, 2.0**-32)
    scale = max(0, min(63, math.ceil(math.log2(seconds / 255.0)) + 32))
    multiplier = max(1, min(255, math.ceil(seconds / 2.0 ** (scale - 32))))
    return (SYNCHRONIZED if synchronized else 0) | (scale << 8) | multiplier


def _check_size(data: bytes, minimum: int, kind: str) -> None:
    if len(data) < minimum:
        raise ValueError(f"{kind} packet too short: {len(data)} octets, need >= {minimum}")
    if len(data) > MAX_DATAGRAM:
        raise ValueError(f"{kind} packet too long: {len(data)} octets, max {MAX_DATAGRAM}")


def _check_error_estimate(value: int, field_name: str) -> None:
    if not value & 0xFF:
        raise ValueError(f"{field_name}: multiplier must not be 0 (RFC 4656), got {value:#06x}")


def _check_padding(padding: int, header: int) -> None:
    if not 0 <= padding <= MAX_DATAGRAM - header:
        raise ValueError(f"padding: must be within 0..{MAX_DATAGRAM - header}, got {padding}")


@dataclass(frozen=True, slots=True)
class SenderPacket:
    """A probe: the sender's sequence number and its send timestamp (t1)."""

    seq: int
    timestamp: int
    error_estimate: int = ERROR_ESTIMATE
    padding: int = SENDER_PADDING  # octets of zeros after the header

    def encode(self) -> bytes:
        _check_error_estimate(self.error_estimate, "error_estimate")
        _check_padding(self.padding, SENDER_SIZE)
        return _SENDER.pack(self.seq, self.timestamp, self.error_estimate) + bytes(self.padding)

    @classmethod
    def decode(cls, data: bytes) -> SenderPacket:
        """Parse a probe; ValueError for a datagram that is not one."""
        _check_size(data, SENDER_SIZE, "TWAMP-Test sender")
        seq, timestamp, error_estimate = _SENDER.unpack_from(data)
        _check_error_estimate(error_estimate, "error_estimate")
        return cls(seq, timestamp, error_estimate, len(data) - SENDER_SIZE)


@dataclass(frozen=True, slots=True)
class ReflectorPacket:
    """A reply: the reflector's own seq and send timestamp (t3), its receive timestamp (t2)
    and the probe's seq, timestamp (t1), error estimate and IP TTL, echoed.

    ``sender_error_estimate`` and ``sender_ttl`` are None in a reply too short to hold them
    (an implementation that sends 36 or 38 octets); ``padding`` counts what follows the TTL.
    """

    seq: int
    timestamp: int
    receive_timestamp: int
    sender_seq: int
    sender_timestamp: int
    sender_error_estimate: int | None = ERROR_ESTIMATE
    sender_ttl: int | None = TTL_UNKNOWN
    error_estimate: int = ERROR_ESTIMATE
    padding: int = 0

    def encode(self) -> bytes:
        _check_error_estimate(self.error_estimate, "error_estimate")
        if self.sender_error_estimate is None or self.sender_ttl is None:
            raise ValueError("sender_error_estimate, sender_ttl: a reply encodes both")
        _check_error_estimate(self.sender_error_estimate, "sender_error_estimate")
        _check_padding(self.padding, REFLECTOR_SIZE)
        return _REFLECTOR.pack(
            self.seq,
            self.timestamp,
            self.error_estimate,
            0,
            self.receive_timestamp,
            self.sender_seq,
            self.sender_timestamp,
            self.sender_error_estimate,
            0,
            self.sender_ttl,
        ) + bytes(self.padding)

    @classmethod
    def decode(cls, data: bytes) -> ReflectorPacket:
        """Parse a reply liberally (36 octets and up); ValueError for a datagram that
        cannot be one."""
        seq, timestamp, error_estimate, receive_timestamp, sender_seq, sender_timestamp, ttl = (
            parse_reply(data)
        )
        size = len(data)
        sender_error = int.from_bytes(data[36:38]) if size >= 38 else None
        return cls(
            seq,
            timestamp,
            receive_timestamp,
            sender_seq,
            sender_timestamp,
            sender_error,
            None if ttl < 0 else ttl,
            error_estimate,
            max(0, size - REFLECTOR_SIZE),
        )

    @property
    def hold_ms(self) -> float:
        """The reflector's time between receiving the probe and replying: t3 − t2, in ms."""
        return hold_ms(self.timestamp, self.receive_timestamp, self.error_estimate)


def hold_ms(sent: int, received: int, error_estimate: int) -> float:
    """t3 − t2 in ms, both in the reflector's format (its error estimate's Z bit)."""
    if error_estimate & PTP_FORMAT:
        return ((sent >> 32) - (received >> 32)) * 1000.0 + (
            (sent & _MASK32) - (received & _MASK32)
        ) / 1e6
    return ntp_difference_ms(sent, received)


def parse_reply(data: bytes) -> tuple[int, int, int, int, int, int, int]:
    """(seq, t3, error estimate, t2, sender seq, t1, TTL) of a reply, TTL −1 when the reply
    is too short to carry it: the sender's path for every reply, without building a packet.

    ValueError only for a datagram too short or too long to be a reply: MBZ fields and the
    error estimates are not judged (see the module docstring).
    """
    size = len(data)
    if not REPLY_MIN_SIZE <= size <= MAX_DATAGRAM:
        _check_size(data, REPLY_MIN_SIZE, "TWAMP-Test reflector")
    seq, sent, error_estimate, received, sender_seq, sender_timestamp = _REPLY_CORE.unpack_from(
        data
    )
    ttl = data[40] if size > 40 else -1
    return seq, sent, error_estimate, received, sender_seq, sender_timestamp, ttl


def reply_to(
    probe: SenderPacket,
    *,
    seq: int,
    received: int,
    sent: int,
    ttl: int = TTL_UNKNOWN,
    error_estimate: int = ERROR_ESTIMATE,
) -> ReflectorPacket:
    """The reflector's answer to ``probe``, received at ``received`` and sent at ``sent``:
    as long as the probe when it is at least a reply's length (RFC 5357 §4.2.1)."""
    return ReflectorPacket(
        seq=seq,
        timestamp=sent,
        receive_timestamp=received,
        sender_seq=probe.seq,
        sender_timestamp=probe.timestamp,
        sender_error_estimate=probe.error_estimate,
        sender_ttl=ttl,
        error_estimate=error_estimate,
        padding=max(0, probe.padding - SENDER_PADDING),
    )
