"""The Prober: probes every target on a schedule and feeds the outcomes to a Monitor
(any :class:`peerscope.probe.sink.ProbeSink`).

Each target is probed ``count`` times per ``interval_s``, evenly spaced. Targets are
staggered over that spacing (the k-th target added goes out at the fraction k·φ mod 1 of
it, a sequence that spreads any number of targets evenly), so 1,000 peers make a steady
trickle of packets, not one burst a second. One task on the event loop does the scheduling;
a wake-up sends every probe due within the next 20 % of the spacing (or the next 200), so
the cost grows with probes sent, not with wake-ups. The schedule repeats every spacing, so
it is kept as the targets in order of their offset in it: a wake-up takes the next slice of
that list (two binary searches), with no per-probe priority queue.

Every probe is announced to the sink before it leaves, and every reply is handed over
once the loop's wake-up that read it is over; the sink's timeouts decide what is lost, so
late replies, reordering and duplicates are judged in one place. A probe its target said no
to (a refused TCP port, a name that does not resolve) is handed over the same way as a
failure, lost at once with the reason, rather than left to time out as silent loss. All go
over in batches (the probes of one wake-up, the replies and failures heard in one), so the
Monitor's lock and clock are taken once per batch, not per probe.

Not thread-safe: call ``add``/``remove`` from the event loop's thread (or before ``start``).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from dataclasses import dataclass, field
from functools import partial

from peerscope.core.model import ProblemKind
from peerscope.core.path import PathSample
from peerscope.core.probe_target import Method, ProbeTarget, TcpRefused
from peerscope.probe.method_factory import open_method
from peerscope.probe.method_protocol import (
    FailureHandler,
    ProbeMethod,
    ReplyHandler,
    ResolveHandler,
    does_not_resolve,
)
from peerscope.probe.sink import ProbeSink
from peerscope.profiler import profile

logger = logging.getLogger(__name__)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
# Probes due within this share of the spacing go out in one wake-up (200 ms at 1 Hz): on
# this project's 2-core VM a wake-up of the process costs the CPU of several probes (1,000
# probes a second, paired windows: 3.5-4.1 % of a core at 20 % against 3.9-4.2 % at 10 %,
# and 4.1-4.6 % at 10 % against 4.6-5.6 % at 5 %), and a probe that leaves up to 20 % of
# the spacing early harms no measurement (RTT, jitter and loss do not depend on when in its
# slot a probe left). The TWAMP sender's read wait is as long, so that while probes go out
# each batch's own read finds the replies and a timer does not wake the process for them.
_BATCH_SHARE = 0.2
# But a window of no more probes than this (a late wake-up adds what fell due meanwhile):
# their replies wait in the socket until the next wake-up. Linux's default receive buffer
# (208 KiB) holds 256 small datagrams; the TWAMP sender asks for more (512 where
# net.core.rmem_max is the default).
_MAX_BATCH = 200


@dataclass(slots=True, eq=False)
class _Entry:
    target: ProbeTarget
    offset_ns: int  # when in each spacing this target's probe goes out
    next_seq: int = 0
    active: bool = True  # False once removed or replaced: its late replies are dropped
    unresolved: str | None = None  # why its name does not resolve, while it does not
    on_reply: ReplyHandler = field(init=False)  # Prober._on_reply bound to this entry
    on_resolved: ResolveHandler = field(init=False)  # Prober._on_resolved bound to it
    on_failure: FailureHandler = field(init=False)  # Prober._on_failure bound to it


class Prober:
    """Probes targets and records the results in ``sink`` (a Monitor).

    ``tcp_refused``: whether a refused TCP connection is a failed probe (``"fail"``) or a
    round trip (``"reachable"``); see :mod:`peerscope.probe.tcp`.
    """

    def __init__(
        self,
        sink: ProbeSink,
        *,
        interval_s: float = 1.0,
        count: int = 1,
        timeout_s: float = 2.0,
        tcp_refused: TcpRefused = "fail",
    ) -> None:
        if not 0.001 <= interval_s <= 3600:
            raise ValueError(f"interval_s: must be within 0.001..3600, got {interval_s!r}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise ValueError(f"count: must be an integer within 1..100, got {count!r}")
        if not 0.001 <= timeout_s <= 3600:
            raise ValueError(f"timeout_s: must be within 0.001..3600, got {timeout_s!r}")
        if tcp_refused not in ("fail", "reachable"):
            raise ValueError(f"tcp_refused: must be 'fail' or 'reachable', got {tcp_refused!r}")
        self.sink = sink
        self.interval_s = interval_s
        self.count = count
        self.timeout_s = timeout_s
        self.tcp_refused = tcp_refused
        self._cycle_ns = max(1, round(interval_s / count * 1e9))  # the spacing
        self._entries: dict[str, _Entry] = {}
        self._added = 0
        # The entries by offset, and their offsets (for bisect); kept in step with _entries.
        self._order: list[_Entry] = []
        self._offsets: list[int] = []
        self._methods: dict[Method, ProbeMethod] = {}
        self._task: asyncio.Task[None] | None = None
        # Heard of, not yet given to the sink (see _hand_over).
        self._replies: list[tuple[_Entry, int, float]] = []
        self._failures: list[tuple[_Entry, int, ProblemKind, str]] = []
        self._paths: list[tuple[_Entry, PathSample]] = []
        self.sent = 0

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start probing on the running loop; a second call does nothing."""
        if self.is_running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="peerscope-probe")

    async def stop(self) -> None:
        """Stop probing and close the sockets; the targets stay for a later ``start``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
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
        """Probe ``target`` from now on and register it with the sink as a peer.

        The peer has the target's labels and ``probe_method``. Adding a known peer id
        replaces its target.
        """
        if not isinstance(target, ProbeTarget):
            raise ValueError(f"target: must be a ProbeTarget, got {type(target).__name__}")
        self._register(target)
        previous = self._entries.get(target.peer_id)
        if previous is None:
            entry = _Entry(target, int((self._added * _GOLDEN) % 1.0 * self._cycle_ns))
            self._added += 1
            at = bisect.bisect_right(self._offsets, entry.offset_ns)
            self._offsets.insert(at, entry.offset_ns)
            self._order.insert(at, entry)
        else:  # same place in the schedule, numbering carried on
            entry = _Entry(target, previous.offset_ns, previous.next_seq)
            self._order[self._order.index(previous)] = entry
            previous.active = False
        entry.on_reply = partial(self._on_reply, entry)
        entry.on_resolved = partial(self._on_resolved, entry)
        entry.on_failure = partial(self._on_failure, entry)
        self._entries[target.peer_id] = entry

    def remove(self, peer_id: str) -> bool:
        """Stop probing ``peer_id`` and remove the peer from the sink; False if unknown."""
        entry = self._entries.pop(peer_id, None)
        if entry is None:
            return False
        entry.active = False
        at = self._order.index(entry)
        del self._order[at], self._offsets[at]
        self.sink.remove_peer(peer_id)
        return True

    def counts(self) -> dict[str, int]:
        """Probes sent, and what the methods' sockets got that they could not use, over
        the methods open now (``malformed``, ``unmatched``; ``errors``: refused sends and
        receive errors)."""
        methods = self._methods.values()
        return {
            "sent": self.sent,
            **{
                name: sum(getattr(method, name, 0) for method in methods)
                for name in ("malformed", "unmatched", "errors")
            },
        }

    def targets(self) -> list[ProbeTarget]:
        return [entry.target for entry in self._entries.values()]

    def error(self, peer_id: str) -> str | None:
        """Why ``peer_id``'s probes do not go out (its name does not resolve), else None."""
        entry = self._entries.get(peer_id)
        return None if entry is None else entry.unresolved

    def _register(self, target: ProbeTarget) -> None:
        self.sink.add_peer(
            target.peer_id,
            name=target.name,
            address=target.address,
            kind="peer",
            labels={**dict(target.labels), "probe_method": target.method},
        )

    def _on_reply(
        self, entry: _Entry, seq: int, rtt_ms: float, path: PathSample | None = None, /
    ) -> None:
        if not self._replies and not self._failures:
            # The first outcome of this wake-up: hand them all over after it.
            asyncio.get_running_loop().call_soon(self._hand_over)
        self._replies.append((entry, seq, rtt_ms))
        if path is not None:
            self._paths.append((entry, path))

    def _on_failure(self, entry: _Entry, seq: int, kind: ProblemKind, detail: str) -> None:
        if not self._replies and not self._failures:
            asyncio.get_running_loop().call_soon(self._hand_over)
        self._failures.append((entry, seq, kind, detail))

    def _on_resolved(self, entry: _Entry, error: OSError | None) -> None:
        """Say once that a name does not resolve (no packet goes: each probe is a failure
        the peer's reason explains), and once that it does again; the rounds between
        repeat nothing."""
        target = entry.target
        if error is None:
            if entry.unresolved is not None:
                entry.unresolved = None
                logger.info(
                    "peer %r: %r resolves again",
                    target.peer_id,
                    target.host,
                    extra={"peer_id": target.peer_id},
                )
            return
        reason = does_not_resolve(target.host, error)
        if entry.unresolved is None and entry.active:
            logger.warning(
                "peer %r: %s; no probes go to %s until it does",
                target.peer_id,
                reason,
                target.address,
                extra={"peer_id": target.peer_id},
            )
        entry.unresolved = reason

    def _hand_over(self) -> None:
        """Give the sink the failures and replies heard since the last call. Failures go
        first: a reply heard in the same wake-up shows the target answers after all, and
        clears the reason they set (the next probe refused sets it again)."""
        replies, self._replies = self._replies, []
        failures, self._failures = self._failures, []
        # An outcome for a target since removed (or replaced), or for a peer the Monitor
        # has dropped, must not bring its peer back.
        if failures:
            self.sink.record_probe_failures(
                [
                    (entry.target.peer_id, seq, kind, detail)
                    for entry, seq, kind, detail in failures
                    if entry.active
                ],
                known_only=True,
            )
        if replies:
            self.sink.record_probe_replies(
                [
                    (entry.target.peer_id, seq, rtt_ms)
                    for entry, seq, rtt_ms in replies
                    if entry.active
                ],
                known_only=True,
            )
        paths, self._paths = self._paths, []
        if paths:
            self.sink.record_probe_paths(
                [(entry.target.peer_id, path) for entry, path in paths if entry.active]
            )

    # --- the schedule -------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        cycle = self._cycle_ns
        start = _ns(loop.time())
        done = -1  # every probe due up to this time (ns since start) has gone out
        while True:
            targets = len(self._order)
            share = min(_BATCH_SHARE, _MAX_BATCH / targets) if targets else _BATCH_SHARE
            horizon = _ns(loop.time()) - start + int(cycle * share)
            if horizon > done:
                self._fire(self._due(done, horizon))
                done = horizon
            # Asleep until the next probe is due: past this batch's horizon, so each wake-up
            # sends a full batch, not the first few due after it.
            wake = done + self._until_next(done)
            await asyncio.sleep((start + wake) / 1e9 - loop.time())

    def _due(self, after: int, until: int) -> list[_Entry]:
        """The entries with a probe due in (after, until], ns since start; each once.

        A wait of a whole spacing or more (a stalled loop) sends every target once: the
        missed slots are skipped and each target keeps its place.
        """
        order, offsets, cycle = self._order, self._offsets, self._cycle_ns
        if until - after >= cycle:
            return list(order)
        low = after % cycle
        high = low + (until - after)
        first = bisect.bisect_right(offsets, low)
        if high < cycle:
            return order[first : bisect.bisect_right(offsets, high)]
        return order[first:] + order[: bisect.bisect_right(offsets, high - cycle)]

    def _until_next(self, after: int) -> int:
        """ns from ``after`` to the next probe due after it (a spacing if there is none)."""
        offsets, cycle = self._offsets, self._cycle_ns
        if not offsets:
            return cycle
        low = after % cycle
        at = bisect.bisect_right(offsets, low)
        return (offsets[at] if at < len(offsets) else offsets[0] + cycle) - low

    @profile(name="peerscope:probe_batch", cpu=True)
    def _fire(self, entries: list[_Entry]) -> None:
        sink = self.sink
        ready: list[_Entry] = []
        for entry in entries:
            target = entry.target
            if target.peer_id not in sink:  # pruned by the Monitor after a long outage
                try:
                    self._register(target)
                except Exception:  # e.g. max_peers reached: this target's probe is skipped
                    logger.exception(
                        "probing %s failed", target.address, extra={"peer_id": target.peer_id}
                    )
                    continue
            ready.append(entry)
        try:
            sink.record_probes_sent(
                [(entry.target.peer_id, entry.next_seq) for entry in ready],
                timeout_s=self.timeout_s,
            )
        except Exception:  # a peer removed from another thread meanwhile (unknown_peer="raise")
            logger.exception("recording %d probes failed", len(ready))
        for entry in ready:
            target = entry.target
            seq = entry.next_seq
            entry.next_seq = seq + 1
            try:
                method = self._methods.get(target.method)
                if method is None:
                    method = self._methods[target.method] = open_method(
                        target.method, tcp_refused=self.tcp_refused
                    )
                method.send(
                    target, seq, self.timeout_s, entry.on_reply, entry.on_resolved, entry.on_failure
                )
            except Exception:  # one target's trouble must not stop every other's probes
                logger.exception(
                    "probing %s failed", target.address, extra={"peer_id": target.peer_id}
                )
        self.sent += len(ready)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)
