"""Why a peer is judged as it is: a short machine-readable reason and a sentence for people.

The reason names the first that applies of: what the target itself said (a closed port, a
name that does not resolve), no reply, silence, no measurement yet or lately, and then the
part of the score (latency, loss, jitter) furthest past its limit, or, if none is past its
limit but the score is below ``fair_min``, the part that costs the most. Otherwise ``ok``.

For a peer whose path is known both ways (peerscope.core.path), a loss reason says which
way the packets are lost, and the sentence names a path change of the last
``PATH_CHANGE_SHOWN_S``.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict  # pydantic (the API) reads it on Python < 3.12

from peerscope.core.model import ProblemKind
from peerscope.core.path import PathState
from peerscope.core.quality import QualityConfig, StatusRules, limits

ReasonKind = Literal[
    "ok",
    "unmeasured",
    "stale",
    "no_reply",
    "idle",
    "loss",
    "latency",
    "jitter",
    "port_closed",
    "unresolved",
]


class StatusReason(TypedDict):
    kind: ReasonKind
    value: float | None
    threshold: float | None
    detail: str | None


PATH_CHANGE_SHOWN_S = 300.0


def _reason(
    kind: ReasonKind,
    value: float | None = None,
    threshold: float | None = None,
    detail: str | None = None,
) -> StatusReason:
    return {"kind": kind, "value": value, "threshold": threshold, "detail": detail}


def _ago(seconds: float) -> str:
    """Whole units, rounded down, as the dashboard counts "last seen"."""
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds // 3600)} h"


def _figure(value: float) -> str:
    """A measured figure as people read it: whole above 10, one decimal below."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def status_reason(
    *,
    now: float,
    problem: tuple[ProblemKind, str] | None,
    failures: int,
    last_seen: float,
    last_measured_at: float | None,
    latency_ms: float | None,
    loss_percent: float,
    jitter_ms: float,
    score: float | None,
    config: QualityConfig,
    rules: StatusRules,
) -> tuple[StatusReason, str]:
    """(reason, sentence) for a peer with these figures at ``now``."""
    if problem is not None:
        said, detail = problem
        text = "port closed (connection refused)" if said == "port_closed" else detail
        return _reason(said, detail=detail), text
    since = None if last_measured_at is None else max(0.0, now - last_measured_at)
    if failures >= rules.no_reply_after_failures:
        last = "never answered" if since is None else f"last reply {_ago(since)} ago"
        return (
            _reason("no_reply", float(failures), float(rules.no_reply_after_failures)),
            f"no reply to the last {failures} measurements; {last}",
        )
    idle = max(0.0, now - last_seen)
    window = rules.degraded_after_idle_s
    if idle >= window:
        return _reason("idle", idle, window), f"not heard from for {_ago(idle)}"
    if since is not None and since >= window:
        return _reason("stale", since, window), f"no measurement for {_ago(since)}"
    if since is None or latency_ms is None:
        return _reason("unmeasured"), "not measured yet"
    latency_limit, loss_limit, jitter_limit = limits(config)
    # (share of its limit, points it costs, kind, value, limit, unit)
    parts: list[tuple[float, float, ReasonKind, float, float, str]] = [
        (
            latency_ms / latency_limit,
            config.latency_weight * latency_ms / latency_limit,
            "latency",
            latency_ms,
            latency_limit,
            "ms",
        ),
        (
            loss_percent / loss_limit,
            config.loss_weight * loss_percent / loss_limit,
            "loss",
            loss_percent,
            loss_limit,
            "%",
        ),
        (
            jitter_ms / jitter_limit,
            config.jitter_weight * jitter_ms / jitter_limit,
            "jitter",
            jitter_ms,
            jitter_limit,
            "ms",
        ),
    ]
    share, _, kind, value, limit, unit = max(parts, key=lambda part: part[0])
    if share >= 1.0:
        return (
            _reason(kind, value, limit),
            f"{kind} {_figure(value)} {unit} (over {_figure(limit)} {unit})",
        )
    if score is not None and score < config.fair_min:
        _, _, kind, value, limit, unit = max(parts, key=lambda part: part[1])
        return (
            _reason(kind, value, limit),
            f"score {score:.0f}: {kind} {_figure(value)} {unit} costs the most",
        )
    return _reason("ok"), "healthy"


def with_path(
    reason: StatusReason, text: str, path: PathState, now: float
) -> tuple[StatusReason, str]:
    """``reason`` and ``text`` with what ``path`` adds: the direction of a loss, a recent
    path change."""
    directions = path.directions
    if reason["kind"] == "loss" and directions is not None:
        forward, back = directions
        way = "out" if forward >= back else "back"
        split = f"probes {_figure(forward)} %, replies {_figure(back)} %"
        reason = {**reason, "detail": f"lost on the way {way}: {split}"}
        text = f"{text}; mostly lost on the way {way} ({split})"
    change = path.last_change
    if change is not None and now - change.at < PATH_CHANGE_SHOWN_S:
        ago = _ago(max(0.0, now - change.at))
        text = f"{text}; path changed {ago} ago (TTL {change.previous_ttl} → {change.ttl})"
    return reason, text
