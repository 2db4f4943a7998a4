"""The shapes alerts are shown in: an event (fired, repeated, resolved), an active alert, a
silence. Plain dicts at run time (TypedDicts), ready for JSON, for REST's schemas to read
and for every notifier to send.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from peerscope.core.alerts import Alert, AlertRule, Notification, Severity, Value

EventState = Literal["firing", "resolved"]
ActiveState = Literal["pending", "firing"]
# Label names an alert always carries; a peer's or rule's label of the same name yields.
ALERTNAME, SEVERITY, PEER_ID = "alertname", "severity", "peer_id"


class AlertEvent(TypedDict):
    """An alert began firing, fires still (``repeat``), or resolved.

    ``id`` grows by one per event (the history's cursor). ``labels`` are what silences and
    Alertmanager match on: the peer's labels, the rule's, then ``alertname``, ``severity``
    and ``peer_id``. ``started_at`` is when the episode began firing; ``timestamp`` when
    this event happened. ``silenced`` events reach no notifier. ``reason`` says why a
    resolve came without the value clearing (``removed``, ``pruned``, ``rule_changed``).
    """

    id: int
    state: EventState
    repeat: bool
    rule: str
    metric: str
    severity: Severity
    peer_id: str | None
    labels: dict[str, str]
    value: Value
    threshold: float | str
    started_at: float
    timestamp: float
    message: str
    silenced: bool
    reason: str | None


class PerformanceAlertMessage(AlertEvent):
    """An event as ``/ws`` pushes it: DESIGN.md's ``performance_alert``."""

    type: Literal["performance_alert"]


class ActiveAlert(TypedDict):
    """A pending or firing alert as ``GET /api/alerts`` and the metrics message list it.

    ``key`` names it for as long as it lasts (``rule`` and ``peer_id``). ``since`` is when
    the breach began; ``started_at`` when it began firing (None while pending). ``value``
    is the metric as of the last tick.
    """

    key: str
    state: ActiveState
    rule: str
    metric: str
    severity: Severity
    peer_id: str | None
    labels: dict[str, str]
    value: Value
    threshold: float | str
    since: float
    started_at: float | None
    message: str
    silenced: bool


class SilenceEntry(TypedDict):
    """A silence: alerts whose labels hold every ``matchers`` entry are told to no notifier
    from ``starts_at`` until ``ends_at``."""

    id: str
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    comment: str
    created_by: str


def alert_key(rule: str, peer_id: str | None) -> str:
    """The name of one rule's alert for one subject: ``rule`` or ``rule/peer_id``."""
    return rule if peer_id is None else f"{rule}/{peer_id}"


def alert_labels(
    rule: AlertRule, peer_id: str | None, peer_labels: dict[str, str] | None
) -> dict[str, str]:
    labels = dict(peer_labels or {})
    labels.update(rule.labels)
    labels[ALERTNAME] = rule.name
    labels[SEVERITY] = rule.severity
    if peer_id is not None:
        labels[PEER_ID] = peer_id
    return labels


def describe(rule: AlertRule, peer_id: str | None, value: Value) -> str:
    """One line a person reads: ``high_latency: peer eu-1 latency_ms 142.3 > 100``."""
    whose = "" if peer_id is None else f" peer {peer_id}"
    shown = "no data" if value is None else _figure(value)
    return f"{rule.name}:{whose} {rule.metric} {shown} {rule.op} {_figure(rule.threshold)}"


def describe_resolved(
    rule: AlertRule, peer_id: str | None, value: Value, reason: str | None
) -> str:
    """``resolved high_latency: peer eu-1 latency_ms 35.2`` (``(removed)`` and no value when
    the subject went away rather than the value clearing)."""
    whose = "" if peer_id is None else f" peer {peer_id}"
    if reason is not None:
        return f"resolved ({reason}) {rule.name}:{whose}"
    shown = "no data" if value is None else _figure(value)
    return f"resolved {rule.name}:{whose} {rule.metric} {shown}"


def _figure(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.1f}".removesuffix(".0") if abs(value) < 1e6 else f"{value:.4g}"


def event_of(
    notice: Notification,
    *,
    event_id: int,
    labels: dict[str, str],
    silenced: bool,
    reason: str | None,
) -> AlertEvent:
    rule = notice.rule
    resolved = notice.kind == "resolved"
    message = (
        describe_resolved(rule, notice.subject, notice.value, reason)
        if resolved
        else describe(rule, notice.subject, notice.value)
    )
    return {
        "id": event_id,
        "state": "resolved" if resolved else "firing",
        "repeat": notice.kind == "repeat",
        "rule": rule.name,
        "metric": rule.metric,
        "severity": rule.severity,
        "peer_id": notice.subject,
        "labels": labels,
        "value": notice.value,
        "threshold": rule.threshold,
        "started_at": notice.started_at,
        "timestamp": notice.at,
        "message": message,
        "silenced": silenced,
        "reason": reason,
    }


def active_of(alert: Alert, value: Value, labels: dict[str, str], silenced: bool) -> ActiveAlert:
    rule = alert.rule
    assert alert.state != "inactive"
    assert alert.since is not None
    return {
        "key": alert_key(rule.name, alert.subject),
        "state": alert.state,
        "rule": rule.name,
        "metric": rule.metric,
        "severity": rule.severity,
        "peer_id": alert.subject,
        "labels": labels,
        "value": value,
        "threshold": rule.threshold,
        "since": alert.since,
        "started_at": alert.fired_at,
        "message": describe(rule, alert.subject, value),
        "silenced": silenced,
    }
