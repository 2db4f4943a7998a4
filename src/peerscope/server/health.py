"""``/api/health``: a liveness answer anyone may read, and the details behind the token.

Load balancers and container health checks cannot send a bearer token, so the bare answer,
``{"status": "ok"}``, needs none; it says only that the process serves HTTP. Who shows the
token (or everyone, when none is set) also gets the figures: peers, subscribers, probing,
and what the reflector answered and refused.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from peerscope._version import __version__
from peerscope.monitor import Monitor
from peerscope.server import schemas
from peerscope.server.auth import BEARER_SCHEME, TokenGuard
from peerscope.server.broadcast import Broadcaster
from peerscope.server.rest import INVALID


def build_health_router(monitor: Monitor, broadcaster: Broadcaster,
                        guard: TokenGuard) -> APIRouter:
    # Never 401: without the token it answers less, not nothing.
    # The scheme is listed (it refuses nothing) so OpenAPI and /docs offer to send the token.
    router = APIRouter(prefix="/api", responses=INVALID,
                       dependencies=[Depends(BEARER_SCHEME)] if guard.required else [])

    @router.get("/health", response_model=schemas.Health,
                response_model_exclude_unset=True,
                summary="Is peerscope up? (the details need the token when one is set)")
    async def health(request: Request) -> dict[str, Any]:
        if not guard.allows(request):
            return {"status": "ok"}
        # Set by serve(): a mounted app answers no probes.
        reflector = getattr(request.app.state, "reflector", None)
        return {"status": "ok", "version": __version__, "monitor_running": monitor.is_running,
                "uptime_seconds": monitor.uptime_seconds,  # O(1): no pass over the peers
                "peers": len(monitor.peer_ids), "websocket_subscribers": len(broadcaster),
                "probed_peers": len(request.app.state.prober.targets()),
                "reflector_port": reflector.port if reflector is not None else None,
                "reflector": None if reflector is None else {
                    "reflected": reflector.reflected, "rejected": reflector.rejected,
                    "not_allowed": reflector.not_allowed,
                    "rate_limited": reflector.rate_limited, "sources": reflector.sources}}

    return router
