"""A terminal view of a metrics message, drawn with rich: which peer is in trouble and why.

A figure the peer cannot give (nothing came back, or not measured yet) is an en dash, never
the last value it had; each row carries the peer's reason in words, coloured by its kind,
and simulated peers (label ``simulated=true``) are marked ``sim``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from peerscope.message import MetricsMessage, PeerEntry

DASH = "–"
SIMULATED = ("simulated", "true")  # the label of the demo's simulated peers
_STATUS_STYLE = {"connected": "green", "degraded": "yellow", "disconnected": "red"}
_BAND_STYLE = {
    "excellent": "green",
    "good": "green",
    "fair": "yellow",
    "poor": "red",
    "bad": "bold red",
}
# As the dashboard colours them: the target said no or nothing comes back (red), a figure
# past its limit or silence (yellow), all well or not known yet (dim).
_REASON_STYLE = {
    "no_reply": "red",
    "port_closed": "red",
    "unresolved": "red",
    "idle": "yellow",
    "stale": "yellow",
    "loss": "yellow",
    "latency": "yellow",
    "jitter": "yellow",
}


def _number(value: float | None, fmt: str = "{:.1f}", unit: str = "") -> str:
    return DASH if value is None else fmt.format(value) + unit


def _simulated(client: PeerEntry) -> bool:
    key, value = SIMULATED
    return client["labels"].get(key) == value


def _peer_name(client: PeerEntry) -> Text:
    name = Text(client["name"] or client["client_id"])
    if _simulated(client):
        name.append(" sim", style="magenta")
    return name


def _quality(client: PeerEntry) -> Text:
    score, band = client["quality_score"], client["band"]
    if score is None:
        return Text(DASH)
    return Text(f"{score:.0f} {client['grade']} {band}", style=_BAND_STYLE.get(band or "", ""))


def _rate(bytes_per_second: float) -> str:
    for unit, size in (("MB/s", 1e6), ("kB/s", 1e3)):
        if bytes_per_second >= size:
            return f"{bytes_per_second / size:.1f} {unit}"
    return f"{bytes_per_second:.0f} B/s"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render(message: MetricsMessage, title: str = "peerscope") -> Group:
    """Header line (network, host, server) above a table of peers, worst first."""
    system, server, network = message["system"], message["server"], message["network"]
    counts = network["peers_by_status"]
    header = Text.assemble(
        (f"{title}  ", "bold"),
        ("network ", "dim"),
        (
            f"{network['score']:.0f} {network['grade']} {network['band']}",
            "bold " + _BAND_STYLE[network["band"]],
        ),
        ("   peers ", "dim"),
        (f"{counts['connected']}↑ ", "green"),
        (f"{counts['degraded']}~ ", "yellow"),
        (f"{counts['disconnected']}↓", "red"),
        ("   cpu ", "dim"),
        f"{system['cpu_percent']:.0f}%",
        ("   mem ", "dim"),
        f"{system['memory_percent']:.0f}%",
        ("   net ", "dim"),
        f"↑{_rate(system['network_sent_rate'])} ↓{_rate(system['network_recv_rate'])}",
        ("   msg/s ", "dim"),
        f"{server['messages_per_second']:.0f}",
        ("   up ", "dim"),
        _duration(server["uptime_seconds"]),
    )
    table = Table(expand=True, header_style="bold")
    table.add_column("peer", ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column("labels", ratio=1, no_wrap=True, overflow="ellipsis", style="dim")
    table.add_column("status", no_wrap=True)
    table.add_column("why", ratio=2, overflow="fold")
    for column in ("latency", "avg", "jitter", "loss", "MOS", "quality"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("trend", no_wrap=True)
    table.add_column("up", justify="right", no_wrap=True)
    for client in message["clients"]:
        # "simulated=true" is the "sim" beside the name: not said twice.
        labels = " ".join(f"{k}={v}" for k, v in client["labels"].items() if (k, v) != SIMULATED)
        table.add_row(
            _peer_name(client),
            Text(labels),
            Text(client["status"], style=_STATUS_STYLE.get(client["status"], "")),
            Text(
                client["status_text"],
                style=_REASON_STYLE.get(client["status_reason"]["kind"], "dim"),
            ),
            _number(client["latency_ms"], unit=" ms"),
            _number(client["average_latency_ms"], unit=" ms"),
            _number(client["jitter_ms"], unit=" ms"),
            _number(client["packet_loss_percent"], unit=" %"),
            _number(client["mos"], "{:.2f}"),
            _quality(client),
            client["trend"],
            _duration(client["connection_duration"]),
        )
    hidden = message["clients_total"] - len(message["clients"])
    parts: list[Any] = [header, table]
    if hidden > 0:
        parts.append(
            Text(f"… and {hidden} more peers (the table lists the worst first)", style="dim")
        )
    return Group(*parts)
