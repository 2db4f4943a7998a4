"""``/api/health``: a liveness answer anyone may read, and the details behind the token.

Load balancers and container health checks cannot send a bearer token, so the bare answer,
``{"status": "ok"}``, needs none; it says only that the process serves HTTP. Who shows the
token (or everyone, when none is set) also gets the figures: peers, subscribers, probing,
what the reflector answered and refused, and how the history store is writing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from peerscope._version import __version__
from peerscope.monitor import Monitor
from peerscope.probe.prober import Prober
from peerscope.probe.reflector import Reflector
from peerscope.server import schemas
from peerscope.server.auth import BEARER_SCHEME, TokenGuard
from peerscope.server.broadcast import Broadcaster
from peerscope.server.rest import INVALID
from peerscope.store import HistoryStore


def build_health_router(
    monitor: Monitor,
    broadcaster: Broadcaster,
    guard: TokenGuard,
    prober: Prober | None,
    reflector: Reflector | None,
    store: HistoryStore | None,
) -> APIRouter:
    # Never 401: without the token it answers less, not nothing.
    # The scheme is listed (it refuses nothing) so OpenAPI and /docs offer to send the token.
    router = APIRouter(
        prefix="/api",
        responses=INVALID,
        dependencies=[Depends(BEARER_SCHEME)] if guard.required else [],
    )

    @router.get(
        "/health",
        response_model=schemas.Health,
        response_model_exclude_unset=True,
        summary="Is peerscope up? (the details need the token when one is set)",
    )
    async def health(request: Request) -> dict[str, Any]:
        if not guard.allows(request):
            return {"status": "ok"}
        # A mounted app usually has none; serve()'s answers from start to stop.
        answering = reflector if reflector is not None and reflector.is_running else None
        return {
            "status": "ok",
            "version": __version__,
            "monitor_running": monitor.is_running,
            "uptime_seconds": monitor.uptime_seconds,  # O(1): no pass over the peers
            "peers": len(monitor.peer_ids),
            "websocket_subscribers": len(broadcaster),
            "probed_peers": 0 if prober is None else len(prober.targets()),
            "prober": None if prober is None else prober.counts(),
            "reflector_port": None if answering is None else answering.port,
            "reflector": None
            if answering is None
            else {
                "reflected": answering.reflected,
                "rejected": answering.rejected,
                "malformed": answering.malformed,
                "unpadded": answering.unpadded,
                "not_allowed": answering.not_allowed,
                "rate_limited": answering.rate_limited,
                "sources": answering.sources,
                "sessions": answering.sessions,
                "sessions_evicted": answering.sessions_evicted,
            },
            "store": None if store is None else store_status(store),
        }

    return router


def store_status(store: HistoryStore) -> dict[str, Any]:
    stats = store.stats
    return {
        "path": store.path,
        "error": store.error,
        "samples": stats.samples,
        "flushes": stats.flushes,
        "failed_flushes": stats.failed_flushes,
        "dropped": stats.dropped,
    }
