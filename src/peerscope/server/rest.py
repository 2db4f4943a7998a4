"""The REST API: the seed's paths and shapes (``peerscope.seed_views``) plus peerscope's."""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import itemgetter
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from peerscope.core.history import SYSTEM_SERIES
from peerscope.core.model import Peer, ServerStats
from peerscope.core.validation import MAX_COUNT, preview, validate_number
from peerscope.message import MetricsMessage, system_entry
from peerscope.monitor import Monitor
from peerscope.pieces import pieces_response
from peerscope.seed_views import (
    game_sessions,
    seed_points,
    summarise_peer,
    system_summary,
)
from peerscope.server import schemas
from peerscope.server.bodies import JsonArray, json_object
from peerscope.server.broadcast import Broadcaster
from peerscope.server.history_source import HistorySource
from peerscope.slices import Steps, Turns, run_sliced
from peerscope.store.export import MAX_TIME_S

# Days of history at most; a bound keeps the window arithmetic finite.
Duration = Annotated[
    float, Query(gt=0, le=30 * 86400, allow_inf_nan=False, description="Seconds back from now.")
]
Window = Annotated[
    float | None,
    Query(
        gt=0,
        le=30 * 86400,
        allow_inf_nan=False,
        description="Also aggregate over this many seconds.",
    ),
]


def epoch_query(alias: str, description: str) -> Any:
    """The query parameter of a range's ``from`` or ``to``: finite epoch seconds."""
    return Query(alias=alias, ge=0, le=MAX_TIME_S, allow_inf_nan=False, description=description)


Since = Annotated[float | None, epoch_query("from", "Start, epoch seconds (excluded).")]
Until = Annotated[float | None, epoch_query("to", "End, epoch seconds (default: now).")]
Step = Annotated[
    float | None,
    Query(
        ge=0.001, le=86400, allow_inf_nan=False, description="Return means per this many seconds."
    ),
]
SortKey = Literal["quality", "latency", "id"]
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": schemas.ErrorBody, "description": "Invalid parameter"},
}
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody, "description": "A body that is not UTF-8 text"},
}
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorBody, "description": "Missing or wrong bearer token"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorBody, "description": "Unknown peer"},
}
METRICS_PEERS_PATH = "/metrics/peers/"
JSON = "application/json"


def raw_peer_id(
    request: Request,
    suffix: str,
    *,
    after: str = METRICS_PEERS_PATH,
) -> str | None:
    """The peer id as the client sent it (the path part after ``after``), with any "%2F"
    kept inside the id.

    None if the raw path does not end in ``suffix`` (the suffix was part of the id).
    """
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").partition("?")[0]
    start = path.find(after)
    if start < 0:
        return None
    tail = path[start + len(after) :]
    if suffix:
        if not tail.endswith(suffix):
            return None
        tail = tail[: -len(suffix)]
    return unquote(tail)


def unknown_peer(peer_id: str) -> str:
    """The 404's detail; a long id is named by a short prefix, not echoed back whole."""
    return f"peer_id: unknown peer {preview(peer_id)}"


def _by_quality(peer: Peer, now: float) -> tuple[float, str]:
    """Worst quality first; unscored peers last."""
    score = peer.quality_score
    return (math.inf if score is None else score), peer.peer_id


def _by_latency(peer: Peer, now: float) -> tuple[float, str]:
    """Slowest first; unmeasured peers last."""
    latency = peer.smoothed_latency_ms
    return (math.inf if latency is None else -latency), peer.peer_id


def _by_id(peer: Peer, now: float) -> tuple[str, str]:
    return peer.peer_id, peer.peer_id


# (sort key, peer id) of a peer, read under the Monitor's lock (Monitor.scan).
SORT_KEYS: dict[SortKey, Callable[[Peer, float], tuple[Any, str]]] = {
    "quality": _by_quality,
    "latency": _by_latency,
    "id": _by_id,
}


def api_errors(token_required: bool) -> dict[int | str, dict[str, Any]]:
    """The errors any API path may answer with."""
    return {**INVALID, **(UNAUTHORIZED if token_required else {})}


def peer_summary(monitor: Monitor, peer_id: str, window: float | None) -> dict[str, Any] | None:
    """The seed summary beside every current figure, in exactly the ``PeerSummary`` shape;
    None if the peer is unknown, or went away meanwhile."""
    found = summarise_peer(monitor, peer_id)
    if found is None:
        return None
    entry, summary = found
    try:
        stats = None if window is None else monitor.latency_stats(peer_id, window)
    except KeyError:
        return None
    shown: dict[str, Any] = {**entry, **summary, "window": stats}
    del shown["probes"]  # not part of the shape
    return shown


def one_peer(monitor: Monitor, peer_id: str, window: float | None) -> dict[str, Any]:
    summary = peer_summary(monitor, peer_id, window)
    if summary is None:
        raise HTTPException(404, unknown_peer(peer_id))
    return summary


def whole_peer(monitor: Monitor, request: Request, peer_id: str) -> JSONResponse:
    """``GET /metrics/peers/{peer_id}``'s answer, for a path a route of a peer's part took
    (``.../x%2Flatency``: an id ending in what looked like the route's own suffix)."""
    text = request.query_params.get("window")
    try:
        window = None if text is None else validate_number(float(text), "window", high=30 * 86400)
    except ValueError:
        raise HTTPException(
            422,
            [
                {
                    "field": "query.window",
                    "message": f"must be a finite number within 0..{30 * 86400}, got "
                    f"{preview(text)}",
                }
            ],
        ) from None
    return JSONResponse(jsonable_encoder(one_peer(monitor, peer_id, window)))


def build_router(
    monitor: Monitor,
    broadcaster: Broadcaster,
    turns: Turns,
    *,
    token_required: bool,
    latest: Callable[[], MetricsMessage],
    source: HistorySource,
) -> APIRouter:
    """The /api routes; ``turns`` runs their reads of every peer (and /metrics) in slices;
    ``latest`` gives the latest metrics message as ``/ws`` shows it (alerts and all);
    ``source`` answers the history routes from memory, or the store for what it no longer
    holds."""
    router = APIRouter(prefix="/api", responses=api_errors(token_required))

    def summaries(peer_ids: list[str]) -> Steps[JsonArray]:
        """The peers' summaries, serialized, a step per peer."""
        found = JsonArray()
        for peer_id in peer_ids:
            # Peers may be removed by another thread while the list is built: left out.
            summary = peer_summary(monitor, peer_id, None)
            if summary is not None:
                found.append(orjson.dumps(summary))
            yield
        return found

    def every_summary() -> Steps[JsonArray]:
        return (yield from summaries(monitor.peer_ids))  # the peers when its turn comes

    def page(limit: int, offset: int, sort: SortKey) -> Steps[list[bytes]]:
        """O(page): only sort keys are read from every peer, summaries only for the page."""
        keys: list[tuple[Any, str]] = []
        for chunk in monitor.scan(SORT_KEYS[sort]):
            keys.extend(chunk)
            yield
        keys.sort(key=itemgetter(0))  # stable: ties stay in registration order
        yield
        chosen = [peer_id for _, peer_id in keys[offset : offset + limit]]
        found = yield from summaries(chosen)
        return json_object(
            "peers", found, {"total": len(keys), "limit": limit, "offset": offset, "sort": sort}
        )

    def time_range(
        duration: float, since: float | None, until: float | None
    ) -> tuple[float, float]:
        """``(from, to]`` in epoch seconds: ``from``/``to`` when given, else the last
        ``duration`` seconds. A range that ends before it starts is empty, not an error."""
        end = monitor.now() if until is None else until
        start = end - duration if since is None else since
        return min(start, end), end

    async def system_figures() -> dict[str, Any]:
        return {**system_summary(monitor), "current": system_entry(monitor.system)}

    @router.get(
        "/metrics/summary",
        response_model=schemas.Summary,
        summary="Peers, host and the network's quality score",
    )
    async def summary() -> Response:
        # The bulk routes build their documented shape themselves: FastAPI's check of a
        # 10,000-peer body against its model would hold the loop for ~0.3 s.
        peers = await turns.run(every_summary())
        message = monitor.last_message or monitor.snapshot()
        return pieces_response(
            json_object(
                "peers",
                peers,
                {
                    "system": await system_figures(),
                    "network_quality": message["network"]["score"],
                    "network": message["network"],
                },
            ),
            JSON,
        )

    @router.get(
        "/metrics/peers", response_model=schemas.PeerPage, summary="Every peer, paged and sorted"
    )
    async def peers(
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        offset: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
        sort: SortKey = "quality",
    ) -> Response:
        return pieces_response(await turns.run(page(limit, offset, sort)), JSON)

    # Ids may hold "/" (sent as %2F), which the decoded path no longer tells apart from a
    # separator: both routes take the rest of the path and read the id from the raw path.
    # The latency route comes first so ".../latency" is not read as part of an id.
    @router.get(
        "/metrics/peers/{peer_id:path}/latency",
        response_model=schemas.LatencyHistory,
        responses=NOT_FOUND,
        summary="A peer's latency samples and their statistics",
    )
    async def latency(
        request: Request,
        peer_id: str,
        duration: Duration = 3600.0,
        since: Since = None,
        until: Until = None,
        step: Step = None,
    ) -> Any:
        raw_id = raw_peer_id(request, "/latency")
        if raw_id is None:  # ".../x%2Flatency": the whole tail is one peer's id
            return whole_peer(monitor, request, raw_peer_id(request, "") or peer_id)
        start, end = time_range(duration, since, until)
        found = await source.latency(raw_id, start, end, step)
        if found is None:
            raise HTTPException(404, unknown_peer(raw_id))
        body = {
            "peer_id": raw_id,
            "duration": duration,
            "from": start,
            "to": end,
            "step": step,
            "tier": found.tier,
            "data": seed_points(found.points),
            "buckets": found.buckets,
            "stats": found.stats,
        }
        # Built here, not checked against the model: a day from the store is 86,400 points.
        return Response(orjson.dumps(body), media_type=JSON)

    @router.get(
        "/metrics/peers/{peer_id:path}",
        response_model=schemas.PeerSummary,
        responses=NOT_FOUND,
        summary="One peer's figures",
    )
    async def peer(request: Request, peer_id: str, window: Window = None) -> dict[str, Any]:
        return one_peer(monitor, raw_peer_id(request, "") or peer_id, window)

    @router.get(
        "/metrics/system",
        response_model=schemas.SystemSummary,
        summary="The host now, with averages and maxima over the kept history",
    )
    async def system() -> dict[str, Any]:
        return await system_figures()

    @router.get(
        "/metrics/system/history",
        response_model=schemas.SystemHistory,
        summary="Host history (CPU, memory, network rates)",
    )
    async def system_history(
        duration: Duration = 3600.0, since: Since = None, until: Until = None, step: Step = None
    ) -> Response:
        start, end = time_range(duration, since, until)
        tier, found = await source.system(start, end, step)
        data = {key: seed_points(points) for key, points in found.items()}
        body = {"duration": duration, "from": start, "to": end, "step": step, "tier": tier}
        return Response(orjson.dumps({**body, "data": data}), media_type=JSON)

    @router.get(
        "/metrics/system/stats",
        response_model=schemas.SystemStats,
        summary="Host figures aggregated over a window",
    )
    async def system_stats(
        window: Annotated[float, Query(gt=0, le=30 * 86400, allow_inf_nan=False)] = 60.0,
    ) -> dict[str, Any]:
        return {
            "window": window,
            "stats": {name: monitor.system_stats(name, window) for name in SYSTEM_SERIES},
        }

    @router.get(
        "/metrics/sessions",
        response_model=schemas.Sessions,
        summary="Recent ended sessions with their latency",
    )
    async def sessions(limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> dict[str, Any]:
        return {"sessions": game_sessions(monitor, limit)}

    @router.get(
        "/metrics/server",
        response_model=ServerStats,
        summary="Connections, messages and rates of this server",
    )
    async def server() -> Any:
        # In slices but not in turns: a few ms in all, it should not wait behind a /metrics.
        return await run_sliced(monitor.server_stats_steps())

    @router.get(
        "/metrics/current",
        response_model=MetricsMessage,
        summary="The latest metrics message, as /ws pushes it",
    )
    async def current() -> MetricsMessage:
        return latest()

    return router
