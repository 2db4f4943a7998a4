"""Alert rules evaluated on the Monitor's ticks: which rule is pending or firing for whom.

The state of one rule for one subject is :class:`peerscope.core.alerts.Alert`; this keeps
those of every rule and subject and decides which to step on a tick, so that a tick costs
what changed, not what exists:

- the readings the tick lists as changed are passed over once for all peer rules
  (:mod:`peerscope.alerting.prefilter`), keeping those that breach any; each rule tests only
  those, and an :class:`Alert` is made only for a breach; the alerts that already exist are
  stepped with their peers' readings;
- what moves with time alone is kept in two heaps: alerts waiting on a clock (``for_s``,
  ``keep_firing_for_s``, a repeat) by when it falls due, and, for an ``idle_seconds > N``
  rule, each peer by when it would cross N with no new traffic;
- the host and server rules have one subject each and are stepped every tick.

Only pending and firing alerts are kept: an inactive one is no alert at all.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

from peerscope.alerting.prefilter import (
    IDLE_METRIC,
    READING_FIELD,
    Prefilter,
    compile_prefilter,
)
from peerscope.core import quality
from peerscope.core.alerts import (
    DEFAULT_RULES,
    OPS,
    Alert,
    AlertRule,
    Notification,
    Value,
)
from peerscope.core.model import ServerStats, SystemSample
from peerscope.core.validation import require
from peerscope.events import MetricsTick, PeerReading

__all__ = ["Evaluator", "breaching", "check_rules"]


def peer_value(metric: str, reading: PeerReading, now: float) -> Value:
    """The value of a peer metric in ``reading`` at ``now`` (None: no data)."""
    index = READING_FIELD.get(metric)
    if index is not None:
        return cast(Value, reading[index])
    if metric == IDLE_METRIC:
        return max(0.0, now - reading.last_seen)
    # mos: as the peer's entry computes it, from the smoothed latency
    latency, jitter = reading.smoothed_latency_ms, reading.jitter_ms
    if latency is None or jitter is None:
        return None
    return quality.mos(latency, jitter, reading.loss_percent)


def host_value(metric: str, system: SystemSample, server: ServerStats) -> Value:
    """The value of a host or server metric (None: no data)."""
    if metric == "cpu_percent":
        return system.cpu_percent if system.available else None
    if metric == "memory_percent":
        return system.memory_percent if system.available else None
    if metric == "messages_per_second":
        return server.messages_per_second
    if metric == "active_connections":
        return float(server.active_connections)
    if metric == "loop_lag_ms":
        return server.loop_lag_ms
    return None


def breaching(rule: AlertRule, batch: Sequence[PeerReading], now: float) -> list[PeerReading]:
    """The readings in ``batch`` that breach ``rule`` (no data counts with ``nodata =
    "alerting"``): the rule's own test, over what the pre-filter kept or, for what it does
    not cover, every changed reading. Kept to comprehensions that make no object per
    reading: at 10,000 readings a tuple each is what wakes the garbage collector, which then
    walks every peer's rings."""
    compare, threshold = OPS[rule.op], rule.threshold
    alerting = rule.nodata == "alerting"
    index = READING_FIELD.get(rule.metric)
    if index is not None:
        if alerting:
            return [r for r in batch if (v := r[index]) is None or compare(v, threshold)]
        return [r for r in batch if (v := r[index]) is not None and compare(v, threshold)]
    if rule.metric == IDLE_METRIC and rule.op in (">", ">="):
        # idle > N is last_seen before now - N: one comparison, no arithmetic per peer.
        assert isinstance(threshold, float)
        line = now - threshold
        if rule.op == ">":
            return [r for r in batch if r.last_seen < line]
        return [r for r in batch if r.last_seen <= line]
    metric = rule.metric
    if alerting:
        return [
            r for r in batch if (v := peer_value(metric, r, now)) is None or compare(v, threshold)
        ]
    return [
        r for r in batch if (v := peer_value(metric, r, now)) is not None and compare(v, threshold)
    ]


def check_rules(rules: Iterable[object]) -> tuple[AlertRule, ...]:
    """``rules`` as a tuple, refused (``ValueError`` naming ``rules[i]``) unless each is an
    :class:`AlertRule` and no two share a name."""
    checked: list[AlertRule] = []
    names: set[str] = set()
    for index, rule in enumerate(rules):
        field = f"rules[{index}]"
        require(isinstance(rule, AlertRule), field, f"must be an AlertRule, got {type(rule)}")
        assert isinstance(rule, AlertRule)
        require(rule.name not in names, f"{field}.name", f"{rule.name!r} is used twice")
        names.add(rule.name)
        checked.append(rule)
    return tuple(checked)


def due_at(alert: Alert) -> float | None:
    """When ``alert`` could move with no new value: its ``for_s`` ends, its
    ``keep_firing_for_s`` ends, or a repeat falls due. None: only a new value moves it."""
    rule = alert.rule
    if alert.state == "pending":
        assert alert.since is not None
        return alert.since + rule.for_s
    due = alert.next_repeat_at
    if alert.cleared_at is not None:
        ends = alert.cleared_at + rule.keep_firing_for_s
        due = ends if due is None else min(due, ends)
    return due


@dataclass(slots=True)
class _IdleWatch:
    """For a rule ``idle_seconds > N`` (or ``>=``): each peer by when it crosses N unheard.

    One heap entry per peer at most (``queued`` holds the ``last_seen`` it was queued with):
    a peer heard again is re-queued only when its entry comes up, so heavy traffic costs a
    dict lookup per tick, not a push.
    """

    heap: list[tuple[float, str]]
    queued: dict[str, float]


class Evaluator:
    """The rules' alerts, stepped by :meth:`evaluate` on each tick.

    Not thread-safe: call it from the thread that dispatches the Monitor's events.
    """

    def __init__(self, rules: Sequence[AlertRule] = DEFAULT_RULES) -> None:
        self._rules: dict[str, AlertRule] = {}
        self._alerts: dict[str, dict[str | None, Alert]] = {}
        self._idle: dict[str, _IdleWatch] = {}
        # (due, rule name, subject); an entry whose alert no longer has that due is stale.
        self._timers: list[tuple[float, str, str]] = []
        self._readings: dict[str, PeerReading] = {}
        # Rules new since the last tick: their first pass reads every known peer.
        self._unseen: set[str] = set()
        self._system: SystemSample | None = None
        self._server: ServerStats | None = None
        self._prefilter: Prefilter = compile_prefilter(())
        self.replace_rules(check_rules(rules), now=0.0)

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        return tuple(self._rules.values())

    def replace_rules(self, rules: Sequence[AlertRule], now: float) -> list[Notification]:
        """Evaluate ``rules`` (checked by :func:`check_rules`) from now on.

        A rule kept unchanged keeps its alerts; the alerts of a rule removed or changed are
        resolved (what they said no longer holds under the new rule); a new or changed rule
        reads every known peer at the next tick.
        """
        notes: list[Notification] = []
        wanted = {rule.name: rule for rule in rules}
        for name, rule in list(self._rules.items()):
            if wanted.get(name) != rule:
                for alert in self._alerts.pop(name).values():
                    notes.extend(alert.resolve(now)[1])
                self._idle.pop(name, None)
                del self._rules[name]
                self._unseen.discard(name)
        for name, rule in wanted.items():
            if name not in self._rules:
                self._alerts[name] = {}
                self._unseen.add(name)
                if rule.metric == IDLE_METRIC and rule.op in (">", ">="):
                    self._idle[name] = _IdleWatch([], {})
        # Keep the caller's order (the order rules are listed in).
        self._rules = {name: self._rules.get(name, rule) for name, rule in wanted.items()}
        self._prefilter = compile_prefilter(tuple(self._rules.values()))
        return notes

    def restore_firing(
        self, rule_name: str, subject: str | None, fired_at: float, now: float
    ) -> bool:
        """An alert that was firing when an earlier run stopped fires on (its repeats on the
        same grid) until a value clears it; False if no rule of that name runs now."""
        rule = self._rules.get(rule_name)
        if rule is None:
            return False
        repeat = rule.repeat_s
        next_repeat = (
            None
            if repeat is None
            else fired_at + (math.floor(max(0.0, now - fired_at) / repeat) + 1) * repeat
        )
        alert = Alert(rule, subject, "firing", fired_at, fired_at, None, next_repeat)
        self._alerts[rule_name][subject] = alert
        due = due_at(alert)
        if due is not None:
            heapq.heappush(self._timers, (due, rule_name, subject or ""))
        return True

    def alerts(self) -> Iterator[Alert]:
        """Every pending and firing alert."""
        for alerts in self._alerts.values():
            yield from alerts.values()

    def value(self, alert: Alert, now: float) -> Value:
        """The current value of ``alert``'s metric for its subject (None: no data)."""
        metric = alert.rule.metric
        if alert.rule.scope != "peer":
            if self._system is None or self._server is None:
                return None
            return host_value(metric, self._system, self._server)
        reading = self._readings.get(alert.subject or "")
        return None if reading is None else peer_value(metric, reading, now)

    def reading(self, peer_id: str) -> PeerReading | None:
        """The newest reading of ``peer_id`` a tick brought, if it is still known."""
        return self._readings.get(peer_id)

    def forget(self, peer_id: str, now: float) -> list[Notification]:
        """A peer went away: its alerts end (``resolved`` for those that fired)."""
        self._readings.pop(peer_id, None)
        notes: list[Notification] = []
        for alerts in self._alerts.values():
            alert = alerts.pop(peer_id, None)
            if alert is not None:
                notes.extend(alert.resolve(now)[1])
        for watch in self._idle.values():
            watch.queued.pop(peer_id, None)  # its heap entry is dropped when it comes up
        return notes

    def evaluate(self, tick: MetricsTick) -> list[Notification]:
        """Step every alert ``tick`` can move; what is due to be told, in order."""
        now = tick.timestamp
        notes: list[Notification] = []
        self._system, self._server = tick.system, tick.server
        changed = tick.changed
        readings = self._readings
        for reading in changed:
            readings[reading.peer_id] = reading
        # The changed readings that may breach some peer rule, found in one pass for all.
        candidates: list[PeerReading] | None = None
        for name, rule in self._rules.items():
            alerts = self._alerts[name]
            if rule.scope != "peer":
                value = host_value(rule.metric, tick.system, tick.server)
                self._step(alerts.get(None) or Alert(rule), value, now, notes)
                continue
            if name in self._unseen:
                batch = tuple(readings.values())
                breach = breaching(rule, batch, now)
            else:
                batch = changed
                if candidates is None:
                    candidates = self._prefilter(changed, now)
                test = candidates if name in self._prefilter.rules else changed
                breach = breaching(rule, test, now)
            self._step_readings(rule, alerts, batch, breach, now, notes)
            watch = self._idle.get(name)
            if watch is not None:
                self._watch_idle(rule, watch, batch, now, notes)
        self._unseen.clear()
        self._run_timers(now, notes)
        return notes

    def _step_readings(
        self,
        rule: AlertRule,
        alerts: dict[str | None, Alert],
        batch: Sequence[PeerReading],
        breaching: Sequence[PeerReading],
        now: float,
        notes: list[Notification],
    ) -> None:
        """Step ``rule``'s alerts for ``batch`` (the readings looked at) and start one for
        each of ``breaching`` (those of them that breach the rule) that has none."""
        metric = rule.metric
        stepped: set[str] = set()
        if alerts:
            # The alerts this rule already has, stepped with their peers' readings. Fewer
            # alerts than changed readings: all of them, changed or not, which is cheaper
            # than finding the changed ones and tells the same (an alert stepped with the
            # value it already saw moves only as time would move it). Otherwise those of
            # the changed peers.
            if len(alerts) < len(batch):
                readings = self._readings
                pairs = [(alert, readings[key]) for key, alert in alerts.items() if key]
            else:
                pairs = [
                    (alerts[reading.peer_id], reading)
                    for reading in batch
                    if reading.peer_id in alerts
                ]
            for alert, reading in pairs:
                stepped.add(reading.peer_id)
                if not rule.matches(reading.kind, reading.labels):
                    # Its labels changed: no longer this rule's subject.
                    del alerts[reading.peer_id]
                    notes.extend(alert.resolve(now)[1])
                    continue
                self._step(alert, peer_value(metric, reading, now), now, notes)
        for reading in breaching:
            peer_id = reading.peer_id
            if peer_id in stepped or not rule.matches(reading.kind, reading.labels):
                continue
            self._step(Alert(rule, peer_id), peer_value(metric, reading, now), now, notes)

    def _watch_idle(
        self,
        rule: AlertRule,
        watch: _IdleWatch,
        batch: Sequence[PeerReading],
        now: float,
        notes: list[Notification],
    ) -> None:
        assert isinstance(rule.threshold, float)
        threshold, heap, queued = rule.threshold, watch.heap, watch.queued
        for reading in batch:
            if reading.peer_id not in queued and rule.matches(reading.kind, reading.labels):
                queued[reading.peer_id] = reading.last_seen
                heapq.heappush(heap, (reading.last_seen + threshold, reading.peer_id))
        alerts = self._alerts[rule.name]
        # Peers not yet over the line after all (heard since they were queued, or exactly at
        # it for ">"): queued again once the loop is done, so it never sees them twice.
        again: list[PeerReading] = []
        while heap and heap[0][0] <= now:
            _, peer_id = heapq.heappop(heap)
            if queued.pop(peer_id, None) is None:
                continue  # forgotten
            known = self._readings.get(peer_id)
            if known is None or not rule.matches(known.kind, known.labels):
                continue
            idle = peer_value(IDLE_METRIC, known, now)
            assert idle is not None
            if not rule.breached(idle):
                again.append(known)
            elif peer_id not in alerts:  # one already pending or firing moves by itself
                self._step(Alert(rule, peer_id), idle, now, notes)
        for waiting in again:
            queued[waiting.peer_id] = waiting.last_seen
            heapq.heappush(heap, (waiting.last_seen + threshold, waiting.peer_id))
        if len(heap) > 2 * len(queued) + 64:
            # Entries of forgotten peers pile up under churn: rebuild from the live ones.
            watch.heap = [(seen + threshold, peer_id) for peer_id, seen in queued.items()]
            heapq.heapify(watch.heap)

    def _run_timers(self, now: float, notes: list[Notification]) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, name, subject = heapq.heappop(timers)
            alerts = self._alerts.get(name)
            key = subject or None  # "" keys a host or server rule's one subject
            alert = None if alerts is None else alerts.get(key)
            if alert is None or due_at(alert) != due:
                continue  # stale: stepped or ended since
            self._step(alert, self.value(alert, now), now, notes)

    def _step(self, alert: Alert, value: Value, now: float, notes: list[Notification]) -> None:
        new, told = alert.step(value, now)
        if told:
            notes.extend(told)
        if new is alert:
            return
        alerts = self._alerts[alert.rule.name]
        if new.state == "inactive":
            alerts.pop(alert.subject, None)
            return
        alerts[alert.subject] = new
        due = due_at(new)
        if due is not None and due != due_at(alert):
            heapq.heappush(self._timers, (due, alert.rule.name, alert.subject or ""))
