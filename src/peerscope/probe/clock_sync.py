"""Whether this host's clock is synchronised, and how far off it may be: the kernel's NTP
state, read with ``adjtimex(2)`` (modes 0: read only, no privilege needed).

One-way delays subtract timestamps of two clocks, so they mean something only when both
clocks say they are synchronised; the TWAMP error estimate carries each side's word on it
(the S bit and an error bound). ``chronyd``, ``ntpd`` and ``systemd-timesyncd`` all keep the
kernel's state, so this reads what they concluded. Off Linux, or where the call fails, the
clock counts as not synchronised, with a 1 ms bound (the error estimate's old default).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from typing import NamedTuple

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5
_UNKNOWN_ERROR_S = 2.0**-10
_CACHE_S = 1.0  # the state changes over minutes; one read a second is plenty


class _Timex(ctypes.Structure):
    # struct timex as Linux declares it, up to ``status``; the rest is room, never read.
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_char * 256),
    )


class ClockStatus(NamedTuple):
    synchronized: bool
    error_s: float  # the kernel's estimated error (esterror), or the fallback bound


def _adjtimex() -> ClockStatus:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return ClockStatus(False, _UNKNOWN_ERROR_S)
    if state < 0:
        return ClockStatus(False, _UNKNOWN_ERROR_S)
    synchronized = state != _TIME_ERROR and not timex.status & _STA_UNSYNC
    error_s = timex.esterror / 1e6 if synchronized else _UNKNOWN_ERROR_S
    return ClockStatus(synchronized, max(error_s, 1e-6))


class ClockWatch:
    """:func:`_adjtimex` read at most once a second."""

    def __init__(self) -> None:
        self._status = ClockStatus(False, _UNKNOWN_ERROR_S)
        self._read_at = -_CACHE_S

    def status(self) -> ClockStatus:
        now = time.monotonic()
        if now - self._read_at >= _CACHE_S:
            self._status = _adjtimex()
            self._read_at = now
        return self._status
