"""Alerts sent to Prometheus Alertmanager through its v2 API, as Prometheus sends them, so
that grouping, inhibition, silencing and routing to receivers can live there.

``POST {url}/api/v2/alerts`` takes a JSON list of alerts, each ``labels`` (what identifies
it: Alertmanager merges posts of the same label set), ``annotations``, ``startsAt``,
``endsAt`` and ``generatorURL``, times in RFC 3339. Alertmanager expects a client to post
an alert again for as long as it fires, and ends it at ``endsAt`` if no post comes: so a
firing alert goes with ``endsAt`` four re-post periods ahead (Prometheus' rule manager
does the same with its resend delay, so a crashed agent's alerts expire there), is posted
again every period, and a resolved one goes once with ``endsAt`` the moment it resolved.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time
from typing import NotRequired

from typing_extensions import TypedDict

from peerscope.alerting.notifiers.http import JsonPoster, check_url, public_origin
from peerscope.alerting.records import AlertEvent
from peerscope.core.validation import validate_number

__all__ = ["AlertmanagerNotifier", "PostableAlert", "label_set", "rfc3339"]

logger = logging.getLogger(__name__)

# A firing alert's endsAt is this many re-post periods ahead: two posts may fail or come
# late before Alertmanager ends it on its own (Prometheus: ValidUntil = 4 × resend delay).
VALID_PERIODS = 4
# At most this many alerts in one request, so a re-post of thousands stays small requests.
BATCH = 64
# Alertmanager's label names (Prometheus' classic ones); a peer's labels may be any Python
# identifier, "région" say, which it refuses with a 400.
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_]")


class PostableAlert(TypedDict):
    """One alert as ``POST /api/v2/alerts`` takes it (its ``postableAlert``)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: str
    endsAt: NotRequired[str]
    generatorURL: NotRequired[str]


def rfc3339(timestamp: float) -> str:
    """``2024-05-01T12:00:03.250Z``: UTC, to the millisecond."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def label_set(labels: dict[str, str]) -> dict[str, str]:
    """``labels`` as Alertmanager takes them: a character a label name may not hold
    becomes ``_`` (a name already valid wins over one that becomes the same), and a label
    with an empty value is left out (to Prometheus and Alertmanager it is no label)."""
    valid = {name: value for name, value in labels.items() if _LABEL_NAME.fullmatch(name)}
    for name, value in labels.items():
        if name not in valid:
            valid.setdefault(_NOT_IN_NAME.sub("_", name), value)
    return {name: value for name, value in valid.items() if value}


def _figure(value: float | str) -> str:
    return value if isinstance(value, str) else format(value, "g")


class AlertmanagerNotifier:
    """Posts alerts to the Alertmanager at ``url`` (its base: ``http://host:9093``, with
    the route prefix if it has one).

    - labels: the event's (``alertname``, ``severity``, ``peer_id``, the peer's and the
      rule's labels), made valid for Alertmanager by :func:`label_set`;
    - annotations: ``summary`` (the event's message), ``metric``, ``value`` (left out
      when there is no data) and ``threshold``;
    - ``startsAt`` when the alert began firing; ``generatorURL`` if given (a link back to
      peerscope's dashboard, say).

    A firing (or repeat) event is posted with ``endsAt`` = now + 4 × ``resend_s``; every
    ``resend_s`` (:meth:`background`, a task of its own) every alert it knows to be firing
    is posted again with a fresh ``endsAt``, whether or not the earlier posts arrived. A
    resolved event is posted once with ``endsAt`` = the moment it resolved, with the
    labels and annotations its firing was posted with, and is not posted again. Posts
    go one at a time, so a re-post can never land after the resolve of the same alert.

    A 400 (Alertmanager refused the alerts) is not retried; 5xx, no connection and no
    answer within ``timeout_s`` are (see :mod:`~peerscope.alerting.notifiers.http`). A
    failed re-post is logged and tried at the next period. ``name`` is ``alertmanager``
    and the URL's ``scheme://host:port`` only.
    """

    def __init__(
        self,
        url: str,
        *,
        resend_s: float = 60.0,
        timeout_s: float = 10.0,
        generator_url: str | None = None,
    ) -> None:
        base = check_url(url, "url")
        self.name = f"alertmanager {public_origin(base)}"
        self._resend_s = validate_number(resend_s, "resend_s", low=0.001)
        self._generator_url = (
            None if generator_url is None else str(check_url(generator_url, "generator_url"))
        )
        endpoint = base.copy_with(path=base.path.rstrip("/") + "/api/v2/alerts")
        self._poster = JsonPoster(
            endpoint,
            self.name,
            timeout_s=validate_number(timeout_s, "timeout_s", low=0.001),
            headers=None,
        )
        # What fires, by (rule, peer_id), as last posted but for endsAt.
        self._firing: dict[tuple[str, str | None], PostableAlert] = {}
        # Held while posting: posts reach Alertmanager in the order they were made.
        self._posting = asyncio.Lock()
        self._reposts_failing = False

    async def send(self, event: AlertEvent) -> None:
        key = (event["rule"], event["peer_id"])
        if event["state"] == "resolved":
            alert = self._firing.pop(key, None) or self._postable(event)
            alert = {**alert, "endsAt": rfc3339(event["timestamp"])}
        else:
            self._firing[key] = self._postable(event)
            alert = {**self._firing[key], "endsAt": self._valid_until()}
        async with self._posting:
            await self._poster.post([alert])

    async def background(self) -> None:
        """Re-post what fires every ``resend_s``, until cancelled."""
        while True:
            await asyncio.sleep(self._resend_s)
            await self._repost()

    async def _repost(self) -> None:
        """Post every alert it knows to be firing, with ``endsAt`` moved on; a failure is
        logged (once until a re-post succeeds again), not raised."""
        async with self._posting:
            # Listed under the lock: no alert whose resolve went before this post is in it.
            if not self._firing:
                return
            ends_at = self._valid_until()
            alerts = [{**alert, "endsAt": ends_at} for alert in self._firing.values()]
            try:
                for start in range(0, len(alerts), BATCH):
                    await self._poster.post(alerts[start : start + BATCH])
            except Exception as error:
                if not self._reposts_failing:
                    logger.warning(
                        "alert notifier %s: re-posting %d firing alert(s) failed: %r; "
                        "trying again every %g s",
                        self.name,
                        len(alerts),
                        error,
                        self._resend_s,
                    )
                self._reposts_failing = True
                return
        if self._reposts_failing:
            logger.info("alert notifier %s: re-posting works again", self.name)
            self._reposts_failing = False

    async def aclose(self) -> None:
        await self._poster.aclose()

    def _valid_until(self) -> str:
        return rfc3339(time.time() + VALID_PERIODS * self._resend_s)

    def _postable(self, event: AlertEvent) -> PostableAlert:
        annotations = {
            "summary": event["message"],
            "metric": event["metric"],
            "threshold": _figure(event["threshold"]),
        }
        if event["value"] is not None:
            annotations["value"] = _figure(event["value"])
        alert: PostableAlert = {
            "labels": label_set(event["labels"]),
            "annotations": annotations,
            "startsAt": rfc3339(event["started_at"]),
        }
        if self._generator_url is not None:
            alert["generatorURL"] = self._generator_url
        return alert
