"""uvicorn's WebSocket protocol, able to take a frame that is already serialized.

Under plain ASGI every subscriber's copy of a tick's frame is sent by its own task, and
the server re-encodes the text and re-frames it for each one (three copies of ~150 KB per
subscriber). Without compression the frame is byte-identical for every connection, so
``peerscope serve`` runs uvicorn with this protocol class, which offers each WebSocket
connection an ASGI scope extension, ``peerscope.frame_writer``: a function that writes a
finished frame straight to that connection's transport. ``/ws`` uses it when present and
falls back to ASGI sends when not (``create_app(monitor)`` mounted in another server).

Every WebSocket connection (compressed or not) is also offered ``peerscope.transport``:
``{"transport": ...}``, its asyncio transport, whose socket ``/ws`` hands to
``Monitor.watch_connection`` so the kernel measures the client.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

EXTENSION = "peerscope.frame_writer"
TRANSPORT_EXTENSION = "peerscope.transport"
# How long a dropped connection may take to hand over what waits in its buffer, the close
# frame last, before it is aborted.
DROP_GRACE_S = 5.0


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code != 101:
            return
        # The ASGI task was created but has not run yet: it sees the extensions.
        extensions = self.scope["extensions"]
        extensions[TRANSPORT_EXTENSION] = {"transport": self.transport}
        # Compressed connections need a frame of their own; the ASGI path does that.
        if not self.conn.extensions:
            extensions[EXTENSION] = {"write": self.write_frame, "drop": self.drop}

    def write_frame(self, frame: bytes, buffer_limit: int) -> bool:
        """Write one serialized frame; False (and nothing written) when the connection is not
        open for data or more than ``buffer_limit`` bytes still wait in its send buffer (a
        slow reader misses frames rather than growing memory)."""
        if (
            self.close_sent
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
            or self.transport.get_write_buffer_size() > buffer_limit
        ):
            return False
        self.transport.write(frame)
        return True

    def drop(self, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason`` and let the connection go, whether or not the
        client reads: the close frame is queued behind what waits, and if the buffer has not
        drained ``DROP_GRACE_S`` later the connection is aborted. A plain close would wait
        for a client that stopped reading as long as TCP keeps the connection up."""
        if not self.close_sent and self.conn.state is State.OPEN:
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        # The app's receive() returns at once, so its connection handler ends now.
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.close()
        self.loop.call_later(DROP_GRACE_S, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self.disconnected:
            self.transport.abort()
