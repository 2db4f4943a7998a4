"""Picking up after a restart: the Monitor's memory refilled from the history store.

The host's recent samples go back in its history, and the peers seen within ``peer_ttl_s``
come back with their recent latency samples at the times they were taken. They are judged
from those at the next tick, so a peer that has not answered since reads stale or
disconnected, and is pruned after the TTL unless it comes back: the dashboard after a
restart shows what it showed before, never a peer that looks alive and is not. With
``anonymize_ids`` the store holds no peer ids to bring back, only their history. The
sessions that ended recently come back too, with their statistics, and the alert log and
the alerts that were firing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

from peerscope.alerting.records import AlertEvent
from peerscope.alerting.service import Alerting
from peerscope.core.model import PeerKind, Session, SystemSample
from peerscope.core.rollup import FIGURES
from peerscope.monitor import Monitor
from peerscope.store.intake import HOST_KEY
from peerscope.store.reader import HistoryReader

__all__ = ["Restored", "restore"]


@dataclass(frozen=True, slots=True)
class Restored:
    host_samples: int
    peers: int
    peer_samples: int
    sessions: int = 0
    alerts_firing: int = 0


def _host_samples(reader: HistoryReader, start: float, end: float) -> list[SystemSample]:
    found = reader.samples("host", HOST_KEY, start, end)
    if found is None:
        return []
    names = [figure.name for figure in FIGURES["host"]]
    columns = [found.values[name] for name in names]
    samples = []
    for timestamp, *row in zip(found.times, *columns, strict=True):
        if None in row:
            continue
        samples.append(SystemSample(timestamp=timestamp, **dict(zip(names, row, strict=True))))
    return samples


def _session(data: dict[str, Any]) -> Session:
    latency = data["latency"]
    return Session(
        session_id=data["game_id"],
        name=data["game_name"],
        started_at=data["started_at"],
        peer_ids=list(data["peers"]),
        ended_at=data["ended_at"],
        labels=data.get("labels", {}),
        count=data.get("count", 0),
        total=data.get("total", 0.0),
        minimum=math.inf if latency["min"] is None else latency["min"],
        maximum=-math.inf if latency["max"] is None else latency["max"],
        samples=list(data.get("samples", [])),
    )


def restore(reader: HistoryReader, monitor: Monitor, alerting: Alerting | None = None) -> Restored:
    """Refill ``monitor`` (and ``alerting``'s log and firing alerts) from ``reader``'s
    store. Blocking: run it before the Monitor's first tick."""
    settings = monitor.settings
    now = monitor.now()
    host_window = settings.system_history_samples * settings.metrics_interval
    host = _host_samples(reader, now - host_window, now)
    monitor.restore_system(host)
    peers = samples = 0
    if not reader.anonymized:
        # A peer's ring holds latency_samples; at one kept sample per tick, twice that span
        # of ticks covers it even with gaps.
        window = 2 * settings.latency_samples * settings.metrics_interval
        for seen in reader.peers_seen(now - settings.peer_ttl_s):
            found = reader.samples("peer", seen["key"], now - window, now, ["latency_ms"])
            latency = [] if found is None else found.present("latency_ms")
            latency = latency[-settings.latency_samples :]
            kind: PeerKind = "client" if seen["kind"] == "client" else "peer"
            if monitor.restore_peer(
                seen["key"],
                name=seen["name"],
                address=seen["address"],
                kind=kind,
                labels=seen["labels"],
                connected_at=seen["first_seen"],
                samples=latency,
            ):
                peers += 1
                samples += len(latency)
    sessions = 0
    if not reader.anonymized:
        stored = reader.events(types=["session_ended"], limit=settings.session_history)
        ended = [_session(row["data"]) for row in reversed(stored)]
        monitor.restore_sessions(ended)
        sessions = len(ended)
    firing = 0
    if alerting is not None:
        stored = reader.events(types=["alert"], limit=alerting.history_size)
        events = [cast("AlertEvent", row["data"]) for row in reversed(stored)]
        firing = alerting.restore(events, now, fire_on=not reader.anonymized)
    return Restored(len(host), peers, samples, sessions, firing)
