"""The ASGI app: REST, the live WebSocket stream and /metrics over one Monitor."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from peerscope import __version__
from peerscope.events import Event, MetricsTick
from peerscope.export.prometheus import render
from peerscope.monitor import Monitor
from peerscope.probe.prober import Prober
from peerscope.server.api_docs import mount_api_docs
from peerscope.server.auth import TokenGuard
from peerscope.server.broadcast import Broadcaster
from peerscope.server.dashboard import mount_dashboard
from peerscope.server.peers import build_peers_router
from peerscope.server.rest import api_errors, build_router
from peerscope.server.ws import metrics_socket

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, before the route reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLargeError:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps({"error": "request body too large",
                             "detail": f"at most {self.limit} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLargeError(Exception):
    pass


def _error(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"error": HTTPStatus(status).phrase.lower(), "detail": detail},
                        status_code=status)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this request's path."""
    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, BaseRoute) and route.matches(scope)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def create_app(monitor: Monitor) -> FastAPI:
    """The API over ``monitor``. Mounted in another app, start the Monitor yourself."""
    settings = monitor.settings
    guard = TokenGuard(settings)
    broadcaster = Broadcaster(settings.ws_queue_frames)

    def on_event(event: Event) -> None:
        if isinstance(event, MetricsTick) and len(broadcaster):
            broadcaster.publish(orjson.dumps(event.message))  # once for everyone

    monitor.subscribe(on_event)
    # FastAPI's own /docs and /redoc load from a CDN: mount_api_docs serves /docs offline.
    app = FastAPI(title="peerscope", version=__version__,
                  description="Connection quality and performance of a networked server.",
                  docs_url=None, redoc_url=None)
    app.include_router(build_router(monitor, broadcaster, token_required=guard.required),
                       dependencies=guard.dependencies)
    # Started by serve(), or by the first POST /api/peers when the app is mounted elsewhere.
    prober = Prober(monitor, interval_s=settings.probe_interval, count=settings.probe_count,
                    timeout_s=settings.probe_timeout)
    app.state.prober = prober
    app.include_router(build_peers_router(prober, api_errors(guard.required)),
                       dependencies=guard.dependencies)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        response = _error(error.status_code, error.detail)
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        if error.status_code == 405:
            # Starlette names only the first route with this path; GET and POST /api/peers
            # are two routes.
            response.headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        problems = [{"field": ".".join(str(part) for part in item["loc"]),
                     "message": item["msg"]} for item in error.errors()]
        return _error(422, problems)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await metrics_socket(websocket, monitor, broadcaster, guard, settings)

    metrics_dependencies = [] if settings.metrics_public else guard.dependencies

    @app.get("/metrics", include_in_schema=False, dependencies=metrics_dependencies)
    async def metrics() -> Response:
        # Rendering thousands of peers takes a while; off the loop, /ws frames keep flowing.
        body, content_type = await asyncio.to_thread(render, monitor)
        return Response(body, media_type=content_type)

    mount_dashboard(app)  # the page and its files need no token: they hold no data
    mount_api_docs(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if not guard.required:
        # Without a token the API trusts whoever reaches loopback; a Host check stops a web
        # page from reaching it through a domain re-pointed at 127.0.0.1 (DNS rebinding).
        app.add_middleware(TrustedHostMiddleware,
                           allowed_hosts=[*LOOPBACK_HOSTS, *settings.allowed_hosts])
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    return app
