"""peerscope's benchmarks: ``make bench`` (``python -m benchmarks``) runs them all.

Each module also runs alone: ``python -m benchmarks.bench_record`` and so on. ``--quick``
uses small counts, for a smoke test. A run exits non-zero when a target is missed and writes
its figures to ``benchmarks/results/<name>.json`` (``benchmarks.runner``); the table at the
top of docs/BENCHMARKS.md is generated from those files (``benchmarks.summary``).
"""
