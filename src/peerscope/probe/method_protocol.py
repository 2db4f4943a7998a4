"""The ProbeMethod protocol every probe method offers (fire a probe now, hear of its reply or
of the target's refusal later), and what the methods share: the look-up of a target's
address, their background tasks.

The methods themselves are opened by name in :mod:`peerscope.probe.method_factory`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from peerscope.core.model import ProblemKind
from peerscope.core.path import PathSample
from peerscope.core.probe_target import ProbeTarget


class ReplyHandler(Protocol):
    """Called with (seq, rtt_ms) for every reply, on the event loop; late and duplicate ones
    too. A TWAMP or STAMP probe's first reply adds what it says of both directions."""

    def __call__(self, seq: int, rtt_ms: float, path: PathSample | None = None, /) -> None: ...


ResolveHandler = Callable[[OSError | None], None]
"""Told how each look-up of a target's name went: None if it resolved, else the error."""
FailureHandler = Callable[[int, ProblemKind, str], None]
"""Called with (seq, kind, detail), on the event loop, when probe ``seq`` failed for a reason
the target itself gave: ``port_closed`` (a TCP connection refused), ``unresolved`` (its name
does not resolve; the detail is :func:`does_not_resolve`'s sentence)."""


class ProbeMethod(Protocol):
    def send(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None = None,
        on_failure: FailureHandler | None = None,
    ) -> None:
        """Send probe ``seq`` to ``target`` without blocking; a reply calls ``on_reply``.

        A host name is looked up first, and ``on_resolved`` told how that went. A probe the
        target itself said no to (a name that does not resolve, a refused connection) calls
        ``on_failure`` at once, so the caller can say why rather than wait for the timeout.
        No answer at all (lost on the way, no one there) calls nothing: the caller's timeout
        decides. Never raises for network trouble.
        """

    async def close(self) -> None:
        """Release sockets and cancel probes under way."""


async def resolve(
    target: ProbeTarget, kind: socket.SocketKind, on_resolved: ResolveHandler | None = None
) -> tuple[int, tuple[str, int]]:
    """(family, (ip, port)) of the target's first address; a name is looked up off the loop,
    and ``on_resolved`` told the outcome.

    OSError (socket.gaierror) when the name does not resolve.
    """
    port = target.port or 0
    if target.ip_version is not None:
        return family_of(target.ip_version), (target.host, port)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(target.host, port, type=kind)
        if not infos:
            raise OSError(f"{target.host!r} has no address")
    except OSError as error:
        if on_resolved is not None:
            on_resolved(error)
        raise
    if on_resolved is not None:
        on_resolved(None)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


async def address_of(
    target: ProbeTarget,
    kind: socket.SocketKind,
    seq: int,
    on_resolved: ResolveHandler | None,
    on_failure: FailureHandler | None,
) -> tuple[int, tuple[str, int]] | None:
    """:func:`resolve` for probe ``seq``: None, its ``on_failure`` told, when the name does
    not resolve."""
    try:
        return await resolve(target, kind, on_resolved)
    except OSError as error:
        if on_failure is not None:
            on_failure(seq, "unresolved", does_not_resolve(target.host, error))
        return None


def does_not_resolve(host: str, error: OSError) -> str:
    """The sentence for a name the resolver refused, e.g. ``'db.lan' does not resolve: Name
    or service not known``."""
    return f"{host!r} does not resolve: {error.strerror or error}"


def family_of(ip_version: int) -> int:
    return socket.AF_INET6 if ip_version == 6 else socket.AF_INET


class Background:
    """The probes a method has under way, as tasks: kept referenced, cancelled on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
