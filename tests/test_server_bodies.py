"""Bodies about every peer, built and sent in pieces."""

from __future__ import annotations

import asyncio
import itertools

import orjson
import pytest

from peerscope.pieces import WRITE_BYTES, pieces_response
from peerscope.server.bodies import PIECE_ROWS, JsonArray, json_object


@pytest.mark.parametrize("items", [0, 1, PIECE_ROWS - 1, PIECE_ROWS, PIECE_ROWS + 1, 200])
@pytest.mark.parametrize("rest", [{}, {"total": 7, "sort": "id", "nested": {"a": [1, None]}}])
def test_a_json_object_in_pieces_is_the_object(items: int, rest: dict[str, object]):
    rows = [
        {"id": f"peer-{index}", "score": index / 3, "labels": {"é": "✓"}} for index in range(items)
    ]
    array = JsonArray()
    for row in rows:
        array.append(orjson.dumps(row))
    pieces = json_object("peers", array, rest)
    assert orjson.loads(b"".join(pieces)) == {"peers": rows, **rest}
    assert len(array.pieces()) == -(-items // PIECE_ROWS)  # full pieces, then the rest


async def test_a_body_goes_out_in_writes_of_64_kb_and_the_loop_runs_between_them():
    pieces = [bytes([65 + index % 26]) * 10_000 for index in range(100)]  # ~1 MB
    response = pieces_response(pieces, "text/plain")
    assert response.headers["content-length"] == str(sum(map(len, pieces)))
    assert response.media_type == "text/plain"
    turns = 0

    async def other() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    writes: list[tuple[int, int]] = []  # (size, turns the other task had before it)
    try:
        async for chunk in response.body_iterator:
            assert isinstance(chunk, bytes)
            writes.append((len(chunk), turns))
    finally:
        task.cancel()
    sizes = [size for size, _ in writes]
    assert sum(sizes) == sum(map(len, pieces))
    assert all(WRITE_BYTES <= size < WRITE_BYTES + 10_000 for size in sizes[:-1])
    # Every write after the first comes after the loop ran something else.
    seen = [before for _, before in writes]
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))
