"""The kernel's own figures of a TCP connection (Linux ``TCP_INFO``), and what a peer keeps
of them from one reading to the next.

:func:`parse_tcp_info` reads the bytes ``getsockopt(IPPROTO_TCP, TCP_INFO)`` returns, by the
layout of ``struct tcp_info`` in ``linux/tcp.h``. The struct has only ever grown at its end,
and the kernel copies as much of it as it has (and the caller asked for): a field past the
end of the buffer is one an older kernel does not have, and reads as None. Reading the
socket is I/O and lives in :mod:`peerscope.tcp_info`; this module is pure.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# struct tcp_info up to tcpi_total_retrans, in every kernel since 2.6: eight __u8 (state,
# ca_state, retransmits, probes, backoff, options, the two window scales, the flags byte),
# then 24 __u32: rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets,
# last_data_sent, last_ack_sent, last_data_recv, last_ack_recv, pmtu, rcv_ssthresh, rtt,
# rttvar, snd_ssthresh, snd_cwnd, advmss, reordering, rcv_rtt, rcv_space, total_retrans.
# Every field is naturally aligned, so "=" (native order, no padding) matches the kernel's.
_BASE = struct.Struct("=8B24I")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")
# Offsets of the later fields used here (and the kernel that added them).
_BYTES_ACKED = 120  # __u64, 4.1
_BYTES_RECEIVED = 128  # __u64, 4.1
_SEGS_OUT = 136  # __u32, 4.2
_SEGS_IN = 140  # __u32, 4.2
_MIN_RTT = 148  # __u32, 4.6
_DATA_SEGS_OUT = 156  # __u32, 4.6
_DELIVERY_RATE = 160  # __u64, 4.9
_NO_MIN_RTT = 0xFFFFFFFF  # ~0U: the kernel has no RTT sample yet
# What to ask getsockopt for: the fields read here end with delivery_rate, and the kernel
# copies no more than it is asked for.
BUFFER_SIZE = _DELIVERY_RATE + _U64.size
ESTABLISHED = 1  # tcpi_state, from include/net/tcp_states.h


@dataclass(frozen=True, slots=True)
class TcpInfo:
    """One reading of a TCP connection's kernel state (``struct tcp_info``).

    Times are in ms (the kernel's are µs); ``delivery_rate`` is in bytes per second. Fields a
    kernel older than the one named does not report are None.
    """

    state: int  # tcpi_state: 1 established, 7 closed, 10 listening, ...
    retransmits: int  # retransmission timeouts in a row of the oldest unacknowledged segment
    rto_ms: float  # the current retransmission timeout
    unacked: int  # segments in flight
    lost: int  # segments in flight the kernel considers lost
    retrans: int  # segments in flight that are retransmissions
    rtt_ms: float  # smoothed RTT (0 before the first sample)
    rttvar_ms: float  # its mean deviation
    snd_cwnd: int  # congestion window, in segments
    total_retrans: int  # segments retransmitted over the connection's life
    bytes_acked: int | None  # 4.1: bytes sent and acknowledged by the peer
    bytes_received: int | None  # 4.1
    segs_out: int | None  # 4.2: segments sent, pure ACKs and retransmissions included
    segs_in: int | None  # 4.2
    min_rtt_ms: float | None  # 4.6: the lowest RTT seen recently (None: no sample yet)
    data_segs_out: int | None  # 4.6: segments sent that carried data, retransmissions included
    delivery_rate: int | None  # 4.9: bytes per second, over the most recent acknowledged flight


def parse_tcp_info(buffer: bytes) -> TcpInfo | None:
    """A reading from the bytes of ``getsockopt(IPPROTO_TCP, TCP_INFO)``; None if they are
    too few to hold even the fields every kernel since 2.6 reports."""
    if len(buffer) < _BASE.size:
        return None
    base = _BASE.unpack_from(buffer)
    min_rtt = _field(buffer, _U32, _MIN_RTT)
    return TcpInfo(
        state=base[0],
        retransmits=base[2],
        rto_ms=base[8] / 1000.0,
        unacked=base[12],
        lost=base[14],
        retrans=base[15],
        rtt_ms=base[23] / 1000.0,
        rttvar_ms=base[24] / 1000.0,
        snd_cwnd=base[26],
        total_retrans=base[31],
        bytes_acked=_field(buffer, _U64, _BYTES_ACKED),
        bytes_received=_field(buffer, _U64, _BYTES_RECEIVED),
        segs_out=_field(buffer, _U32, _SEGS_OUT),
        segs_in=_field(buffer, _U32, _SEGS_IN),
        min_rtt_ms=None if min_rtt is None or min_rtt == _NO_MIN_RTT else min_rtt / 1000.0,
        data_segs_out=_field(buffer, _U32, _DATA_SEGS_OUT),
        delivery_rate=_field(buffer, _U64, _DELIVERY_RATE),
    )


def _field(buffer: bytes, layout: struct.Struct, offset: int) -> int | None:
    if len(buffer) < offset + layout.size:
        return None
    value: int = layout.unpack_from(buffer, offset)[0]
    return value


class ConnectionState:
    """What a peer keeps of its connection: the latest kernel reading while the connection
    is watched, the application echo's RTT, and where its loss window starts.

    The loss window is two halves of ``window_s / 2``: the share of retransmissions is taken
    from the start of the previous half, so it always covers between half and the whole of
    the window, at the cost of five numbers rather than a ring.
    """

    __slots__ = (
        "app_rtt_ms",
        "base_retrans",
        "base_segs",
        "info",
        "mark_retrans",
        "mark_segs",
        "mark_time",
    )

    def __init__(self, app_rtt_ms: float | None = None) -> None:
        self.info: TcpInfo | None = None
        self.app_rtt_ms = app_rtt_ms
        self.mark_time: float | None = None  # start of the current half; None: no reading yet
        self.mark_retrans = self.mark_segs = 0
        self.base_retrans = self.base_segs = 0  # counters at the start of the previous half

    def take(self, info: TcpInfo, now: float, window_s: float) -> tuple[float | None, float | None]:
        """Keep ``info`` as the latest reading; return (an RTT sample, a loss percentage),
        each None when this reading gives none.

        The sample is the kernel's smoothed RTT, and only when the peer acknowledged data
        since the previous reading: the kernel takes RTT samples from acknowledgements of
        new data, so on an idle connection (or one whose peer stopped answering) ``rtt_ms``
        is the figure of the last data that got through, and recording it every tick would
        show a dead peer as measured, with a stale value. The first reading only sets the
        baseline.
        """
        previous, self.info = self.info, info
        sample = None
        if previous is not None and info.rtt_ms > 0.0 and _acked_new_data(previous, info):
            sample = info.rtt_ms
        return sample, self._loss(info, now, window_s)

    def _loss(self, info: TcpInfo, now: float, window_s: float) -> float | None:
        """Retransmitted segments per data segment sent over the window, in percent.

        Data segments (``data_segs_out``) include the retransmissions, so a path that drops
        a share p of the segments settles at p: each segment takes 1/(1 − p) sends on
        average, and the sends after the first are that figure's share p. Pure ACKs are
        left out (``segs_out`` would count them), so a connection that mostly receives does
        not dilute its loss. None on kernels before
        4.6, and while nothing was sent in the window (no evidence either way).
        """
        segs = info.data_segs_out
        if segs is None:
            return None
        retrans = info.total_retrans
        if self.mark_time is None:
            self.mark_time = now
            self.mark_retrans = self.base_retrans = retrans
            self.mark_segs = self.base_segs = segs
            return None
        if now - self.mark_time >= window_s / 2.0:
            self.base_retrans, self.base_segs = self.mark_retrans, self.mark_segs
            self.mark_time, self.mark_retrans, self.mark_segs = now, retrans, segs
        sent = segs - self.base_segs
        if sent <= 0:
            return None
        return min(100.0, 100.0 * max(0, retrans - self.base_retrans) / sent)

    def unwatched(self) -> None:
        """The connection is no longer read: its figures go, the echo's RTT stays."""
        self.info = None
        self.mark_time = None


def _acked_new_data(previous: TcpInfo, info: TcpInfo) -> bool:
    if info.bytes_acked is not None and previous.bytes_acked is not None:
        return info.bytes_acked != previous.bytes_acked
    # Before 4.1 there is no count of acknowledged bytes; a new RTT estimate is the sign.
    return (info.rtt_ms, info.rttvar_ms) != (previous.rtt_ms, previous.rttvar_ms)
