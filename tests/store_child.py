"""Heavy ingest into a real history file, until killed: run by tests/test_store_faults.py.

``python tests/store_child.py PATH START PEERS``: a Monitor on a simulated clock that
advances a second a tick, a tick every few milliseconds of real time, ``PEERS`` peers
measured each tick, a HistoryStore on ``PATH``. After each tick one line on stdout:
``<tick time> <time of the newest tick committed, or None> <ticks dropped>``.
"""

from __future__ import annotations

import sys
import time

from peerscope.config import Settings
from peerscope.monitor import Monitor
from peerscope.store import HistoryStore
from peerscope.store_settings import StoreSettings
from peerscope.testing import ManualClock

TICK_S = 0.005  # real time between ticks: 200 simulated seconds a real one, at most


def main(path: str, start: float, count: int) -> None:
    clock = ManualClock(start)
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    # The largest queue: a slow CI machine makes the writer lag, never drop.
    store = HistoryStore(StoreSettings(db=path, flush_interval_s=0.2, queue_size=100_000))
    store.attach(monitor)
    peers = [f"peer-{i}" for i in range(count)]
    out = sys.stdout
    next_tick = time.monotonic()
    while True:
        now = clock.advance(1.0)
        for i, peer in enumerate(peers):
            monitor.record_latency(peer, 20.0 + i % 50 + now % 7)
        monitor.tick()
        stats = store.stats
        out.write(f"{now} {stats.committed_until} {stats.dropped}\n")
        out.flush()
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.monotonic()))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
