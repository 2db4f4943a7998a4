"""/metrics as Prometheus reads it: rendered by the collector, parsed by prometheus_client."""

from __future__ import annotations

import gc
import re
import weakref

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from peerscope import Monitor, Settings
from peerscope.alerting import AlertEvent, Alerting, Dispatcher
from peerscope.core.alerts import AlertRule
from peerscope.export.alert_metrics import OUTCOMES, AlertCollector
from peerscope.export.metrics_app import render, render_steps
from peerscope.export.prometheus import CONTENT_TYPE, MonitorCollector, label_plan
from peerscope.export.sliced_exposition import RENDER_SLICE
from peerscope.slices import Steps, finish
from peerscope.testing import ManualClock
from tests.server_support import eventually

PEER_LABELS = {"peer_id", "name", "kind"}
# How a HELP text names the unit; flags (0/1) say what each value means.
UNIT_WORDS = (
    r"in seconds|in bytes|as a ratio|\(count\)|unitless|per second|"
    r"\(1\) or not \(0\)|0 when|1 for"
)


class Scrape:
    """One render, parsed: samples by name, family types and HELP texts by exposed name."""

    def __init__(self, monitor: Monitor, alerting: Alerting | None = None) -> None:
        body, self.content_type = render(monitor, alerting=alerting)
        self.text = body.decode("utf-8")
        self.samples: dict[str, list[Sample]] = {}
        self.types: dict[str, str] = {}
        self.help: dict[str, str] = {}
        for family in text_string_to_metric_families(self.text):
            exposed = family.name + "_total" if family.type == "counter" else family.name
            assert exposed not in self.types, f"family {exposed} listed twice"
            self.types[exposed] = family.type
            self.help[exposed] = family.documentation
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append(sample)

    def value(self, name: str, **labels: str) -> float:
        found = [
            s.value
            for s in self.samples.get(name, [])
            if all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return found[0]

    def peer_value(self, name: str, peer_id: str) -> float | None:
        found = [s.value for s in self.samples.get(name, []) if s.labels["peer_id"] == peer_id]
        assert len(found) <= 1
        return found[0] if found else None


def quiet_monitor(clock: ManualClock, **settings: object) -> Monitor:
    return Monitor(Settings(enable_system_metrics=False, **settings), clock=clock)


def test_latency_figures_in_seconds_and_loss_as_a_ratio(clock):
    monitor = quiet_monitor(clock)
    monitor.add_peer("alpha")
    monitor.record_latency("alpha", 25.0)
    clock.advance(1.0)
    monitor.record_loss("alpha", 50.0)
    scrape = Scrape(monitor)
    assert scrape.value("peerscope_peer_rtt_seconds", peer_id="alpha") == 0.025
    assert scrape.value("peerscope_peer_rtt_smoothed_seconds", peer_id="alpha") == 0.025
    assert scrape.value("peerscope_peer_jitter_seconds", peer_id="alpha") == 0.0
    assert scrape.value("peerscope_peer_loss_ratio", peer_id="alpha") == 0.5
    entry = monitor.peer("alpha")
    assert scrape.value("peerscope_peer_quality_score", peer_id="alpha") == entry["quality_score"]
    assert scrape.value("peerscope_peer_mos", peer_id="alpha") == entry["mos"]
    assert 1.0 <= entry["mos"] <= 4.5


def test_jitter_follows_rfc3550_in_seconds(clock):
    monitor = quiet_monitor(clock)
    for rtt in (20.0, 36.0):  # one change of 16 ms: jitter = 16 / 16 = 1 ms
        monitor.record_latency("alpha", rtt)
        monitor.peers()  # fold each sample in, as a tick would
        clock.advance(1.0)
    scrape = Scrape(monitor)
    assert scrape.value("peerscope_peer_jitter_seconds", peer_id="alpha") == 0.001
    assert scrape.value("peerscope_peer_rtt_seconds", peer_id="alpha") == 0.036


def test_counters_end_in_total_and_hold_exact_counts(clock):
    monitor = quiet_monitor(clock)
    monitor.add_peer("alpha")
    monitor.record_traffic(
        "alpha", bytes_sent=1500, bytes_received=3000, packets_sent=3, packets_received=4
    )
    monitor.record_message("alpha", size=100, direction="in")
    monitor.record_message("alpha", size=40, direction="out")
    monitor.record_message(size=7)  # a server message with no peer
    scrape = Scrape(monitor)
    expected = {
        "peerscope_peer_sent_bytes_total": 1540,
        "peerscope_peer_received_bytes_total": 3100,
        "peerscope_peer_sent_packets_total": 3,
        "peerscope_peer_received_packets_total": 4,
        "peerscope_peer_sent_messages_total": 1,
        "peerscope_peer_received_messages_total": 1,
    }
    for name, value in expected.items():
        assert scrape.types[name] == "counter"
        assert scrape.value(name, peer_id="alpha") == value
    assert scrape.value("peerscope_server_messages_total") == 3
    assert scrape.value("peerscope_server_connections_total") == 1
    assert scrape.value("peerscope_server_messages_per_second", direction="in") == 2
    assert scrape.value("peerscope_server_messages_per_second", direction="out") == 1
    counters = {name for name, kind in scrape.types.items() if kind == "counter"}
    assert all(name.endswith("_total") for name in counters)
    gauges = {name for name, kind in scrape.types.items() if kind == "gauge"}
    assert not any(name.endswith("_total") for name in gauges)


def test_names_are_prefixed_in_base_units_and_documented_with_the_unit(clock):
    monitor = quiet_monitor(clock)
    monitor.record_latency("alpha", 10.0)
    monitor.tick()
    scrape = Scrape(monitor)
    assert scrape.content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert scrape.content_type == CONTENT_TYPE
    for name, documentation in scrape.help.items():
        assert name.startswith("peerscope_")
        assert re.fullmatch(r"[a-z_]+", name), name
        assert not re.search(r"_(ms|mb|percent|kb)(_|$)", name), name
        assert re.search(UNIT_WORDS, documentation), f"{name}: no unit in {documentation!r}"


def test_every_peer_gets_fixed_and_user_labels_with_blanks_for_missing_ones(clock):
    monitor = quiet_monitor(clock)
    monitor.add_peer("alpha", name="Alpha", labels={"region": "eu", "connection_type": "relay"})
    monitor.add_peer("beta", kind="client", labels={"region": "us"})
    monitor.add_peer("gamma")
    scrape = Scrape(monitor)
    labels = {s.labels["peer_id"]: s.labels for s in scrape.samples["peerscope_peer_up"]}
    assert labels == {
        "alpha": {
            "peer_id": "alpha",
            "name": "Alpha",
            "kind": "peer",
            "region": "eu",
            "connection_type": "relay",
        },
        "beta": {
            "peer_id": "beta",
            "name": "",
            "kind": "client",
            "region": "us",
            "connection_type": "",
        },
        "gamma": {
            "peer_id": "gamma",
            "name": "",
            "kind": "peer",
            "region": "",
            "connection_type": "",
        },
    }
    # One label-name set per family: every per-peer sample has them all.
    for name, samples in scrape.samples.items():
        if name.startswith("peerscope_peer_"):
            extra = {"status"} if name == "peerscope_peer_status" else set()
            for sample in samples:
                assert set(sample.labels) == PEER_LABELS | {"region", "connection_type"} | extra


def test_user_labels_that_would_collide_are_prefixed_or_skipped(clock):
    monitor = quiet_monitor(clock)
    monitor.add_peer(
        "alpha",
        name="Alpha",
        labels={
            "kind": "vpn",
            "status": "vip",
            "job": "game",
            "instance": "i1",
            "__meta": "m",
            "label_kind": "own",
            "région": "eu",
        },
    )
    scrape = Scrape(monitor)
    (sample,) = scrape.samples["peerscope_peer_up"]
    assert sample.labels == {
        "peer_id": "alpha",
        "name": "Alpha",
        "kind": "peer",
        # The user's own "label_kind" keeps its name; the reserved "kind" that would be
        # renamed onto it is skipped.
        "label_kind": "own",
        "label_status": "vip",
        "label_job": "game",
        "label_instance": "i1",
        "label___meta": "m",
        "r_gion": "eu",
    }
    statuses = {s.labels["status"] for s in scrape.samples["peerscope_peer_status"]}
    assert statuses == {"connected", "degraded", "disconnected"}


def test_label_plan_is_deterministic_and_collision_free():
    assert label_plan([]) == ()
    assert label_plan(["zone", "region"]) == (("region", "region"), ("zone", "zone"))
    assert label_plan(["peer_id", "label_peer_id"]) == (("label_peer_id", "label_peer_id"),)
    assert label_plan(["é", "_"]) == (("_", "_"),)  # "é" would land on "_": skipped


def test_unmeasured_figures_are_omitted_not_zero(clock):
    monitor = quiet_monitor(clock)
    monitor.add_peer("silent")
    monitor.add_peer("measured")
    monitor.record_latency("measured", 12.0)
    scrape = Scrape(monitor)
    for name in (
        "peerscope_peer_rtt_seconds",
        "peerscope_peer_rtt_smoothed_seconds",
        "peerscope_peer_jitter_seconds",
        "peerscope_peer_loss_ratio",
        "peerscope_peer_quality_score",
        "peerscope_peer_mos",
        "peerscope_peer_frames_per_second",
        "peerscope_peer_frame_time_seconds",
    ):
        assert scrape.peer_value(name, "silent") is None, name
    for name in (
        "peerscope_peer_up",
        "peerscope_peer_sent_bytes_total",
        "peerscope_peer_connected_timestamp_seconds",
    ):
        assert scrape.peer_value(name, "silent") is not None, name
    assert scrape.peer_value("peerscope_peer_loss_ratio", "measured") == 0.0
    assert scrape.peer_value("peerscope_peer_frames_per_second", "measured") is None
    # No tick yet: no network score to show.
    assert "peerscope_network_quality_score" not in scrape.samples


def test_client_rendering_figures(clock):
    monitor = quiet_monitor(clock)
    monitor.record_fps("alpha", 60.0, 16.5)
    scrape = Scrape(monitor)
    assert scrape.value("peerscope_peer_frames_per_second", peer_id="alpha") == 60.0
    assert scrape.value("peerscope_peer_frame_time_seconds", peer_id="alpha") == 0.0165


def test_a_peer_that_never_answers_shows_its_loss_and_goes_down(clock):
    monitor = quiet_monitor(clock)
    monitor.add_peer("lost")
    monitor.add_peer("fine")
    monitor.record_latency("fine", 30.0)
    for _ in range(Settings().status.disconnected_after_failures):
        monitor.record_latency("lost", None)
    monitor.tick()
    scrape = Scrape(monitor)
    assert scrape.peer_value("peerscope_peer_rtt_seconds", "lost") is None
    assert scrape.value("peerscope_peer_loss_ratio", peer_id="lost") == 1.0
    assert scrape.value("peerscope_peer_up", peer_id="lost") == 0
    assert scrape.value("peerscope_peer_up", peer_id="fine") == 1
    for status, expected in (("connected", 0), ("degraded", 0), ("disconnected", 1)):
        assert scrape.value("peerscope_peer_status", peer_id="lost", status=status) == expected
    assert scrape.value("peerscope_peers", status="disconnected") == 1
    assert scrape.value("peerscope_peers", status="connected") == 1
    assert scrape.value("peerscope_peers", status="degraded") == 0


def test_an_idle_peer_goes_down_after_the_disconnect_timeout(clock):
    monitor = quiet_monitor(clock)
    monitor.record_latency("idle", 30.0)
    clock.advance(Settings().status.disconnected_after_idle_s + 1.0)
    monitor.tick()
    scrape = Scrape(monitor)
    assert scrape.value("peerscope_peer_up", peer_id="idle") == 0
    assert scrape.value("peerscope_peer_status", peer_id="idle", status="disconnected") == 1


@pytest.mark.parametrize(
    "name", ["<img src=x onerror=alert(1)>", 'a"b\\nc', "back\\slash\\", 'quote "x" y', "üñí €"]
)
def test_names_are_escaped_and_parse_back_exactly(clock, name):
    monitor = quiet_monitor(clock)
    monitor.add_peer('id"with\\odd', name=name, labels={"note": name})
    monitor.record_latency('id"with\\odd', 5.0)
    scrape = Scrape(monitor)
    (sample,) = scrape.samples["peerscope_peer_up"]
    assert sample.labels["name"] == name
    assert sample.labels["note"] == name
    assert sample.labels["peer_id"] == 'id"with\\odd'
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    assert f'name="{escaped}"' in scrape.text
    # One sample per line: nothing in a name can break a line.
    assert len(scrape.text.splitlines()) == scrape.text.count("\n")


def test_a_real_newline_never_reaches_the_exposition(clock):
    # Names and label values are printable text, checked at the edge: a newline (which
    # the exposition would write as \n) is refused before it is stored.
    monitor = quiet_monitor(clock)
    with pytest.raises(ValueError, match="name"):
        monitor.add_peer("alpha", name="a\nb")
    with pytest.raises(ValueError, match="labels"):
        monitor.add_peer("alpha", labels={"note": "a\nb"})


def test_host_series_are_omitted_when_sampling_is_off(clock):
    scrape = Scrape(quiet_monitor(clock))
    assert scrape.value("peerscope_host_metrics_available") == 0
    host = [
        name
        for name in scrape.samples
        if name.startswith(("peerscope_host_", "peerscope_process_"))
    ]
    assert host == ["peerscope_host_metrics_available"]


def test_real_host_metrics_in_base_units(clock):
    monitor = Monitor(Settings(enable_system_metrics=True), clock=clock)
    clock.advance(1.0)
    monitor.tick()
    system = monitor.system
    scrape = Scrape(monitor)
    assert scrape.value("peerscope_host_metrics_available") == 1
    assert 0.0 <= scrape.value("peerscope_host_cpu_ratio") <= 1.0
    total = scrape.value("peerscope_host_memory_total_bytes")
    assert total == pytest.approx(system.memory_total_mb * 1024 * 1024)
    assert total > 64 * 1024 * 1024
    assert 0 < scrape.value("peerscope_host_memory_used_bytes") <= total
    assert scrape.types["peerscope_host_network_sent_bytes_total"] == "counter"
    assert scrape.value("peerscope_host_network_sent_bytes_total") >= 0
    assert scrape.value("peerscope_host_network_received_bytes_total") >= 0
    assert scrape.value("peerscope_host_network_sent_bytes_per_second") >= 0
    assert scrape.value("peerscope_host_network_received_bytes_per_second") >= 0
    assert scrape.value("peerscope_process_cpu_ratio") >= 0
    rss = scrape.value("peerscope_process_resident_memory_bytes")
    assert 1024 * 1024 < rss < total
    assert scrape.value("peerscope_process_threads") >= 1
    assert scrape.value("peerscope_process_open_fds") >= 3  # stdin, stdout, stderr at least


def test_server_series(clock):
    monitor = quiet_monitor(clock)
    monitor.add_peer("alpha")
    monitor.add_peer("beta")
    monitor.remove_peer("beta")
    monitor.record_latency("alpha", 40.0)
    clock.advance(5.0)
    message = monitor.tick().message()
    scrape = Scrape(monitor)
    assert scrape.value("peerscope_server_uptime_seconds") == 5.0
    assert scrape.value("peerscope_server_active_connections") == 1
    assert scrape.value("peerscope_server_connections_total") == 2
    assert scrape.value("peerscope_network_quality_score") == message["network"]["score"]
    assert 0 < message["network"]["score"] <= 100


def test_every_peer_is_exported_beyond_the_message_cap(clock):
    monitor = quiet_monitor(clock, max_clients_in_message=5)
    for i in range(40):
        monitor.record_latency(f"peer-{i}", float(i))
    message = monitor.tick().message()
    assert len(message["clients"]) == 5
    scrape = Scrape(monitor)
    assert len(scrape.samples["peerscope_peer_up"]) == 40
    assert len(scrape.samples["peerscope_peer_rtt_seconds"]) == 40
    series = [
        (s.name, tuple(sorted(s.labels.items())))
        for samples in scrape.samples.values()
        for s in samples
    ]
    assert len(series) == len(set(series)), "duplicate series"


def test_the_collector_works_in_another_registry(clock):
    monitor = quiet_monitor(clock)
    monitor.record_latency("alpha", 8.0)
    registry = CollectorRegistry()
    registry.register(MonitorCollector(monitor))
    body = generate_latest(registry).decode()
    families = {f.name for f in text_string_to_metric_families(body)}
    assert {"peerscope_peer_rtt_seconds", "peerscope_server_uptime_seconds"} <= families
    assert body == render(monitor)[0].decode()


def test_render_does_not_keep_the_monitor_alive(clock):
    monitor = quiet_monitor(clock)
    render(monitor)
    render(monitor)
    alive = weakref.ref(monitor)
    del monitor
    gc.collect()
    assert alive() is None


def test_a_render_in_slices_is_what_generate_latest_writes_in_one_go(clock):
    """Peers over several render slices, in every state, with a label key only the last
    slice has: the joined pieces are byte for byte the registry's exposition."""
    monitor = quiet_monitor(clock)
    peers = 2 * RENDER_SLICE + 37
    for index in range(peers):
        peer_id = f"peer-{index}"
        labels = {"region": "eu"} if index % 5 == 0 else None
        monitor.add_peer(peer_id, name=f"P{index}" if index % 2 else None, labels=labels)
        if index % 7:
            monitor.record_latency(peer_id, 5.0 + index)
        if index % 11 == 0:
            monitor.record_loss(peer_id, 100.0)
        monitor.record_traffic(peer_id, bytes_sent=index, packets_received=2 * index)
    monitor.add_peer(f"peer-{peers - 1}", labels={"zone": "b"})
    monitor.record_fps("peer-3", 60.0, 16.5)
    clock.advance(20.0)  # idle: some degraded or disconnected
    monitor.tick()
    steps = render_steps(monitor)
    pieces = finish(steps)
    whole = generate_latest(MonitorCollector(monitor).registry)
    assert b"".join(pieces) == whole
    assert render(monitor)[0] == whole
    assert len(pieces) == 1 + 22 * 3  # the head, then each of 22 families per slice
    up = {
        sample.labels["peer_id"]: sample.labels
        for sample in Scrape(monitor).samples["peerscope_peer_up"]
    }
    assert len(up) == peers
    assert up[f"peer-{peers - 1}"]["zone"] == "b"
    assert up["peer-0"]["zone"] == ""
    assert up["peer-0"]["region"] == "eu"
    assert up["peer-1"]["region"] == ""


def test_a_render_with_no_peers_still_declares_every_family(clock):
    monitor = quiet_monitor(clock)
    assert render(monitor)[0] == generate_latest(MonitorCollector(monitor).registry)
    assert "# TYPE peerscope_peer_up gauge" in render(monitor)[0].decode()


# --- alerts --------------------------------------------------------------------------------


def alerting_over(monitor: Monitor, **options: object) -> Alerting:
    """A host rule firing at once (no CPU figures, and no data counts as a breach), a peer
    rule firing at once and one pending for a minute."""
    rules = [
        AlertRule("host_blind", "cpu_percent", ">", 90.0, nodata="alerting", severity="critical"),
        AlertRule("lossy", "loss_percent", ">", 5.0),
        AlertRule("slow", "latency_ms", ">", 100.0, for_s=60.0, severity="info"),
    ]
    return Alerting(monitor, rules, **options)


def test_pending_and_firing_alerts_are_exported_like_prometheus_alerts(clock):
    monitor = quiet_monitor(clock)
    alerting = alerting_over(monitor)
    monitor.record_latency("alpha", 250.0)
    monitor.record_loss("alpha", 20.0)
    monitor.record_latency("beta", 10.0)
    monitor.tick()
    scrape = Scrape(monitor, alerting)
    series = {
        (
            s.labels["rule"],
            s.labels["severity"],
            s.labels["peer_id"],
            s.labels["alertstate"],
        ): s.value
        for s in scrape.samples["peerscope_alert_firing"]
    }
    assert series == {
        ("host_blind", "critical", "", "firing"): 1.0,
        ("lossy", "warning", "alpha", "firing"): 1.0,
        ("slow", "info", "alpha", "pending"): 1.0,
    }
    assert all(
        set(s.labels) == {"rule", "severity", "peer_id", "alertstate"}
        for s in scrape.samples["peerscope_alert_firing"]
    )
    assert scrape.types["peerscope_alert_firing"] == "gauge"
    assert scrape.types["peerscope_alert_notifications_total"] == "counter"
    for name in ("peerscope_alert_firing", "peerscope_alert_notifications_total"):
        assert re.search(UNIT_WORDS, scrape.help[name]), scrape.help[name]
    # After the Monitor's own series, which are as they were without alerting.
    assert scrape.text.startswith(render(monitor)[0].decode())
    # Resolved: its series goes, as Prometheus' ALERTS does.
    clock.advance(1.0)
    monitor.record_loss("alpha", 0.0)
    monitor.tick()
    rules = {s.labels["rule"] for s in Scrape(monitor, alerting).samples["peerscope_alert_firing"]}
    assert rules == {"host_blind", "slow"}


def test_without_alerts_the_families_are_declared_and_without_alerting_absent(clock):
    monitor = quiet_monitor(clock)
    assert "peerscope_alert" not in render(monitor)[0].decode()
    quiet = Alerting(monitor, [AlertRule("lossy", "loss_percent", ">", 5.0)])
    text = render(monitor, alerting=quiet)[0].decode()
    assert "# TYPE peerscope_alert_firing gauge" in text
    assert "# TYPE peerscope_alert_notifications_total counter" in text
    assert "peerscope_alert_firing{" not in text
    assert AlertCollector(quiet).render().decode() in text


def stepped(steps: Steps[list[bytes]]) -> tuple[list[bytes], int]:
    """What ``steps`` returns, and how many times it gave the loop a turn."""
    turns = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, turns
        turns += 1


def test_an_alert_per_peer_is_exposed_in_steps_that_join_to_generate_latests_text(clock):
    """An outage fires an alert for every peer at once: the exposition takes them a slice at
    a time (the loop runs between), and the pieces are byte for byte prometheus_client's."""
    monitor = quiet_monitor(clock)
    alerting = alerting_over(monitor)
    peers = 5 * RENDER_SLICE + 7
    for index in range(peers):
        monitor.record_latency(f"p{index:04d}", 250.0)
        monitor.record_loss(f"p{index:04d}", 20.0)
    monitor.tick()
    collector = AlertCollector(alerting)
    pieces, turns = stepped(collector.render_steps())
    # Two alerts a peer (lossy firing, slow pending), and the host's.
    assert turns == -(-(2 * peers + 1) // RENDER_SLICE)
    registry = CollectorRegistry()
    registry.register(AlertCollector(alerting))
    assert b"".join(pieces) == generate_latest(registry)
    lines = b"".join(pieces).decode().splitlines()
    assert sum(line.startswith("peerscope_alert_firing{") for line in lines) == 2 * peers + 1
    assert sum(line.startswith("# TYPE peerscope_alert_firing ") for line in lines) == 1


class Notifier:
    def __init__(self, name: str, failing: bool) -> None:
        self.name = name
        self.failing = failing
        self.events: list[AlertEvent] = []

    async def send(self, event: AlertEvent) -> None:
        if self.failing:
            raise ConnectionError("refused")
        self.events.append(event)

    async def aclose(self) -> None:
        return None


async def test_notification_outcomes_are_counters_per_notifier(clock):
    monitor = quiet_monitor(clock)
    good, bad = Notifier("webhook", failing=False), Notifier("alertmanager", failing=True)
    dispatcher = Dispatcher([good, bad], retries=2, backoff_s=0.001)
    alerting = alerting_over(monitor, dispatcher=dispatcher)
    await alerting.start()
    try:
        monitor.record_loss("alpha", 20.0)
        monitor.tick()  # host_blind and lossy fire: two events each
        await eventually(lambda: sum(s["failed"] for s in alerting.notifier_stats()) == 2)
        scrape = Scrape(monitor, alerting)
        counts = {
            (s.labels["notifier"], s.labels["outcome"]): s.value
            for s in scrape.samples["peerscope_alert_notifications_total"]
        }
        assert counts == {
            ("webhook", "sent"): 2.0,
            ("webhook", "failed"): 0.0,
            ("webhook", "retried"): 0.0,
            ("webhook", "dropped"): 0.0,
            ("alertmanager", "sent"): 0.0,
            ("alertmanager", "failed"): 2.0,
            ("alertmanager", "retried"): 4.0,
            ("alertmanager", "dropped"): 0.0,
        }
        assert {outcome for _, outcome in counts} == set(OUTCOMES)
    finally:
        await alerting.stop()
