"""This process's CPU, memory, threads and open files, read through psutil without waiting.

The CPU percentage is psutil's non-blocking form (``cpu_percent(interval=None)``): the
process's CPU time since the previous reading over the wall time between them, primed when
the reader is made, so a reading never sleeps to measure an interval.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import psutil

__all__ = ["ProcessReader", "ProcessStats"]


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """``cpu_percent`` is of one CPU (above 100 when threads run on several) since the
    previous reading; ``open_fds`` is None where the platform has no file descriptors
    (Windows)."""

    cpu_percent: float
    rss_bytes: int
    threads: int
    open_fds: int | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


class ProcessReader:
    """Reads :class:`ProcessStats` of the current process."""

    __slots__ = ("_process",)

    def __init__(self) -> None:
        self._process = _primed()

    def read(self) -> ProcessStats:
        if self._process.pid != os.getpid():  # a forked child reads itself, not its parent
            self._process = _primed()
        process = self._process
        with process.oneshot():  # one read of /proc/<pid>/stat for all the figures
            return ProcessStats(
                cpu_percent=process.cpu_percent(interval=None),
                rss_bytes=process.memory_info().rss,
                threads=process.num_threads(),
                open_fds=process.num_fds() if hasattr(process, "num_fds") else None,
            )


def _primed() -> psutil.Process:
    process = psutil.Process()
    process.cpu_percent(interval=None)  # starts the interval the next reading measures
    return process
