"""The Prober: probes every target on a schedule and feeds the outcomes to a Monitor.

Each target is probed ``count`` times per ``interval_s``, evenly spaced. Targets are
staggered over that spacing (the k-th target added starts at the fraction k·φ mod 1 of it,
a sequence that spreads any number of targets evenly), so 1,000 peers make a steady trickle
of packets, not one burst a second. One task on the event loop does the scheduling; a
wake-up sends every probe due within the next 5 % of the spacing, so the cost grows with
probes sent, not with wake-ups.

Every probe is announced to the Monitor before it leaves, and every reply is handed over
once the loop's wake-up that read it is over; the Monitor's timeouts decide what is lost, so
late replies, reordering and duplicates are judged in one place. Both go over in batches
(the probes of one wake-up, the replies read in one), so the Monitor's lock and clock are
taken once per batch, not per probe; and unchecked, as the Prober makes them itself.

Not thread-safe: call ``add``/``remove`` from the event loop's thread (or before ``start``).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from dataclasses import dataclass, field
from functools import partial

from peerscope.monitor import Monitor
from peerscope.probe.method import ProbeMethod, ReplyHandler
from peerscope.probe.methods import open_method
from peerscope.probe.target import Method, ProbeTarget

logger = logging.getLogger(__name__)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
# Probes due within this share of the spacing go out in one wake-up (50 ms at 1 Hz): the
# loop's wake-ups, not the probes, were most of the CPU, and 5 % of the spacing early is no
# harm to a schedule.
_BATCH_SHARE = 0.05


@dataclass(slots=True, eq=False)
class _Entry:
    target: ProbeTarget
    phase: float  # fraction of the spacing at which this target's probes go out
    next_seq: int = 0
    on_reply: ReplyHandler = field(init=False)  # Prober._on_reply bound to this entry


class Prober:
    """Probes targets and records the results in ``monitor``."""

    def __init__(self, monitor: Monitor, *, interval_s: float = 1.0, count: int = 1,
                 timeout_s: float = 2.0) -> None:
        if not 0.001 <= interval_s <= 3600:
            raise ValueError(f"interval_s must be within 0.001..3600, got {interval_s!r}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise ValueError(f"count must be an integer within 1..100, got {count!r}")
        if not 0.001 <= timeout_s <= 3600:
            raise ValueError(f"timeout_s must be within 0.001..3600, got {timeout_s!r}")
        self.monitor = monitor
        self.interval_s = interval_s
        self.count = count
        self.timeout_s = timeout_s
        self._spacing = interval_s / count
        self._entries: dict[str, _Entry] = {}
        self._added = 0
        self._methods: dict[Method, ProbeMethod] = {}
        self._queue: list[tuple[float, int, _Entry]] = []
        self._pushed = 0  # tie-breaker in the heap, so entries are never compared
        self._task: asyncio.Task[None] | None = None
        self._replies: list[tuple[_Entry, int, float]] = []  # read, not yet given to the Monitor
        self.sent = 0

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start probing on the running loop; a second call does nothing."""
        if self.is_running:
            return
        now = asyncio.get_running_loop().time()
        for entry in self._entries.values():
            self._schedule(entry, now + entry.phase * self._spacing)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="peerscope-probe")

    async def stop(self) -> None:
        """Stop probing and close the sockets; the targets stay for a later ``start``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._queue.clear()
        methods, self._methods = list(self._methods.values()), {}
        for method in methods:
            await method.close()

    async def __aenter__(self) -> Prober:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- targets ------------------------------------------------------------------------------

    def add(self, target: ProbeTarget) -> None:
        """Probe ``target`` from now on and register it with the Monitor as a peer.

        The peer is labelled ``probe_method``. Adding a known peer id replaces its target.
        """
        if not isinstance(target, ProbeTarget):
            raise ValueError(f"target must be a ProbeTarget, got {type(target).__name__}")
        self._register(target)
        previous = self._entries.get(target.peer_id)
        if previous is None:
            entry = _Entry(target, (self._added * _GOLDEN) % 1.0)
            self._added += 1
        else:
            entry = _Entry(target, previous.phase, previous.next_seq)
        entry.on_reply = partial(self._on_reply, entry)
        self._entries[target.peer_id] = entry
        if self.is_running:
            now = asyncio.get_running_loop().time()
            self._schedule(entry, now + entry.phase * self._spacing)

    def remove(self, peer_id: str) -> bool:
        """Stop probing ``peer_id`` and remove the peer from the Monitor; False if unknown."""
        if self._entries.pop(peer_id, None) is None:
            return False
        self.monitor.remove_peer(peer_id)
        return True

    def targets(self) -> list[ProbeTarget]:
        return [entry.target for entry in self._entries.values()]

    def _register(self, target: ProbeTarget) -> None:
        self.monitor.add_peer(target.peer_id, name=target.name, address=target.address,
                              kind="peer", labels={"probe_method": target.method})

    def _on_reply(self, entry: _Entry, seq: int, rtt_ms: float) -> None:
        replies = self._replies
        if not replies:  # the first of this wake-up's replies: hand them all over after it
            asyncio.get_running_loop().call_soon(self._flush_replies)
        replies.append((entry, seq, rtt_ms))

    def _flush_replies(self) -> None:
        replies, self._replies = self._replies, []
        entries, monitor = self._entries, self.monitor
        # A reply to a target since removed (or replaced) must not bring its peer back.
        monitor._record_probe_replies([
            (peer_id, seq, rtt_ms) for entry, seq, rtt_ms in replies
            if entries.get(peer_id := entry.target.peer_id) is entry and peer_id in monitor])

    # --- the schedule -------------------------------------------------------------------------

    def _schedule(self, entry: _Entry, due: float) -> None:
        self._pushed += 1
        heapq.heappush(self._queue, (due, self._pushed, entry))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue, spacing, entries = self._queue, self._spacing, self._entries
        batch = spacing * _BATCH_SHARE
        while True:
            now = loop.time()
            if not queue or queue[0][0] > now + batch:
                await asyncio.sleep(queue[0][0] - now if queue else spacing)
                continue
            horizon = now + batch
            due_entries: list[_Entry] = []
            while queue and queue[0][0] <= horizon:
                due, tie, entry = queue[0]
                if entries.get(entry.target.peer_id) is not entry:
                    heapq.heappop(queue)  # removed or replaced
                    continue
                due_entries.append(entry)
                due += spacing
                if due < now:  # the loop stalled: skip the missed slots, keep the phase
                    due += math.ceil((now - due) / spacing) * spacing
                # Rescheduled in one sift rather than a pop and a push; the tie-breaker
                # stays unique, as the entry's old place goes.
                heapq.heapreplace(queue, (due, tie, entry))
            self._fire(due_entries)

    def _fire(self, entries: list[_Entry]) -> None:
        monitor = self.monitor
        ready: list[_Entry] = []
        for entry in entries:
            target = entry.target
            if target.peer_id not in monitor:  # pruned by the Monitor after a long outage
                try:
                    self._register(target)
                except Exception:  # e.g. max_peers reached: this target's probe is skipped
                    logger.exception("peerscope: probing %s failed", target.address)
                    continue
            ready.append(entry)
        try:
            monitor._record_probes_sent(
                [(entry.target.peer_id, entry.next_seq) for entry in ready], self.timeout_s)
        except Exception:  # a peer removed from another thread meanwhile (unknown_peer="raise")
            logger.exception("peerscope: recording %d probes failed", len(ready))
        for entry in ready:
            target = entry.target
            seq = entry.next_seq
            entry.next_seq = seq + 1
            try:
                method = self._methods.get(target.method)
                if method is None:
                    method = self._methods[target.method] = open_method(target.method)
                method.send(target, seq, self.timeout_s, entry.on_reply)
            except Exception:  # one target's trouble must not stop every other's probes
                logger.exception("peerscope: probing %s failed", target.address)
        self.sent += len(ready)
