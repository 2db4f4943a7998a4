"""``GET /api/export``: a time range of the history store, streamed as CSV, JSON or Parquet.

The body goes out a window of one series at a time (see :mod:`peerscope.store.export`),
each read and encoded on a worker thread, so neither the disk nor the encoding holds the
event loop, and nothing holds the whole export in memory. Each export reads on a
connection of its own, closed when the body ends or the client goes: the store's shared
reader stays free for the dashboard meanwhile.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from peerscope.server import schemas
from peerscope.server.rest import epoch_query
from peerscope.store import HistoryStore
from peerscope.store.export import (
    FORMATS,
    MAX_STEP_S,
    MEDIA_TYPES,
    Export,
    ExportRange,
    Format,
    check_format,
    encode,
)

__all__ = ["export_router"]

DEFAULT_SPAN_S = 3600.0
INVALID: dict[int | str, dict[str, object]] = {
    422: {"model": schemas.ErrorBody, "description": "Invalid parameter"},
}


def _invalid(error: ValueError) -> RequestValidationError:
    """The check's ``field: message`` as the 422 every bad parameter gets."""
    name, _, message = str(error).partition(": ")
    return RequestValidationError(
        [{"loc": ("query", name), "msg": message, "type": "value_error", "input": None}]
    )


def _file_name(wanted: ExportRange, form: Format) -> str:
    def stamp(t: float) -> str:
        return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))

    return f"peerscope-{stamp(wanted.start)}-{stamp(wanted.end)}.{form}"


def export_router(store: HistoryStore) -> APIRouter:
    """``GET /api/export`` over ``store``."""
    router = APIRouter(prefix="/api", responses=INVALID)

    @router.get(
        "/export",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "The rows, streamed: one per series and sample time",
                "content": {MEDIA_TYPES[form].split(";")[0]: {} for form in FORMATS},
            }
        },
    )
    async def export(
        since: Annotated[
            float | None,
            epoch_query("from", "Start, epoch seconds (included; default: an hour before `to`)."),
        ] = None,
        until: Annotated[
            float | None,
            epoch_query(
                "to",
                "End, epoch seconds (excluded; default: now). Not after `from`: an empty export.",
            ),
        ] = None,
        form: Annotated[
            Format,
            Query(
                alias="format",
                description="csv, json (an array of objects) or parquet (with the "
                "optional extra peerscope[parquet])",
            ),
        ] = "csv",
        step: Annotated[
            int | None,
            Query(
                ge=1,
                le=MAX_STEP_S,
                description="Buckets of this many seconds instead of raw samples (from 60 "
                "rounded down to whole minutes, from 3600 to whole hours): a gauge's mean, "
                "a counter's last value.",
            ),
        ] = None,
    ) -> StreamingResponse:
        """A time range of the stored history, one row per series and sample time."""
        end = time.time() if until is None else until
        start = max(0.0, end - DEFAULT_SPAN_S) if since is None else since
        try:
            wanted = ExportRange(start, end, step)
            # Off the loop: the first check of Parquet imports pyarrow (a tenth of a second).
            await asyncio.to_thread(check_format, form)
        except ValueError as error:
            raise _invalid(error) from None
        connection = await asyncio.to_thread(store.open_connection)
        return StreamingResponse(
            _body(connection, encode(Export(connection, wanted, store.retention), form)),
            media_type=MEDIA_TYPES[form],
            headers={"Content-Disposition": f'attachment; filename="{_file_name(wanted, form)}"'},
        )

    return router


def _next_piece(pieces: Iterator[bytes]) -> bytes | None:
    return next(pieces, None)


async def _body(connection: sqlite3.Connection, pieces: Generator[bytes]) -> AsyncIterator[bytes]:
    """The pieces of the body, each made on a worker thread. A read that fails midway
    raises: the status has gone out, so the server ends the connection without the body's
    last chunk, which a client reads as a download cut short."""
    try:
        # A thread that is making a piece is waited for, even when the client has gone.
        while (piece := await run_in_threadpool(_next_piece, pieces)) is not None:
            yield piece
    finally:
        # Here, at once, also when a client gone midway cancels the response: left to the
        # garbage collector, the connection would stay open until it ran.
        pieces.close()
        connection.close()
