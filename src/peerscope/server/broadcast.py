"""One serialized metrics frame, fanned out to every WebSocket subscriber.

Two kinds of subscriber. A *queued* one gets the frame text in a bounded queue and a task of
its own sends it through ASGI: that works under any ASGI server. A *direct* one (a
connection served by :class:`peerscope.server.direct.DirectWebSocketProtocol`) gets the
finished WebSocket frame, built once per tick, written straight to its transport in one
loop: no task switch, no re-encoding and no re-framing per subscriber, which is what lets a
tick reach 1,000 subscribers in a few tens of milliseconds.

Besides the tick's frames, events (an alert firing or resolving) are pushed between them
(:meth:`Broadcaster.push`). They have room of their own, ``EVENT_FRAMES`` per subscriber:
a burst of alerts never pushes a metrics frame out of a subscriber's queue, and a reader
whose socket holds a metrics frame still gets the alert that follows it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from websockets.frames import Frame, Opcode

logger = logging.getLogger(__name__)
# Writes one finished frame to a connection unless more than the given number of bytes
# already wait in its send buffer; False when it was not written (closing, or a slow reader).
FrameWriter = Callable[[bytes, int], bool]
# Events that may wait per subscriber beside its metrics frames. Alerts come one event each,
# and one tick may raise many (every peer behind a failed link): room for a burst, still a
# bound (~700 bytes an event).
EVENT_FRAMES = 256


class Subscriber:
    """A subscriber's bounded queue: at most ``frames`` metrics frames and ``EVENT_FRAMES``
    events wait, in the order published. When a kind's room is full its oldest goes: a slow
    reader misses frames (and sees the newest), it never holds up others or grows memory."""

    __slots__ = ("_items", "_limits", "_ready", "_waiting", "missed", "on_stall", "stalled_since")

    def __init__(self, frames: int, on_stall: Callable[[], None]) -> None:
        # (frame text, its size in bytes as sent, whether it is an event)
        self._items: deque[tuple[str, int, bool]] = deque()
        self._limits = (frames, EVENT_FRAMES)  # by kind: metrics frames, events
        self._waiting = [0, 0]
        self._ready = asyncio.Event()
        self.missed = 0
        self.on_stall = on_stall
        self.stalled_since: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, frame: tuple[str, int], *, event: bool = False) -> bool:
        """Queue ``frame``; False when its kind's room was full (the oldest of that kind went
        for it)."""
        kind = int(event)
        full = self._waiting[kind] >= self._limits[kind]
        if full:
            # At most frames + EVENT_FRAMES items, and only when a reader is behind.
            for index, item in enumerate(self._items):
                if item[2] is event:
                    del self._items[index]
                    break
            self.missed += 1
        else:
            self._waiting[kind] += 1
        self._items.append((*frame, event))
        self._ready.set()
        return not full

    async def get(self) -> tuple[str, int]:
        """The oldest frame waiting (its text and size), once there is one."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        text, size, event = self._items.popleft()
        self._waiting[int(event)] -= 1
        return text, size


class DirectSubscriber:
    """A connection the frame is written to directly; ``on_sent`` is told each frame's size."""

    __slots__ = ("missed", "on_sent", "on_stall", "stalled_since", "write")

    def __init__(
        self, write: FrameWriter, on_sent: Callable[[int], None], on_stall: Callable[[], None]
    ) -> None:
        self.write = write
        self.on_sent = on_sent
        self.missed = 0
        self.on_stall = on_stall
        self.stalled_since: float | None = None


class Broadcaster:
    """Fans each frame out; gives up on a subscriber that has taken no frame for
    ``stall_timeout_s`` (every offer found its queue, or its socket buffer, full): its
    ``on_stall`` is called once and it is unsubscribed. A reader that is merely slow takes
    some frames and is kept; one that stopped reading would otherwise be counted, and hold
    its buffers, for as long as TCP keeps the connection."""

    def __init__(
        self,
        frames: int,
        stall_timeout_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._frames = frames
        self._stall_timeout_s = stall_timeout_s
        self._clock = clock
        self._queued: set[Subscriber] = set()
        self._direct: set[DirectSubscriber] = set()
        # The bytes that may wait in a direct subscriber's buffer, set by the latest frame.
        self._frame_limit = 0

    def __len__(self) -> int:
        return len(self._queued) + len(self._direct)

    def subscribe(self, on_stall: Callable[[], None]) -> Subscriber:
        subscriber = Subscriber(self._frames, on_stall)
        self._queued.add(subscriber)
        return subscriber

    def subscribe_direct(
        self, write: FrameWriter, on_sent: Callable[[int], None], on_stall: Callable[[], None]
    ) -> DirectSubscriber:
        subscriber = DirectSubscriber(write, on_sent, on_stall)
        self._direct.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber | DirectSubscriber) -> None:
        if isinstance(subscriber, Subscriber):
            self._queued.discard(subscriber)
        else:
            self._direct.discard(subscriber)

    def publish(self, payload: bytes) -> None:
        """Send ``payload`` (one UTF-8 JSON text, serialized once) to every subscriber."""
        now = self._clock()
        stalled: list[Subscriber | DirectSubscriber] = []
        if self._queued:
            text = (payload.decode(), len(payload))
            for subscriber in self._queued:
                if subscriber.offer(text):
                    subscriber.stalled_since = None
                elif self._stalled(subscriber, now):
                    stalled.append(subscriber)
        if self._direct:
            wire = Frame(Opcode.TEXT, payload).serialize(mask=False)
            size = len(payload)
            # As many bytes may wait per connection as a queued subscriber's frames hold.
            limit = self._frame_limit = (self._frames - 1) * len(wire)
            for direct in self._direct:
                if direct.write(wire, limit):
                    direct.stalled_since = None
                    direct.on_sent(size)
                else:
                    direct.missed += 1
                    if self._stalled(direct, now):
                        stalled.append(direct)
        for given_up in stalled:
            self.unsubscribe(given_up)
            try:
                given_up.on_stall()
            except Exception:  # one subscriber's failure must not stop the others' frames
                logger.exception("closing a stalled /ws subscriber failed")

    def push(self, payload: bytes) -> None:
        """Send ``payload`` (one UTF-8 JSON text, serialized once), an event between the
        frames, to every subscriber: into its queue's room for events, or written to its
        connection unless more than the metrics frames' bytes and ``EVENT_FRAMES`` such
        events wait in the buffer. A missed event counts in ``missed``, but says nothing of
        a stall: whether a reader takes frames is the metrics frames' to tell."""
        if self._queued:
            text = (payload.decode(), len(payload))
            for subscriber in self._queued:
                subscriber.offer(text, event=True)
        if self._direct:
            wire = Frame(Opcode.TEXT, payload).serialize(mask=False)
            limit = self._frame_limit + EVENT_FRAMES * len(wire)
            for direct in self._direct:
                if direct.write(wire, limit):
                    direct.on_sent(len(payload))
                else:
                    direct.missed += 1

    def _stalled(self, subscriber: Subscriber | DirectSubscriber, now: float) -> bool:
        """Whether a subscriber that just missed a frame has gone too long without one."""
        if subscriber.stalled_since is None:
            subscriber.stalled_since = now
            return False
        return now - subscriber.stalled_since > self._stall_timeout_s
