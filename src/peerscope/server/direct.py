"""uvicorn's WebSocket protocol, able to take a frame that is already serialized.

Under plain ASGI every subscriber's copy of a tick's frame is sent by its own task, and
the server re-encodes the text and re-frames it for each one (three copies of ~150 KB per
subscriber). Without compression the frame is byte-identical for every connection, so
``peerscope serve`` runs uvicorn with this protocol class, which offers each WebSocket
connection an ASGI scope extension, ``peerscope.frame_writer``: a function that writes a
finished frame straight to that connection's transport. ``/ws`` uses it when present and
falls back to ASGI sends when not (``monitor.app`` mounted in another server).
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

EXTENSION = "peerscope.frame_writer"


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # Compressed connections need a frame of their own; the ASGI path does that.
        if self.response.status_code == 101 and not self.conn.extensions:
            # The ASGI task was created but has not run yet: it sees the extension.
            self.scope["extensions"][EXTENSION] = {"write": self.write_frame}

    def write_frame(self, frame: bytes, buffer_limit: int) -> bool:
        """Write one serialized frame; False (and nothing written) when the connection is not
        open for data or more than ``buffer_limit`` bytes still wait in its send buffer (a
        slow reader misses frames rather than growing memory)."""
        if (self.close_sent or self.conn.state is not State.OPEN
                or self.transport.is_closing()
                or self.transport.get_write_buffer_size() > buffer_limit):
            return False
        self.transport.write(frame)
        return True
