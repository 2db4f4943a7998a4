"""A real HTTP receiver for the notifier tests: an HTTP/1.1 server on a free loopback port,
in the test's own event loop, that records every request and answers as the test tells it
(a status per request, or never: a receiver that hangs)."""

from __future__ import annotations

import asyncio
import contextlib
import http
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import orjson

HANG: Literal["hang"] = "hang"
Answer = int | Literal["hang"]


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the path and query
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.time() when it had arrived in full

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    """Answers the requests with the statuses in ``answers``, one each, then with ``then``
    (``HANG``: holds the request unanswered until the receiver closes)."""

    def __init__(self, answers: Sequence[Answer] = (), *, then: Answer = 200) -> None:
        self.requests: list[Request] = []
        self._answers = deque(answers)
        self._then = then
        self.url = ""  # http://127.0.0.1:PORT, once started
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        # Every connection's handler ends (its reader sees the close) before the loop does.
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def wait_for(
        self,
        count: int,
        timeout_s: float = 15.0,
        where: Callable[[Request], bool] = lambda request: True,
    ) -> list[Request]:
        """The first ``count`` requests ``where`` holds for, once that many have come."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [request for request in self.requests if where(request)]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} of {count} requests within {timeout_s:g} s: "
                    f"{[(r.method, r.target, r.body[:200]) for r in self.requests]}"
                )
            await asyncio.sleep(0.02)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                self.requests.append(request)
                answer = self._answers.popleft() if self._answers else self._then
                if answer == HANG:
                    await self._closing.wait()
                    return
                status = http.HTTPStatus(answer)
                body = b"ok" if status < 300 else f"refused: {status.value}".encode()
                writer.write(
                    f"HTTP/1.1 {status.value} {status.phrase}\r\n"
                    f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line:
        return None  # the client closed its connection
    method, target, _version = line.decode("latin-1").split(" ", 2)
    headers = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()  # the blank line after the last chunk
    else:
        body = b""
    return Request(method, target, headers, body, time.time())
