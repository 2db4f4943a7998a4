"""The benchmarks still run (figures and targets are judged by `make bench`, not here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_benchmarks_run_and_print_their_figures():
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--quick"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ratio peerscope / prometheus cached child (median):" in out
    assert "bench_snapshot:" in out
    assert "tracemalloc, after one tick:" in out
    assert "bench_loop_block:" in out
    assert "for reference, one tick with every peer changed" in out
    assert "fps (requestAnimationFrame in the page): mean" in out
