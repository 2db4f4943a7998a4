"""TWAMP-Test packets in unauthenticated mode ("TWAMP Light", RFC 5357 §4.1.2 and §4.2.1).

Sender → reflector (14 octets, then padding)::

    0       4               12      14
    | seq   | timestamp (t1)| error | padding ...

Reflector → sender (41 octets, then padding)::

    0     4             12    14    16             24           28            36    38    40  41
    | seq | timestamp t3| err | MBZ | receive ts t2| sender seq | sender ts t1| err | MBZ | TTL |

Timestamps are NTP 64-bit (32 bits of seconds since 1900, 32 bits of fraction). The error
estimate is RFC 4656's: S (clock synchronised), Z (0: NTP format), 6-bit scale and 8-bit
multiplier; its multiplier must not be 0, and Z must be 0 (PTP format is not spoken). All
fields are big-endian.

Only this module knows the layout; it reads no clock and opens no socket.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NTP_UNIX_OFFSET_S = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
MAX_DATAGRAM = 1472  # UDP payload of a 1500-octet Ethernet frame, IPv4: no fragmentation
_SENDER = struct.Struct("!IQH")
_REFLECTOR = struct.Struct("!IQHHQIQHHB")
SENDER_SIZE = _SENDER.size  # 14
REFLECTOR_SIZE = _REFLECTOR.size  # 41
# RFC 5357 §4.2.1: the reflector shortens the padding by the 27 octets its longer header
# adds, so a sender that pads by 27 gets replies as long as its probes (symmetric sizes).
SENDER_PADDING = REFLECTOR_SIZE - SENDER_SIZE
# Not synchronised to UTC, NTP format, scale 22 and multiplier 1: ±2^-10 s, about 1 ms.
# Round trips subtract timestamps of one clock each, so synchronisation does not matter.
ERROR_ESTIMATE = (22 << 8) | 1
TTL_UNKNOWN = 255  # what a reflector reports when it cannot read the probe's IP TTL

_FRACTION = 1 << 32
_NS = 1_000_000_000
_HALF_RANGE = 1 << 63
_RANGE = 1 << 64
_MASK64 = _RANGE - 1
_NTP_UNIX_OFFSET_NS = NTP_UNIX_OFFSET_S * _NS


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


def _check_size(data: bytes, minimum: int, kind: str) -> None:
    if len(data) < minimum:
        raise ValueError(f"{kind} packet too short: {len(data)} octets, need >= {minimum}")
    if len(data) > MAX_DATAGRAM:
        raise ValueError(f"{kind} packet too long: {len(data)} octets, max {MAX_DATAGRAM}")


def _check_error_estimate(value: int, field_name: str) -> None:
    if not value & 0xFF:
        raise ValueError(f"{field_name}: multiplier must not be 0 (RFC 4656), got {value:#06x}")
    if value & 0x4000:
        raise ValueError(
            f"{field_name}: Z bit set (PTP timestamps, RFC 8186); only NTP "
            f"format is spoken here, got {value:#06x}"
        )


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
    and the probe's seq, timestamp (t1), error estimate and IP TTL, echoed."""

    seq: int
    timestamp: int
    receive_timestamp: int
    sender_seq: int
    sender_timestamp: int
    sender_error_estimate: int
    sender_ttl: int = TTL_UNKNOWN
    error_estimate: int = ERROR_ESTIMATE
    padding: int = 0

    def encode(self) -> bytes:
        _check_error_estimate(self.error_estimate, "error_estimate")
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
        """Parse a reply; ValueError for a datagram that is not one."""
        (
            seq,
            timestamp,
            error_estimate,
            _,
            receive_timestamp,
            sender_seq,
            sender_timestamp,
            sender_error_estimate,
            _,
            sender_ttl,
        ) = _unpack_reply(data)
        return cls(
            seq,
            timestamp,
            receive_timestamp,
            sender_seq,
            sender_timestamp,
            sender_error_estimate,
            sender_ttl,
            error_estimate,
            len(data) - REFLECTOR_SIZE,
        )

    @property
    def hold_ms(self) -> float:
        """The reflector's time between receiving the probe and replying: t3 − t2, in ms."""
        return ntp_difference_ms(self.timestamp, self.receive_timestamp)


def reply_seq_and_hold(data: bytes) -> tuple[int, float]:
    """(sender seq, ``hold_ms``) of a reply: what ``decode(data)`` gives, without building
    the packet.

    The sender's path for every reply: it knows t1 and t4 on its own clock to the ns, so
    it needs only these two of the reply's fields. ValueError for a datagram that is not a
    reply.
    """
    fields = _unpack_reply(data)
    return fields[5], ntp_difference_ms(fields[1], fields[4])


def _unpack_reply(data: bytes) -> tuple[int, ...]:
    """A reply's header fields, in wire order, once checked."""
    size = len(data)
    fields: tuple[int, ...] = _REFLECTOR.unpack_from(data) if size >= REFLECTOR_SIZE else ()
    # Every reply passes this one test; only a failing one goes through the checks one by
    # one, for the error that names what is wrong.
    if (
        size > MAX_DATAGRAM
        or not fields
        or fields[3]
        or fields[8]
        or not fields[2] & 0xFF
        or not fields[7] & 0xFF
        or (fields[2] | fields[7]) & 0x4000
    ):
        _check_size(data, REFLECTOR_SIZE, "TWAMP-Test reflector")
        if fields[3] or fields[8]:
            raise ValueError("TWAMP-Test reflector packet: MBZ (must be zero) fields are not 0")
        _check_error_estimate(fields[2], "error_estimate")
        _check_error_estimate(fields[7], "sender_error_estimate")
    return fields


def reply_to(
    probe: SenderPacket, *, seq: int, received: int, sent: int, ttl: int = TTL_UNKNOWN
) -> ReflectorPacket:
    """The reflector's answer to ``probe``, received at ``received`` and sent at ``sent``."""
    return ReflectorPacket(
        seq=seq,
        timestamp=sent,
        receive_timestamp=received,
        sender_seq=probe.seq,
        sender_timestamp=probe.timestamp,
        sender_error_estimate=probe.error_estimate,
        sender_ttl=ttl,
        padding=max(0, probe.padding - SENDER_PADDING),
    )
