"""peerscope's benchmarks: ``make bench`` (``python -m benchmarks``) runs them all.

Each module also runs alone: ``python -m benchmarks.bench_record`` and so on. ``--quick``
uses small counts, for a smoke test. Results are recorded in docs/BENCHMARKS.md.
"""
