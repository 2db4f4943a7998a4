"""``/ws``: the live metrics stream, and every connected client measured as a peer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from typing import Any

import orjson
from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from peerscope.config import Settings
from peerscope.core.rate import SlidingCounter
from peerscope.monitor import Monitor
from peerscope.peer_table import PeerLimitError
from peerscope.server.auth import TokenGuard
from peerscope.server.broadcast import Broadcaster, DirectSubscriber, Subscriber
from peerscope.server.direct import EXTENSION, TRANSPORT_EXTENSION

# RFC 6455 close codes.
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
_connection_ids = itertools.count(1)
NO_TRANSPORT = (
    "the server gives /ws no access to its connections' sockets: WebSocket client latency "
    "comes from the application echo"
)
logger = logging.getLogger(__name__)


class ClientSession:
    """One WebSocket client: its frames out, its messages in, its RTT pings."""

    def __init__(
        self, websocket: WebSocket, monitor: Monitor, broadcaster: Broadcaster, settings: Settings
    ) -> None:
        self.websocket = websocket
        self.monitor = monitor
        self.broadcaster = broadcaster
        self.settings = settings
        client = websocket.client
        self.address = f"{client.host}:{client.port}" if client else None
        self.peer_id = f"ws-{next(_connection_ids)}"
        self._pings: dict[int, float] = {}  # seq -> monotonic send time
        self._answers_pings = False
        self._kernel_measured = False
        self._ping_seq = itertools.count(1)
        self._incoming = SlidingCounter(1.0)

    async def run(self) -> None:
        name = self.websocket.query_params.get("name")
        try:
            self.monitor.add_peer(
                self.peer_id,
                kind="client",
                address=self.address,
                name=name if name and name.isprintable() and len(name) <= 256 else None,
            )
        except PeerLimitError:
            # Every client is measured as a peer; past the limit it is turned away before
            # it is served, with a code that tells it to come back later.
            await self._close(
                TRY_AGAIN_LATER, f"max_peers ({self.settings.max_peers}) reached; try later"
            )
            return
        self._kernel_measured = self._watch()
        writer = (self.websocket.scope.get("extensions") or {}).get(EXTENSION)
        stalled = asyncio.Event()
        subscriber: Subscriber | DirectSubscriber
        tasks = [asyncio.create_task(self._ping())]
        if writer is not None:
            subscriber = self.broadcaster.subscribe_direct(
                writer["write"],
                self._count_sent,
                lambda: writer["drop"](POLICY_VIOLATION, self._stall_reason()),
            )
        else:
            subscriber = self.broadcaster.subscribe(stalled.set)
            tasks.append(asyncio.create_task(self._send_frames(subscriber)))
        receiving = asyncio.create_task(self._receive())
        giving_up = asyncio.create_task(stalled.wait())
        try:
            await asyncio.wait((receiving, giving_up), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.broadcaster.unsubscribe(subscriber)
            for task in (*tasks, receiving, giving_up):
                task.cancel()
            await asyncio.gather(*tasks, receiving, giving_up, return_exceptions=True)
            self.monitor.remove_peer(self.peer_id)
        if stalled.is_set():
            # Through plain ASGI a close waits for the send buffer to drain, which a client
            # that stopped reading never lets happen: give it a moment, then leave the
            # connection to the server.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._close(POLICY_VIOLATION, self._stall_reason()), timeout=1.0
                )

    def _watch(self) -> bool:
        """Have the kernel measure this client (its RTT and retransmissions, see
        ``Monitor.watch_connection``); False where it cannot, and the echo measures it."""
        transport = connection_transport(self.websocket)
        if transport is None:
            _say_no_transport()
            return False
        try:
            return self.monitor.watch_connection(self.peer_id, transport)
        except ValueError:  # closed already: the client left during the handshake
            return False

    def _stall_reason(self) -> str:
        return f"not reading: no frame taken for {self.settings.ws_stall_timeout_s:g} s"

    async def send(self, message: dict[str, Any]) -> None:
        payload = orjson.dumps(message)
        await self.websocket.send_text(payload.decode())
        self._count_sent(len(payload))

    async def _send_frames(self, subscriber: Subscriber) -> None:
        while True:
            frame, size = await subscriber.get()
            await self.websocket.send_text(frame)
            self._count_sent(size)

    def _count_sent(self, size: int) -> None:
        self.monitor.record_message(self.peer_id, size=size, direction="out")

    async def _ping(self) -> None:
        """The application echo, ``ping`` out and ``pong`` back: the client's RTT when the
        kernel does not measure it, else its ``app_rtt_ms`` alone (a browser answers from
        its main thread, so a busy page adds its own delay to the network's)."""
        while True:
            seq = next(self._ping_seq)
            # A client that has answered before and misses one is a failed echo; one that
            # never answers simply does not speak the echo and stays unmeasured by it.
            if self._answers_pings:
                for _ in self._pings:
                    self.monitor.record_app_rtt(self.peer_id, None)
            elif not self._kernel_measured:
                # uvicorn's WebSocket keepalive closes a dead connection within about 40 s,
                # so an open socket is a live client even when it only listens.
                self.monitor.mark_alive(self.peer_id)
            self._pings = {seq: time.monotonic()}
            await self.send({"type": "ping", "seq": seq, "t": self.monitor.now()})
            await asyncio.sleep(self.settings.ws_ping_interval)

    async def _receive(self) -> None:
        limit = self.settings.ws_max_messages_per_second
        while True:
            try:
                text = await self.websocket.receive_text()
            except WebSocketDisconnect:
                return
            except KeyError:  # a binary frame: receive_text() finds no "text"
                await self._close(POLICY_VIOLATION, "binary frames are not accepted")
                return
            size = len(text.encode())
            if size > self.settings.ws_max_message_bytes:
                await self._close(
                    MESSAGE_TOO_BIG, f"message over {self.settings.ws_max_message_bytes} bytes"
                )
                return
            self.monitor.record_message(self.peer_id, size=size, direction="in")
            self._incoming.add(time.monotonic())
            if self._incoming.rate(time.monotonic()) > 2 * limit:
                await self._close(POLICY_VIOLATION, f"more than {limit:g} messages per second")
                return
            if self._incoming.rate(time.monotonic()) > limit:
                await self.send(
                    {
                        "type": "error",
                        "error": "rate limited",
                        "detail": f"at most {limit:g} messages per second",
                    }
                )
                continue
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self.send({"type": "error", "error": "invalid JSON", "detail": text[:80]})
            return
        if not isinstance(message, dict):
            await self.send(
                {
                    "type": "error",
                    "error": "expected a JSON object",
                    "detail": type(message).__name__,
                }
            )
            return
        kind = message.get("type")
        try:
            if kind == "ping":
                await self.send(
                    {"type": "pong", "t": message.get("t"), "server_time": self.monitor.now()}
                )
            elif kind == "pong":
                self._take_pong(message.get("seq"))
            elif kind == "fps":
                # record_fps checks both numbers itself (a ValueError naming the field).
                fps: Any = message.get("fps")
                frame_time_ms: Any = message.get("frame_time_ms")
                self.monitor.record_fps(self.peer_id, fps, frame_time_ms)
            else:
                await self.send(
                    {"type": "error", "error": "unknown message type", "detail": str(kind)[:80]}
                )
        except ValueError as error:
            await self.send({"type": "error", "error": "invalid message", "detail": str(error)})

    def _take_pong(self, seq: object) -> None:
        sent = self._pings.pop(seq, None) if isinstance(seq, int) else None
        if sent is None:
            raise ValueError(f"seq: no ping {seq!r} is waiting for its pong")
        self._answers_pings = True
        self.monitor.record_app_rtt(self.peer_id, (time.monotonic() - sent) * 1000.0)

    async def _close(self, code: int, reason: str) -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):
                await self.websocket.close(code=code, reason=reason)


def connection_transport(websocket: WebSocket) -> object | None:
    """The client's connection, for the kernel to measure; None when the server offers none.

    ``peerscope serve``'s protocol hands it over as a scope extension. Mounted in another
    uvicorn, the ASGI ``receive`` is a method of uvicorn's protocol object, which holds the
    connection as ``transport`` (in each of its WebSocket implementations); anything found
    there is checked by ``Monitor.watch_connection`` before it is used.
    """
    extension = (websocket.scope.get("extensions") or {}).get(TRANSPORT_EXTENSION)
    if extension is not None:
        transport: object = extension["transport"]
        return transport
    owner = getattr(getattr(websocket, "_receive", None), "__self__", None)
    return getattr(owner, "transport", None)


@functools.cache
def _say_no_transport() -> None:
    """Said once per process: it holds for every client of a server."""
    logger.warning(NO_TRANSPORT)


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Browsers apply no CORS to WebSockets, so any page could otherwise read the stream:
    only this server's own pages and the configured origins may connect. Clients that send
    no Origin (not browsers) are not affected."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    own = {f"http://{host}", f"https://{host}"}
    return origin in own or origin in settings.cors_origins


async def metrics_socket(
    websocket: WebSocket,
    monitor: Monitor,
    broadcaster: Broadcaster,
    guard: TokenGuard,
    settings: Settings,
) -> None:
    # Accept first, so the refusal reaches the client as a close code (a close before
    # accept would be an HTTP 403 on the handshake, with no reason given).
    await websocket.accept()
    if not origin_allowed(websocket, settings):
        await websocket.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return
    if not guard.websocket_allowed(websocket):
        await websocket.close(code=POLICY_VIOLATION, reason="missing or wrong token")
        return
    await ClientSession(websocket, monitor, broadcaster, settings).run()
