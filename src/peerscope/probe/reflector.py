"""The TWAMP Light reflector: answers TWAMP-Test probes on a UDP port (8701 by default).

The reply carries the time the probe arrived (receive timestamp: the kernel's arrival stamp,
see peerscope.probe.udp) and the time the reply leaves (timestamp, taken just before
``sendto``), so the sender subtracts the reflector's own processing time, the wait for its
event loop included, from the round trip.

For demos and tests it can also act out a network path, and two kinds of delay are kept
apart because the sender treats them oppositely:

- ``network_delay_ms`` ± ``jitter_ms``: the path. The probe counts as arriving only after
  the delay (the receive timestamp is the real arrival plus the delay), so the sender sees
  it in the RTT, as it would see a long cable. The delays applied are kept in
  ``applied_delays_ms`` as ground truth;
- ``hold_ms``: the reflector being slow. It lies between receive and send timestamps, so the
  sender subtracts it and the RTT is unchanged;
- ``loss_percent``: probes dropped on the path, counted in ``dropped``.

Replies are held with ``loop.call_later``, never by blocking. Datagrams that are not
TWAMP-Test probes get no answer and are counted in ``rejected``; so do probes shorter than
the reply would be (RFC 5357 asks senders to pad by 27 octets), so that reflecting never
amplifies traffic toward a forged source address. Since about half of all random datagrams
pass for probes, a probe is then answered only if its source address is in ``allow`` (when
that is set; else ``not_allowed``) and within its rate (``rate_limit`` probes a second after
a ``burst``; else ``rate_limited``): see peerscope.core.admission. The IP TTL of probes is
not available to an asyncio datagram socket, so replies report 255 (unknown).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import deque
from collections.abc import Iterable
from typing import Literal

from peerscope.core.admission import (
    DEFAULT_BURST,
    DEFAULT_MAX_SOURCES,
    DEFAULT_RATE_LIMIT,
    SourceGate,
)
from peerscope.core.validation import validate_number
from peerscope.probe.twamp import REFLECTOR_SIZE, SenderPacket, ntp_from_unix_ns, reply_to
from peerscope.probe.udp import Address, UdpEndpoint

Distribution = Literal["uniform", "normal"]
DEFAULT_PORT = 8701
_SEQ_MASK = 0xFFFFFFFF


class Reflector:
    """Reflects TWAMP-Test probes: ``await reflector.start()``, ``reflector.stop()``."""

    def __init__(
        self,
        *,
        network_delay_ms: float = 0.0,
        jitter_ms: float = 0.0,
        jitter_distribution: Distribution = "uniform",
        hold_ms: float = 0.0,
        loss_percent: float = 0.0,
        seed: int | None = None,
        keep_delays: int = 100_000,
        rate_limit: float = DEFAULT_RATE_LIMIT,
        burst: int = DEFAULT_BURST,
        max_sources: int = DEFAULT_MAX_SOURCES,
        allow: Iterable[str] = (),
    ) -> None:
        self.network_delay_ms = validate_number(network_delay_ms, "network_delay_ms", high=60_000.0)
        self.jitter_ms = validate_number(jitter_ms, "jitter_ms", high=60_000.0)
        if jitter_distribution not in ("uniform", "normal"):
            raise ValueError(
                f"jitter_distribution: must be 'uniform' or 'normal', got {jitter_distribution!r}"
            )
        self.jitter_distribution = jitter_distribution
        self.hold_ms = validate_number(hold_ms, "hold_ms", high=60_000.0)
        self.loss_percent = validate_number(loss_percent, "loss_percent", high=100.0)
        self._gate = SourceGate(
            rate_limit=rate_limit, burst=burst, max_sources=max_sources, allow=allow
        )
        self._rng = random.Random(seed)
        self.applied_delays_ms: deque[float] = deque(maxlen=keep_delays)
        self.port: int | None = None
        self.reflected = 0
        self.rejected = 0
        self.dropped = 0
        self._endpoint: UdpEndpoint | None = None
        self._seq = 0
        self._held: dict[int, asyncio.TimerHandle] = {}
        self._held_ids = 0

    @property
    def not_allowed(self) -> int:
        """Probes not answered: their source is outside ``allow``."""
        return self._gate.not_allowed

    @property
    def rate_limited(self) -> int:
        """Probes not answered: their source sent more than ``burst``, then ``rate_limit``/s."""
        return self._gate.rate_limited

    @property
    def sources(self) -> int:
        """Source addresses whose rate is tracked (at most ``max_sources``)."""
        return self._gate.sources

    @property
    def is_running(self) -> bool:
        """Whether it answers: started and not stopped since."""
        return self._endpoint is not None

    @property
    def simulates_path(self) -> bool:
        return bool(self.network_delay_ms or self.jitter_ms)

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
        """Bind and start answering; returns the bound port (``port=0`` picks a free one)."""
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port: must be 0..65535, got {port!r}")
        if self._endpoint is not None:
            raise RuntimeError("reflector already started")
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, address = infos[0]
        self._endpoint = UdpEndpoint(family, self._received, bind=address)  # IPv6 scope kept
        self.port = self._endpoint.port
        return self.port

    def stop(self) -> None:
        """Stop answering and drop held replies; safe to call twice."""
        for handle in self._held.values():
            handle.cancel()
        self._held.clear()
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None

    async def __aenter__(self) -> Reflector:
        if self._endpoint is None:
            await self.start(port=0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    # --- probes in, replies out ------------------------------------------------------------

    def _received(self, data: bytes, addr: Address, arrived_ns: int) -> None:
        try:
            probe = SenderPacket.decode(data)
        except ValueError:
            self.rejected += 1
            return
        if len(data) < REFLECTOR_SIZE:
            self.rejected += 1
            return
        if not self._gate.admit(addr[0], time.monotonic_ns()):
            return
        if self.loss_percent and self._rng.random() * 100.0 < self.loss_percent:
            self.dropped += 1
            return
        path_ms = self._path_delay_ms() if self.simulates_path else 0.0
        wait_ms = path_ms + self.hold_ms
        received = ntp_from_unix_ns(arrived_ns + round(path_ms * 1e6))
        if not wait_ms:
            self._reply(probe, received, addr)
            return
        loop = asyncio.get_running_loop()
        key = self._held_ids = self._held_ids + 1
        self._held[key] = loop.call_later(
            wait_ms / 1000.0, self._release, key, probe, received, addr
        )

    # --- replies ------------------------------------------------------------------------------

    def _path_delay_ms(self) -> float:
        if self.jitter_distribution == "uniform":
            spread = self._rng.uniform(-self.jitter_ms, self.jitter_ms)
        else:
            spread = self._rng.gauss(0.0, self.jitter_ms)
        delay = max(0.0, self.network_delay_ms + spread)
        self.applied_delays_ms.append(delay)
        return delay

    def _release(self, key: int, probe: SenderPacket, received: int, addr: Address) -> None:
        del self._held[key]
        self._reply(probe, received, addr)

    def _reply(self, probe: SenderPacket, received: int, addr: Address) -> None:
        endpoint = self._endpoint
        if endpoint is None:
            return
        self._seq = (self._seq + 1) & _SEQ_MASK
        packet = reply_to(
            probe, seq=self._seq, received=received, sent=ntp_from_unix_ns(time.time_ns())
        ).encode()
        if endpoint.sendto(packet, addr):
            self.reflected += 1
