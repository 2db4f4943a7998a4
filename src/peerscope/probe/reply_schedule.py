"""When a probe sender reads the replies queued on its sockets: on its own schedule, not as
they arrive.

Replies are read before the first probe of every batch of sends (one wake-up of the loop
sends a batch), and, while a probe may still be answered in time, at least every
``read_wait_s`` (and every quarter of the shortest timeout seen). A process woken by every
few replies spent more CPU on waking than on probing (docs/BENCHMARKS.md section 8). The
round trip is the same either way, as the kernel stamped each reply when it arrived (see
:mod:`peerscope.probe.udp`); what waits is only when the caller hears of it.

That holds once the kernel stamps arrivals. Linux turns its receive stamps on for the whole
host lazily, from a work queue, when the first socket asks for them; a datagram that
arrives before then is stamped when it is read, which here may be a read wait later. So
the first probes after a sender opens a socket wait ``STAMPS_WARM_UP_S`` before they go
out (the loop sleeps meanwhile, so the kernel's worker gets to run): :meth:`send_soon`.

The TWAMP/STAMP sender and the ICMP pinger both keep this schedule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

READ_WAIT_S = 0.2  # as long as the Prober's batches at 1 Hz (peerscope.probe.prober)
# The replies of a batch wait in the socket until the next read. Linux grants twice
# min(this, net.core.rmem_max): 425,984 bytes where rmem_max is the default, some 500
# small datagrams, against 256 for a default socket.
RECEIVE_BUFFER = 1 << 20
STAMPS_WARM_UP_S = 0.02
_NS = 1_000_000_000
# Sends this close to a read are one batch, which that read served; reading again before
# each of them would find the socket empty, at the cost of a failed recvmsg.
_BATCH_NS = 1_000_000


class ReplySchedule:
    """Calls ``read`` (read every queued reply, up to a limit; True if more may wait) when
    the schedule says; the sender tells it of every probe with :meth:`before_send`."""

    def __init__(self, read: Callable[[], bool], read_wait_s: float = READ_WAIT_S) -> None:
        self._read_sockets = read
        self._wait_ns = int(read_wait_s * _NS)
        self._next_read_ns = 0  # a send from then on reads the replies queued before it
        self._answerable_until_ns = 0  # when the newest probe's timeout ends
        self._timer: asyncio.Handle | None = None
        self._warm_at = 0.0  # loop time from which the newest socket's arrivals are stamped

    def opened_socket(self) -> None:
        """A socket was opened: its first probes wait until the kernel stamps arrivals."""
        self._warm_at = asyncio.get_running_loop().time() + STAMPS_WARM_UP_S

    def send_soon(self, send: Callable[[], None]) -> None:
        """Call ``send`` right after this callback of the loop, or once a new socket's
        arrivals are stamped."""
        loop = asyncio.get_running_loop()
        warming = self._warm_at - loop.time()
        if warming > 0:
            loop.call_later(warming, send)
        else:
            loop.call_soon(send)

    def before_send(self, now_ns: int, timeout_s: float) -> None:
        """A probe with ``timeout_s`` is about to go: read first if a batch begins, and
        keep reading while it may be answered."""
        if now_ns >= self._next_read_ns:
            self._read(now_ns)
        timeout_ns = int(timeout_s * _NS)
        if now_ns + timeout_ns > self._answerable_until_ns:
            self._answerable_until_ns = now_ns + timeout_ns
        if timeout_ns >> 2 < self._wait_ns:
            self._wait_ns = timeout_ns >> 2
            self._set_timer(None)
        if self._timer is None:
            self._arm(now_ns)

    def cancel(self) -> None:
        self._set_timer(None)

    def _read(self, now_ns: int) -> None:
        self._next_read_ns = now_ns + _BATCH_NS
        if self._read_sockets():  # a flood past the limit: the rest after other callbacks
            self._set_timer(asyncio.get_running_loop().call_soon(self._timed_read))
        else:
            self._arm(now_ns)

    def _arm(self, now_ns: int) -> None:
        """A timed read in ``_wait_ns`` while a probe may be answered on time; else none."""
        if now_ns < self._answerable_until_ns:
            self._set_timer(
                asyncio.get_running_loop().call_later(self._wait_ns / _NS, self._timed_read)
            )
        else:
            self._set_timer(None)

    def _set_timer(self, timer: asyncio.Handle | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = timer

    def _timed_read(self) -> None:
        self._timer = None
        self._read(time.time_ns())
