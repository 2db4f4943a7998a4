"""What the server refuses before any route runs: oversized bodies and unknown Host names.

Both answer in the API's error shape, ``{"error": ..., "detail": ...}`` as JSON, like every
other refusal, so a client has one thing to parse.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from peerscope.core.validation import preview


def error_response(
    status: int, detail: Any, headers: dict[str, str] | None = None, *, error: str | None = None
) -> JSONResponse:
    """The API's error: ``error`` says what went wrong in a few words (by default the
    status's own), ``detail`` names what was wrong."""
    return JSONResponse(
        {"error": error or HTTPStatus(status).phrase.lower(), "detail": detail},
        status_code=status,
        headers=headers,
    )


class ApiError(HTTPException):
    """An HTTPException whose ``error`` words are its own rather than its status's phrase
    (the app's handler answers it with :func:`error_response`)."""

    def __init__(self, status: int, detail: Any, *, error: str) -> None:
        super().__init__(status, detail)
        self.error = error


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, before the route reads them.

    A declared ``Content-Length`` over the limit is refused at once. Otherwise (a chunked
    body, or a length that lies) the body is read here, up to the limit, and handed to the
    route whole: raising from inside the route's own read would reach FastAPI's body parser,
    which reports any failure there as a 400.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }

        async def replay() -> Message:
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(
            413,
            f"body: at most {self.limit} bytes (max_body_bytes)",
            error="request body too large",
        )(scope, receive, send)


class HostCheck:
    """Refuses requests whose ``Host`` is not one of ``allowed_hosts`` with 400.

    Names are compared without the port, case-insensitively; ``*.example.com`` allows every
    subdomain of example.com. WebSocket handshakes are checked too (refused before accept).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        names = [name.lower() for name in allowed_hosts]
        self._exact = frozenset(name.strip("[]") for name in names if not name.startswith("*."))
        self._suffixes = tuple(name[1:] for name in names if name.startswith("*."))

    def allows(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        try:
            host = urlsplit("//" + host_header).hostname
        except ValueError:  # e.g. an unclosed "[" bracket
            return False
        return host is not None and (host in self._exact or host.endswith(self._suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        if self.allows(host):
            await self.app(scope, receive, send)
            return
        response = error_response(
            400,
            f"host: {preview(host)} is not an allowed host name for a server without a "
            "token (allowed_hosts)",
        )
        await response(scope, receive, send)
