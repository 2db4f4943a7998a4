"""Response bodies about every peer, sent as the pieces they were built in.

At 10,000 peers a body is 10-20 MB (a REST listing, a /metrics scrape). Joined into one
``bytes`` it would be copied whole, in one go, two or three times on its way out (~5 ms a
copy here). Sent in pieces, each write is ~64 KB, the loop gets a turn after each, and a
client that reads slowly holds up only its own response (uvicorn waits for its socket to
drain): the body is never copied whole. Used by the REST API and the Prometheus exporter
alike, so it sits below both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

WRITE_BYTES = 64 * 1024  # pieces are written in batches of at least this much


def pieces_response(pieces: list[bytes], media_type: str) -> StreamingResponse:
    """The body made of ``pieces``, with its Content-Length, written ~64 KB at a time."""

    async def each() -> AsyncIterator[bytes]:
        batch: list[bytes] = []
        size = 0
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size >= WRITE_BYTES:
                yield b"".join(batch)
                batch, size = [], 0
                # A write the socket takes at once does not suspend the stream (over
                # loopback a whole 20 MB body went out in one 40 ms stretch), and several
                # bodies may be going out at once: the loop gets a turn after every write.
                await asyncio.sleep(0)
        if batch:
            yield b"".join(batch)

    return StreamingResponse(
        each(), media_type=media_type, headers={"content-length": str(sum(map(len, pieces)))}
    )
