"""Alerting over a Monitor on a ManualClock, with notifiers given to a real Dispatcher, for the
notifier tests; and waiting until the notifiers have done what they were given."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from peerscope import Monitor, Settings
from peerscope.alerting import AlertEvent, Alerting, Dispatcher, Notifier, NotifierStats
from peerscope.core.alerts import AlertRule
from peerscope.testing import ManualClock


def make_monitor(clock: ManualClock) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False), clock=clock)


@contextlib.asynccontextmanager
async def alerting_with(
    monitor: Monitor,
    rules: Sequence[AlertRule],
    notifiers: Sequence[Notifier],
    **dispatcher: Any,
) -> AsyncIterator[Alerting]:
    """``rules`` over ``monitor``, told to ``notifiers`` through a Dispatcher made with
    ``dispatcher``'s options; started for the block, stopped after."""
    alerting = Alerting(monitor, rules, dispatcher=Dispatcher(notifiers, **dispatcher))
    await alerting.start()
    try:
        yield alerting
    finally:
        await alerting.stop()


async def settled(
    alerting: Alerting, *, timeout_s: float = 15.0, **wanted: int
) -> list[NotifierStats]:
    """The notifiers' stats once each has ``wanted`` counts (e.g. sent=2) and nothing queued."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = alerting.notifier_stats()
        if all(
            entry["queued"] == 0 and all(entry[key] == n for key, n in wanted.items())
            for entry in stats
        ):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"notifiers did not settle at {wanted}: {stats}")
        await asyncio.sleep(0.02)


class Recorder:
    """A notifier that keeps what it is told (a Notifier as a user writes one)."""

    name = "recorder"

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    async def send(self, event: AlertEvent) -> None:
        self.events.append(event)

    async def aclose(self) -> None:
        return None
