"""The REST API: the seed's paths and shapes (through the LANrage adapter) plus peerscope's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from peerscope import __version__
from peerscope.compat.lanrage import MetricsCollector
from peerscope.core.history import SYSTEM_SERIES
from peerscope.message import system_entry
from peerscope.monitor import Monitor
from peerscope.server import schemas
from peerscope.server.broadcast import Broadcaster

# Days of history at most; a bound keeps the window arithmetic finite.
Duration = Annotated[float, Query(gt=0, le=30 * 86400, description="Seconds back from now.")]
Window = Annotated[float | None, Query(gt=0, le=30 * 86400,
                                       description="Also aggregate over this many seconds.")]
SortKey = Literal["quality", "latency", "id"]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorBody, "description": "Unknown peer"},
    422: {"model": schemas.ErrorBody, "description": "Invalid parameter"},
}


def _sort_key(sort: SortKey) -> Any:
    if sort == "id":
        return lambda entry: entry["client_id"]
    if sort == "latency":
        # Slowest first; unmeasured peers last.
        return lambda entry: (entry["smoothed_latency_ms"] is None,
                              -(entry["smoothed_latency_ms"] or 0.0))
    # Worst quality first; unscored peers last.
    return lambda entry: (entry["quality_score"] is None, entry["quality_score"] or 0.0)


def build_router(monitor: Monitor, broadcaster: Broadcaster) -> APIRouter:
    router = APIRouter(prefix="/api", responses=ERRORS)
    seed = MetricsCollector(monitor=monitor)

    async def peer_summary(entry: dict[str, Any], window: float | None) -> dict[str, Any]:
        peer_id = entry["client_id"]
        summary = await seed.get_peer_summary(peer_id)
        if summary is None:
            raise HTTPException(404, f"unknown peer_id {peer_id!r}")
        if window is not None:
            summary["window"] = monitor.latency_stats(peer_id, window)
        return {**entry, **summary}

    def entry_or_404(peer_id: str) -> dict[str, Any]:
        try:
            return monitor.peer(peer_id)
        except KeyError:
            raise HTTPException(404, f"unknown peer_id {peer_id!r}") from None

    async def system_summary() -> dict[str, Any]:
        return {**seed.get_system_summary(), "current": system_entry(monitor.system)}

    @router.get("/metrics/summary", response_model=schemas.Summary,
                summary="Peers, host and the network's quality score")
    async def summary() -> dict[str, Any]:
        message = monitor.last_message or monitor.snapshot()
        return {
            "peers": [await peer_summary(entry, None) for entry in monitor.peers()],
            "system": await system_summary(),
            "network_quality": message["network"]["score"],
            "network": message["network"],
        }

    @router.get("/metrics/peers", response_model=schemas.PeerPage,
                summary="Every peer, paged and sorted")
    async def peers(limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                    offset: Annotated[int, Query(ge=0)] = 0,
                    sort: SortKey = "quality") -> dict[str, Any]:
        entries = sorted(monitor.peers(), key=_sort_key(sort))
        page = entries[offset:offset + limit]
        return {"peers": [await peer_summary(entry, None) for entry in page],
                "total": len(entries), "limit": limit, "offset": offset, "sort": sort}

    @router.get("/metrics/peers/{peer_id}", response_model=schemas.PeerSummary,
                summary="One peer's figures")
    async def peer(peer_id: str, window: Window = None) -> dict[str, Any]:
        return await peer_summary(entry_or_404(peer_id), window)

    @router.get("/metrics/peers/{peer_id}/latency", response_model=schemas.LatencyHistory,
                summary="A peer's latency samples and their statistics")
    async def latency(peer_id: str, duration: Duration = 3600.0) -> dict[str, Any]:
        entry_or_404(peer_id)
        return {"peer_id": peer_id, "duration": duration,
                "data": seed.get_latency_history(peer_id, duration),
                "stats": monitor.latency_stats(peer_id, duration)}

    @router.get("/metrics/system", response_model=schemas.SystemSummary,
                summary="The host now, with averages and maxima over the kept history")
    async def system() -> dict[str, Any]:
        return await system_summary()

    @router.get("/metrics/system/history", response_model=schemas.SystemHistory,
                summary="Host history (CPU, memory, network rates)")
    async def system_history(duration: Duration = 3600.0) -> dict[str, Any]:
        return {"duration": duration, "data": seed.get_system_history(duration)}

    @router.get("/metrics/system/stats", response_model=schemas.SystemStats,
                summary="Host figures aggregated over a window")
    async def system_stats(window: Annotated[float, Query(gt=0, le=30 * 86400)] = 60.0,
                           ) -> dict[str, Any]:
        return {"window": window,
                "stats": {name: monitor.system_stats(name, window) for name in SYSTEM_SERIES}}

    @router.get("/metrics/sessions", response_model=schemas.Sessions,
                summary="Recent ended sessions with their latency")
    async def sessions(limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> dict[str, Any]:
        return {"sessions": seed.get_game_sessions(limit)}

    @router.get("/metrics/server", response_model=schemas.ServerStats,
                summary="Connections, messages and rates of this server")
    async def server() -> Any:
        return monitor.server_stats()

    @router.get("/metrics/current", response_model=schemas.MetricsMessage,
                summary="The latest metrics message, as /ws pushes it")
    async def current() -> dict[str, Any]:
        return monitor.last_message or monitor.snapshot()

    @router.get("/health", response_model=schemas.Health, summary="Is peerscope up?")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "monitor_running": monitor.is_running,
                "uptime_seconds": monitor.server_stats().uptime_seconds,
                "peers": len(monitor.peer_ids), "websocket_subscribers": len(broadcaster)}

    return router
