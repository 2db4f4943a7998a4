"""Alerts handed to a Python callable, sync or async."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable

from peerscope.alerting.notifiers.worker import Worker
from peerscope.alerting.records import AlertEvent
from peerscope.core.validation import preview, require, validate_text

__all__ = ["CallbackNotifier"]


class CallbackNotifier:
    """Calls ``callback(event)`` with each :class:`~peerscope.alerting.AlertEvent`.

    An async callback (``async def``, or an object whose ``__call__`` is one) is awaited in
    the notifier's task. A sync one runs on a thread of the notifier's own (see
    :mod:`~peerscope.alerting.notifiers.worker`), so a slow one never stalls the event
    loop; an awaitable it returns (a lambda around an async method, say) is then awaited on
    the loop. A callback that raises is retried like any notifier that fails.

    Each call gets its own copy of the event: a callback that changes it changes nothing
    that the log, ``/ws`` or the other notifiers show.
    """

    def __init__(self, callback: Callable[[AlertEvent], object], name: str = "callback") -> None:
        require(callable(callback), "callback", f"must be callable, got {preview(callback)}")
        self.name = validate_text(name, "name", max_length=128)
        self._callback = callback
        self._is_async = inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
            type(callback).__call__  # an object whose __call__ is async
        )
        self._worker = Worker(f"peerscope-notify-{name}")

    async def send(self, event: AlertEvent) -> None:
        own = copy.deepcopy(event)
        if self._is_async:
            result = self._callback(own)
        else:
            result = await self._worker.call(functools.partial(self._callback, own))
        if inspect.isawaitable(result):
            await result

    async def aclose(self) -> None:
        self._worker.close()
