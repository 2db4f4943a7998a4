"""The bearer token: who may read the API, and where the server may listen."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from peerscope.config import Settings, SettingsError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse to listen beyond loopback without a token: the API shows who plays from where."""
    if settings.bearer_token is None and not is_loopback(settings.host):
        raise SettingsError(
            f"host: refusing to bind {settings.host} without a token: anyone who can reach it "
            "could read every peer's address and figures. Set one with --token, "
            'PEERSCOPE_TOKEN or `token = "..."` in the config file, or bind 127.0.0.1.'
        )


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison, so response timing does not leak the token."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


# Listed beside the guard when a token is set, only so OpenAPI documents the scheme; it never
# refuses anything itself (auto_error=False): the check is the guard's, in constant time.
BEARER_SCHEME = HTTPBearer(auto_error=False)


class TokenGuard:
    """FastAPI dependency: 401 unless the request carries the configured token."""

    def __init__(self, settings: Settings) -> None:
        self._token = settings.bearer_token

    @property
    def required(self) -> bool:
        return self._token is not None

    @property
    def dependencies(self) -> list[Any]:
        """What a protected route depends on."""
        if self._token is None:
            return []
        return [Depends(self), Depends(BEARER_SCHEME)]

    def allows(self, request: Request) -> bool:
        """Whether ``request`` may read what the token guards."""
        return self._token is None or token_matches(
            self._token, bearer(request.headers.get("authorization"))
        )

    def __call__(self, request: Request) -> None:
        if not self.allows(request):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def protect(self, app: ASGIApp) -> ASGIApp:
        """``app`` (an ASGI app served by a route of the API) behind the token, refused as
        the API's own routes are; ``app`` itself when no token is set."""
        return app if self._token is None else _Protected(app, self)

    def websocket_allowed(self, websocket: WebSocket) -> bool:
        """A WebSocket may carry the token as a bearer header or a ``token`` query value."""
        if self._token is None:
            return True
        given = bearer(websocket.headers.get("authorization")) or websocket.query_params.get(
            "token"
        )
        return token_matches(self._token, given)


class _Protected:
    """An ASGI app behind a :class:`TokenGuard`. The refusal is raised, as the guard raises it
    for the API's routes, so the app's error handler answers it in the same words."""

    def __init__(self, app: ASGIApp, guard: TokenGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.guard(Request(scope))
        await self.app(scope, receive, send)
