"""The ASGI app: REST, the live WebSocket stream and the dashboard over one Monitor, and
whatever the composition root hands it to serve beside them (the Prober's routes, /metrics,
alerting)."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Scope

from peerscope._version import __version__
from peerscope.alerting import AlertEvent, Alerting
from peerscope.events import Event, MetricsTick
from peerscope.monitor import Monitor
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.profiler import Profiler, get_profiler, profile_block
from peerscope.server.alert_routes import build_alerts_router, tick_message, with_alerts
from peerscope.server.api_docs import mount_api_docs
from peerscope.server.auth import TokenGuard
from peerscope.server.badge import build_badge_router
from peerscope.server.broadcast import Broadcaster
from peerscope.server.dashboard import mount_dashboard
from peerscope.server.edge import ApiError, BodyLimit, HostCheck, error_response
from peerscope.server.export_route import export_router
from peerscope.server.health import build_health_router
from peerscope.server.history_routes import build_history_router
from peerscope.server.history_source import HistorySource
from peerscope.server.peers import build_peers_router
from peerscope.server.profiler_routes import build_profiler_router
from peerscope.server.rest import api_errors, build_router
from peerscope.server.ws import metrics_socket
from peerscope.slices import Turns
from peerscope.store import HistoryStore

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
METRICS_PATH = "/metrics"  # where the Prometheus exporter is served, when it is


# Every method the API might serve; 405's Allow header lists those some route takes here.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this request's path.

    Asked of the routes themselves, one method at a time: FastAPI keeps included routers as
    routes of their own, which hold no list of methods to read.
    """
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    ]


class _AppRoute(Route):
    """A GET route served by an ASGI app (a function too, which Starlette would otherwise
    call as an endpoint taking a request), refusing HEAD as the API's own routes do."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        super().__init__(path, app, methods=["GET"], include_in_schema=False)
        self.app = app
        self.methods = {"GET"}


def create_app(
    monitor: Monitor,
    *,
    prober: Prober | None = None,
    reflector: Reflector | None = None,
    metrics: ASGIApp | None = None,
    turns: Turns | None = None,
    alerting: Alerting | None = None,
    store: HistoryStore | None = None,
    profiler: Profiler | None = None,
) -> FastAPI:
    """The API over ``monitor``: REST, ``/ws``, the dashboard and ``/docs``.

    To mount it in another app, start the Monitor yourself (a mounted app's lifespan does not
    run). ``prober`` (a :class:`~peerscope.probe.prober.Prober` over ``monitor``) adds
    ``/api/peers``, the peers it probes, which POST and DELETE change at run time (the first
    POST starts it; stop it yourself on the way out). ``reflector`` shows in
    ``/api/health`` while it answers. ``metrics`` (the Prometheus exporter's
    :class:`~peerscope.export.metrics_app.MetricsApp`) is served at ``GET /metrics``, behind
    the token unless ``metrics_public``. ``turns`` is shared by the reads of every peer (REST
    listings and, given the same one, ``metrics``), so that they take turns on the loop.
    ``alerting`` (an :class:`~peerscope.alerting.Alerting` over ``monitor``) is served under
    ``/api/alerts`` (which answers 404 without it), its firing alerts ride in every metrics
    message, and each of its events is pushed on ``/ws`` as a ``performance_alert``.
    ``store`` (a :class:`~peerscope.store.HistoryStore` attached to ``monitor``; closing it
    is the caller's) answers the history routes, and the seed's history routes for ranges
    memory no longer holds, and ``/api/export``; without it they answer from memory, and the
    server's history, ``/api/history/events`` and ``/api/export`` answer 404.
    ``profiler`` (by default :func:`peerscope.profiler.get_profiler`'s) is read and switched
    at ``/api/profiler``, where pyinstrument samples the loop on demand.
    """
    settings = monitor.settings
    guard = TokenGuard(settings)
    broadcaster = Broadcaster(settings.ws_queue_frames, settings.ws_stall_timeout_s)

    def on_event(event: Event) -> None:
        if isinstance(event, MetricsTick) and len(broadcaster):
            # Serialized once for everyone; the tick is evaluated first (it is only once,
            # whichever subscriber asks), so the alerts are this tick's.
            with profile_block("peerscope:message"):
                frame = orjson.dumps(tick_message(event, alerting, settings.max_alerts_in_message))
            with profile_block("peerscope:broadcast"):
                broadcaster.publish(frame)

    def on_alert(event: AlertEvent) -> None:
        if len(broadcaster):
            broadcaster.push(orjson.dumps({"type": "performance_alert", **event}))

    monitor.subscribe(on_event)
    if alerting is not None:
        alerting.listen(on_alert)
    # FastAPI's own /docs and /redoc load from a CDN: mount_api_docs serves /docs offline.
    app = FastAPI(
        title="peerscope",
        version=__version__,
        description="Connection quality and performance of a networked server.",
        docs_url=None,
        redoc_url=None,
    )
    # Reads of every peer take turns on the loop, a slice at a time (peerscope.slices).
    turns = Turns() if turns is None else turns
    source = HistorySource(monitor, store)
    # First: the REST routes' /metrics/peers/{id} would take a peer's .../history.
    app.include_router(
        build_history_router(source, api_errors(guard.required)),
        dependencies=guard.dependencies,
    )
    app.include_router(
        build_router(
            monitor,
            broadcaster,
            turns,
            token_required=guard.required,
            latest=lambda: with_alerts(
                monitor.last_message or monitor.snapshot(), alerting, settings.max_alerts_in_message
            ),
            source=source,
        ),
        dependencies=guard.dependencies,
    )
    app.include_router(
        build_alerts_router(alerting, monitor, api_errors(guard.required)),
        dependencies=guard.dependencies,
    )
    # Behind the token unless badge_public: a badge is embedded where no token can be sent.
    badge_guarded = guard.required and not settings.badge_public
    app.include_router(
        build_badge_router(monitor, alerting, api_errors(badge_guarded)),
        dependencies=guard.dependencies if badge_guarded else [],
    )
    # Outside the guard: its bare answer is for health checks that hold no token.
    app.include_router(build_health_router(monitor, broadcaster, guard, prober, reflector, store))
    app.include_router(
        build_profiler_router(
            get_profiler() if profiler is None else profiler, api_errors(guard.required)
        ),
        dependencies=guard.dependencies,
    )
    if store is not None:
        app.include_router(export_router(store), dependencies=guard.dependencies)
    if prober is not None:
        app.include_router(
            build_peers_router(monitor, prober, api_errors(guard.required)),
            dependencies=guard.dependencies,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code != 405:
            return error_response(
                error.status_code,
                error.detail,
                dict(error.headers or {}),
                error=error.error if isinstance(error, ApiError) else None,
            )
        # Starlette names only the first route with this path; GET and POST /api/peers are
        # two routes.
        allowed = ", ".join(allowed_methods(app, request.scope))
        return error_response(
            405,
            f"method: {request.method} is not served at this path; it serves {allowed}",
            {"Allow": allowed},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
            for item in error.errors()
        ]
        return error_response(422, problems)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await metrics_socket(websocket, monitor, broadcaster, guard, settings)

    if metrics is not None:
        # Out of the OpenAPI document: its body is Prometheus's text format, not JSON.
        app.router.routes.append(
            _AppRoute(METRICS_PATH, metrics if settings.metrics_public else guard.protect(metrics))
        )

    mount_dashboard(app)  # the page and its files need no token: they hold no data
    mount_api_docs(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if not guard.required:
        # Without a token the API trusts whoever reaches loopback; a Host check stops a web
        # page from reaching it through a domain re-pointed at 127.0.0.1 (DNS rebinding).
        app.add_middleware(HostCheck, allowed_hosts=[*LOOPBACK_HOSTS, *settings.allowed_hosts])
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
