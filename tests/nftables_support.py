"""Drop traffic on loopback for a while with nftables, in a table of the test's own.

Tests run as root here and in CI, where ``nft`` is installed (``.ci/run``). The table is
named after the process and removed when the block ends, whatever happened inside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest


def require_nftables() -> None:
    """Skip outside CI when nftables cannot be used (not root, no ``nft``); fail in CI."""
    missing = shutil.which("nft") is None or os.geteuid() != 0
    if missing:
        if os.environ.get("CI"):
            pytest.fail("nftables tests need root and nft; .ci/run installs nftables")
        pytest.skip("needs root and nft")


def _nft(*args: str) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True, text=True, timeout=10)


@contextlib.contextmanager
def dropping(rule: str, *, hook: str = "output") -> Iterator[None]:
    """Drop the packets ``rule`` matches (nft syntax, e.g. ``ip daddr 127.0.0.1 udp dport
    9000``) at ``hook`` until the block ends."""
    table = f"peerscope_test_{os.getpid()}"
    _nft("add", "table", "inet", table)
    try:
        _nft(
            "add",
            "chain",
            "inet",
            table,
            "drop_chain",
            f"{{ type filter hook {hook} priority 0 ; policy accept ; }}",
        )
        _nft("add", "rule", "inet", table, "drop_chain", *rule.split(), "drop")
        yield
    finally:
        _nft("delete", "table", "inet", table)
