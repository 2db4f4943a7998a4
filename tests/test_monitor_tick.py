"""The typed tick: what each tick publishes, and that it lists exactly the peers that changed."""

from __future__ import annotations

import dataclasses
import typing

import orjson
import pytest

from peerscope import (
    MetricsMessage,
    MetricsTick,
    Monitor,
    NetworkEntry,
    PeerDetail,
    PeerEntry,
    PeerReading,
    ProbeCounts,
    QualityConfig,
    ServerEntry,
    ServerStats,
    Settings,
    SystemEntry,
    SystemSample,
)
from peerscope.events import Event


def make_monitor(clock, **overrides) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False, **overrides), clock=clock)


def changed_ids(tick: MetricsTick) -> set[str]:
    return {reading.peer_id for reading in tick.changed}


def test_a_tick_lists_only_the_peers_whose_readings_changed(clock):
    monitor = make_monitor(clock)
    for peer_id in ("a", "b", "c", "d"):
        monitor.add_peer(peer_id)
    assert changed_ids(monitor.tick()) == {"a", "b", "c", "d"}  # new: never judged yet
    assert monitor.tick().changed == ()  # nothing happened since
    clock.advance(1)
    monitor.record_latency("a", 12.0)
    monitor.record_traffic("b", bytes_sent=100)  # sent only: counts change, nothing to judge
    monitor.record_message("c", size=10, direction="out")
    tick = monitor.tick()
    assert changed_ids(tick) == {"a", "b", "c"}
    assert [r.peer_id for r in tick.changed if r.peer_id == "b"] == ["b"]  # listed once
    assert {r.peer_id: r.bytes_sent for r in tick.changed} == {"a": 0, "b": 100, "c": 10}
    assert monitor.tick().changed == ()


def test_an_idle_peer_is_listed_when_its_status_changes(clock):
    monitor = make_monitor(clock)
    monitor.record_latency("quiet", 10.0)
    monitor.record_latency("busy", 10.0)
    monitor.tick()
    clock.advance(16)  # past degraded_after_idle_s (15 s)
    monitor.record_latency("busy", 11.0)
    tick = monitor.tick()
    readings = {r.peer_id: r for r in tick.changed}
    assert set(readings) == {"quiet", "busy"}
    assert readings["quiet"].status == "degraded"
    assert readings["busy"].status == "connected"


def test_a_query_between_ticks_does_not_hide_a_change_from_the_next_tick(clock):
    monitor = make_monitor(clock)
    monitor.add_peer("a")
    monitor.add_peer("b")
    monitor.tick()
    monitor.record_latency("a", 20.0)
    monitor.record_latency("b", 30.0)
    # Each of these refreshes the peers it reads (and so clears their changed flag).
    assert monitor.peer("a")["smoothed_latency_ms"] == 20.0
    assert len(monitor.peers()) == 2
    monitor.snapshot()
    tick = monitor.tick()
    assert changed_ids(tick) == {"a", "b"}
    assert monitor.tick().changed == ()


def test_a_removed_or_pruned_peer_is_not_listed(clock):
    monitor = make_monitor(clock, peer_ttl_s=5.0)
    monitor.record_latency("gone", 10.0)
    monitor.record_latency("dead", 10.0)
    monitor.record_latency("alive", 10.0)
    monitor.tick()
    monitor.record_latency("gone", 11.0)
    monitor.remove_peer("gone")
    assert changed_ids(monitor.tick()) == set()
    for _ in range(10):
        monitor.record_latency("dead", None)  # ten failures: disconnected
    tick = monitor.tick()
    assert {r.peer_id: r.status for r in tick.changed} == {"dead": "disconnected"}
    clock.advance(6)  # past the TTL: pruned at this tick
    monitor.record_latency("alive", 12.0)
    tick = monitor.tick()
    assert changed_ids(tick) == {"alive"}
    assert "dead" not in monitor


def test_a_reading_carries_the_figures_the_peer_entry_shows(clock):
    monitor = make_monitor(clock)
    for value in (20.0, 30.0, 25.0):
        monitor.record_latency("p", value)
        clock.advance(1)
    monitor.record_latency("p", None)
    monitor.record_traffic("p", bytes_sent=5, bytes_received=7)
    (reading,) = monitor.tick().changed
    entry = monitor.peer("p")
    assert reading == PeerReading(
        peer_id="p",
        kind="peer",
        labels={},
        status=entry["status"],
        latency_ms=entry["latency_ms"],
        smoothed_latency_ms=entry["smoothed_latency_ms"],
        jitter_ms=entry["jitter_ms"],
        loss_percent=entry["packet_loss_percent"],
        quality_score=entry["quality_score"],
        bytes_sent=5,
        bytes_received=7,
        last_seen=entry["last_seen"],
        probes_sent=entry["probes"]["sent"],
        probes_lost=entry["probes"]["lost"],
        measured_at=entry["last_measured_at"],
    )
    assert (reading.probes_sent, reading.probes_lost) == (4, 1)
    assert reading.loss_percent == 25.0
    assert reading.jitter_ms == pytest.approx(0.8984375)  # RFC 3550 over 20, 30, 25


def test_stddev_jitter_reading_uses_the_configured_method(clock):
    monitor = make_monitor(clock, quality=QualityConfig(jitter_method="stddev"))
    for value in (10.0, 20.0, 30.0):
        monitor.record_latency("p", value)
    (reading,) = monitor.tick().changed
    assert reading.jitter_ms == pytest.approx(monitor.peer("p")["jitter_ms"])
    assert reading.jitter_ms == 10.0  # the sample standard deviation of 10, 20, 30


def test_a_tick_with_one_change_among_many_peers_lists_one_reading(clock):
    monitor = make_monitor(clock)
    monitor.record_probes_sent([(f"p{i}", 0) for i in range(2000)], timeout_s=1.0)
    monitor.record_probe_replies([(f"p{i}", 0, 5.0) for i in range(2000)])
    assert len(monitor.tick().changed) == 2000
    monitor.record_latency("p1234", 6.0)
    tick = monitor.tick()
    assert [r.peer_id for r in tick.changed] == ["p1234"]
    assert tick.peers_total == 2000
    assert len(tick.worst) == monitor.settings.max_clients_in_message


def test_the_message_is_built_from_the_tick(clock):
    monitor = make_monitor(clock, max_clients_in_message=2)
    monitor.record_latency("good", 10.0)
    monitor.record_latency("bad", 900.0)
    for _ in range(10):
        monitor.record_latency("worse", None)  # disconnected: worst of all
    tick = monitor.tick()
    message = tick.message()
    assert message == monitor.last_message
    assert message["type"] == "metrics"
    assert message["timestamp"] == tick.timestamp == clock.now
    assert [c["client_id"] for c in message["clients"]] == ["worse", "bad"]
    assert message["clients_total"] == tick.peers_total == 3
    assert message["network"] is tick.network
    assert message["server"]["active_connections"] == 3
    assert message == monitor.snapshot()  # nothing changed in between: the same figures
    assert orjson.loads(orjson.dumps(message)) == message


def test_a_subscriber_keeps_every_peer_current_from_the_changed_readings_alone(clock):
    # The example subscriber of docs/API.md: a table kept up to date in O(changed).
    monitor = make_monitor(clock)
    latest: dict[str, PeerReading] = {}

    def keep(event: Event) -> None:
        if isinstance(event, MetricsTick):
            for reading in event.changed:
                latest[reading.peer_id] = reading

    monitor.subscribe(keep)
    for step in range(20):
        clock.advance(1)
        monitor.record_latency(f"p{step % 7}", 10.0 + step)
        if step % 5 == 0:
            monitor.record_latency("flaky", None)
        monitor.tick()
    for entry in monitor.peers():
        reading = latest[entry["client_id"]]
        assert reading.status == entry["status"]
        assert reading.latency_ms == entry["latency_ms"]
        assert reading.quality_score == entry["quality_score"]
        assert reading.loss_percent == entry["packet_loss_percent"]


def test_the_typed_shapes_name_every_key_the_dicts_have(clock):
    monitor = make_monitor(clock)
    monitor.record_latency("p", 10.0)
    message = monitor.tick().message()
    detail = monitor.peer("p")

    def keys(shape: type) -> set[str]:
        return set(typing.get_type_hints(shape))

    assert set(message) == keys(MetricsMessage)
    assert set(message["clients"][0]) == keys(PeerEntry)
    assert set(detail) == keys(PeerDetail) == keys(PeerEntry) | {"probes"}
    assert set(detail["probes"]) == keys(ProbeCounts)
    assert set(message["network"]) == keys(NetworkEntry)
    # The message's system and server entries are the records' fields, as they are.
    assert (
        set(message["system"])
        == keys(SystemEntry)
        == {f.name for f in dataclasses.fields(SystemSample)} - {"timestamp"}
    )
    assert (
        set(message["server"])
        == keys(ServerEntry)
        == {f.name for f in dataclasses.fields(ServerStats)}
    )
