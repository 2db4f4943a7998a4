"""Run every benchmark, record and judge its figures: ``python -m benchmarks [--quick]``.

Options and exit status: see ``benchmarks.runner``.
"""

from __future__ import annotations

from benchmarks import (
    bench_alerts,
    bench_dashboard,
    bench_fanout,
    bench_idle,
    bench_loop_block,
    bench_memory,
    bench_metrics_render,
    bench_probe,
    bench_profiler,
    bench_record,
    bench_snapshot,
    bench_store,
)
from benchmarks.runner import main

MODULES = (
    bench_record,
    bench_snapshot,
    bench_memory,
    bench_metrics_render,
    bench_loop_block,
    bench_fanout,
    bench_idle,
    bench_probe,
    bench_alerts,
    bench_store,
    bench_dashboard,
    bench_profiler,
)

if __name__ == "__main__":
    raise SystemExit(main([module.run for module in MODULES], "python -m benchmarks"))
