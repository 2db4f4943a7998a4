"""The [alerts] settings: which rules run, from TOML and PEERSCOPE_* variables, and the
one-line errors a bad rule gets."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from peerscope import Settings, SettingsError
from peerscope.alert_settings import AlertSettings
from peerscope.core.alerts import DEFAULT_RULES, AlertRule

DEFAULT_NAMES = [rule.name for rule in DEFAULT_RULES]


def test_by_default_the_default_rules_run():
    assert Settings().alerts.active_rules() == DEFAULT_RULES


def test_a_rule_named_like_a_default_replaces_it_in_place_and_others_follow(tmp_path):
    config = tmp_path / "peerscope.toml"
    config.write_text(
        """
[alerts]
disable = ["high_cpu"]

[[alerts.rules]]
name = "high_latency"
metric = "latency_ms"
op = ">"
threshold = 150
clear = 120
for_s = 20

[[alerts.rules]]
name = "eu_loss"
metric = "loss_percent"
op = ">"
threshold = 2
severity = "critical"
match = { region = "eu" }
"""
    )
    rules = Settings.load(config).alerts.active_rules()
    assert [rule.name for rule in rules] == [
        name for name in DEFAULT_NAMES if name != "high_cpu"
    ] + ["eu_loss"]
    by_name = {rule.name: rule for rule in rules}
    assert by_name["high_latency"] == AlertRule(
        "high_latency", "latency_ms", ">", 150.0, clear=120.0, for_s=20.0
    )
    assert by_name["eu_loss"].match == {"region": "eu"}
    assert by_name["eu_loss"].severity == "critical"


def test_rules_come_as_json_from_the_environment_and_defaults_can_be_off(monkeypatch):
    monkeypatch.setenv("PEERSCOPE_ALERTS__DEFAULT_RULES", "false")
    monkeypatch.setenv(
        "PEERSCOPE_ALERTS__RULES",
        json.dumps([{"name": "down", "metric": "status", "op": "==", "threshold": "disconnected"}]),
    )
    assert Settings.load().alerts.active_rules() == (
        AlertRule("down", "status", "==", "disconnected"),
    )


@pytest.mark.parametrize(
    ("rules", "line"),
    [
        (
            [{"name": "x", "metric": "latency_ms", "op": ">", "threshold": 150, "clear": 170}],
            "PEERSCOPE_ALERTS__RULES: alerts.rules[0].clear: must be <= threshold 150.0 "
            "(its ok side), got 170.0",
        ),
        (
            [{"name": "x", "metric": "latency", "op": ">", "threshold": 1}],
            "PEERSCOPE_ALERTS__RULES: alerts.rules[0].metric: must be one of",
        ),
        (
            [{"name": "x", "metric": "latency_ms", "op": ">", "threshold": 1, "fro_s": 1}],
            "PEERSCOPE_ALERTS__RULES: alerts.rules[0].fro_s: not a setting; did you mean for_s?",
        ),
        (
            [
                {"name": "x", "metric": "latency_ms", "op": ">", "threshold": 1},
                {"name": "x", "metric": "jitter_ms", "op": ">", "threshold": 1},
            ],
            "PEERSCOPE_ALERTS__RULES: rules[1] reuses the name 'x'",
        ),
    ],
)
def test_a_bad_rule_is_one_line_naming_where_and_which_field(rules, line, monkeypatch):
    monkeypatch.setenv("PEERSCOPE_ALERTS__RULES", json.dumps(rules))
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    assert str(caught.value).startswith(line)
    assert "\n" not in str(caught.value)


def test_a_bad_rule_in_the_file_names_the_file(tmp_path):
    config = tmp_path / "peerscope.toml"
    config.write_text('[[alerts.rules]]\nname = "x"\nmetric = "mos"\nop = "=>"\nthreshold = 3\n')
    with pytest.raises(SettingsError) as caught:
        Settings.load(config)
    assert str(caught.value).startswith(
        f"{config}: alerts.rules[0].op: Input should be '>', '>=', '<', '<=', '==' or '!='"
    )


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "PEERSCOPE_ALERTS__DISABLE",
            "high_cpu,nope",
            "PEERSCOPE_ALERTS__DISABLE: item 1 'nope' is no default rule; they are high_cpu,",
        ),
        (
            "PEERSCOPE_ALERTS__WEBHOOKS",
            "ftp://example.org/hook",
            "PEERSCOPE_ALERTS__WEBHOOKS: item 0: must be an http:// or https:// URL",
        ),
        (
            "PEERSCOPE_ALERTS__ALERTMANAGER_RESEND_S",
            "0",
            "PEERSCOPE_ALERTS__ALERTMANAGER_RESEND_S: Input should be greater than 0",
        ),
    ],
)
def test_bad_alert_settings_are_named(variable, value, line, monkeypatch):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    assert str(caught.value).startswith(line)


def test_a_disabled_default_given_again_runs_as_given_at_the_end():
    mine = replace(DEFAULT_RULES[0], threshold=95.0, clear=90.0)
    settings = AlertSettings(disable=["high_cpu"], rules=[mine])
    assert settings.active_rules()[-1] == mine
    assert [rule.name for rule in settings.active_rules()].count("high_cpu") == 1


def test_the_settings_name_the_notifiers_the_agent_builds():
    from peerscope.alerting.configured import configured_notifiers

    settings = AlertSettings(
        webhooks=["https://hooks.example.org/T0KEN/path"],
        alertmanager_urls=["http://127.0.0.1:9093"],
        apprise_urls=["json://127.0.0.1:9/alerts"],
    )
    assert [notifier.name for notifier in configured_notifiers(settings)] == [
        "log",
        "webhook https://hooks.example.org",
        "alertmanager http://127.0.0.1:9093",
        "apprise json",
    ]
    assert configured_notifiers(AlertSettings(log=False)) == []
