"""Response bodies about every peer: sent as the pieces they were built in.

At 10,000 peers a body is 10-20 MB. Joined into one ``bytes`` it would be copied whole, in
one go, two or three times on its way out (~5 ms a copy here). Sent in pieces, each write
is ~64 KB, the loop gets a turn after each, and a client that reads slowly holds up only
its own response (uvicorn waits for its socket to drain): the body is never copied whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi.responses import StreamingResponse

# Rows joined into one piece: ~64 KB of peer summaries.
PIECE_ROWS = 64
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

    return StreamingResponse(each(), media_type=media_type,
                             headers={"content-length": str(sum(map(len, pieces)))})


class JsonArray:
    """The items of a JSON array, each serialized alone, gathered in pieces of up to
    ``PIECE_ROWS`` items separated by commas (a piece is joined when it is full)."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._batch: list[bytes] = []

    def append(self, item: bytes) -> None:
        self._batch.append(item)
        if len(self._batch) == PIECE_ROWS:
            self._pieces.append(b",".join(self._batch))
            self._batch = []

    def pieces(self) -> list[bytes]:
        """The pieces so far, the last one perhaps short."""
        return [*self._pieces, b",".join(self._batch)] if self._batch else list(self._pieces)


def json_object(name: str, array: JsonArray, rest: dict[str, Any]) -> list[bytes]:
    """The pieces of the JSON object ``{name: [...array...], **rest}``."""
    pieces = [b"{" + orjson.dumps(name) + b":["]
    for index, piece in enumerate(array.pieces()):
        if index:
            pieces.append(b",")
        pieces.append(piece)
    pieces.append(b"]," + orjson.dumps(rest)[1:] if rest else b"]}")
    return pieces
