"""The TWAMP Light / STAMP reflector: answers TWAMP-Test probes on a UDP port (8701 by
default) and, if asked, STAMP's on a second one (862 is STAMP's, RFC 8762 §4).

What the reply carries, as RFC 5357 §4.2.1 and RFC 8762 §4.3.1 have it:

- its own sequence number, per test session (a sender's address and port), from 0
  (peerscope.core.reflector_sessions); or, in ``mode="stateless"`` (RFC 8762 §4.2), a copy
  of the probe's, for senders that want only round-trip loss;
- the time the probe arrived (receive timestamp: the kernel's arrival stamp, see
  peerscope.probe.udp) and the time the reply leaves (timestamp, taken just before
  ``sendto``), so the sender subtracts the reflector's own processing time, the wait for
  its event loop included, from the round trip; the error estimate of both is this host's
  clock's, from the kernel (peerscope.probe.clock_sync: the S bit when it is synchronised);
- the TTL (IPv4) or hop limit (IPv6) the probe arrived with, read in the same ``recvmsg``
  as the arrival stamp, so the sender can tell a path of another length; 255 only when the
  kernel gave none;
- as many octets as the probe, 41 at least: a 44-octet STAMP probe gets a 44-octet reply
  with STAMP's 3 MBZ octets after the TTL (RFC 8762 §4.6 made the layouts agree), so one
  logic answers on both ports and the packet's length says which protocol spoke.

Datagrams that are not probes get no answer (``malformed``). Neither do probes shorter
than the 41-octet reply (``unpadded``; each sender's address logged once), unless
``unpadded="answer"``: RFC 5357 asks senders to pad by 27 octets so that a reflector never
sends more than it got, and one that does amplifies floods toward forged source addresses
(twampy, for one, sends 22 octets). Since about every random datagram of 41 octets and up
passes for a probe, a probe is then answered only if its source address is in ``allow``
(when that is set; else ``not_allowed``) and within its rate (``rate_limit`` probes a
second after a ``burst``; else ``rate_limited``): see peerscope.core.admission.

For demos and tests it can also act out a network path, and two kinds of delay are kept
apart because the sender treats them oppositely:

- ``network_delay_ms`` ± ``jitter_ms``: the path. The probe counts as arriving only after
  the delay (the receive timestamp is the real arrival plus the delay), so the sender sees
  it in the RTT, as it would see a long cable. The delays applied are kept in
  ``applied_delays_ms`` as ground truth;
- ``hold_ms``: the reflector being slow. It lies between receive and send timestamps, so the
  sender subtracts it and the RTT is unchanged;
- ``loss_percent``: probes dropped on the path, counted in ``dropped`` (before the session
  counts them: a probe lost on the way out leaves no gap in the reflector's numbers).

Replies are held with ``loop.call_later``, never by blocking.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import Literal

from peerscope.core.admission import (
    DEFAULT_BURST,
    DEFAULT_MAX_SOURCES,
    DEFAULT_RATE_LIMIT,
    ReflectorUnpadded,
    SourceGate,
)
from peerscope.core.reflector_sessions import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_S,
    ReflectorMode,
    ReflectorSessions,
)
from peerscope.core.validation import validate_number
from peerscope.probe.clock_sync import ClockStatus, ClockWatch
from peerscope.probe.twamp import (
    REFLECTOR_SIZE,
    TTL_UNKNOWN,
    SenderPacket,
    error_estimate_for,
    ntp_from_unix_ns,
    reply_to,
)
from peerscope.probe.udp import Address, UdpEndpoint

Distribution = Literal["uniform", "normal"]
DEFAULT_PORT = 8701
STAMP_PORT = 862  # RFC 8762 §4; below 1024: root or CAP_NET_BIND_SERVICE to bind it
# Senders of unpadded probes named in the log, each once. A forger cycling through source
# addresses could otherwise write a line per packet, so past this many the log says so once
# and names no more (``unpadded`` still counts them).
MAX_SENDERS_LOGGED = 256

log = logging.getLogger(__name__)


class Reflector:
    """Reflects TWAMP-Test and STAMP probes: ``await reflector.start()``, optionally
    ``await reflector.start_stamp()``, then ``reflector.stop()``."""

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
        mode: ReflectorMode = "stateful",
        session_idle_s: float = DEFAULT_SESSION_IDLE_S,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        unpadded: ReflectorUnpadded = "refuse",
        clock: ClockWatch | None = None,
    ) -> None:
        self.network_delay_ms = validate_number(network_delay_ms, "network_delay_ms", high=60_000.0)
        self.jitter_ms = validate_number(jitter_ms, "jitter_ms", high=60_000.0)
        _check_choice(jitter_distribution, "jitter_distribution", ("uniform", "normal"))
        _check_choice(mode, "mode", ("stateful", "stateless"))
        _check_choice(unpadded, "unpadded", ("refuse", "answer"))
        self.jitter_distribution = jitter_distribution
        self.mode = mode
        self.unpadded_policy = unpadded
        self.hold_ms = validate_number(hold_ms, "hold_ms", high=60_000.0)
        self.loss_percent = validate_number(loss_percent, "loss_percent", high=100.0)
        self._gate = SourceGate(
            rate_limit=rate_limit, burst=burst, max_sources=max_sources, allow=allow
        )
        self._sessions = ReflectorSessions(idle_s=session_idle_s, max_sessions=max_sessions)
        self._clock = clock or ClockWatch()
        self._clock_status: ClockStatus | None = None
        self._error_estimate = 0
        self._rng = random.Random(seed)
        self.applied_delays_ms: deque[float] = deque(maxlen=keep_delays)
        self.port: int | None = None
        self.stamp_port: int | None = None
        self.reflected = 0
        self.malformed = 0
        self.unpadded = 0
        self.dropped = 0
        # Index 0 answers on ``port``, 1 on ``stamp_port``: a reply leaves by the socket its
        # probe came in on, and the index is part of the session's key.
        self._endpoints: list[UdpEndpoint] = []
        self._held: dict[int, asyncio.TimerHandle] = {}
        self._held_ids = 0
        self._told: set[str] = set()  # senders of unpadded probes named in the log
        self._told_enough = False

    @property
    def rejected(self) -> int:
        """Datagrams not answered for what they are: ``malformed`` plus ``unpadded``."""
        return self.malformed + self.unpadded

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
    def sessions(self) -> int:
        """Test sessions whose sequence numbers are kept (at most ``max_sessions``)."""
        return len(self._sessions)

    @property
    def sessions_evicted(self) -> int:
        """Sessions forgotten to make room for a new sender (it starts again at 0)."""
        return self._sessions.evicted

    @property
    def sessions_expired(self) -> int:
        """Sessions ended after ``session_idle_s`` without a probe."""
        return self._sessions.expired

    @property
    def is_running(self) -> bool:
        """Whether it answers: started and not stopped since."""
        return bool(self._endpoints)

    @property
    def simulates_path(self) -> bool:
        return bool(self.network_delay_ms or self.jitter_ms)

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
        """Bind and start answering; returns the bound port (``port=0`` picks a free one)."""
        if self._endpoints:
            raise RuntimeError("reflector already started")
        self.stamp_port = None
        self.port = await self._listen(host, port, "port")
        return self.port

    async def start_stamp(self, host: str = "127.0.0.1", port: int = STAMP_PORT) -> int:
        """Answer on a second port too (STAMP's, 862, by default), once started; returns the
        bound port (``port=0`` picks a free one)."""
        if len(self._endpoints) != 1:
            raise RuntimeError("start the reflector first, and its STAMP port once")
        self.stamp_port = await self._listen(host, port, "stamp_port")
        return self.stamp_port

    async def _listen(self, host: str, port: int, field_name: str) -> int:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"{field_name}: must be 0..65535, got {port!r}")
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, address = infos[0]
        on_datagram = partial(self._received, len(self._endpoints))
        # The address as resolved, so an IPv6 scope is kept.
        endpoint = UdpEndpoint(family, on_datagram, bind=address, receive_ttl=True)
        self._endpoints.append(endpoint)
        return endpoint.port

    def stop(self) -> None:
        """Stop answering and drop held replies; safe to call twice."""
        for handle in self._held.values():
            handle.cancel()
        self._held.clear()
        for endpoint in self._endpoints:
            endpoint.close()
        self._endpoints = []

    async def __aenter__(self) -> Reflector:
        if not self._endpoints:
            await self.start(port=0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    # --- probes in, replies out ------------------------------------------------------------

    def _received(
        self, index: int, data: bytes, addr: Address, arrived_ns: int, ttl: int | None
    ) -> None:
        try:
            probe = SenderPacket.decode(data)
        except ValueError:
            self.malformed += 1
            return
        if len(data) < REFLECTOR_SIZE and self.unpadded_policy == "refuse":
            self.unpadded += 1
            self._tell_unpadded(addr[0], len(data))
            return
        if not self._gate.admit(addr[0], time.monotonic_ns()):
            return
        if self.loss_percent and self._rng.random() * 100.0 < self.loss_percent:
            self.dropped += 1
            return
        path_ms = self._path_delay_ms() if self.simulates_path else 0.0
        wait_ms = path_ms + self.hold_ms
        received = ntp_from_unix_ns(arrived_ns + round(path_ms * 1e6))
        sender_ttl = TTL_UNKNOWN if ttl is None else ttl
        if not wait_ms:
            self._reply(index, probe, received, addr, sender_ttl)
            return
        loop = asyncio.get_running_loop()
        key = self._held_ids = self._held_ids + 1
        self._held[key] = loop.call_later(
            wait_ms / 1000.0, self._release, key, index, probe, received, addr, sender_ttl
        )

    def _tell_unpadded(self, host: str, size: int) -> None:
        told = self._told
        if host in told or self._told_enough:
            return
        if len(told) >= MAX_SENDERS_LOGGED:
            self._told_enough = True
            log.warning(
                "unpadded probes came from %d senders; further ones are counted, not named",
                len(told),
            )
            return
        told.add(host)
        log.warning(
            "not answering %s: its probes are %d octets, shorter than the %d-octet reply "
            "(RFC 5357 asks senders to pad by 27; reflector_unpadded = 'answer' answers them)",
            host,
            size,
            REFLECTOR_SIZE,
            extra={"sender": host, "octets": size},
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

    def _release(
        self, key: int, index: int, probe: SenderPacket, received: int, addr: Address, ttl: int
    ) -> None:
        del self._held[key]
        self._reply(index, probe, received, addr, ttl)

    def _reply(
        self, index: int, probe: SenderPacket, received: int, addr: Address, ttl: int
    ) -> None:
        if not self._endpoints:
            return
        if self.mode == "stateless":
            seq = probe.seq
        else:
            seq = self._sessions.next_seq((index, addr[0], addr[1]), probe.seq, time.monotonic_ns())
        packet = reply_to(
            probe,
            seq=seq,
            received=received,
            sent=ntp_from_unix_ns(time.time_ns()),
            ttl=ttl,
            error_estimate=self._our_error_estimate(),
        ).encode()
        if self._endpoints[index].sendto(packet, addr):
            self.reflected += 1

    def _our_error_estimate(self) -> int:
        status = self._clock.status()
        if status is not self._clock_status:  # a new reading at most once a second
            self._clock_status = status
            self._error_estimate = error_estimate_for(
                status.error_s, synchronized=status.synchronized
            )
        return self._error_estimate


def _check_choice(value: str, field_name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        allowed = " or ".join(repr(choice) for choice in choices)
        raise ValueError(f"{field_name}: must be {allowed}, got {value!r}")
