"""The ``[alerts]`` settings group: which rules run and where their alerts are told.

``PEERSCOPE_ALERTS__RULES='[{"name": ...}]'`` (JSON) or ``[[alerts.rules]]`` tables in TOML
add rules; one named like a default rule replaces it. docs/ALERTS.md describes each.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from peerscope.core.alerts import DEFAULT_RULES, AlertRule
from peerscope.core.validation import preview

__all__ = ["AlertSettings"]

DEFAULT_RULE_NAMES = tuple(rule.name for rule in DEFAULT_RULES)


def _http_url(value: str, field_name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field_name}: must be an http:// or https:// URL, got {preview(value)}")
    return value


class AlertSettings(BaseModel):
    """Alert rules and notifiers: the ``[alerts]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Evaluate alert rules (serve).")
    default_rules: bool = Field(
        True, description="Run the default rules (docs/ALERTS.md), less those in disable."
    )
    disable: list[str] = Field(
        default_factory=list, description="Names of default rules not to run."
    )
    rules: list[AlertRule] = Field(
        default_factory=list,
        description="Rules to run besides the defaults; one named like a default replaces it.",
    )
    history_size: int = Field(
        1000, ge=1, le=1_000_000, description="Alert events kept in the log (/api/alerts/history)."
    )
    log: bool = Field(True, description="Log each alert event (logger peerscope.alerts).")
    webhooks: list[str] = Field(
        default_factory=list, description="URLs each alert event is POSTed to as JSON."
    )
    alertmanager_urls: list[str] = Field(
        default_factory=list,
        description="Alertmanager base URLs; alerts are posted to /api/v2/alerts.",
    )
    alertmanager_resend_s: float = Field(
        60.0, gt=0, le=3600, description="Seconds between re-posts of firing alerts."
    )
    apprise_urls: list[SecretStr] = Field(
        default_factory=list,
        description="Apprise URLs (discord://…, slack://…, mailto://…, ntfy://…) told of "
        "each alert event.",
    )
    notify_timeout_s: float = Field(
        10.0, gt=0, le=600, description="Seconds one delivery attempt may take."
    )
    notify_retries: int = Field(3, ge=0, le=100, description="Retries of a failed delivery.")
    notify_backoff_s: float = Field(
        1.0, ge=0, le=3600, description="Seconds before the first retry; doubled each time."
    )
    notify_queue_size: int = Field(
        1000, ge=1, le=1_000_000, description="Events queued per notifier; the oldest go first."
    )

    @field_validator("disable")
    @classmethod
    def _known_defaults(cls, names: list[str]) -> list[str]:
        for index, name in enumerate(names):
            if name not in DEFAULT_RULE_NAMES:
                raise ValueError(
                    f"disable: item {index} {preview(name)} is no default rule; they are "
                    + ", ".join(DEFAULT_RULE_NAMES)
                )
        return names

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[AlertRule]) -> list[AlertRule]:
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            if rule.name in seen:
                raise ValueError(f"rules: rules[{index}] reuses the name {rule.name!r}")
            seen.add(rule.name)
        return rules

    @field_validator("webhooks", "alertmanager_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        return [_http_url(url, f"item {index}") for index, url in enumerate(urls)]

    def active_rules(self) -> tuple[AlertRule, ...]:
        """The rules to run: the defaults (unless off, less ``disable``), each replaced by a
        rule of ``rules`` of its name, then the other ``rules``."""
        given = {rule.name: rule for rule in self.rules}
        defaults = DEFAULT_RULES if self.default_rules else ()
        chosen = [given.pop(rule.name, rule) for rule in defaults if rule.name not in self.disable]
        return (*chosen, *given.values())
