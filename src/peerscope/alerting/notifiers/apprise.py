"""Alerts sent through Apprise: one URL each reaches Discord, Slack, Telegram, ntfy, Gotify,
e-mail and a hundred more (https://github.com/caronc/apprise/wiki)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import apprise

from peerscope.alerting.notifiers.text import body, title
from peerscope.alerting.notifiers.worker import Worker
from peerscope.alerting.records import AlertEvent
from peerscope.core.validation import require

__all__ = ["AppriseNotifier"]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# Apprise's notify types by what happened: the colour and icon a chat service shows.
_TYPE_OF_SEVERITY = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "info": apprise.NotifyType.INFO,
}


class AppriseNotifier:
    """Notifies every Apprise URL in ``urls`` (``discord://webhook_id/token``,
    ``slack://...``, ``ntfys://ntfy.sh/topic``, ``mailtos://user:pass@example.com``...).

    The title says the severity (or ``Resolved``), the rule and the peer; the body the
    message, since when it fires, and its labels (see
    :mod:`~peerscope.alerting.notifiers.text`). The notify type follows the severity
    (critical: failure, warning: warning, info: info); a resolve is a success.

    Apprise blocks while it sends, so it runs on a thread of the notifier's own. A URL
    that fails makes the attempt fail (the dispatcher retries); a retry of the same event
    goes only to the URLs that have not had it yet, so a chat channel does not see it
    twice. ``name`` is ``apprise`` and the URLs' schemes only: the URLs hold tokens.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        require(not isinstance(urls, str), "urls", "must be a list of URLs, not one string")
        require(len(urls) > 0, "urls", "must hold at least one Apprise URL")
        # One Apprise object per URL: notify() only says whether all of its URLs worked.
        self._targets: list[tuple[str, apprise.Apprise]] = []
        for index, url in enumerate(urls):
            schemes = _SCHEME.findall(url) if isinstance(url, str) else []
            require(bool(schemes), f"urls[{index}]", "must be a URL such as discord://id/token")
            target = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
            require(
                target.add(url),
                f"urls[{index}]",
                f"Apprise cannot notify this {'+'.join(schemes)}:// URL (its log says why)",
            )
            self._targets.append(("+".join(schemes), target))
        self.name = "apprise " + ", ".join(dict.fromkeys(scheme for scheme, _ in self._targets))
        self._worker = Worker(f"peerscope-notify-{self.name}")
        # The event being sent, and the targets that have had it (for its retries).
        self._event_id: int | None = None
        self._done: set[int] = set()

    async def send(self, event: AlertEvent) -> None:
        if event["id"] != self._event_id:
            self._event_id, self._done = event["id"], set()
        kind = (
            apprise.NotifyType.SUCCESS
            if event["state"] == "resolved"
            else _TYPE_OF_SEVERITY[event["severity"]]
        )
        notify = functools.partial(_notify, title=title(event), body=body(event), notify_type=kind)
        failed = []
        for index, (scheme, target) in enumerate(self._targets):
            if index in self._done:
                continue
            if await self._worker.call(functools.partial(notify, target)):
                self._done.add(index)
            else:
                failed.append(scheme)
        if failed:
            raise RuntimeError(f"apprise: sending to {', '.join(failed)} failed (see its log)")

    async def aclose(self) -> None:
        self._worker.close()


def _notify(
    target: apprise.Apprise, *, title: str, body: str, notify_type: apprise.NotifyType
) -> bool:
    return bool(
        target.notify(
            body=body,
            title=title,
            notify_type=notify_type,
            body_format=apprise.NotifyFormat.TEXT,
        )
    )
