"""One serialized metrics frame, fanned out to every WebSocket subscriber."""

from __future__ import annotations

import asyncio


class Subscriber:
    """A subscriber's bounded queue of frames. When it is full the oldest frame goes: a slow
    reader misses frames (and sees the newest), it never holds up others or grows memory."""

    __slots__ = ("missed", "queue")

    def __init__(self, frames: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=frames)
        self.missed = 0

    def offer(self, frame: str) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.missed += 1
        self.queue.put_nowait(frame)


class Broadcaster:
    def __init__(self, frames: int) -> None:
        self._frames = frames
        self._subscribers: set[Subscriber] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber(self._frames)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, frame: str) -> None:
        """Queue ``frame`` (already serialized, shared by all) for every subscriber."""
        for subscriber in self._subscribers:
            subscriber.offer(frame)
