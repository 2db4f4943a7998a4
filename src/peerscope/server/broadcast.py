"""One serialized metrics frame, fanned out to every WebSocket subscriber.

Two kinds of subscriber. A *queued* one gets the frame text in a bounded queue and a task of
its own sends it through ASGI: that works under any ASGI server. A *direct* one (a
connection served by :class:`peerscope.server.direct.DirectWebSocketProtocol`) gets the
finished WebSocket frame, built once per tick, written straight to its transport in one
loop: no task switch, no re-encoding and no re-framing per subscriber, which is what lets a
tick reach 1,000 subscribers in a few tens of milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from websockets.frames import Frame, Opcode

# Writes one finished frame to a connection unless more than the given number of bytes
# already wait in its send buffer; False when it was not written (closing, or a slow reader).
FrameWriter = Callable[[bytes, int], bool]


class Subscriber:
    """A subscriber's bounded queue of frames. When it is full the oldest frame goes: a slow
    reader misses frames (and sees the newest), it never holds up others or grows memory."""

    __slots__ = ("missed", "queue")

    def __init__(self, frames: int) -> None:
        # (frame text, its size in bytes as sent)
        self.queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue(maxsize=frames)
        self.missed = 0

    def offer(self, frame: tuple[str, int]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.missed += 1
        self.queue.put_nowait(frame)


class DirectSubscriber:
    """A connection the frame is written to directly; ``on_sent`` is told each frame's size."""

    __slots__ = ("missed", "on_sent", "write")

    def __init__(self, write: FrameWriter, on_sent: Callable[[int], None]) -> None:
        self.write = write
        self.on_sent = on_sent
        self.missed = 0


class Broadcaster:
    def __init__(self, frames: int) -> None:
        self._frames = frames
        self._queued: set[Subscriber] = set()
        self._direct: set[DirectSubscriber] = set()

    def __len__(self) -> int:
        return len(self._queued) + len(self._direct)

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber(self._frames)
        self._queued.add(subscriber)
        return subscriber

    def subscribe_direct(self, write: FrameWriter,
                         on_sent: Callable[[int], None]) -> DirectSubscriber:
        subscriber = DirectSubscriber(write, on_sent)
        self._direct.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber | DirectSubscriber) -> None:
        if isinstance(subscriber, Subscriber):
            self._queued.discard(subscriber)
        else:
            self._direct.discard(subscriber)

    def publish(self, payload: bytes) -> None:
        """Send ``payload`` (one UTF-8 JSON text, serialized once) to every subscriber."""
        if self._queued:
            text = (payload.decode(), len(payload))
            for subscriber in self._queued:
                subscriber.offer(text)
        if self._direct:
            wire = Frame(Opcode.TEXT, payload).serialize(mask=False)
            size = len(payload)
            # As many bytes may wait per connection as a queued subscriber's frames hold.
            limit = (self._frames - 1) * len(wire)
            for direct in self._direct:
                if direct.write(wire, limit):
                    direct.on_sent(size)
                else:
                    direct.missed += 1
