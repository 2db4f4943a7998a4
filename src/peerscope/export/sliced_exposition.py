"""Writing Prometheus families a slice at a time, so the event loop runs between slices.

``generate_latest`` writes a family whole; a family of thousands of series (a peer's, an
alert's, a profiled name's each) written at once holds the loop for tens of ms. Written a
slice of series at a time instead, each slice's lines follow the previous slice's without
the HELP and TYPE lines again: joined, the pieces are byte for byte what
``generate_latest`` writes for the whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from peerscope.slices import Steps

__all__ = ["RENDER_SLICE", "Families", "family_steps", "without_header"]

# Series per slice of a render: each step (a family's lines for them) well under 2 ms.
RENDER_SLICE = 50

Item = TypeVar("Item")


class Families(Collector):
    """Families already built, as a collector for ``generate_latest``."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def family_steps(
    build: Callable[[Sequence[Item]], Metric], items: Sequence[Item]
) -> Steps[list[bytes]]:
    """The family ``build`` makes of ``items``, written ``RENDER_SLICE`` items a step (its
    HELP and TYPE lines once, even with no item): joined, the pieces are what
    ``generate_latest`` writes for ``build(items)``."""
    pieces: list[bytes] = []
    for start in range(0, max(1, len(items)), RENDER_SLICE):
        yield
        written = generate_latest(Families([build(items[start : start + RENDER_SLICE])]))
        pieces.append(written if start == 0 else without_header(written))
    return pieces


def without_header(text: bytes) -> bytes:
    """One family's exposition without its first two lines (HELP and TYPE)."""
    return text[text.index(b"\n", text.index(b"\n") + 1) + 1 :]
