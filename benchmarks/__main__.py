"""Run every benchmark and print its figures: ``python -m benchmarks [--quick]``."""

from __future__ import annotations

from benchmarks import (
    bench_dashboard,
    bench_fanout,
    bench_idle,
    bench_loop_block,
    bench_memory,
    bench_metrics_render,
    bench_probe,
    bench_record,
    bench_snapshot,
)
from benchmarks.timing import flags, machine

MODULES = (bench_record, bench_snapshot, bench_memory, bench_metrics_render, bench_loop_block,
           bench_fanout, bench_idle, bench_probe, bench_dashboard)


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in flags(argv)
    print(machine())
    for module in MODULES:
        print()
        module.run(quick=quick)


if __name__ == "__main__":
    main()
