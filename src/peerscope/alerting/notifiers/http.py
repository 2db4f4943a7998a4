"""Posting JSON to a receiver over HTTP, as the webhook and Alertmanager notifiers do: the
client, which answers are worth trying again, and a name for the receiver that holds no
secret.
"""

from __future__ import annotations

import httpx
import orjson

from peerscope._version import __version__
from peerscope.alerting.dispatch import PermanentError
from peerscope.core.validation import require

__all__ = ["JsonPoster", "check_url", "public_origin"]

# Answers that say "not now" rather than "never": a request timeout, too early, too many
# requests. Every 5xx is tried again too: a server's own error may pass. Any other answer
# outside 2xx (a 3xx, 400, 401, 403, 404, 422...) says the request itself is wrong (a bad
# URL, token or body); sending it again would get the same answer.
RETRIED_STATUSES = frozenset({408, 425, 429})
# How much of a refusing receiver's body the error (and so the log) quotes.
QUOTED_CHARS = 200


def check_url(url: object, field_name: str) -> httpx.URL:
    """``url`` parsed, if it is an absolute http(s) URL; the error never quotes the URL, which
    may hold a token."""
    require(isinstance(url, str), field_name, f"must be a string, got {type(url).__name__}")
    assert isinstance(url, str)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ValueError(f"{field_name}: is not a valid URL") from None
    require(
        parsed.scheme in ("http", "https") and bool(parsed.host),
        field_name,
        "must be an http:// or https:// URL with a host",
    )
    return parsed


def public_origin(url: httpx.URL) -> str:
    """``scheme://host[:port]`` of ``url``: what logs may show. User, password, path and query
    are left out, as any of them may be a token (Slack's and Discord's webhooks carry theirs
    in the path)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = "" if url.port is None else f":{url.port}"
    return f"{url.scheme}://{host}{port}"


class JsonPoster:
    """One HTTP client (its connections kept for the next post) that posts JSON to ``url``
    and raises unless the receiver took it: :class:`PermanentError` for an answer that
    says the request itself is wrong, another error for one worth trying again (408, 425,
    429, 5xx; no answer at all, within ``timeout_s``, is an ``httpx`` error).

    The client is made at the first post, on the loop that posts, and closed by
    :meth:`aclose`. Redirects are not followed: a receiver that moved is a setting to fix.
    """

    def __init__(
        self, url: httpx.URL, what: str, *, timeout_s: float, headers: dict[str, str] | None
    ) -> None:
        self.url = url
        self._what = what
        self._timeout_s = timeout_s
        self._headers = {"User-Agent": f"peerscope/{__version__}", **(headers or {})}
        self._client: httpx.AsyncClient | None = None

    async def post(self, body: object) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self._headers, timeout=self._timeout_s, follow_redirects=False
            )
        response = await self._client.post(
            self.url,
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"{self._what} answered HTTP {status}: {response.text[:QUOTED_CHARS]!r}"
        if status in RETRIED_STATUSES or status >= 500:
            raise httpx.HTTPStatusError(detail, request=response.request, response=response)
        raise PermanentError(detail)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
