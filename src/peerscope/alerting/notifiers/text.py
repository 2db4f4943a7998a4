"""How an alert event reads to a person: in a log line, a chat message's title and body."""

from __future__ import annotations

import datetime

import orjson

from peerscope.alerting.records import AlertEvent

__all__ = ["body", "labels_text", "title"]


def labels_text(labels: dict[str, str]) -> str:
    """``{alertname="high_cpu", severity="warning"}``, sorted by name, as Prometheus shows
    a label set (values quoted as JSON strings, so a space or brace in one reads
    unambiguously)."""
    inner = ", ".join(
        f"{name}={orjson.dumps(value).decode()}" for name, value in sorted(labels.items())
    )
    return "{" + inner + "}"


def _utc_text(timestamp: float) -> str:
    """``2024-05-01 12:00:03 UTC``."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def title(event: AlertEvent) -> str:
    """``Warning: high_latency on eu-1``; ``Resolved: high_latency on eu-1``; ``Critical
    (still firing): ...`` for a repeat."""
    if event["state"] == "resolved":
        word = "Resolved"
    else:
        word = event["severity"].capitalize() + (" (still firing)" if event["repeat"] else "")
    whose = "" if event["peer_id"] is None else f" on {event['peer_id']}"
    return f"{word}: {event['rule']}{whose}"


def body(event: AlertEvent) -> str:
    """The message, when the alert began firing (and resolved), and its labels."""
    lines = [event["message"], f"Firing since {_utc_text(event['started_at'])}"]
    if event["state"] == "resolved":
        lines.append(f"Resolved at {_utc_text(event['timestamp'])}")
    lines.append(f"Labels: {labels_text(event['labels'])}")
    return "\n".join(lines)
