"""History over REST: a peer's, the host's and the server's figures over any range, and the
events the history store keeps.

``/api/metrics/peers/{id}/history``, ``/api/metrics/host/history`` and
``/api/metrics/server/history`` take ``from`` and ``to`` (epoch seconds; by default the hour
up to now), ``step`` and ``figures``. Without ``step`` they answer every sample of
``(from, to]`` as columns; with it, ``step``-second buckets on multiples of the step, read
from the tier the step and the range call for (``tier``: ``raw``, ``1m`` or ``1h``). Without
a history store a peer's and the host's answer from memory (``tier``: ``memory``), and the
server's figures and the events, which only the store keeps, answer 404.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response

from peerscope.core.rollup import SeriesKind
from peerscope.core.validation import preview
from peerscope.server import schemas
from peerscope.server.edge import ApiError
from peerscope.server.history_source import HistorySource
from peerscope.server.rest import (
    JSON,
    NOT_FOUND,
    Until,
    epoch_query,
    raw_peer_id,
    unknown_peer,
    whole_peer,
)
from peerscope.store import HistoryStore
from peerscope.store.intake import HOST_KEY, SERVER_KEY
from peerscope.store.reader import figure_names

__all__ = ["build_history_router"]

# The events HistoryStore keeps (HistoryReader.events).
EVENT_TYPES = ("status", "path_changed", "removed", "session_started", "session_ended", "alert")
DEFAULT_RANGE_S = 3600.0
EVENTS_LIMIT = 10_000
NOT_KEPT = "history store: not enabled on this server"
NO_STORE: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorBody, "description": "This server keeps no history store"},
}
Since = Annotated[
    float | None,
    epoch_query("from", "Start, epoch seconds (excluded; default: an hour before to)."),
]
Step = Annotated[
    float | None,
    Query(
        ge=0.001,
        le=366 * 86400,
        allow_inf_nan=False,
        description="Buckets of this many seconds (from 60 s the 1-minute tier, from 3600 s "
        "the 1-hour tier); without it, every sample.",
    ),
]
Figures = Annotated[
    str | None,
    Query(
        max_length=1000,
        description="Comma-separated figure names (default: all the series keeps).",
    ),
]


def _problem(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"field": f"query.{field}", "message": message}])


def build_history_router(
    source: HistorySource, errors: dict[int | str, dict[str, Any]]
) -> APIRouter:
    """The routes over ``source`` (its Monitor, and its history store if any). To be
    included before the REST routes: ``/metrics/peers/{id}`` would take ``.../history``."""
    monitor, store = source.monitor, source.store
    router = APIRouter(prefix="/api", responses=errors)

    def kept() -> HistoryStore:
        if store is None:
            raise ApiError(
                404,
                "store: this server keeps no history (started with --no-db, or its database "
                "could not be opened); this path needs it",
                error=NOT_KEPT,
            )
        return store

    def time_range(since: float | None, until: float | None) -> tuple[float, float]:
        end = monitor.now() if until is None else until
        start = end - DEFAULT_RANGE_S if since is None else since
        if start > end:
            raise _problem("from", f"must not be after to ({end:.3f}), got {start:.3f}")
        return start, end

    def checked_figures(kind: SeriesKind, figures: str | None) -> list[str]:
        known = figure_names(kind)
        if figures is None:
            return known
        names = list(dict.fromkeys(name.strip() for name in figures.split(",") if name.strip()))
        unknown = [name for name in names if name not in known]
        if unknown:
            raise _problem(
                "figures",
                f"{preview(', '.join(unknown))} not kept for a {kind}; one of {', '.join(known)}",
            )
        if not names:
            raise _problem("figures", f"name at least one of {', '.join(known)}")
        return names

    async def history(
        kind: SeriesKind,
        key: str,
        since: float | None,
        until: float | None,
        step: float | None,
        figures: str | None,
        **extra: Any,
    ) -> Response | None:
        """The answer in SeriesHistory's shape; None if nothing is known of the series."""
        names = checked_figures(kind, figures)
        start, end = time_range(since, until)
        if step is None:
            found = await source.samples(kind, key, start, end, names)
        else:
            found = await source.buckets(kind, key, start, end, step, names)
        if found is None:
            return None
        body = {
            **extra,
            "from": start,
            "to": end,
            "step": step,
            "figures": names,
            "timestamps": None,
            "values": None,
            "buckets": None,
            **found,
        }
        # Built here, not checked against the model: a day of samples is 86,400 of each.
        return Response(orjson.dumps(body), media_type=JSON)

    # The id is read from the raw path, as rest.py's routes of a peer read it.
    @router.get(
        "/metrics/peers/{peer_id:path}/history",
        response_model=schemas.SeriesHistory,
        responses=NOT_FOUND,
        summary="A peer's figures over a range: samples, or buckets of a step",
    )
    async def peer_history(
        request: Request,
        peer_id: str,
        since: Since = None,
        until: Until = None,
        step: Step = None,
        figures: Figures = None,
    ) -> Any:
        raw_id = raw_peer_id(request, "/history")
        if raw_id is None:  # ".../x%2Fhistory": the whole tail is one peer's id
            return whole_peer(monitor, request, raw_peer_id(request, "") or peer_id)
        found = await history("peer", raw_id, since, until, step, figures, peer_id=raw_id)
        if found is None:
            raise HTTPException(404, unknown_peer(raw_id))
        return found

    @router.get(
        "/metrics/host/history",
        response_model=schemas.SeriesHistory,
        summary="The host's figures over a range: samples, or buckets of a step",
    )
    async def host_history(
        since: Since = None, until: Until = None, step: Step = None, figures: Figures = None
    ) -> Any:
        return await history("host", HOST_KEY, since, until, step, figures)

    @router.get(
        "/metrics/server/history",
        response_model=schemas.SeriesHistory,
        responses=NO_STORE,
        summary="The server's figures over a range (needs the history store)",
    )
    async def server_history(
        since: Since = None, until: Until = None, step: Step = None, figures: Figures = None
    ) -> Any:
        kept()
        return await history("server", SERVER_KEY, since, until, step, figures)

    @router.get(
        "/history/events",
        response_model=schemas.StoredEvents,
        responses=NO_STORE,
        summary="Stored events (status changes, sessions, alerts, peers removed), newest first",
    )
    async def events(
        since: Annotated[
            float | None,
            epoch_query("from", "Start, epoch seconds (included; default: all kept)."),
        ] = None,
        until: Until = None,
        type: Annotated[
            str | None,
            Query(
                max_length=200,
                description=f"Comma-separated event types: {', '.join(EVENT_TYPES)}.",
            ),
        ] = None,
        peer_id: Annotated[
            str | None, Query(min_length=1, max_length=128, description="Only this peer's.")
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=EVENTS_LIMIT, description="At most this many (the newest).")
        ] = 500,
    ) -> Response:
        reader = kept().reader
        end = monitor.now() if until is None else until
        if since is not None and since > end:
            raise _problem("from", f"must not be after to ({end:.3f}), got {since:.3f}")
        types = None
        if type is not None:
            types = list(dict.fromkeys(part.strip() for part in type.split(",") if part.strip()))
            unknown = [part for part in types if part not in EVENT_TYPES]
            if unknown or not types:
                raise _problem(
                    "type",
                    f"{preview(', '.join(unknown))} is no event type; one of "
                    f"{', '.join(EVENT_TYPES)}",
                )
        found = await asyncio.to_thread(
            reader.events, start=since, end=until, types=types, peer_id=peer_id, limit=limit
        )
        return Response(orjson.dumps({"events": found}), media_type=JSON)

    return router
