"""JSON bodies about every peer, built as pieces (sent so by ``peerscope.pieces``).

Each item is serialized alone as it is read, a slice of peers at a time; the pieces are never
joined into one body.
"""

from __future__ import annotations

from typing import Any

import orjson

# Rows joined into one piece: ~64 KB of peer summaries.
PIECE_ROWS = 64


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
