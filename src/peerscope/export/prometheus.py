"""The Prometheus exposition of a Monitor: host, server and per-peer series.

A custom ``prometheus_client`` collector builds every family from one read of the Monitor
per scrape: every peer (not the capped ``clients`` list), ``system``, ``server_stats()`` and
the network score of the latest tick. Its ``render_steps`` reads the peers a slice at a time
and writes each slice's series as it goes (the event loop runs between slices);
:mod:`peerscope.export.metrics_app` serves that (``render``, ``MetricsApp``).

Conventions (https://prometheus.io/docs/practices/naming/): names start ``peerscope_``; values
are in base units (seconds, bytes, ratios 0..1 instead of percentages); counters end
``_total``; every HELP text names the unit. A figure that was never measured (a peer with no
latency sample yet, a host whose sampling is off or failed) is left out, never exported as 0.

Per-peer series carry ``peer_id``, ``name`` (``""`` when unnamed) and ``kind``, plus the
peer's own labels. Every series of a family needs the same label names, so the union of the
user label keys across peers is used, with ``""`` (which Prometheus reads as "no label")
where a peer lacks one. A user label keeps its key unless the key is reserved: ``peer_id``,
``name``, ``kind``, ``status`` (ours), ``job`` and ``instance`` (set by Prometheus on
scrape) and anything starting ``__``; those are exported as ``label_<key>``. Keys with
non-ASCII letters (valid identifiers, invalid label names) have them replaced by ``_``. If a
renamed key lands on a name already in use, it is skipped; keys exported under their own name
always win.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from peerscope.core.model import Peer, ServerStats, SystemSample
from peerscope.core.quality import STATUSES, Status
from peerscope.export.sliced_exposition import RENDER_SLICE, Families, without_header
from peerscope.message import PathEntry, PeerEntry
from peerscope.monitor import Monitor
from peerscope.slices import Steps, finish

__all__ = ["CONTENT_TYPE", "MonitorCollector", "label_plan"]

# generate_latest writes the classic text format, version 0.0.4; say so, not "latest".
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
FIXED_LABELS = ("peer_id", "name", "kind")
RESERVED_LABELS = frozenset({*FIXED_LABELS, "status", "job", "instance"})
USER_LABEL_PREFIX = "label_"
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_]")
_MB = 1024.0 * 1024.0  # peerscope.system reports MiB; Prometheus wants bytes

LabelPlan = tuple[tuple[str, str], ...]  # (user label key, exported label name)

# Per-peer gauges: (name, HELP, key in the peers() entry, divisor to base units or None).
_PEER_GAUGES: tuple[tuple[str, str, str, float | None], ...] = (
    (
        "peerscope_peer_rtt_seconds",
        "Latest round-trip time to the peer, in seconds.",
        "latency_ms",
        1000.0,
    ),
    (
        "peerscope_peer_rtt_smoothed_seconds",
        "Smoothed (EWMA) round-trip time to the peer, in seconds.",
        "smoothed_latency_ms",
        1000.0,
    ),
    (
        "peerscope_peer_quality_score",
        "Connection quality score of the peer, 0..100 (unitless, higher is better).",
        "quality_score",
        None,
    ),
    (
        "peerscope_peer_mos",
        "Mean opinion score of the peer's link, 1..4.5 (unitless, E-model).",
        "mos",
        None,
    ),
    (
        "peerscope_peer_connected_timestamp_seconds",
        "When the peer connected, in seconds since the Unix epoch.",
        "connected_at",
        None,
    ),
    (
        "peerscope_peer_last_seen_timestamp_seconds",
        "When the peer was last heard from, in seconds since the Unix epoch.",
        "last_seen",
        None,
    ),
    (
        "peerscope_peer_frames_per_second",
        "Rendering rate the client reports about itself, in frames per second.",
        "fps",
        None,
    ),
    (
        "peerscope_peer_frame_time_seconds",
        "Frame time the client reports about itself, in seconds.",
        "frame_time_ms",
        1000.0,
    ),
)
# Per-peer counters: (name without _total, HELP, key in the peers() entry).
_PEER_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("peerscope_peer_sent_bytes", "Bytes sent to the peer, in bytes.", "bytes_sent"),
    ("peerscope_peer_received_bytes", "Bytes received from the peer, in bytes.", "bytes_received"),
    ("peerscope_peer_sent_packets", "Packets sent to the peer (count).", "packets_sent"),
    (
        "peerscope_peer_received_packets",
        "Packets received from the peer (count).",
        "packets_received",
    ),
    (
        "peerscope_peer_sent_messages",
        "Application messages sent to the peer (count).",
        "messages_sent",
    ),
    (
        "peerscope_peer_received_messages",
        "Application messages received from the peer (count).",
        "messages_received",
    ),
)
_JITTER = (
    "peerscope_peer_jitter_seconds",
    "Interarrival jitter of the round-trip time to the peer, in seconds.",
)
_LOSS = ("peerscope_peer_loss_ratio", "Packet loss to the peer, as a ratio 0..1.")
# Both directions of a TWAMP/STAMP-probed peer's path (peerscope.core.path).
_PATH_LOSS = (
    "peerscope_peer_path_loss_ratio",
    "Packet loss one way to the peer's reflector, as a ratio 0..1: direction forward "
    "(probes) or return (replies).",
)
_ONE_WAY_DELAY = (
    "peerscope_peer_one_way_delay_seconds",
    "Smoothed one-way delay to (forward) or from (return) the peer's reflector, in seconds; "
    "clock: synchronized, or offset-affected (the clocks' offset is in it).",
)
_PATH_TTL = (
    "peerscope_peer_path_ttl",
    "IP TTL the probes reached the peer's reflector with (unitless).",
)
_PATH_CHANGES = (
    "peerscope_peer_path_changes",
    "Path changes seen: the probes' TTL at the reflector changed (count).",
)
_UP = ("peerscope_peer_up", "Whether the peer is reachable: 0 when disconnected, else 1.")
_STATUS = (
    "peerscope_peer_status",
    "The peer's status, one series per status: 1 for the current one, else 0.",
)


def label_plan(keys: Iterable[str]) -> LabelPlan:
    """Which user label keys are exported, and under which label name (see module docs)."""
    plain: list[tuple[str, str]] = []
    renamed: list[tuple[str, str]] = []
    for key in sorted(keys):
        name = _NOT_LABEL_CHAR.sub("_", key)
        if name in RESERVED_LABELS or name.startswith("__"):
            name = USER_LABEL_PREFIX + name
        (plain if name == key else renamed).append((key, name))
    taken = set(RESERVED_LABELS)
    plan: list[tuple[str, str]] = []
    for key, name in plain + renamed:
        if name not in taken:
            taken.add(name)
            plan.append((key, name))
    return tuple(plan)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _host_families(system: SystemSample) -> list[Metric]:
    """Host and process series; only ``peerscope_host_metrics_available`` when unsampled."""
    available = _gauge(
        "peerscope_host_metrics_available",
        "Whether host and process metrics were sampled (1) or not (0).",
        1.0 if system.available else 0.0,
    )
    if not system.available:
        return [available]
    return [
        available,
        _gauge(
            "peerscope_host_cpu_ratio",
            "Host CPU utilisation, as a ratio 0..1 of all CPUs.",
            system.cpu_percent / 100.0,
        ),
        _gauge(
            "peerscope_host_memory_used_bytes",
            "Host memory in use, in bytes.",
            system.memory_used_mb * _MB,
        ),
        _gauge(
            "peerscope_host_memory_total_bytes",
            "Host memory installed, in bytes.",
            system.memory_total_mb * _MB,
        ),
        _counter(
            "peerscope_host_network_sent_bytes",
            "Bytes sent by the host on all interfaces since boot, in bytes.",
            system.network_sent_mb * _MB,
        ),
        _counter(
            "peerscope_host_network_received_bytes",
            "Bytes received by the host on all interfaces since boot, in bytes.",
            system.network_recv_mb * _MB,
        ),
        _gauge(
            "peerscope_host_network_sent_bytes_per_second",
            "Host send rate between the last two samples, in bytes per second.",
            system.network_sent_rate,
        ),
        _gauge(
            "peerscope_host_network_received_bytes_per_second",
            "Host receive rate between the last two samples, in bytes per second.",
            system.network_recv_rate,
        ),
        _gauge(
            "peerscope_process_cpu_ratio",
            "CPU used by this process, as a ratio of one CPU (may exceed 1).",
            system.process_cpu_percent / 100.0,
        ),
        _gauge(
            "peerscope_process_resident_memory_bytes",
            "Resident memory of this process, in bytes.",
            system.process_rss_mb * _MB,
        ),
        _gauge(
            "peerscope_process_threads", "Threads of this process (count).", system.process_threads
        ),
        _gauge(
            "peerscope_process_open_fds",
            "Open file descriptors of this process (count).",
            system.process_fds,
        ),
    ]


class MonitorCollector:
    """A ``prometheus_client`` collector over one Monitor, with its own private registry.

    ``render()`` is the /metrics body. Register the collector in another registry too if
    the app already exposes one (its names do not clash with prometheus_client's defaults).
    """

    def __init__(self, monitor: Monitor, *, weak: bool = False) -> None:
        """``weak=True`` holds the Monitor by weak reference (for caches keyed by it)."""
        self._monitor: Callable[[], Monitor | None] = (
            weakref.ref(monitor) if weak else lambda: monitor
        )
        self._plan: tuple[frozenset[str], LabelPlan] = (frozenset(), ())
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its Content-Type."""
        return b"".join(finish(self.render_steps())), CONTENT_TYPE

    def render_steps(self) -> Steps[list[bytes]]:
        """The exposition body in pieces, built in steps of ~1 ms (:mod:`peerscope.slices`).

        Peers are read ``RENDER_SLICE`` at a time and each slice's lines of a family follow
        the previous slice's (without the HELP and TYPE lines again): joined, the pieces are
        byte for byte what ``generate_latest`` writes for the registry. No slice's objects
        outlive it, so a scrape of thousands of peers leaves the garbage collector little
        to do (a full collection at 10,000 peers stops the process for ~0.1 s).
        """
        monitor = self._monitor()
        if monitor is None:
            return []
        # Every series of a family needs the same label names: first the keys of every peer.
        keys: set[str] = set()
        for chunk in monitor.scan(_label_keys):
            keys.update(*chunk)
            yield
        plan = self._label_plan(keys)
        counts = dict.fromkeys(STATUSES, 0)
        texts: list[list[bytes]] = []
        for entries in itertools.chain(monitor.peer_slices(RENDER_SLICE), [[]]):
            if texts and not entries:
                continue  # the empty slice only writes the headers when there is no peer
            for entry in entries:
                counts[entry["status"]] += 1
            first = not texts
            for index, family in enumerate(self._peer_families(entries, plan)):
                written = generate_latest(Families([family]))
                if first:
                    texts.append([written])
                else:
                    texts[index].append(without_header(written))
                yield
        server = yield from monitor.server_stats_steps()
        head = generate_latest(Families(list(self._monitor_families(monitor, counts, server))))
        return [head, *(piece for text in texts for piece in text)]

    def collect(self) -> Iterator[Metric]:
        monitor = self._monitor()
        if monitor is None:
            return
        # One read of each part, everything below is built from these values.
        peers = monitor.peers()
        counts = dict.fromkeys(STATUSES, 0)
        keys: set[str] = set()
        for entry in peers:
            counts[entry["status"]] += 1
            if entry["labels"]:
                keys.update(entry["labels"])
        yield from self._monitor_families(monitor, counts, monitor.server_stats())
        yield from self._peer_families(peers, self._label_plan(keys))

    def _monitor_families(
        self, monitor: Monitor, counts: dict[Status, int], server: ServerStats
    ) -> Iterator[Metric]:
        """The host, server and network families; ``counts``: peers by status, counted from
        the entries the per-peer series are written from, so the two agree in a scrape."""
        message = monitor.last_message
        yield from _host_families(monitor.system)
        yield _gauge(
            "peerscope_server_uptime_seconds",
            "Time since the Monitor started, in seconds.",
            server.uptime_seconds,
        )
        yield _gauge(
            "peerscope_server_active_connections",
            "Peers currently registered (count).",
            server.active_connections,
        )
        yield _counter(
            "peerscope_server_connections",
            "Peers ever registered (count).",
            server.total_connections,
        )
        yield _counter(
            "peerscope_server_messages",
            "Application messages counted by the server, both directions (count).",
            server.total_messages,
        )
        rate = GaugeMetricFamily(
            "peerscope_server_messages_per_second",
            "Application messages over the last second, in messages per second, by direction.",
            labels=("direction",),
        )
        rate.add_metric(("in",), server.messages_in_per_second)
        rate.add_metric(("out",), server.messages_out_per_second)
        yield rate
        if server.loop_lag_ms is not None:
            yield _gauge(
                "peerscope_event_loop_lag_seconds",
                "How late a timer fired on the Monitor's event loop, the worst since the "
                "tick before, in seconds.",
                server.loop_lag_ms / 1000.0,
            )
        if server.loop_lag_p99_ms is not None:
            yield _gauge(
                "peerscope_event_loop_lag_p99_seconds",
                "The 99th percentile of how late that timer fired over the last minute, in "
                "seconds.",
                server.loop_lag_p99_ms / 1000.0,
            )
        by_status = GaugeMetricFamily(
            "peerscope_peers", "Peers by status (count).", labels=("status",)
        )
        for status, count in counts.items():
            by_status.add_metric((status,), count)
        yield by_status
        if message is not None:
            yield _gauge(
                "peerscope_network_quality_score",
                "Network quality score of the latest tick, 0..100 (unitless).",
                message["network"]["score"],
            )

    def _label_plan(self, keys: set[str]) -> LabelPlan:
        cached_keys, plan = self._plan
        if keys != cached_keys:
            frozen = frozenset(keys)
            plan = label_plan(frozen)
            self._plan = (frozen, plan)
        return plan

    def _peer_families(
        self,
        peers: list[PeerEntry],
        plan: LabelPlan,
    ) -> Iterator[Metric]:
        """The per-peer families, each built when the previous one has been taken.

        A family's samples live only while it is written: alive together, the samples of
        every family would outlast the garbage collector's young generations and make it
        run full collections.
        """
        # One label dict per peer, shared by all of its series (generate_latest only reads
        # it), and samples appended directly: add_metric would build a dict per sample.
        labels = [_peer_labels(entry, plan) for entry in peers]
        # Read by the field names in _PEER_GAUGES and _PEER_COUNTERS.
        pairs: list[tuple[Mapping[str, Any], dict[str, str]]] = list(
            zip(peers, labels, strict=True)
        )
        up = GaugeMetricFamily(*_UP)
        up.samples.extend(
            Sample(up.name, own, 0.0 if entry["status"] == "disconnected" else 1.0)
            for entry, own in pairs
        )
        yield up
        status_family = GaugeMetricFamily(*_STATUS)
        status_family.samples.extend(
            Sample(
                status_family.name, {**own, "status": each}, 1.0 if each == entry["status"] else 0.0
            )
            for entry, own in pairs
            for each in STATUSES
        )
        yield status_family
        jitter = GaugeMetricFamily(*_JITTER)
        jitter.samples.extend(
            Sample(jitter.name, own, entry["jitter_ms"] / 1000.0)
            for entry, own in pairs
            if entry["smoothed_latency_ms"] is not None
        )
        yield jitter
        loss = GaugeMetricFamily(*_LOSS)
        # A peer with every probe lost has no latency, but its loss is a measurement.
        loss.samples.extend(
            Sample(loss.name, own, entry["packet_loss_percent"] / 100.0)
            for entry, own in pairs
            if entry["smoothed_latency_ms"] is not None or entry["packet_loss_percent"]
        )
        yield loss
        for name, doc, key, divisor in _PEER_GAUGES:
            gauge = GaugeMetricFamily(name, doc)
            gauge.samples.extend(
                Sample(name, own, value if divisor is None else value / divisor)
                for entry, own in pairs
                if (value := entry[key]) is not None
            )
            yield gauge
        for name, doc, key in _PEER_COUNTERS:
            counter = CounterMetricFamily(name, doc)
            total = name + "_total"
            counter.samples.extend(Sample(total, own, entry[key]) for entry, own in pairs)
            yield counter
        yield from _path_families([(path, own) for entry, own in pairs if (path := entry["path"])])


def _path_families(paths: list[tuple[PathEntry, dict[str, str]]]) -> Iterator[Metric]:
    """The families of peers probed by TWAMP or STAMP (few, usually: built only for them)."""
    loss = GaugeMetricFamily(*_PATH_LOSS)
    delay = GaugeMetricFamily(*_ONE_WAY_DELAY)
    ttl = GaugeMetricFamily(*_PATH_TTL)
    changes = CounterMetricFamily(*_PATH_CHANGES)
    for path, own in paths:
        for direction, lost, one_way in (
            ("forward", path["forward_loss_percent"], path["forward_delay_ms"]),
            ("return", path["return_loss_percent"], path["return_delay_ms"]),
        ):
            if lost is not None:
                loss.samples.append(
                    Sample(loss.name, {**own, "direction": direction}, lost / 100.0)
                )
            if one_way is not None:
                labels = {**own, "direction": direction, "clock": path["delay_clock"]}
                delay.samples.append(Sample(delay.name, labels, one_way / 1000.0))
        if path["ttl"] is not None:
            ttl.samples.append(Sample(ttl.name, own, path["ttl"]))
        changes.samples.append(Sample(changes.name + "_total", own, path["path_changes"]))
    yield from (loss, delay, ttl, changes)


def _peer_labels(entry: PeerEntry, plan: LabelPlan) -> dict[str, str]:
    labels = {"peer_id": entry["client_id"], "name": entry["name"] or "", "kind": entry["kind"]}
    if plan:
        own: Mapping[str, str] = entry["labels"]
        for key, label in plan:
            labels[label] = own.get(key, "")
    return labels


def _label_keys(peer: Peer, now: float) -> tuple[str, ...]:
    return tuple(peer.labels)
