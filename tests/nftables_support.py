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
    """Fail, saying what to install, when nftables cannot be used (not root, no ``nft``):
    these tests are never skipped; .ci/run runs as root and installs nftables."""
    if shutil.which("nft") is None or os.geteuid() != 0:
        pytest.fail(
            "nftables tests need root and nft: run as root with `apt-get install nftables` "
            "(.ci/run does)"
        )


def _nft(*args: str) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True, text=True, timeout=10)


@contextlib.contextmanager
def dropping(rule: str, *, hook: str = "input") -> Iterator[None]:
    """Drop the packets ``rule`` matches (nft syntax, e.g. ``udp dport 9000`` or ``tcp dport
    9000 numgen random mod 100 < 30``) at ``hook`` until the block ends.

    On the way in by default: a TCP segment dropped on its way out is an error the sender's
    TCP sees (it sends the segment later, as if it had never been sent), not a loss it has to
    recover.
    """
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
        subprocess.run(
            ["nft", "delete", "table", "inet", table], capture_output=True, timeout=10, check=False
        )
