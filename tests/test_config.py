"""Settings from arguments, PEERSCOPE_* variables and a TOML file, in that order."""

from __future__ import annotations

import inspect

import pytest

from peerscope import QualityConfig, Reflector, Settings, SettingsError


def test_defaults_reproduce_the_seeds():
    settings = Settings()
    assert settings.metrics_interval == 1.0
    assert settings.latency_samples == 360
    assert settings.unknown_peer == "register"
    assert settings.quality == QualityConfig()
    assert (settings.quality.latency_weight, settings.quality.loss_weight,
            settings.quality.jitter_weight) == (0.40, 0.35, 0.25)
    assert settings.status.degraded_below_score == 60.0


def test_precedence_arguments_over_environment_over_file(tmp_path, monkeypatch):
    config = tmp_path / "peerscope.toml"
    config.write_text(
        "metrics_interval = 2.0\nlatency_samples = 100\nmax_clients_in_message = 7\n"
        "[quality]\nlatency_weight = 0.5\njitter_method = 'stddev'\n"
        "[status]\ndegraded_after_failures = 4\n")
    monkeypatch.setenv("PEERSCOPE_LATENCY_SAMPLES", "200")
    monkeypatch.setenv("PEERSCOPE_QUALITY__LOSS_WEIGHT", "0.3")
    settings = Settings.load(config, max_clients_in_message=9)
    assert settings.metrics_interval == 2.0  # file
    assert settings.latency_samples == 200  # environment beats file
    assert settings.max_clients_in_message == 9  # argument beats both
    assert settings.quality.loss_weight == 0.3
    assert settings.quality.jitter_method == "stddev"
    assert settings.status.degraded_after_failures == 4


def test_one_line_per_invalid_field(tmp_path, monkeypatch):
    monkeypatch.setenv("PEERSCOPE_METRICS_INTERVAL", "abc")
    with pytest.raises(SettingsError) as caught:
        Settings.load(unknown_peer="ignore", quality={"latency_weight": 3.0},
                      status={"degraded_after_failures": 0})
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid peerscope settings:"
    assert len(lines) == 5
    assert any(line.strip().startswith("metrics_interval:") for line in lines)
    assert any(line.strip().startswith("unknown_peer:") for line in lines)
    assert any("latency_weight: must be within 0..1, got 3.0" in line for line in lines)
    assert any("degraded_after_failures" in line for line in lines)


def test_unknown_setting_is_rejected_by_name(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("metrics_intervall = 1.0\n")
    with pytest.raises(SettingsError, match="metrics_intervall"):
        Settings.load(config)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match=r"config file not found: .*nope\.toml"):
        Settings.load(tmp_path / "nope.toml")


def test_reflector_allow_takes_networks_and_addresses(tmp_path, monkeypatch):
    config = tmp_path / "peerscope.toml"
    config.write_text('reflector_allow = ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", '
                      '"::ffff:172.16.0.0/108"]\n')
    assert Settings.load(config).reflector_allow == [
        "10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::ffff:172.16.0.0/108"]
    monkeypatch.setenv("PEERSCOPE_REFLECTOR_ALLOW", '["127.0.0.2/32"]')
    assert Settings.load().reflector_allow == ["127.0.0.2/32"]
    assert Settings.load(reflector_allow=[]).reflector_allow == []


@pytest.mark.parametrize(("allow", "line"), [
    (["10.0.0.0/8", "10.0.0.999"], "reflector_allow: not an IP address or network: '10.0.0.999'"),
    (["myhost"], "reflector_allow: not an IP address or network: 'myhost'"),
    (["10.0.0.1/8"], "reflector_allow: '10.0.0.1/8' has host bits set; the network is "
                     "'10.0.0.0/8'"),
])
def test_an_invalid_reflector_allow_entry_is_named(allow, line):
    with pytest.raises(SettingsError) as refused:
        Settings.load(reflector_allow=allow)
    assert str(refused.value).splitlines()[1:] == [f"  {line}"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("reflector_rate_limit", 0, "greater than 0"),
    ("reflector_rate_limit", float("nan"), "a finite number"),
    ("reflector_rate_limit", float("inf"), "a finite number"),
    ("reflector_burst", 0, "greater than or equal to 1"),
    ("reflector_max_sources", 0, "greater than or equal to 1"),
])
def test_reflector_limits_are_checked(field, value, message):
    with pytest.raises(SettingsError) as refused:
        Settings.load(**{field: value})
    assert str(refused.value).splitlines()[1:] == [f"  {field}: Input should be {message}"]


def test_the_reflectors_defaults_are_the_settings_defaults():
    settings = Settings()
    reflector = Reflector()
    assert (settings.reflector_rate_limit, settings.reflector_burst,
            settings.reflector_max_sources, settings.reflector_allow) == (2000.0, 2000, 16_384, [])
    defaults = inspect.signature(Reflector).parameters
    assert (defaults["rate_limit"].default, defaults["burst"].default,
            defaults["max_sources"].default, tuple(defaults["allow"].default)) == (
        settings.reflector_rate_limit, settings.reflector_burst,
        settings.reflector_max_sources, tuple(settings.reflector_allow))
    assert (reflector.rate_limited, reflector.not_allowed, reflector.sources) == (0, 0, 0)
