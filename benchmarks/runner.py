"""The benchmarks' entry points: run, write the results files, judge the exit status.

``python -m benchmarks [--quick] [--results DIR]`` runs every benchmark; each module runs
alone with ``python -m benchmarks.<module>`` and the same options. Every benchmark runs even
when an earlier one missed its target or failed; the exit status is then 1.

Where the results go: a full run writes ``benchmarks/results/<name>.json`` and regenerates
the summary in docs/BENCHMARKS.md; ``--results DIR`` writes to DIR instead and leaves the doc
alone. A ``--quick`` run writes nothing unless given ``--results DIR``: its figures are not
the real ones and must never replace them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from benchmarks import summary
from benchmarks.results import RESULTS, Record, Result, commit, now, write
from benchmarks.timing import machine

Run = Callable[..., Sequence[Result]]  # a benchmark module's ``run(quick: bool)``


def parse(argv: Sequence[str] | None, command: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=command, description="Run peerscope's benchmarks, judge and record their figures."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small counts, for a smoke test: targets are not judged and "
        "nothing is written unless --results is given",
    )
    parser.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help=f"write the results files to DIR (default: {RESULTS}, full runs only)",
    )
    options = parser.parse_args(argv)
    if (
        options.quick
        and options.results is not None
        and (options.results.resolve() == RESULTS.resolve())
    ):
        parser.error(
            f"--results: {RESULTS} holds the real figures; a --quick run's must go elsewhere"
        )
    return options


def main(runs: Sequence[Run], command: str, argv: Sequence[str] | None = None) -> int:
    """Run every benchmark in ``runs``; 0 when none missed its target or failed, else 1."""
    options = parse(argv, command)
    args = list(sys.argv[1:] if argv is None else argv)
    directory: Path | None = options.results or (None if options.quick else RESULTS)
    where = machine()
    revision = commit()
    print(where)
    records: list[Record] = []
    failed: list[str] = []
    for run in runs:
        print()
        try:
            results = run(quick=options.quick)
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(module_name(run))
            continue
        for result in results:
            record = Record(
                result,
                commit=revision,
                machine=where,
                date=now(),
                command=shlex.join([*command.split(), *args]),
            )
            records.append(record)
            if directory is not None:
                write(record, directory)
    _report(records, failed, directory)
    if directory is not None and directory.resolve() == RESULTS.resolve():
        summary.regenerate()
        print(f"summary regenerated in {summary.DOC}")
    missed = [record.result.name for record in records if record.result.verdict.fails]
    return 1 if missed or failed else 0


def _report(records: Sequence[Record], failed: Sequence[str], directory: Path | None) -> None:
    print()
    print(
        "verdicts"
        + (
            f" (written to {directory})"
            if directory is not None
            else " (not written: --quick without --results)"
        )
    )
    width = max((len(record.result.name) for record in records), default=0)
    for record in records:
        result = record.result
        against = result.ratio_text()
        print(
            f"  {result.name:<{width}}  {result.verdict.value:<11} {result.figure_text()} "
            f"(target {result.target.text(result.unit)}{'; ' + against if against else ''})"
        )
    for module in failed:
        print(f"  {module}: failed with an error (traceback above)")


def module_name(run: Run) -> str:
    """``benchmarks.bench_record``, also when that module runs as ``__main__``."""
    module = sys.modules[run.__module__]
    return module.__spec__.name if module.__spec__ is not None else run.__module__


def run_alone(run: Run, argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of one benchmark module: ``python -m benchmarks.<module> [options]``."""
    raise SystemExit(main([run], f"python -m {module_name(run)}", argv))
