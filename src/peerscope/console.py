"""A terminal view of a metrics message, drawn with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from peerscope.message import MetricsMessage

_STATUS_STYLE = {"connected": "green", "degraded": "yellow", "disconnected": "red"}
_GRADE_STYLE = {"A": "green", "B": "green", "C": "yellow", "D": "red", "F": "bold red"}


def _number(value: float | None, fmt: str = "{:.1f}", unit: str = "") -> str:
    return "—" if value is None else fmt.format(value) + unit


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
        (f"{network['score']:.0f} {network['grade']}", "bold"),
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
    table.add_column("peer", ratio=2, no_wrap=True, overflow="ellipsis")
    table.add_column("labels", ratio=1, no_wrap=True, overflow="ellipsis", style="dim")
    table.add_column("status", no_wrap=True)
    for column in ("latency", "avg", "jitter", "loss", "MOS", "quality"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("trend", no_wrap=True)
    table.add_column("up", justify="right", no_wrap=True)
    for client in message["clients"]:
        name = client.get("name") or client["client_id"]
        labels = " ".join(f"{k}={v}" for k, v in client.get("labels", {}).items())
        score = client["quality_score"]
        grade = client["grade"]
        table.add_row(
            Text(name),
            Text(labels),
            Text(client["status"], style=_STATUS_STYLE.get(client["status"], "")),
            _number(client["latency_ms"], unit=" ms"),
            _number(client["average_latency_ms"], unit=" ms"),
            _number(client["jitter_ms"], unit=" ms"),
            _number(client["packet_loss_percent"], unit=" %"),
            _number(client["mos"], "{:.2f}"),
            Text(
                "—" if score is None else f"{score:.0f} {grade}",
                style=_GRADE_STYLE.get(grade or "", ""),
            ),
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
