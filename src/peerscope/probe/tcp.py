"""TCP connect time: the SYN → SYN-ACK round trip, for hosts with a TCP port but no reflector.

A refused connection counts as an answer: the RST came back over the same path as a
SYN-ACK would, so its round trip measures the network just as well. This method measures
the path, not whether a service listens. A timeout or an unreachable network is no answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

from peerscope.core.probe_target import ProbeTarget
from peerscope.probe.method_protocol import Background, ReplyHandler, ResolveHandler, resolve

logger = logging.getLogger(__name__)


class TcpConnector:
    """Times ``asyncio.open_connection`` and closes the connection at once."""

    def __init__(self) -> None:
        self._background = Background()

    def send(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None = None,
    ) -> None:
        self._background.spawn(self._connect(target, seq, timeout_s, on_reply, on_resolved))

    async def _connect(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None,
    ) -> None:
        # The name is resolved before the clock starts: DNS time is not path time.
        try:
            family, (ip, port) = await resolve(target, socket.SOCK_STREAM, on_resolved)
        except OSError as error:
            logger.debug("TCP probe to %s not sent: %s", target.address, error)
            return
        start = time.perf_counter()
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(ip, port, family=family)
        except ConnectionRefusedError:
            pass  # answered with RST: a round trip all the same (see the module docstring)
        except (OSError, TimeoutError) as error:
            logger.debug("TCP probe %d to %s: %s", seq, target.address, error)
            return
        rtt_ms = (time.perf_counter() - start) * 1000.0
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        on_reply(seq, rtt_ms)

    async def close(self) -> None:
        await self._background.cancel()
