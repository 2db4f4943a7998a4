"""TCP connect time: the SYN → SYN-ACK round trip, for hosts with a TCP port but no reflector.

What a refused connection (an RST) means is the caller's choice, ``refused``:

- ``"fail"`` (the default): the port is closed, and a check of a service that does not
  listen has failed. The probe is reported at once through ``on_failure`` as
  ``port_closed``; it is no round trip.
- ``"reachable"``: the RST came back over the same path a SYN-ACK would have, so its round
  trip measures the network just as well; this measures the path, not whether a service
  listens (a host with no open port to probe, a firewall that rejects rather than drops).

A timeout or an unreachable network is no answer either way: the caller's timeout decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

from peerscope.core.probe_target import ProbeTarget, TcpRefused
from peerscope.probe.method_protocol import (
    Background,
    FailureHandler,
    ReplyHandler,
    ResolveHandler,
    address_of,
)

logger = logging.getLogger(__name__)
PORT_CLOSED = "connection refused"  # the detail of a port_closed failure


class TcpConnector:
    """Times ``asyncio.open_connection`` and closes the connection at once."""

    def __init__(self, *, refused: TcpRefused = "fail") -> None:
        if refused not in ("fail", "reachable"):
            raise ValueError(f"tcp_refused: must be 'fail' or 'reachable', got {refused!r}")
        self.refused = refused
        self._background = Background()

    def send(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None = None,
        on_failure: FailureHandler | None = None,
    ) -> None:
        self._background.spawn(
            self._connect(target, seq, timeout_s, on_reply, on_resolved, on_failure)
        )

    async def _connect(
        self,
        target: ProbeTarget,
        seq: int,
        timeout_s: float,
        on_reply: ReplyHandler,
        on_resolved: ResolveHandler | None,
        on_failure: FailureHandler | None,
    ) -> None:
        # The name is resolved before the clock starts: DNS time is not path time.
        address = await address_of(target, socket.SOCK_STREAM, seq, on_resolved, on_failure)
        if address is None:
            return
        family, (ip, port) = address
        start = time.perf_counter()
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(ip, port, family=family)
        except ConnectionRefusedError:
            if self.refused == "fail":
                if on_failure is not None:
                    on_failure(seq, "port_closed", PORT_CLOSED)
                return
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
