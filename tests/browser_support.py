"""A real browser for the dashboard tests: Debian's headless Chromium driven by Playwright.

Playwright drives the system's ``/usr/bin/chromium`` (``apt-get install chromium``); it never
downloads a browser of its own. Each ``browser_page`` launches one Chromium, records the
page's console errors and uncaught exceptions, and closes the browser however the test
ends. Screenshots go to ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from playwright.async_api import Page, async_playwright

from peerscope import Monitor

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@dataclass
class BrowserPage:
    page: Page
    errors: list[str] = field(default_factory=list)

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@contextlib.asynccontextmanager
async def browser_page(
    *, extra_args: Iterable[str] = (), width: int = 1400, height: int = 1600
) -> AsyncIterator[BrowserPage]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            found = BrowserPage(page)
            page.on(
                "console",
                lambda message: (
                    found.errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.on("pageerror", lambda error: found.errors.append(f"uncaught: {error}"))
            # An alert() would mean a peer's name ran as code: record it, never wait on it.
            page.on(
                "dialog",
                lambda dialog: (
                    found.errors.append(f"dialog: {dialog.message}"),
                    asyncio.ensure_future(dialog.dismiss()),
                ),
            )
            yield found
        finally:
            await browser.close()


class Recording:
    """Runs ``_run`` in a task while the ``async with`` block lasts."""

    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class PeerFeed(Recording):
    """Records a latency for each fed peer every ``interval`` seconds, like a prober would,
    until stopped."""

    def __init__(
        self, monitor: Monitor, peer_ids: Iterable[str], interval: float = 0.2, seed: int = 5
    ) -> None:
        self.monitor = monitor
        self.peer_ids = list(peer_ids)
        self.interval = interval
        self._rng = random.Random(seed)

    async def _run(self) -> None:
        while True:
            for index, peer_id in enumerate(self.peer_ids):
                latency = max(0.1, self._rng.gauss(10.0 + index % 50, 2.0))
                self.monitor.record_latency(peer_id, latency)
                self.monitor.record_traffic(
                    peer_id, bytes_sent=600, bytes_received=900, packets_sent=1, packets_received=1
                )
            await asyncio.sleep(self.interval)


# A peer's scripted measurement: seconds since the script's start -> ms, or None (no reply).
Outcome = Callable[[float], float | None]


class ReplayClock:
    """A Monitor clock pinned to moments in the past while a test records history there,
    then (``live()``) the wall clock: a page opened next finds minutes of past."""

    def __init__(self, pinned: float) -> None:
        self.pinned: float | None = pinned

    def __call__(self) -> float:
        return time.time() if self.pinned is None else self.pinned

    def live(self) -> None:
        self.pinned = None


class ScriptedPeers(Recording):
    """Peers measured as a script says, ``outcomes[peer](seconds since start)``: ``replay``
    records the past from ``clock``'s pinned start up to the wall clock, every ``step`` s,
    at once; ``async with`` then records live every ``interval`` s. ``recorded`` keeps each
    peer's (time, ms or None)."""

    def __init__(
        self,
        monitor: Monitor,
        clock: ReplayClock,
        outcomes: dict[str, Outcome],
        interval: float = 0.2,
    ) -> None:
        assert clock.pinned is not None, "the clock must start pinned in the past"
        self.monitor = monitor
        self.clock = clock
        self.start = clock.pinned
        self.outcomes = outcomes
        self.interval = interval
        self.recorded: dict[str, list[tuple[float, float | None]]] = {p: [] for p in outcomes}

    def _record(self, now: float) -> None:
        for peer_id, outcome in self.outcomes.items():
            latency = outcome(now - self.start)
            self.monitor.record_latency(peer_id, latency)
            self.recorded[peer_id].append((now, latency))

    def replay(self, step: float) -> float:
        """Record the past up to now; return where the replay ended."""
        at = self.start
        while at < time.time() - step:
            self.clock.pinned = at
            self._record(at)
            at += step
        self.clock.live()
        return at

    async def _run(self) -> None:
        while True:
            self._record(self.clock())
            await asyncio.sleep(self.interval)
