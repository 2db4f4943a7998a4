"""Settings from arguments, PEERSCOPE_* variables and a TOML file, in that order."""

from __future__ import annotations

import pytest

from peerscope import QualityConfig, Settings, SettingsError


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
