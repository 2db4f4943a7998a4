"""Bad input never poisons state: every recording entry point takes real numbers only, stores
them as plain ``float``/``int``, and refuses anything else with a ValueError naming the
argument, before anything is changed."""

from __future__ import annotations

import asyncio
import math
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerscope import Monitor, PeerAdded, PeerLimitError, Settings
from peerscope.compat.avatar import MetricsCollector as AvatarCollector
from peerscope.compat.lanrage import MetricsCollector
from peerscope.testing import ManualClock


class Odd:
    """An object nothing should accept, with a repr that is long on purpose."""

    def __repr__(self) -> str:
        return "Odd(" + "x" * 10_000 + ")"


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.fractions(),
    st.complex_numbers(),
    st.text(max_size=300),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(Odd()),
    st.just(object()),
    st.just(math.nan),
    st.just(-math.inf),
    st.integers(min_value=10**400, max_value=10**401),
)

Call = Callable[[Monitor, Any], Any]


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def traffic_call(counter: str) -> Call:
    return lambda monitor, value: monitor.record_traffic("p1", **{counter: value})


# Each entry point, with the argument under test taking the arbitrary value.
CALLS: dict[str, Call] = {
    "record_latency.peer_id": lambda m, v: m.record_latency(v, 5.0),
    "record_latency.latency_ms": lambda m, v: m.record_latency("p1", v),
    "record_traffic.peer_id": lambda m, v: m.record_traffic(v, bytes_sent=1),
    **{
        f"record_traffic.{name}": traffic_call(name)
        for name in (
            "bytes_sent",
            "bytes_received",
            "packets_sent",
            "packets_received",
            "messages_sent",
            "messages_received",
        )
    },
    "record_message.peer_id": lambda m, v: m.record_message(v, size=1),
    "record_message.size": lambda m, v: m.record_message("p1", size=v),
    "record_message.direction": lambda m, v: m.record_message("p1", direction=v),
    "record_fps.fps": lambda m, v: m.record_fps("p1", v, 16.0),
    "record_fps.frame_time_ms": lambda m, v: m.record_fps("p1", 60.0, v),
    "record_loss.loss_percent": lambda m, v: m.record_loss("p1", v),
    "record_loss.peer_id": lambda m, v: m.record_loss(v, 1.0),
    "mark_alive.peer_id": lambda m, v: m.mark_alive(v),
    "record_probe_sent.seq": lambda m, v: m.record_probe_sent("p1", v),
    "record_probe_sent.timeout_s": lambda m, v: m.record_probe_sent("p1", 99, timeout_s=v),
    "record_probe_sent.peer_id": lambda m, v: m.record_probe_sent(v, 98),
    "record_probe_reply.seq": lambda m, v: m.record_probe_reply("p1", v, 3.0),
    "record_probe_reply.rtt_ms": lambda m, v: m.record_probe_reply("p1", 1, v),
    "record_probe_reply.peer_id": lambda m, v: m.record_probe_reply(v, 1, 3.0),
    "add_peer.peer_id": lambda m, v: m.add_peer(v),
    "add_peer.name": lambda m, v: m.add_peer("p1", name=v),
    "add_peer.kind": lambda m, v: m.add_peer("p9", kind=v),
    "add_peer.labels": lambda m, v: m.add_peer("p1", labels=v),
    "remove_peer.peer_id": lambda m, v: m.remove_peer(v) if v != "p1" else None,
    # The seeds' adapters hand their arguments to the Monitor: the same checks apply.
    "avatar.track_client_latency": lambda m, v: AvatarCollector(m).track_client_latency("p1", v),
    "avatar.track_client_message": lambda m, v: AvatarCollector(m).track_client_message("p1", v, 0),
    "avatar.track_client_message.id": lambda m, v: AvatarCollector(m).track_client_message(v, 1, 1),
    "lanrage.record_latency": lambda m, v: _run(
        MetricsCollector(monitor=m).record_latency("p1", v)
    ),
    "lanrage.record_bandwidth": lambda m, v: _run(
        MetricsCollector(monitor=m).record_bandwidth("p1", bytes_received=v)
    ),
    "lanrage.record_packet_loss": lambda m, v: _run(
        MetricsCollector(monitor=m).record_packet_loss("p1", v)
    ),
}


CALLS_ON_MONITOR = {call.partition(".")[0] for call in CALLS} - {"avatar", "lanrage"}


def recorded_monitor() -> tuple[Monitor, ManualClock]:
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    monitor.record_probe_sent("p1", 1)
    for value in (10.0, 12.0, 11.0):
        monitor.record_latency("p1", value)
        clock.advance(0.5)
    monitor.record_traffic(
        "p1",
        bytes_sent=100,
        bytes_received=200,
        packets_sent=3,
        packets_received=4,
        messages_sent=5,
        messages_received=6,
    )
    monitor.record_fps("p1", 60.0, 16.5)
    monitor.tick()
    return monitor, clock


def only_plain_types(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and only_plain_types(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(only_plain_types(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


@settings(max_examples=40, deadline=None)
@given(value=ANYTHING)
@pytest.mark.parametrize("call", list(CALLS))
def test_arbitrary_input_is_taken_as_plain_numbers_or_refused_with_nothing_changed(call, value):
    monitor, _ = recorded_monitor()
    before = monitor.peer("p1")
    history = monitor.latency_history("p1", 60)
    refusal = None
    try:
        CALLS[call](monitor, value)
    except ValueError as error:
        refusal = str(error)
    if refusal is not None:
        # Named, and no longer than a line: bad input is not echoed back in full.
        method, _, argument = call.rpartition(".")
        if method in CALLS_ON_MONITOR:
            assert refusal.startswith(f"{argument}: "), refusal
        else:  # the adapters name their own arguments or the Monitor's
            assert refusal.partition(": ")[0].isidentifier(), refusal
        assert len(refusal) < 200
        assert monitor.peer("p1") == before
        assert monitor.latency_history("p1", 60) == history
    # Whatever happened, the tick works, its message serializes, and holds only plain types.
    message = monitor.tick().message()
    orjson.dumps(message)
    assert only_plain_types(message)
    assert only_plain_types(monitor.peer("p1"))
    assert all(type(t) is float and type(v) is float for t, v in monitor.latency_history("p1", 60))


@pytest.mark.parametrize("bad", [Decimal("5.5"), True, False, "5", 3 + 0j, [5.0], None])
def test_latency_that_is_not_a_real_number_is_refused_and_ticks_go_on(bad):
    monitor, _ = recorded_monitor()
    before = monitor.peer("p1")
    if bad is None:  # None is the documented "measurement failed", not bad input
        monitor.record_latency("p1", bad)
        assert monitor.peer("p1")["packet_loss_percent"] > before["packet_loss_percent"]
        return
    with pytest.raises(ValueError, match=r"^latency_ms: "):
        monitor.record_latency("p1", bad)
    assert monitor.peer("p1") == before
    orjson.dumps(monitor.tick().message())


def test_a_fraction_or_an_int_is_stored_as_a_float():
    monitor, _ = recorded_monitor()
    monitor.record_latency("p1", Fraction(11, 2))
    monitor.record_latency("p1", 7)
    latest = monitor.latency_history("p1", 60)[-2:]
    assert [v for _, v in latest] == [5.5, 7.0]
    assert all(type(v) is float for _, v in latest)
    orjson.dumps(monitor.tick().message())  # a stored Fraction made every frame fail to serialize


def test_a_bool_is_not_a_count_or_a_latency():
    monitor, _ = recorded_monitor()
    before = monitor.peer("p1")
    with pytest.raises(ValueError, match=r"^latency_ms: "):
        monitor.record_latency("p1", True)
    with pytest.raises(ValueError, match=r"^bytes_sent: "):
        monitor.record_traffic("p1", bytes_sent=True)
    with pytest.raises(ValueError, match=r"^fps: "):
        monitor.record_fps("p1", True, 16.0)
    assert monitor.peer("p1") == before


def test_an_unhashable_peer_id_is_a_value_error_not_a_type_error():
    monitor, _ = recorded_monitor()
    for call in (
        lambda: monitor.record_latency(["p1"], 1.0),  # type: ignore[arg-type]
        lambda: monitor.record_traffic({}, bytes_sent=1),  # type: ignore[arg-type]
        lambda: monitor.mark_alive([]),  # type: ignore[arg-type]
        lambda: monitor.remove_peer([]),
    ):  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^peer_id: must be a string, got "):
            call()


def test_a_long_bad_value_is_echoed_as_a_short_prefix():
    monitor, _ = recorded_monitor()
    with pytest.raises(ValueError, match=r"^name: ") as raised:
        monitor.add_peer("p2", name="n" * 60_000)
    assert len(str(raised.value)) < 120
    with pytest.raises(ValueError, match=r"^latency_ms: ") as raised:
        monitor.record_latency("p1", Odd())  # type: ignore[arg-type]
    assert len(str(raised.value)) < 120


def test_past_max_peers_registration_is_refused_with_its_own_error():
    monitor = Monitor(Settings(enable_system_metrics=False, max_peers=2))
    monitor.record_latency("a", 1.0)
    monitor.record_latency("b", 1.0)
    with pytest.raises(PeerLimitError, match=r"^max_peers: the limit of 2 peers is reached"):
        monitor.record_latency("c", 1.0)
    assert sorted(monitor.peer_ids) == ["a", "b"]
    monitor.record_latency("a", 2.0)  # known peers still record


# --- pending events -----------------------------------------------------------------------


@pytest.mark.slow
def test_events_are_not_queued_while_nobody_subscribes():
    monitor = Monitor(Settings(enable_system_metrics=False))
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for i in range(100_000):
            monitor.add_peer(f"p{i % 10}")
            monitor.remove_peer(f"p{i % 10}")
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    # Queued as before (everything, with a subscriber and no limit), 200,000 events took
    # 22 MB here; nothing is kept now.
    assert grown < 1_000_000, grown
    seen: list[object] = []
    monitor.subscribe(seen.append)
    monitor.tick()
    assert [type(e).__name__ for e in seen] == ["MetricsTick"]


def test_pending_events_are_bounded_and_the_oldest_are_dropped():
    monitor = Monitor(Settings(enable_system_metrics=False, max_pending_events=1000))
    seen: list[object] = []
    monitor.subscribe(seen.append)
    for i in range(5000):
        monitor.add_peer(f"p{i}")
    assert monitor.events_dropped == 4000
    monitor.tick()
    added = [e for e in seen if isinstance(e, PeerAdded)]
    # The newest 999 additions and the tick itself: the limit held at the tick too.
    assert [e.peer_id for e in added] == [f"p{i}" for i in range(4001, 5000)]
    assert monitor.events_dropped == 4001
    assert len(seen) == 1000
