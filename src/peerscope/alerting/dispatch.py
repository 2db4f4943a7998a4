"""Handing alert events to notifiers without ever waiting for one.

Each notifier has a bounded queue and a task of its own: :meth:`Dispatcher.offer` only
appends (the oldest event goes when the queue is full, counted in ``dropped``), and the
task sends, with a timeout, retrying with exponential backoff. A notifier that fails or
hangs is logged and retried; it never delays the tick, the evaluation or the other
notifiers. A failure that trying again cannot mend (:class:`PermanentError`: a receiver
that refuses the request itself) is given up at once. A notifier with work of its own
between events (:class:`BackgroundNotifier`: Alertmanager's re-posting) gets a second task
for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from typing_extensions import TypedDict

from peerscope.alerting.records import AlertEvent

__all__ = ["BackgroundNotifier", "Dispatcher", "Notifier", "NotifierStats", "PermanentError"]

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Somewhere alerts are told: a log, a callback, a webhook, Alertmanager, Apprise."""

    @property
    def name(self) -> str:
        """What logs and ``/api/alerts/notifiers`` call it (never a secret: no token)."""
        ...

    async def send(self, event: AlertEvent) -> None:
        """Tell ``event``; raise if it did not arrive (the dispatcher retries)."""
        ...

    async def aclose(self) -> None:
        """Let go of what it holds (connections); called once, on the way out."""
        ...


@runtime_checkable
class BackgroundNotifier(Notifier, Protocol):
    """A notifier with work to do between events, such as re-posting what still fires."""

    async def background(self) -> None:
        """Run from :meth:`Dispatcher.start` until :meth:`Dispatcher.stop` cancels it, in a
        task of its own: it never holds up the notifier's events, nor they it. It should
        handle its own failures (log them, try again later); should it raise, the error is
        logged and it is not restarted."""
        ...


class PermanentError(Exception):
    """Raised by :meth:`Notifier.send` when trying again cannot help (the receiver refused
    the request itself: a bad request, a wrong token, no such path): the dispatcher gives
    the event up at once instead of retrying."""


class NotifierStats(TypedDict):
    name: str
    sent: int
    failed: int  # events given up on after the last retry
    retried: int
    dropped: int  # events pushed out of a full queue
    queued: int
    last_error: str | None


class _Lane:
    """One notifier's queue, tasks and counts."""

    def __init__(self, notifier: Notifier, name: str, size: int) -> None:
        self.notifier = notifier
        self.name = name
        self.queue: deque[AlertEvent] = deque()
        self.size = size
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.background: asyncio.Task[None] | None = None
        self.stats: NotifierStats = {
            "name": name,
            "sent": 0,
            "failed": 0,
            "retried": 0,
            "dropped": 0,
            "queued": 0,
            "last_error": None,
        }


class Dispatcher:
    """Events to ``notifiers``, each in its own lane.

    ``timeout_s`` bounds one attempt; a failed one is tried again up to ``retries`` times,
    after ``backoff_s``, then twice that, and so on (capped at ``max_backoff_s``), unless it
    raised :class:`PermanentError`. Notifiers of the same name are told apart in logs and
    :meth:`stats` by a suffix: ``webhook https://example.org``, ``webhook
    https://example.org #2``.
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        *,
        queue_size: int = 1000,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self._lanes = [
            _Lane(notifier, name, queue_size)
            for notifier, name in zip(
                notifiers, _distinct([n.name for n in notifiers]), strict=True
            )
        ]
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s

    def offer(self, event: AlertEvent) -> None:
        """Queue ``event`` for every notifier; returns at once. Call it on the loop thread."""
        for lane in self._lanes:
            if len(lane.queue) >= lane.size:
                lane.queue.popleft()
                lane.stats["dropped"] += 1
            lane.queue.append(event)
            lane.ready.set()

    async def start(self) -> None:
        for lane in self._lanes:
            if lane.task is None:
                lane.task = asyncio.create_task(self._run(lane), name=f"notify {lane.name}")
            if lane.background is None and isinstance(lane.notifier, BackgroundNotifier):
                lane.background = asyncio.create_task(
                    self._background(lane.name, lane.notifier),
                    name=f"notify {lane.name} (background)",
                )

    async def stop(self) -> None:
        """Stop sending (events still queued are dropped) and close every notifier."""
        tasks = [task for lane in self._lanes for task in (lane.task, lane.background) if task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lane in self._lanes:
            lane.task = lane.background = None
            try:
                await lane.notifier.aclose()
            except Exception:
                logger.exception("closing alert notifier %s failed", lane.name)

    def stats(self) -> list[NotifierStats]:
        for lane in self._lanes:
            lane.stats["queued"] = len(lane.queue)
        return [dict(lane.stats) for lane in self._lanes]  # type: ignore[misc]

    async def _run(self, lane: _Lane) -> None:
        while True:
            while not lane.queue:
                lane.ready.clear()
                await lane.ready.wait()
            await self._deliver(lane, lane.queue.popleft())

    @staticmethod
    async def _background(name: str, notifier: BackgroundNotifier) -> None:
        try:
            await notifier.background()
        except Exception:
            logger.exception("alert notifier %s: its background work failed", name)

    async def _deliver(self, lane: _Lane, event: AlertEvent) -> None:
        name, stats = lane.name, lane.stats
        delay = self._backoff_s
        for attempt in range(self._retries + 1):
            try:
                await asyncio.wait_for(lane.notifier.send(event), self._timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                reason = "timed out" if isinstance(error, TimeoutError) else repr(error)
                stats["last_error"] = reason
                permanent = isinstance(error, PermanentError)
                if permanent or attempt == self._retries:
                    stats["failed"] += 1
                    logger.error(
                        "alert notifier %s gave up on event %d (%s) after %d attempt(s)%s: %s",
                        name,
                        event["id"],
                        event["message"],
                        attempt + 1,
                        ", not worth retrying" if permanent else "",
                        reason,
                    )
                    return
                stats["retried"] += 1
                logger.warning(
                    "alert notifier %s failed on event %d (%s); retrying in %.1f s",
                    name,
                    event["id"],
                    reason,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff_s)
            else:
                stats["sent"] += 1
                return


def _distinct(names: list[str]) -> list[str]:
    """``names`` with ``#2``, ``#3``... after the second and later of the same name."""
    taken: set[str] = set()
    distinct = []
    for name in names:
        candidate, count = name, 1
        while candidate in taken:
            count += 1
            candidate = f"{name} #{count}"
        taken.add(candidate)
        distinct.append(candidate)
    return distinct
