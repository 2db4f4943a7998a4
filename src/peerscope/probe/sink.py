"""What the Prober needs of whoever takes its probes: registering peers and recording probes,
their replies and the failures their targets reported.

:class:`peerscope.monitor.Monitor` is one (structurally: it does not import this module); a
test or another store can be another. The Prober knows nothing else of the Monitor, so the
probes sit below it in the house.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from peerscope.core.loss import Arrival
from peerscope.core.model import PeerKind, ProblemKind
from peerscope.core.path import PathSample


class ProbeSink(Protocol):
    def add_peer(
        self,
        peer_id: str,
        *,
        name: str | None = None,
        address: str | None = None,
        kind: PeerKind = "peer",
        labels: dict[str, str] | None = None,
    ) -> None:
        """Register a peer; for a known id, update its name, address and labels."""

    def remove_peer(self, peer_id: str) -> bool:
        """Forget a peer; False if it was not registered."""

    def __contains__(self, peer_id: object) -> bool:
        """Whether ``peer_id`` is registered."""

    def record_probes_sent(
        self, probes: Iterable[tuple[str, int]], *, timeout_s: float | None = None
    ) -> None:
        """(peer_id, seq) of each probe that left, in flight until its reply or
        ``timeout_s``."""

    def record_probe_replies(
        self, replies: Iterable[tuple[str, int, float]], *, known_only: bool = False
    ) -> list[Arrival]:
        """(peer_id, seq, rtt_ms) of each reply; how each one arrived, in order.
        ``known_only``: replies for peers not registered (any more) are left out."""

    def record_probe_failures(
        self, failures: Iterable[tuple[str, int, ProblemKind, str]], *, known_only: bool = False
    ) -> None:
        """(peer_id, seq, kind, detail) of each probe its target said no to (a refused port,
        a name that does not resolve): lost at once, and the peer's reason says why.
        ``known_only`` as for :meth:`record_probe_replies`."""

    def record_probe_paths(self, samples: Iterable[tuple[str, PathSample]]) -> None:
        """(peer_id, sample) of what TWAMP/STAMP replies said of both directions; samples
        for peers not registered are left out."""
