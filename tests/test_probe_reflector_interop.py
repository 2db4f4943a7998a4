"""The reflector as RFC 5357 / RFC 8762 have it, so that other senders read it right: reply
numbers per session from 0 (or the sender's, stateless), the TTL the probe arrived with,
replies as long as the probe (STAMP's 44 octets), unpadded probes refused or answered, a
second (STAMP) port, its own clock's error estimate. Real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket

import pytest

from peerscope import Monitor, Settings
from peerscope.agent import Agent
from peerscope.config import SettingsError
from peerscope.core.reflector_sessions import ReflectorSessions
from peerscope.probe.clock_sync import ClockWatch
from peerscope.probe.reflector import MAX_SENDERS_LOGGED, Reflector
from peerscope.probe.twamp import (
    REFLECTOR_SIZE,
    STAMP_PADDING,
    STAMP_SIZE,
    ReflectorPacket,
    SenderPacket,
    error_estimate_for,
)
from tests.server_support import eventually, running_agent

LOG = "peerscope.probe.reflector"


def sender(host: str = "127.0.0.1", family: int = socket.AF_INET) -> socket.socket:
    client = socket.socket(family, socket.SOCK_DGRAM)
    client.bind((host, 0))
    client.settimeout(5)
    return client


async def ask(client: socket.socket, port: int, data: bytes, to: str = "127.0.0.1") -> bytes:
    """Send one datagram to the reflector and wait for its answer."""
    client.sendto(data, (to, port))
    return await asyncio.to_thread(client.recv, 2048)


async def no_answer(client: socket.socket, port: int, data: bytes) -> None:
    client.sendto(data, ("127.0.0.1", port))
    client.settimeout(0.3)
    with pytest.raises(TimeoutError):
        await asyncio.to_thread(client.recv, 2048)
    client.settimeout(5)


async def reply_seqs(client: socket.socket, port: int, sender_seqs: list[int]) -> list[int]:
    return [
        ReflectorPacket.decode(await ask(client, port, SenderPacket(seq, 1).encode())).seq
        for seq in sender_seqs
    ]


# --- sequence numbers per session ------------------------------------------------------------


async def test_two_senders_each_see_the_reflectors_numbers_from_0():
    with sender() as first, sender() as second:
        async with Reflector() as reflector:
            seen: dict[str, list[int]] = {"first": [], "second": []}
            for seq in range(5):  # interleaved, as two real senders' probes would be
                for name, client in (("first", first), ("second", second)):
                    reply = await ask(client, reflector.port, SenderPacket(seq, 1).encode())
                    seen[name].append(ReflectorPacket.decode(reply).seq)
            assert seen == {"first": [0, 1, 2, 3, 4], "second": [0, 1, 2, 3, 4]}
            assert reflector.sessions == 2


async def test_a_probe_lost_on_the_way_out_leaves_no_gap_in_the_reflectors_numbers():
    """twampy's outbound loss, sender seq minus reflector seq, is the count of probes lost on
    the way out: 0 until one is, never negative, whatever other senders do meanwhile."""
    with sender() as lossy, sender() as other:
        async with Reflector() as reflector:
            differences = []
            for seq in range(10):
                await ask(other, reflector.port, SenderPacket(100 + seq, 1).encode())
                if seq == 3:
                    continue  # lost on the way to the reflector
                reply = ReflectorPacket.decode(
                    await ask(lossy, reflector.port, SenderPacket(seq, 1).encode())
                )
                assert reply.sender_seq == seq
                differences.append(reply.sender_seq - reply.seq)
    assert differences == [0, 0, 0, 1, 1, 1, 1, 1, 1]


async def test_a_session_idle_past_the_limit_starts_again_at_0():
    with sender() as client:
        async with Reflector(session_idle_s=0.2) as reflector:
            assert await reply_seqs(client, reflector.port, [0, 1, 2]) == [0, 1, 2]
            await asyncio.sleep(0.3)
            assert await reply_seqs(client, reflector.port, [3, 4]) == [0, 1]
            assert (reflector.sessions, reflector.sessions_expired) == (1, 1)


async def test_a_sender_starting_again_at_seq_0_starts_a_new_session():
    """twampy binds a fixed port: run again, its seqs start at 0 from the same address and
    port, and a reflector counting on would give it negative outbound loss."""
    with sender() as client:
        async with Reflector() as reflector:
            assert await reply_seqs(client, reflector.port, [0, 1, 2, 0, 1]) == [0, 1, 2, 0, 1]


async def test_sessions_are_bounded_and_the_longest_idle_is_evicted():
    with sender() as a, sender() as b, sender() as c:
        async with Reflector(max_sessions=2) as reflector:
            for client in (a, b, a, b):
                await reply_seqs(client, reflector.port, [5])
            assert await reply_seqs(a, reflector.port, [6]) == [2]
            assert await reply_seqs(c, reflector.port, [1]) == [0]  # evicts b, idle longest
            assert (reflector.sessions, reflector.sessions_evicted) == (2, 1)
            assert await reply_seqs(a, reflector.port, [7]) == [3]  # a kept its count
            assert await reply_seqs(b, reflector.port, [9]) == [0]  # b starts again
            assert (reflector.sessions, reflector.sessions_evicted) == (2, 2)


def test_the_session_table_expires_evicts_and_wraps():
    sessions = ReflectorSessions(idle_s=10.0, max_sessions=3)
    second = 10**9
    assert [sessions.next_seq("a", seq, seq * second) for seq in range(1, 4)] == [0, 1, 2]
    assert sessions.next_seq("b", 1, 4 * second) == 0
    # a was last seen at 3 s: at 13 s it has been idle 10 s (kept), at 13 s + 1 ns past it.
    assert sessions.next_seq("b", 2, 13 * second) == 1
    assert (len(sessions), sessions.expired) == (2, 0)
    assert sessions.next_seq("b", 3, 13 * second + 1) == 2
    assert (len(sessions), sessions.expired) == (1, 1)
    assert sessions.next_seq("a", 4, 14 * second) == 0
    for key in ("c", "d"):  # a fourth session makes room: b is idle longest
        sessions.next_seq(key, 1, 15 * second)
    assert (len(sessions), sessions.evicted) == (3, 1)
    assert sessions.next_seq("b", 4, 15 * second) == 0
    assert sessions.evicted == 2
    wrap = ReflectorSessions()
    wrap._table["w"] = (0xFFFF_FFFF, 0)
    assert [wrap.next_seq("w", seq, 1) for seq in (1, 2)] == [0xFFFF_FFFF, 0]


async def test_stateless_mode_copies_the_senders_seq():
    with sender() as client:
        async with Reflector(mode="stateless") as reflector:
            assert await reply_seqs(client, reflector.port, [7, 9, 0, 12345]) == [7, 9, 0, 12345]
            assert reflector.sessions == 0


# --- the TTL, the reply's size, the STAMP port, the error estimate ---------------------------


async def test_the_reply_carries_the_ttl_the_probe_arrived_with():
    with sender() as client:
        client.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 17)
        async with Reflector() as reflector:
            reply = ReflectorPacket.decode(
                await ask(client, reflector.port, SenderPacket(1, 2).encode())
            )
    assert reply.sender_ttl == 17


async def test_the_reply_carries_the_hop_limit_an_ipv6_probe_arrived_with():
    with sender("::1", socket.AF_INET6) as client:  # never skipped: ::1 is here and in CI
        client.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 17)
        reflector = Reflector()
        port = await reflector.start("::1", 0)
        try:
            data = await ask(client, port, SenderPacket(1, 2).encode(), to="::1")
        finally:
            reflector.stop()
    assert ReflectorPacket.decode(data).sender_ttl == 17


async def test_an_ipv4_probe_on_a_dual_stack_socket_carries_its_ttl():
    with sender() as client:
        client.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 23)
        reflector = Reflector()
        port = await reflector.start("::ffff:127.0.0.1", 0)
        try:
            data = await ask(client, port, SenderPacket(1, 2).encode())
        finally:
            reflector.stop()
    assert ReflectorPacket.decode(data).sender_ttl == 23


async def test_a_stamp_probe_gets_a_stamp_reply_on_either_port():
    probe = SenderPacket(seq=3, timestamp=99, error_estimate=0x8001, padding=STAMP_PADDING)
    assert len(probe.encode()) == STAMP_SIZE
    with sender() as client:
        async with Reflector() as reflector:
            stamp_port = await reflector.start_stamp(port=0)
            assert stamp_port not in (None, reflector.port)
            on_twamp = await ask(client, reflector.port, probe.encode())
            on_stamp = await ask(client, stamp_port, probe.encode())
            assert (reflector.reflected, reflector.sessions) == (2, 2)  # a session per port
    for data in (on_twamp, on_stamp):
        assert len(data) == STAMP_SIZE
        reply = ReflectorPacket.decode(data)
        assert (reply.seq, reply.sender_seq, reply.sender_timestamp) == (0, 3, 99)
        assert reply.sender_error_estimate == 0x8001
        assert data[41:] == bytes(3)  # RFC 8762 §4.3.1: three octets of MBZ after the TTL
    assert not reflector.is_running


async def test_the_stamp_port_needs_a_started_reflector():
    with pytest.raises(RuntimeError, match="start the reflector first"):
        await Reflector().start_stamp(port=0)
    async with Reflector() as reflector:
        with pytest.raises(ValueError, match=r"stamp_port: must be 0\.\.65535"):
            await reflector.start_stamp(port=65536)


async def test_the_replys_error_estimate_is_this_hosts_clocks():
    clock = ClockWatch()
    with sender() as client:
        async with Reflector(clock=clock) as reflector:
            reply = ReflectorPacket.decode(
                await ask(client, reflector.port, SenderPacket(1, 2).encode())
            )
    status = clock.status()  # the reading the reflector made, cached for a second
    assert reply.error_estimate == error_estimate_for(
        status.error_s, synchronized=status.synchronized
    )
    assert bool(reply.error_estimate & 0x8000) == status.synchronized


# --- unpadded probes -------------------------------------------------------------------------


async def test_unpadded_probes_are_refused_counted_and_each_sender_logged_once(caplog):
    twampy = SenderPacket(0, 1, error_estimate=0x3FFF, padding=8).encode()  # 22 octets
    bare = SenderPacket(1, 1, padding=0).encode()  # 14 octets
    caplog.set_level(logging.WARNING, logger=LOG)
    with sender() as one, sender("127.0.0.2") as two:
        async with Reflector() as reflector:
            for client in (one, one, two):
                await no_answer(client, reflector.port, twampy)
                await no_answer(client, reflector.port, bare)
            assert (reflector.unpadded, reflector.rejected, reflector.reflected) == (6, 6, 0)
            assert (reflector.malformed, reflector.sources, reflector.sessions) == (0, 0, 0)
    told = [record for record in caplog.records if record.name == LOG]
    assert [record.__dict__["sender"] for record in told] == ["127.0.0.1", "127.0.0.2"]
    assert "22 octets, shorter than the 41-octet reply" in told[0].getMessage()


def test_the_log_names_a_bounded_number_of_senders_of_unpadded_probes(caplog):
    """Forged sources cannot be sent on loopback; the receive path is fed them directly."""
    caplog.set_level(logging.WARNING, logger=LOG)
    reflector = Reflector()
    bare = SenderPacket(1, 1, padding=0).encode()
    for i in range(MAX_SENDERS_LOGGED + 100):
        reflector._received(0, bare, (f"10.0.{i >> 8}.{i & 255}", 9), 0, 64)
    assert reflector.unpadded == MAX_SENDERS_LOGGED + 100
    lines = [record.getMessage() for record in caplog.records if record.name == LOG]
    assert len(lines) == MAX_SENDERS_LOGGED + 1
    assert lines[-1] == (
        f"unpadded probes came from {MAX_SENDERS_LOGGED} senders; further ones are counted, "
        "not named"
    )


async def test_unpadded_probes_are_answered_with_41_octets_when_asked():
    with sender() as client:
        async with Reflector(unpadded="answer") as reflector:
            for seq, padding in ((0, 0), (1, 8)):
                probe = SenderPacket(seq, 77, error_estimate=0x3FFF, padding=padding)
                data = await ask(client, reflector.port, probe.encode())
                assert len(data) == REFLECTOR_SIZE
                reply = ReflectorPacket.decode(data)
                assert (reply.seq, reply.sender_seq, reply.sender_error_estimate) == (
                    seq,
                    seq,
                    0x3FFF,
                )
            assert (reflector.unpadded, reflector.reflected) == (0, 2)


# --- garbage ---------------------------------------------------------------------------------


def decided(reflector: Reflector) -> int:
    return (
        reflector.reflected
        + reflector.rejected
        + reflector.rate_limited
        + reflector.not_allowed
        + reflector.dropped
    )


@pytest.mark.slow
async def test_every_real_probe_is_answered_among_thousands_of_random_datagrams():
    """Random datagrams from another address, 0-1,500 octets, between a real sender's
    probes: each probe gets its reply, its session's numbers stay 0, 1, 2... (garbage that
    passes for probes has sessions of its own), and every datagram is accounted for."""
    rng = random.Random(16)
    batches, per_batch = 60, 50
    with sender() as real, sender("127.0.0.2") as noise:
        noise.setblocking(False)
        async with Reflector() as reflector:
            replies = []
            for batch in range(batches):
                for _ in range(per_batch):
                    noise.sendto(rng.randbytes(rng.randint(0, 1500)), ("127.0.0.1", reflector.port))
                real.sendto(SenderPacket(batch, batch).encode(), ("127.0.0.1", reflector.port))
                # Paced: the reflector's socket buffer holds a few hundred datagrams.
                await eventually(lambda b=batch: decided(reflector) == (b + 1) * (per_batch + 1))
                replies.append(ReflectorPacket.decode(await asyncio.to_thread(real.recv, 2048)))
                with contextlib.suppress(BlockingIOError):
                    while noise.recv(2048):
                        pass
            garbage = batches * per_batch
            assert [(reply.seq, reply.sender_seq) for reply in replies] == [
                (batch, batch) for batch in range(batches)
            ]
            answered_garbage = reflector.reflected - batches
            assert (
                reflector.malformed + reflector.unpadded + reflector.rate_limited + answered_garbage
                == garbage
            )
            assert reflector.malformed > 0
            assert reflector.unpadded > 0
            assert reflector.is_running


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "stateless-ish"}, "mode: must be 'stateful' or 'stateless'"),
        ({"unpadded": "drop"}, "unpadded: must be 'refuse' or 'answer'"),
        ({"session_idle_s": 0.0}, "session_idle_s: must be > 0"),
        ({"session_idle_s": float("nan")}, "session_idle_s"),
        ({"session_idle_s": -1.0}, "session_idle_s"),
        ({"max_sessions": 0}, "max_sessions: must be an integer >= 1"),
        ({"max_sessions": 1.5}, "max_sessions"),
    ],
)
def test_bad_reflector_arguments_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Reflector(**kwargs)


async def test_serve_answers_on_the_stamp_port_with_its_settings():
    settings = Settings(
        enable_system_metrics=False,
        reflector_port=0,
        reflector_mode="stateless",
        reflector_unpadded="answer",
        reflector_stamp_port=await free_udp_port(),
    )
    agent = Agent(Monitor(settings), port=0)
    async with running_agent(agent):
        reflector = agent.reflector
        assert reflector is not None
        assert reflector.stamp_port == settings.reflector_stamp_port
        with sender() as client:
            data = await ask(client, reflector.stamp_port, SenderPacket(41, 1, padding=0).encode())
        assert len(data) == REFLECTOR_SIZE  # unpadded, answered
        assert ReflectorPacket.decode(data).seq == 41  # stateless
    assert not reflector.is_running


async def test_serve_names_the_stamp_port_it_cannot_bind():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        agent = Agent(
            Monitor(Settings(enable_system_metrics=False, reflector_stamp_port=port)), port=0
        )
        with pytest.raises(SettingsError, match=f"reflector_stamp_port: {port} is in use"):
            await agent.run()
    assert agent.reflector is not None
    assert not agent.reflector.is_running  # the TWAMP port was let go too


async def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
