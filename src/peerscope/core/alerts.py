"""Alert rules and the state machine of one rule for one subject: pending, firing, resolved.

A rule compares one metric with a threshold. For each subject it applies to (the host or
server when the metric is theirs, else each matching peer) an :class:`Alert` holds the state:
``inactive`` → ``pending`` (breached, waiting ``for_s``) → ``firing`` → back to ``inactive``
with a ``resolved`` notification. A firing alert resolves only once the value is on the ok
side of ``clear`` (hysteresis) and has stayed there ``keep_firing_for_s``, so a value
hovering at the threshold notifies once, not every tick. Time is always passed in.
docs/ALERTS.md describes the rules, the states and the defaults.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from peerscope.core.quality import STATUSES, QualityConfig
from peerscope.core.validation import (
    preview,
    real_number,
    require,
    validate_labels,
    validate_text,
)

Scope = Literal["host", "server", "peer"]
Op = Literal[">", ">=", "<", "<=", "==", "!="]
NoData = Literal["ok", "alerting", "keep"]
Severity = Literal["info", "warning", "critical"]
State = Literal["inactive", "pending", "firing"]
NotificationKind = Literal["firing", "repeat", "resolved"]
Value = float | str | None

SCOPE_OF_METRIC: dict[str, Scope] = {
    "cpu_percent": "host",
    "memory_percent": "host",
    "messages_per_second": "server",
    "active_connections": "server",
    "loop_lag_ms": "server",
    "latency_ms": "peer",
    "jitter_ms": "peer",
    "loss_percent": "peer",
    "forward_loss_percent": "peer",
    "return_loss_percent": "peer",
    "quality_score": "peer",
    "mos": "peer",
    "idle_seconds": "peer",
    "status": "peer",
}
# The only metric whose values are words; its rules compare for equality only.
STATUS_METRIC = "status"
# Any: the ordering ops compare numbers, the equality ones numbers or status words.
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
NODATA: tuple[NoData, ...] = ("ok", "alerting", "keep")
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
# A matcher key that tests the peer's kind (``peer`` or ``client``) rather than a label, so a
# rule can be about game clients only, as the seed's stale-client alert was.
KIND_KEY = "kind"


def metric_scope(metric: str) -> Scope:
    """Whether ``metric`` is a host, server or peer metric."""
    try:
        return SCOPE_OF_METRIC[metric]
    except KeyError:
        raise ValueError(
            f"metric: must be one of {', '.join(SCOPE_OF_METRIC)}, got {preview(metric)}"
        ) from None


def _finite(value: object, field_name: str) -> float:
    number = real_number(value, field_name)
    require(math.isfinite(number), field_name, f"must be a finite number, got {preview(value)}")
    return number


def _duration(value: object, field_name: str) -> float:
    number = _finite(value, field_name)
    require(number >= 0, field_name, f"must be >= 0, got {preview(value)}")
    return number


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One metric compared with a threshold; see docs/ALERTS.md for each field."""

    name: str
    metric: str
    op: Op
    threshold: float | str
    clear: float | None = None
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    nodata: NoData = "keep"
    severity: Severity = "warning"
    repeat_s: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_text(self.name, "name", max_length=128)
        scope = metric_scope(self.metric)
        require(self.op in OPS, "op", f"must be one of {', '.join(OPS)}, got {preview(self.op)}")
        if self.metric == STATUS_METRIC:
            require(
                self.threshold in STATUSES,
                "threshold",
                f"must be one of {', '.join(STATUSES)} for status, got {preview(self.threshold)}",
            )
            require(self.op in ("==", "!="), "op", f"must be == or != for status, got {self.op}")
        else:
            object.__setattr__(self, "threshold", _finite(self.threshold, "threshold"))
        if self.clear is not None:
            self._check_clear()
        object.__setattr__(self, "for_s", _duration(self.for_s, "for_s"))
        object.__setattr__(
            self, "keep_firing_for_s", _duration(self.keep_firing_for_s, "keep_firing_for_s")
        )
        require(
            self.nodata in NODATA,
            "nodata",
            f"must be one of {', '.join(NODATA)}, got {preview(self.nodata)}",
        )
        require(
            self.severity in SEVERITIES,
            "severity",
            f"must be one of {', '.join(SEVERITIES)}, got {preview(self.severity)}",
        )
        if self.repeat_s is not None:
            repeat = _finite(self.repeat_s, "repeat_s")
            require(repeat > 0, "repeat_s", f"must be > 0 or None, got {preview(self.repeat_s)}")
            object.__setattr__(self, "repeat_s", repeat)
        # Own copies: the rule is frozen, so no caller may change its labels afterwards.
        object.__setattr__(self, "labels", validate_labels(self.labels, "labels"))
        object.__setattr__(self, "match", validate_labels(self.match, "match"))
        require(
            not self.match or scope == "peer",
            "match",
            f"only peer metrics match peer labels; {self.metric} is a {scope} metric",
        )

    def _check_clear(self) -> None:
        require(
            self.op in (">", ">=", "<", "<=") and self.metric != STATUS_METRIC,
            "clear",
            f"needs an ordering op (>, >=, <, <=) on a numeric metric, got {self.op}",
        )
        clear = _finite(self.clear, "clear")
        assert isinstance(self.threshold, float)  # a numeric metric's, made a float above
        above = self.op in (">", ">=")
        ok_side = clear <= self.threshold if above else clear >= self.threshold
        require(
            ok_side,
            "clear",
            f"must be {'<=' if above else '>='} threshold {self.threshold} (its ok side), "
            f"got {clear}",
        )
        object.__setattr__(self, "clear", clear)

    @property
    def scope(self) -> Scope:
        return SCOPE_OF_METRIC[self.metric]

    def breached(self, value: float | str) -> bool:
        """Whether ``value`` is a breach: ``value op threshold``."""
        return OPS[self.op](value, self.threshold)

    def cleared(self, value: float | str) -> bool:
        """Whether ``value`` is on the ok side of ``clear`` (of ``threshold`` without one)."""
        line = self.threshold if self.clear is None else self.clear
        return not OPS[self.op](value, line)

    def matches(self, kind: str, labels: Mapping[str, str]) -> bool:
        """Whether a peer of this kind with these labels is a subject of the rule: every
        matcher entry equals the peer's label of that name (``kind``: the peer's kind)."""
        for key, wanted in self.match.items():
            have = kind if key == KIND_KEY else labels.get(key)
            if have != wanted:
                return False
        return True

    def check_value(self, value: object) -> Value:
        """``value`` if the rule can compare it: a status word for ``status``, else a finite
        number; ``None`` is no data."""
        if value is None:
            return None
        if self.metric == STATUS_METRIC:
            require(
                isinstance(value, str) and value in STATUSES,
                "value",
                f"must be one of {', '.join(STATUSES)} or None, got {preview(value)}",
            )
            assert isinstance(value, str)
            return value
        return _finite(value, "value")


@dataclass(frozen=True, slots=True)
class Notification:
    """What is due to be told: an alert began firing, still fires, or resolved."""

    kind: NotificationKind
    rule: AlertRule
    subject: str | None
    value: Value
    started_at: float
    at: float


NOTHING: tuple[Notification, ...] = ()


@dataclass(frozen=True, slots=True)
class Alert:
    """The state of one rule for one subject (a peer id; None for the host or server).

    ``since`` is when the current pending-or-firing episode was first breached,
    ``fired_at`` when it began firing, ``cleared_at`` when a firing alert's value last came
    to the ok side of ``clear`` (None while it is not there), ``next_repeat_at`` when the
    next ``repeat`` falls due. :meth:`step` never mutates: it returns the next state, which
    is ``self`` when nothing changed.
    """

    rule: AlertRule
    subject: str | None = None
    state: State = "inactive"
    since: float | None = None
    fired_at: float | None = None
    cleared_at: float | None = None
    next_repeat_at: float | None = None

    def step(self, value: object, now: float) -> tuple[Alert, tuple[Notification, ...]]:
        """The state after seeing ``value`` (None: no data) at ``now``, and what is due."""
        rule = self.rule
        checked = rule.check_value(value)
        if checked is None:
            if rule.nodata == "keep":
                return self._repeat(None, now) if self.state == "firing" else (self, NOTHING)
            breach = rule.nodata == "alerting"
            cleared = not breach
        else:
            breach = rule.breached(checked)
            cleared = rule.cleared(checked)
        if self.state == "inactive":
            if not breach:
                return self, NOTHING
            return replace(self, state="pending", since=now)._pending(checked, now)
        if self.state == "pending":
            if not breach:  # never fired, so nobody is told it is over
                return Alert(rule, self.subject), NOTHING
            return self._pending(checked, now)
        if not cleared:
            held = self if self.cleared_at is None else replace(self, cleared_at=None)
            return held._repeat(checked, now)
        cleared_at = now if self.cleared_at is None else self.cleared_at
        if now - cleared_at >= rule.keep_firing_for_s:
            return self.resolve(now, checked)
        held = self if self.cleared_at == cleared_at else replace(self, cleared_at=cleared_at)
        return held._repeat(checked, now)

    def resolve(self, now: float, value: Value = None) -> tuple[Alert, tuple[Notification, ...]]:
        """End the episode now (a removed peer's alerts, say): ``resolved`` if it fired."""
        inactive = Alert(self.rule, self.subject)
        if self.state != "firing":
            return inactive, NOTHING
        assert self.fired_at is not None
        notice = Notification("resolved", self.rule, self.subject, value, self.fired_at, now)
        return inactive, (notice,)

    def _pending(self, value: Value, now: float) -> tuple[Alert, tuple[Notification, ...]]:
        assert self.since is not None
        if now - self.since < self.rule.for_s:
            return self, NOTHING
        repeat_s = self.rule.repeat_s
        fired = replace(
            self,
            state="firing",
            fired_at=now,
            cleared_at=None,
            next_repeat_at=None if repeat_s is None else now + repeat_s,
        )
        return fired, (Notification("firing", self.rule, self.subject, value, now, now),)

    def _repeat(self, value: Value, now: float) -> tuple[Alert, tuple[Notification, ...]]:
        due = self.next_repeat_at
        if due is None or now < due:
            return self, NOTHING
        assert self.fired_at is not None
        assert self.rule.repeat_s is not None
        # Repeats keep to the grid fired_at + k·repeat_s: a late tick or a gap sends one
        # repeat, not a burst of the missed ones, and does not shift the later ones.
        periods = math.floor((now - self.fired_at) / self.rule.repeat_s) + 1
        nxt = self.fired_at + periods * self.rule.repeat_s
        notice = Notification("repeat", self.rule, self.subject, value, self.fired_at, now)
        # max(): should the division round down at a grid point, the due one is not sent twice.
        return replace(self, next_repeat_at=max(nxt, due + self.rule.repeat_s)), (notice,)


def _defaults() -> tuple[AlertRule, ...]:
    fair = QualityConfig().fair_min
    # Host and link figures are noisy second to second: each numeric rule waits (for_s) so a
    # burst is not an alert, and clears a few units inside its threshold so a value hovering
    # at the line notifies once. Idle time and status are already debounced where they are
    # computed (idle only grows; status follows StatusRules' failure counts and idle
    # windows), so those rules fire at once. No data keeps the state: a figure that is
    # momentarily unknown neither raises nor ends an alert.
    return (
        AlertRule("high_cpu", "cpu_percent", ">", 80.0, clear=75.0, for_s=30.0),
        AlertRule("high_memory", "memory_percent", ">", 85.0, clear=80.0, for_s=60.0),
        AlertRule("high_latency", "latency_ms", ">", 100.0, clear=80.0, for_s=30.0),
        AlertRule(
            "stale_client", "idle_seconds", ">", 60.0, severity="info", match={KIND_KEY: "client"}
        ),
        AlertRule("high_loss", "loss_percent", ">", 5.0, clear=2.0, for_s=30.0),
        AlertRule("poor_quality", "quality_score", "<", fair, clear=fair + 5.0, for_s=30.0),
        AlertRule("peer_disconnected", "status", "==", "disconnected", severity="critical"),
    )


DEFAULT_RULES: tuple[AlertRule, ...] = _defaults()
