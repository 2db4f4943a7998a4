"""The figures of a probe series: ping's summary plus RFC 3550 jitter, MOS and quality score,
and for TWAMP and STAMP both directions of the path (peerscope.core.path)."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from peerscope.core import quality
from peerscope.core.path import PathFigures, PathSample, PathState
from peerscope.core.quality import Band, Grade, QualityConfig
from peerscope.probe.one_shot import ProbeResult

DEFAULT_CONFIG = QualityConfig()


@dataclass(frozen=True, slots=True)
class Summary:
    """What a series found. Round-trip figures are None when nothing was answered.

    ``refused`` probes (a closed TCP port) and ``unresolved`` ones are lost, as their
    target said so, not only as the network did.

    ``mdev_ms`` is the population standard deviation, as iputils ping prints it; jitter is
    RFC 3550's running estimate over the replies in sequence order; score and MOS judge the
    average RTT with that jitter and the loss, as the Monitor judges a peer.
    """

    sent: int
    received: int
    loss_percent: float
    late: int
    duplicates: int
    refused: int
    unresolved: int
    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    mdev_ms: float | None
    jitter_ms: float | None
    mos: float | None
    quality_score: float | None
    grade: Grade | None
    band: Band | None
    # TWAMP and STAMP, once a reply came: what the replies said of both directions, folded
    # as a peer's PathState folds them (loss by direction over the probes from the first
    # answered one to the last: a reflector's count says nothing of those before or after).
    path: PathFigures | None = None
    # Whether the reflector numbered this session's probes itself (else it copies the
    # sender's seq, or one counter numbers every sender's: no direction).
    stateless_reflector: bool = False


def summarize(
    results: Iterable[ProbeResult], sent: int, config: QualityConfig = DEFAULT_CONFIG
) -> Summary:
    """Summarise a series of ``sent`` probes from its results (in any order)."""
    first: dict[int, float] = {}  # seq -> RTT of its first reply
    samples: list[PathSample] = []
    late = duplicates = refused = unresolved = 0
    for result in results:
        if result.path is not None:
            samples.append(result.path)
        if result.arrival == "duplicate":
            duplicates += 1
        elif result.arrival == "port_closed":
            refused += 1
        elif result.arrival == "unresolved":
            unresolved += 1
        elif result.rtt_ms is not None:
            first.setdefault(result.seq, result.rtt_ms)
            late += result.arrival == "late"
    received = len(first)
    loss = 100.0 * (sent - received) / sent if sent else 0.0
    path = summarize_path(samples)
    stateless = any(sample.reached is None for sample in samples)
    if not first:
        return Summary(
            sent,
            received,
            loss,
            late,
            duplicates,
            refused,
            unresolved,
            min_ms=None,
            avg_ms=None,
            max_ms=None,
            mdev_ms=None,
            jitter_ms=None,
            mos=None,
            quality_score=None,
            grade=None,
            band=None,
            path=path,
            stateless_reflector=stateless,
        )
    rtts = [first[seq] for seq in sorted(first)]
    jitter = 0.0
    for previous, current in itertools.pairwise(rtts):
        jitter = quality.rfc3550_jitter(jitter, previous, current)
    average = math.fsum(rtts) / len(rtts)
    score = quality.quality_score(average, loss, jitter, config)
    return Summary(
        sent,
        received,
        loss,
        late,
        duplicates,
        refused,
        unresolved,
        min(rtts),
        average,
        max(rtts),
        statistics.pstdev(rtts),
        jitter,
        quality.mos(average, jitter, loss),
        score,
        quality.grade(score, config),
        quality.quality_band(score, config),
        path,
        stateless,
    )


def summarize_path(samples: Iterable[PathSample]) -> PathFigures | None:
    """Fold a series' path samples (in any order) as a peer's PathState folds them."""
    # A sample's answered count is its place among the session's replies, so sorting by
    # it restores the order they came in.
    ordered = sorted(samples, key=lambda sample: (sample.epoch, sample.answered))
    if not ordered:
        return None
    state = PathState(window=len(ordered))
    for sample in ordered:
        state.add(sample, 0.0)  # the time of a change is not reported here
    return state.figures()


def result_line(result: ProbeResult) -> str:
    """One probe as ping prints it: ``seq=3 rtt=0.412 ms`` (``ttl=62 rtt=…`` when the
    reflector reports the TTL the probe reached it with), ``seq=4 timeout``, ``seq=5
    refused (port closed)`` or ``seq=6 'db.lan' does not resolve: …``."""
    if result.arrival == "port_closed":
        return f"seq={result.seq} refused (port closed)"
    if result.arrival == "unresolved":
        return f"seq={result.seq} {result.detail}"
    if result.rtt_ms is None:
        return f"seq={result.seq} timeout"
    suffix = {"on_time": "", "late": " (late)", "duplicate": " (DUP!)"}[result.arrival]
    ttl = "" if result.path is None or result.path.ttl is None else f" ttl={result.path.ttl}"
    return f"seq={result.seq}{ttl} rtt={result.rtt_ms:.3f} ms{suffix}"


def summary_lines(address: str, method: str, summary: Summary) -> list[str]:
    lines = [
        f"--- {address} {method} probe statistics ---",
        f"{summary.sent} probes sent, {summary.received} received, "
        f"{summary.loss_percent:.1f}% loss"
        + (f", {summary.refused} refused (port closed)" if summary.refused else "")
        + (f", {summary.unresolved} unresolved" if summary.unresolved else "")
        + (f", {summary.late} late" if summary.late else "")
        + (f", {summary.duplicates} duplicates" if summary.duplicates else ""),
    ]
    if summary.avg_ms is not None:
        lines.append(
            f"rtt min/avg/max/mdev = {summary.min_ms:.3f}/{summary.avg_ms:.3f}/"
            f"{summary.max_ms:.3f}/{summary.mdev_ms:.3f} ms, "
            f"jitter {summary.jitter_ms:.3f} ms"
        )
        lines.append(
            f"quality {summary.quality_score:.1f} ({summary.band}, grade "
            f"{summary.grade}), MOS {summary.mos:.2f}"
        )
    if summary.path is not None:
        lines.append(path_line(summary.path, stateless=summary.stateless_reflector))
    return lines


def path_line(path: PathFigures, *, stateless: bool) -> str:
    """``forward/return loss = 10.0/0.0%, one-way delay = 0.031/0.012 ms (offset-affected),
    ttl 62 (1 path change, was 63)``."""
    if path["forward_loss_percent"] is not None and path["return_loss_percent"] is not None:
        loss = f"forward/return loss = {path['forward_loss_percent']:.1f}/"
        loss += f"{path['return_loss_percent']:.1f}%"
    elif stateless:
        loss = "direction unknown (stateless reflector)"
    else:
        loss = "direction unknown (too few replies)"
    delay = ""
    if path["forward_delay_ms"] is not None and path["return_delay_ms"] is not None:
        delay = (
            f", one-way delay = {path['forward_delay_ms']:.3f}/{path['return_delay_ms']:.3f} ms"
            + ("" if path["delay_clock"] == "synchronized" else " (offset-affected)")
        )
    if path["ttl"] is None:
        ttl = ", ttl not reported"
    elif path["previous_ttl"] is None:
        ttl = f", ttl {path['ttl']}"
    else:
        changes = (
            "1 path change" if path["path_changes"] == 1 else f"{path['path_changes']} path changes"
        )
        ttl = f", ttl {path['ttl']} ({changes}, was {path['previous_ttl']})"
    return loss + delay + ttl
