"""Run every benchmark and print its figures: ``python -m benchmarks [--quick]``."""

from __future__ import annotations

from benchmarks import (
    bench_fanout,
    bench_idle,
    bench_memory,
    bench_metrics_render,
    bench_record,
    bench_snapshot,
)
from benchmarks.timing import flags, machine


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in flags(argv)
    print(machine())
    print()
    bench_record.run(quick=quick)
    print()
    bench_snapshot.run(quick=quick)
    print()
    bench_memory.run(quick=quick)
    print()
    bench_metrics_render.run(quick=quick)
    print()
    bench_fanout.run(quick=quick)
    print()
    bench_idle.run(quick=quick)


if __name__ == "__main__":
    main()
