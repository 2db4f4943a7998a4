"""Alerts told in the log: one line per event on the logger ``peerscope.alerts``."""

from __future__ import annotations

import logging

from peerscope.alerting.notifiers.text import labels_text
from peerscope.alerting.records import AlertEvent

__all__ = ["ALERTS_LOGGER", "LogNotifier"]

ALERTS_LOGGER = "peerscope.alerts"
logger = logging.getLogger(ALERTS_LOGGER)


class LogNotifier:
    """One line per event on ``peerscope.alerts``: WARNING when an alert fires (or still
    fires: a repeat), INFO when it resolves, with the event's message and labels:

    ``alert firing: high_cpu: cpu_percent 91 > 80 {alertname="high_cpu", severity="warning"}``

    The record carries the event itself as ``record.alert_event``, for a handler that
    writes structured logs, and an alert about a peer its ``peer_id``, as every record
    about a peer does.
    """

    name = "log"

    async def send(self, event: AlertEvent) -> None:
        if event["state"] == "resolved":
            level, what = logging.INFO, "alert"  # the message begins "resolved ..."
        else:
            level, what = (
                logging.WARNING,
                "alert still firing:" if event["repeat"] else "alert firing:",
            )
        logger.log(
            level,
            "%s %s %s",
            what,
            event["message"],
            labels_text(event["labels"]),
            extra={"alert_event": event}
            if event["peer_id"] is None
            else {"alert_event": event, "peer_id": event["peer_id"]},
        )

    async def aclose(self) -> None:
        pass
