"""Host and process sampling through psutil, never blocking and never raising.

CPU percentages come from psutil's non-blocking mode (``interval=None``), which reports
usage since the previous call; the first call primes it. Network rates are counter deltas
divided by the time elapsed between samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psutil

from peerscope.core.model import SystemSample

_MB = 1024.0 * 1024.0
logger = logging.getLogger(__name__)


class SystemSampler:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._process = psutil.Process()
        self._last_net: tuple[float, int, int] | None = None
        self._failure_logged = False
        self._prime()

    def _prime(self) -> None:
        try:
            psutil.cpu_percent(interval=None)
            self._process.cpu_percent(interval=None)
            net = psutil.net_io_counters()
            self._last_net = (self._clock(), net.bytes_sent, net.bytes_recv)
        except (psutil.Error, OSError) as error:
            self._log_failure(error)

    def sample(self) -> SystemSample:
        """Read the host now; a psutil failure gives ``available=False`` and logs once."""
        now = self._clock()
        try:
            sample = self._read(now)
        except (psutil.Error, OSError) as error:
            self._log_failure(error)
            return SystemSample(timestamp=now, available=False)
        if self._failure_logged:
            logger.info("system metrics available again")
            self._failure_logged = False
        return sample

    def _read(self, now: float) -> SystemSample:
        memory = psutil.virtual_memory()
        net = psutil.net_io_counters()
        sent_rate = recv_rate = 0.0
        if self._last_net is not None:
            then, sent_before, recv_before = self._last_net
            elapsed = now - then
            if elapsed > 0:
                # Counters can wrap or reset (interface restart); a negative delta is not traffic.
                sent_rate = max(0, net.bytes_sent - sent_before) / elapsed
                recv_rate = max(0, net.bytes_recv - recv_before) / elapsed
        self._last_net = (now, net.bytes_sent, net.bytes_recv)
        process = self._process
        with process.oneshot():
            process_cpu = process.cpu_percent(interval=None)
            rss = process.memory_info().rss
            threads = process.num_threads()
            count_fds = getattr(process, "num_fds", None)  # absent on Windows
            fds = count_fds() if count_fds is not None else 0
        return SystemSample(
            timestamp=now,
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_percent=memory.percent,
            memory_used_mb=memory.used / _MB,
            memory_total_mb=memory.total / _MB,
            network_sent_mb=net.bytes_sent / _MB,
            network_recv_mb=net.bytes_recv / _MB,
            network_sent_rate=sent_rate,
            network_recv_rate=recv_rate,
            process_cpu_percent=process_cpu,
            process_rss_mb=rss / _MB,
            process_threads=threads,
            process_fds=fds,
        )

    def _log_failure(self, error: BaseException) -> None:
        if not self._failure_logged:
            logger.warning("system metrics unavailable: %s", error)
            self._failure_logged = True
