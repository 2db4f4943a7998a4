"""Silences: label matchers and an end time; a silenced alert is still shown, but told to no
notifier, as Alertmanager's silences do."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from peerscope.alerting.records import SilenceEntry
from peerscope.core.validation import (
    preview,
    real_number,
    require,
    validate_labels,
    validate_text,
)

MAX_SILENCES = 1000
# A silence is for a maintenance window or a known problem, not a way to turn alerting off.
MAX_SILENCE_S = 30 * 86_400.0


class Silences:
    """The silences in force; an expired one is dropped when next looked at."""

    def __init__(self) -> None:
        self._silences: dict[str, SilenceEntry] = {}

    def add(
        self,
        matchers: object,
        ends_at: object,
        now: float,
        *,
        comment: object = "",
        created_by: object = "",
    ) -> SilenceEntry:
        """A new silence until ``ends_at`` (epoch seconds); ``ValueError`` naming the field
        for bad input: ``matchers`` must hold at least one label, ``ends_at`` lie ahead, at
        most 30 days away."""
        checked = validate_labels(matchers, "matchers")
        require(bool(checked), "matchers", "must hold at least one label, e.g. {alertname: …}")
        end = real_number(ends_at, "ends_at")
        require(end > now, "ends_at", f"must lie ahead of now ({now:.0f}), got {preview(ends_at)}")
        require(
            end - now <= MAX_SILENCE_S,
            "ends_at",
            f"must be at most {MAX_SILENCE_S / 86_400:.0f} days ahead, got {preview(ends_at)}",
        )
        for name, value in (("comment", comment), ("created_by", created_by)):
            require(isinstance(value, str), name, f"must be a string, got {preview(value)}")
            if value:
                validate_text(value, name)
        self._expire(now)
        require(
            len(self._silences) < MAX_SILENCES,
            "matchers",
            f"{MAX_SILENCES} silences are in force already; delete one first",
        )
        entry: SilenceEntry = {
            "id": secrets.token_hex(8),
            "matchers": checked,
            "starts_at": now,
            "ends_at": end,
            "comment": str(comment),
            "created_by": str(created_by),
        }
        self._silences[entry["id"]] = entry
        return entry

    def remove(self, silence_id: str) -> bool:
        return self._silences.pop(silence_id, None) is not None

    def active(self, now: float) -> list[SilenceEntry]:
        self._expire(now)
        return list(self._silences.values())

    def silencing(self, labels: Mapping[str, str], now: float) -> str | None:
        """The id of a silence in force whose matchers ``labels`` hold, or None."""
        if not self._silences:
            return None
        self._expire(now)
        for silence in self._silences.values():
            if all(labels.get(key) == value for key, value in silence["matchers"].items()):
                return silence["id"]
        return None

    def _expire(self, now: float) -> None:
        for silence_id in [k for k, s in self._silences.items() if s["ends_at"] <= now]:
            del self._silences[silence_id]
