"""Alerts posted as JSON to a URL (a webhook): the event itself, one request per event."""

from __future__ import annotations

import re

from peerscope.alerting.notifiers.http import JsonPoster, check_url, public_origin
from peerscope.alerting.records import AlertEvent
from peerscope.core.validation import preview, require, validate_number

__all__ = ["WebhookNotifier"]

# RFC 9110's token: what a header's name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class WebhookNotifier:
    """POSTs each event to ``url`` as a JSON object (the :class:`~peerscope.alerting.AlertEvent`
    as ``/api/alerts/history`` shows it), with ``headers`` added (a token, say).

    A 2xx answer is delivery. 408, 425, 429, any 5xx, no connection and no answer within
    ``timeout_s`` raise, so the dispatcher tries again; any other answer (a 3xx: redirects
    are not followed; 400, 401, 403, 404, 422...) is given up at once (see
    :mod:`~peerscope.alerting.notifiers.http`). A user and password in the URL are sent as
    HTTP basic auth. ``name`` is ``webhook`` and the URL's ``scheme://host:port`` only.
    """

    def __init__(
        self, url: str, *, timeout_s: float = 10.0, headers: dict[str, str] | None = None
    ) -> None:
        parsed = check_url(url, "url")
        self.name = f"webhook {public_origin(parsed)}"
        self._poster = JsonPoster(
            parsed,
            self.name,
            timeout_s=validate_number(timeout_s, "timeout_s", low=0.001),
            headers=_check_headers(headers),
        )

    async def send(self, event: AlertEvent) -> None:
        await self._poster.post(event)

    async def aclose(self) -> None:
        await self._poster.aclose()


def _check_headers(headers: object) -> dict[str, str]:
    """``headers`` if each name is a token and each value a line of ASCII text (what HTTP
    carries as is); errors name the header, never quote its value (it may be a token)."""
    if headers is None:
        return {}
    require(isinstance(headers, dict), "headers", f"must be a dict, got {type(headers).__name__}")
    assert isinstance(headers, dict)
    for name, value in headers.items():
        require(
            isinstance(name, str) and _HEADER_NAME.fullmatch(name) is not None,
            "headers",
            f"name {preview(name)} is not a valid header name",
        )
        require(
            isinstance(value, str) and value.isascii() and value.isprintable(),
            f"headers.{name}",
            "must be printable ASCII text on one line",
        )
    return dict(headers)
