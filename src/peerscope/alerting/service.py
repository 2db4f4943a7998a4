"""Alerting over one Monitor: rules evaluated on each tick, the log, silences, and the events
handed to listeners (``/ws``) and notifiers.

It subscribes to the Monitor's events; it never reaches into the Monitor. Everything runs on
the thread that dispatches the Monitor's events (the tick, on its loop), and costs what the
tick changed (see :mod:`peerscope.alerting.evaluator`); notifiers send from tasks of their own
(:mod:`peerscope.alerting.dispatch`).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Sequence

from peerscope.alerting.alert_log import AlertLog
from peerscope.alerting.dispatch import Dispatcher, Notifier, NotifierStats
from peerscope.alerting.evaluator import Evaluator, check_rules
from peerscope.alerting.records import (
    ActiveAlert,
    ActiveState,
    AlertEvent,
    SilenceEntry,
    active_of,
    alert_labels,
    event_of,
)
from peerscope.alerting.silences import Silences
from peerscope.core.alerts import DEFAULT_RULES, Alert, AlertRule, Notification
from peerscope.events import Event, MetricsTick, PeerRemoved
from peerscope.monitor import Monitor

__all__ = ["Alerting"]

logger = logging.getLogger(__name__)

Listener = Callable[[AlertEvent], None]
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def _rank(alert: Alert) -> tuple[bool, int, float]:
    assert alert.since is not None
    return (alert.state != "firing", _SEVERITY_RANK[alert.rule.severity], alert.since)


class Alerting:
    """Alert ``rules`` (default: :data:`~peerscope.core.alerts.DEFAULT_RULES`) over
    ``monitor``, told to ``notifiers`` through a :class:`Dispatcher` (pass ``dispatcher``
    to set its queue, timeout and retries). ``history_size`` events are kept in the log.

    Starts evaluating at once (on the Monitor's next tick); :meth:`start` starts the
    notifiers' tasks on the running loop, :meth:`stop` stops them and unsubscribes.
    """

    def __init__(
        self,
        monitor: Monitor,
        rules: Sequence[AlertRule] = DEFAULT_RULES,
        *,
        notifiers: Sequence[Notifier] = (),
        dispatcher: Dispatcher | None = None,
        history_size: int = 1000,
    ) -> None:
        if dispatcher is not None and notifiers:
            raise ValueError("notifiers: give them to the dispatcher, not both")
        self._monitor = monitor
        self._evaluator = Evaluator(rules)
        self._log = AlertLog(history_size)
        self._silences = Silences()
        self._dispatcher = dispatcher if dispatcher is not None else Dispatcher(notifiers)
        self._listeners: list[Listener] = []
        # (rule, subject) of the alerts whose firing reached the notifiers.
        self._told_firing: set[tuple[str, str | None]] = set()
        self._evaluated: MetricsTick | None = None
        self._unsubscribe: Callable[[], None] | None = monitor.subscribe(self._on_event)

    # --- running ------------------------------------------------------------------------

    async def start(self) -> None:
        await self._dispatcher.start()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._dispatcher.stop()

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on (on the dispatching thread; it
        must not block); returns a function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def _on_event(self, event: Event) -> None:
        if isinstance(event, MetricsTick):
            self.evaluate(event)
        elif isinstance(event, PeerRemoved):
            labels = self._peer_labels(event.peer_id)
            notes = self._evaluator.forget(event.peer_id, event.timestamp)
            self._tell(notes, event.timestamp, reason=event.reason, labels=labels)

    def evaluate(self, tick: MetricsTick) -> None:
        """Step the rules on ``tick``, once: a second call with the same tick does nothing,
        so a reader that needs the alerts of this tick (the ``/ws`` message) may call it
        first, whatever order subscribers run in."""
        if tick is self._evaluated:
            return
        self._evaluated = tick
        self._tell(self._evaluator.evaluate(tick), tick.timestamp)

    # --- reading ------------------------------------------------------------------------

    def active(
        self, *, state: ActiveState | None = None, limit: int | None = None
    ) -> list[ActiveAlert]:
        """Pending and firing alerts (only those in ``state`` if given), firing first, then
        by severity (critical first) and age (oldest first); the first ``limit`` of them.

        Entries are made only for the alerts returned: the order is found from the alerts
        themselves, so the few most severe of 10,000 cost little more than a pass.
        """
        alerts: Iterable[Alert] = self._evaluator.alerts()
        if state is not None:
            alerts = [alert for alert in alerts if alert.state == state]
        chosen = (
            sorted(alerts, key=_rank)
            if limit is None
            else heapq.nsmallest(limit, alerts, key=_rank)
        )
        now = self._monitor.now()
        entries = []
        for alert in chosen:
            labels = self._labels(alert.rule, alert.subject)
            silenced = self._silences.silencing(labels, now) is not None
            entries.append(active_of(alert, self._evaluator.value(alert, now), labels, silenced))
        return entries

    def exposed(self) -> list[tuple[str, str, str, str]]:
        """Each pending and firing alert's rule, severity, peer ("" for a host or server
        rule) and state, by rule and peer: what the Prometheus exposition shows of it,
        without the entries :meth:`active` makes (an outage fires one per peer)."""
        return sorted(
            (alert.rule.name, alert.rule.severity, alert.subject or "", alert.state)
            for alert in self._evaluator.alerts()
        )

    def firing(self, limit: int | None = None) -> list[ActiveAlert]:
        """The firing alerts, most severe and oldest first; the first ``limit`` of them."""
        return self.active(state="firing", limit=limit)

    def count(self, state: ActiveState = "firing") -> int:
        """How many alerts are in ``state``."""
        return sum(1 for alert in self._evaluator.alerts() if alert.state == state)

    def history(
        self,
        *,
        after: int | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int | None = None,
    ) -> list[AlertEvent]:
        """Events oldest first (see :meth:`AlertLog.read`)."""
        return self._log.read(after=after, start=start, end=end, limit=limit)

    def restore(self, events: list[AlertEvent], now: float, *, fire_on: bool = True) -> int:
        """Pick up from an earlier run's events (oldest first, as the history store kept
        them); call before the first tick. The log continues from them, and the alerts whose
        last event was a firing one fire on: no second ``firing`` is told when the value
        still breaches, and the notifiers that heard it fire hear it resolve. Returns how
        many alerts fire on. ``fire_on=False`` restores the log only (events whose peer ids
        are hashes name no peer this run will see)."""
        self._log.restore(events)
        if not fire_on:
            return 0
        last: dict[tuple[str, str | None], AlertEvent] = {}
        for event in events:
            last[(event["rule"], event["peer_id"])] = event
        firing = 0
        for key, event in last.items():
            if event["state"] != "firing":
                continue
            if self._evaluator.restore_firing(key[0], key[1], event["started_at"], now):
                firing += 1
                if not event["silenced"]:
                    self._told_firing.add(key)
        return firing

    @property
    def history_size(self) -> int:
        return self._log.size

    @property
    def last_event_id(self) -> int:
        return self._log.last_id

    def notifier_stats(self) -> list[NotifierStats]:
        return self._dispatcher.stats()

    # --- changing -----------------------------------------------------------------------

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        return self._evaluator.rules

    def set_rules(self, rules: Sequence[object]) -> None:
        """Evaluate ``rules`` from now on; ``ValueError`` naming ``rules[i]...`` leaves the
        running rules as they were. A rule removed or changed resolves its alerts."""
        checked = check_rules(rules)
        now = self._monitor.now()
        self._tell(self._evaluator.replace_rules(checked, now), now, reason="rule_changed")

    def silence(
        self, matchers: object, ends_at: object, *, comment: object = "", created_by: object = ""
    ) -> SilenceEntry:
        """Tell no notifier of alerts whose labels hold ``matchers`` until ``ends_at``
        (see :class:`~peerscope.alerting.silences.Silences`)."""
        return self._silences.add(
            matchers, ends_at, self._monitor.now(), comment=comment, created_by=created_by
        )

    def unsilence(self, silence_id: str) -> bool:
        return self._silences.remove(silence_id)

    def silences(self) -> list[SilenceEntry]:
        return self._silences.active(self._monitor.now())

    # --- telling ------------------------------------------------------------------------

    def _peer_labels(self, peer_id: str | None) -> dict[str, str] | None:
        if peer_id is None:
            return None
        reading = self._evaluator.reading(peer_id)
        return None if reading is None else dict(reading.labels)

    def _labels(self, rule: AlertRule, peer_id: str | None) -> dict[str, str]:
        return alert_labels(rule, peer_id, self._peer_labels(peer_id))

    def _tell(
        self,
        notes: list[Notification],
        now: float,
        *,
        reason: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        for note in notes:
            full = alert_labels(
                note.rule,
                note.subject,
                labels if labels is not None else self._peer_labels(note.subject),
            )
            key = (note.rule.name, note.subject)
            silenced = self._silences.silencing(full, now) is not None
            if note.kind == "resolved" and key in self._told_firing:
                # The notifiers were told it fired: they must be told it ended, silence or
                # not, or Alertmanager would hold it (re-posted) and a webhook never hear.
                silenced = False
            event = event_of(
                note,
                event_id=self._log.next_id(),
                labels=full,
                silenced=silenced,
                reason=reason,
            )
            self._log.append(event)
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    logger.exception("alert listener %r failed", listener)
            if silenced:
                continue
            self._dispatcher.offer(event)
            if note.kind == "resolved":
                self._told_firing.discard(key)
            else:
                self._told_firing.add(key)
