"""Alerting: rules evaluated on the Monitor's ticks, the alert log, silences and notifiers.

It sits below the outputs (``/ws`` and REST show alerts, Prometheus exports them, the
avatar adapter hands them to the seed's ``alert_handler``), above the Monitor whose ticks it
reads. docs/ALERTS.md describes it.
"""

from peerscope.alerting.dispatch import (
    BackgroundNotifier,
    Dispatcher,
    Notifier,
    NotifierStats,
    PermanentError,
)
from peerscope.alerting.records import ActiveAlert, AlertEvent, SilenceEntry
from peerscope.alerting.service import Alerting

__all__ = [
    "ActiveAlert",
    "AlertEvent",
    "Alerting",
    "BackgroundNotifier",
    "Dispatcher",
    "Notifier",
    "NotifierStats",
    "PermanentError",
    "SilenceEntry",
]
