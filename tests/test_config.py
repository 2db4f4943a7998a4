"""Settings from arguments, PEERSCOPE_* variables and a TOML file, in that order."""

from __future__ import annotations

import inspect
import re
import warnings

import pytest
from pydantic import Field, SecretStr, ValidationError

from peerscope import Monitor, QualityConfig, Reflector, Settings, SettingsError, SettingsWarning


def test_defaults_reproduce_the_seeds():
    settings = Settings()
    assert settings.metrics_interval == 1.0
    assert settings.latency_samples == 360
    assert settings.unknown_peer == "register"
    assert settings.quality == QualityConfig()
    assert (
        settings.quality.latency_weight,
        settings.quality.loss_weight,
        settings.quality.jitter_weight,
    ) == (0.40, 0.35, 0.25)
    assert settings.status.degraded_below_score == 60.0


def test_precedence_arguments_over_environment_over_file(tmp_path, monkeypatch):
    config = tmp_path / "peerscope.toml"
    config.write_text(
        "metrics_interval = 2.0\nlatency_samples = 100\nmax_clients_in_message = 7\n"
        "[quality]\nlatency_weight = 0.5\njitter_method = 'stddev'\n"
        "[status]\ndegraded_after_failures = 4\n"
    )
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
        Settings.load(
            unknown_peer="ignore",
            quality={"latency_weight": 3.0},
            status={"degraded_after_failures": 0},
        )
    # Each line says where the value came from (the variable, or the argument's field) and
    # names the field once, however the check that refused it worded its message.
    assert str(caught.value).splitlines() == [
        "PEERSCOPE_METRICS_INTERVAL: Input should be a valid number, unable to parse string "
        "as a number",
        "unknown_peer: Input should be 'register' or 'raise'",
        "quality.latency_weight: must be within 0..1, got 3.0",
        "status.degraded_after_failures: must be >= 1 and <= disconnected_after_failures",
    ]


def test_unknown_setting_is_rejected_by_name(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("metrics_intervall = 1.0\n[quality]\nlatncy_weight = 0.5\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load(config)
    assert sorted(str(caught.value).splitlines()) == [
        f"{config}: metrics_intervall: not a setting; did you mean metrics_interval?",
        f"{config}: quality.latncy_weight: not a setting; did you mean latency_weight?",
    ]


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match=r"^.*nope\.toml: config file not found$"):
        Settings.load(tmp_path / "nope.toml")


def test_reflector_allow_takes_networks_and_addresses(tmp_path, monkeypatch):
    config = tmp_path / "peerscope.toml"
    config.write_text(
        'reflector_allow = ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", '
        '"::ffff:172.16.0.0/108"]\n'
    )
    assert Settings.load(config).reflector_allow == [
        "10.0.0.0/8",
        "192.168.1.7",
        "2001:db8::/32",
        "::ffff:172.16.0.0/108",
    ]
    monkeypatch.setenv("PEERSCOPE_REFLECTOR_ALLOW", '["127.0.0.2/32"]')
    assert Settings.load().reflector_allow == ["127.0.0.2/32"]
    assert Settings.load(reflector_allow=[]).reflector_allow == []


@pytest.mark.parametrize(
    ("allow", "line"),
    [
        (
            ["10.0.0.0/8", "10.0.0.999"],
            "reflector_allow: not an IP address or network: '10.0.0.999'",
        ),
        (["myhost"], "reflector_allow: not an IP address or network: 'myhost'"),
        (
            ["10.0.0.1/8"],
            "reflector_allow: '10.0.0.1/8' has host bits set; the network is '10.0.0.0/8'",
        ),
    ],
)
def test_an_invalid_reflector_allow_entry_is_named(allow, line):
    with pytest.raises(SettingsError) as refused:
        Settings.load(reflector_allow=allow)
    assert str(refused.value) == line


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reflector_rate_limit", 0, "greater than 0"),
        ("reflector_rate_limit", float("nan"), "a finite number"),
        ("reflector_rate_limit", float("inf"), "a finite number"),
        ("reflector_burst", 0, "greater than or equal to 1"),
        ("reflector_max_sources", 0, "greater than or equal to 1"),
        ("reflector_mode", "both", "'stateful' or 'stateless'"),
        ("reflector_session_idle_s", 0, "greater than 0"),
        ("reflector_session_idle_s", float("nan"), "a finite number"),
        ("reflector_session_idle_s", 86_401, "less than or equal to 86400"),
        ("reflector_max_sessions", 0, "greater than or equal to 1"),
        ("reflector_unpadded", "drop", "'refuse' or 'answer'"),
        ("reflector_stamp_port", -1, "greater than or equal to 0"),
        ("reflector_stamp_port", 65536, "less than or equal to 65535"),
    ],
)
def test_reflector_limits_are_checked(field, value, message):
    with pytest.raises(SettingsError) as refused:
        Settings.load(**{field: value})
    assert str(refused.value) == f"{field}: Input should be {message}"


def test_the_stamp_port_must_differ_from_the_reflectors():
    with pytest.raises(SettingsError) as refused:
        Settings.load(reflector_port=8701, reflector_stamp_port=8701)
    assert str(refused.value) == (
        "reflector_stamp_port: 8701 is reflector_port already; pick another port, or 0 for none"
    )
    assert Settings.load(reflector_port=0, reflector_stamp_port=0).reflector_stamp_port == 0


def test_the_reflectors_defaults_are_the_settings_defaults():
    settings = Settings()
    reflector = Reflector()
    assert (
        settings.reflector_rate_limit,
        settings.reflector_burst,
        settings.reflector_max_sources,
        settings.reflector_allow,
        settings.reflector_mode,
        settings.reflector_session_idle_s,
        settings.reflector_max_sessions,
        settings.reflector_unpadded,
        settings.reflector_stamp_port,
    ) == (2000.0, 2000, 16_384, [], "stateful", 900.0, 16_384, "refuse", 0)
    defaults = inspect.signature(Reflector).parameters
    assert (
        defaults["rate_limit"].default,
        defaults["burst"].default,
        defaults["max_sources"].default,
        tuple(defaults["allow"].default),
        defaults["mode"].default,
        defaults["session_idle_s"].default,
        defaults["max_sessions"].default,
        defaults["unpadded"].default,
    ) == (
        settings.reflector_rate_limit,
        settings.reflector_burst,
        settings.reflector_max_sources,
        tuple(settings.reflector_allow),
        settings.reflector_mode,
        settings.reflector_session_idle_s,
        settings.reflector_max_sessions,
        settings.reflector_unpadded,
    )
    assert (reflector.rate_limited, reflector.not_allowed, reflector.sources) == (0, 0, 0)


def test_a_toml_syntax_error_names_the_file_line_and_column(tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("port = 8700\nhost = 127.0.0.1\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load(config)
    # tomllib's wording varies between Python versions; the place does not.
    assert re.fullmatch(
        rf"{re.escape(str(config))}: not valid TOML: [^\n]+ "
        r"\(at line 2, column \d+\)",
        str(caught.value),
    ), caught.value


def test_where_a_bad_value_came_from_is_named(tmp_path, monkeypatch):
    config = tmp_path / "peerscope.toml"
    config.write_text(
        "port = 70000\n[[peers]]\naddress = '10.0.0.1'\n"
        "[[peers]]\naddress = '10.0.0.999'\n[status]\nrecover_margin = -1\n"
    )
    monkeypatch.setenv("PEERSCOPE_MAX_PEERS", "0")
    monkeypatch.setenv("PEERSCOPE_QUALITY__LOSS_WINDOW", "0")
    with pytest.raises(SettingsError) as caught:
        Settings.load(
            config,
            argument_names={"metrics_interval": "--metrics-interval"},
            metrics_interval=-1,
            latency_samples=1,
        )
    assert str(caught.value).splitlines() == [
        "--metrics-interval: Input should be greater than 0",
        "latency_samples: Input should be greater than or equal to 2",
        "PEERSCOPE_MAX_PEERS: Input should be greater than or equal to 1",
        f"{config}: port: Input should be less than or equal to 65535",
        f"{config}: peers[1].address: '10.0.0.999' is not a valid IPv4 address",
        "PEERSCOPE_QUALITY__LOSS_WINDOW: must be >= 1",
        f"{config}: status.recover_margin: must be >= 0",
    ]


# --- the token ----------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", " ", "\t \n"])
def test_an_empty_or_blank_token_is_refused(blank, monkeypatch):
    """Taken as no token it would turn authentication off where one was meant."""
    message = "token: must not be empty or blank; leave it unset"
    with pytest.raises(ValidationError, match=message):
        Settings(token=blank)
    with pytest.raises(ValidationError, match=message):
        Monitor(Settings(token=blank))
    with pytest.raises(SettingsError, match=f"^{message}"):
        Settings.load(token=blank)
    monkeypatch.setenv("PEERSCOPE_TOKEN", blank)
    with pytest.raises(SettingsError, match=r"^PEERSCOPE_TOKEN: must not be empty or blank"):
        Settings.load()


@pytest.mark.parametrize(
    "token", [" s3cret-token-0123456789", "s3cret-token-0123456789\n", "s3cret\x00token-0123456789"]
)
def test_a_token_no_client_could_send_is_refused(token):
    """Header values are stripped, so with spaces at either end every request got 401."""
    with pytest.raises(SettingsError, match=r"^token: must not begin or end with spaces"):
        Settings.load(token=token)


def test_a_short_token_is_warned_about():
    with pytest.warns(
        SettingsWarning,
        match=r"^token: 15 characters is short enough to guess; "
        r"use 16 or more random ones",
    ):
        settings = Settings(token="x" * 15)
    assert settings.bearer_token == "x" * 15
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings(token="y" * 16).bearer_token == "y" * 16


def test_bearer_token_is_none_without_a_token_or_with_a_blank_one():
    assert Settings().bearer_token is None
    # Settings copied without validation still agree with the check at load.
    assert Settings().model_copy(update={"token": SecretStr(" ")}).bearer_token is None


# --- lists and unknown names in the environment -------------------------------------------


class Extended(Settings):
    """A list setting added later gets the same parsing without code of its own."""

    later_list: list[str] = Field(default_factory=list)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a.lan", ["a.lan"]),
        ("a.lan,b.lan", ["a.lan", "b.lan"]),
        (" a.lan , b.lan ,", ["a.lan", "b.lan"]),
        ('["a.lan", "b,lan"]', ["a.lan", "b,lan"]),
        ("", []),
    ],
)
def test_list_settings_take_json_or_comma_separated_items(value, expected, monkeypatch):
    for name in ("ALLOWED_HOSTS", "CORS_ORIGINS", "LATER_LIST"):
        monkeypatch.setenv(f"PEERSCOPE_{name}", value)
    settings = Extended()
    assert settings.allowed_hosts == settings.cors_origins == settings.later_list == expected


def test_reflector_allow_takes_comma_separated_networks_from_the_environment(monkeypatch):
    monkeypatch.setenv("PEERSCOPE_REFLECTOR_ALLOW", "10.0.0.0/8, 2001:db8::/32")
    assert Settings.load().reflector_allow == ["10.0.0.0/8", "2001:db8::/32"]
    monkeypatch.setenv("PEERSCOPE_REFLECTOR_ALLOW", "10.0.0.0/8,10.0.0.999")
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    assert str(caught.value) == (
        "PEERSCOPE_REFLECTOR_ALLOW: not an IP address or network: '10.0.0.999'"
    )


def test_peers_from_the_environment_as_addresses_or_json(monkeypatch):
    monkeypatch.setenv("PEERSCOPE_PEERS", "127.0.0.1,10.0.0.2:8702,[::1]:9")
    peers = Settings.load().peers
    assert [(spec.address, spec.target().peer_id) for spec in peers] == [
        ("127.0.0.1", "twamp:127.0.0.1"),
        ("10.0.0.2:8702", "twamp:10.0.0.2:8702"),
        ("[::1]:9", "twamp:[::1]:9"),
    ]
    monkeypatch.setenv("PEERSCOPE_PEERS", '[{"address": "db.lan:5432", "method": "tcp"}]')
    assert [spec.target().peer_id for spec in Settings.load().peers] == ["tcp:db.lan:5432"]
    monkeypatch.setenv("PEERSCOPE_PEERS", "127.0.0.1,10.0.0.999")
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    assert str(caught.value) == (
        "PEERSCOPE_PEERS: peers[1].address: '10.0.0.999' is not a valid IPv4 address"
    )


def test_tcp_refused_fails_by_default_and_is_set_by_file_or_variable(tmp_path, monkeypatch):
    assert Settings().tcp_refused == "fail"
    config = tmp_path / "peerscope.toml"
    config.write_text("tcp_refused = 'reachable'\n")
    assert Settings.load(config).tcp_refused == "reachable"
    monkeypatch.setenv("PEERSCOPE_TCP_REFUSED", "fail")
    assert Settings.load(config).tcp_refused == "fail"  # the variable beats the file
    monkeypatch.setenv("PEERSCOPE_TCP_REFUSED", "ignore")
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    assert str(caught.value) == "PEERSCOPE_TCP_REFUSED: Input should be 'fail' or 'reachable'"


def test_bad_json_in_a_variable_is_named(monkeypatch):
    monkeypatch.setenv("PEERSCOPE_ALLOWED_HOSTS", '["a.lan",')
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    assert str(caught.value) == (
        "PEERSCOPE_ALLOWED_HOSTS: not valid JSON (Expecting value: line 1 column 10 "
        "(char 9)); give a JSON value or comma-separated items"
    )


def test_unknown_variables_are_warned_about_with_the_closest_name(monkeypatch):
    monkeypatch.setenv("PEERSCOPE_METRIC_INTERVAL", "2")
    monkeypatch.setenv("PEERSCOPE_QUALITY__LATENCY_WIEGHT", "0.5")
    monkeypatch.setenv("PEERSCOPE_XYZZY", "1")
    monkeypatch.setenv("PEERSCOPE_STATUS__RECOVER_MARGIN", "7")  # a real one: no warning
    with pytest.warns(SettingsWarning) as caught:
        settings = Settings.load()
    assert [str(warning.message) for warning in caught] == [
        "PEERSCOPE_METRIC_INTERVAL is not a setting; did you mean PEERSCOPE_METRICS_INTERVAL?",
        "PEERSCOPE_QUALITY__LATENCY_WIEGHT is not a setting; did you mean "
        "PEERSCOPE_QUALITY__LATENCY_WEIGHT?",
        "PEERSCOPE_XYZZY is not a setting; it is ignored",
    ]
    # Ignored, all three: the nested one does not fail as an unexpected key either.
    assert settings.metrics_interval == 1.0
    assert settings.quality.latency_weight == 0.40
    assert settings.status.recover_margin == 7


# --- peers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tables", "same_id"),
    [
        (
            ["address = '10.0.0.1:8701'", "address = '10.0.0.2'", "address = '10.0.0.1:8701'"],
            "twamp:10.0.0.1:8701",
        ),
        (
            [
                "address = '10.0.0.1'\nid = 'vpn'",
                "address = '10.0.0.2'",
                "address = '10.0.0.3'\nid = 'vpn'",
            ],
            "vpn",
        ),
    ],
)
def test_two_peers_with_one_id_are_refused_naming_both(tmp_path, tables, same_id):
    config = tmp_path / "peers.toml"
    config.write_text("".join(f"[[peers]]\n{table}\n" for table in tables))
    with pytest.raises(SettingsError) as caught:
        Settings.load(config)
    assert str(caught.value) == (
        f"{config}: peers: peers[0] and peers[2] have the same id {same_id!r}"
    )
    with pytest.raises(ValidationError, match=r"peers: peers\[0\] and peers\[2\] have the same id"):
        Settings(peers=[{"address": "10.0.0.1"}, "10.0.0.2", "10.0.0.1"])


def test_peer_labels_from_toml_reach_the_probe_target_and_bad_ones_are_named(tmp_path):
    config = tmp_path / "peers.toml"
    config.write_text(
        "[[peers]]\naddress = '10.0.0.1'\nlabels = {region = 'eu', connection_type = 'relay'}\n"
        "[[peers]]\naddress = '10.0.0.2'\n"
    )
    first, second = Settings.load(config).peers
    assert first.labels == {"region": "eu", "connection_type": "relay"}
    assert dict(first.target().labels) == {"region": "eu", "connection_type": "relay"}
    assert second.labels == {}
    assert second.target().labels == ()
    config.write_text("[[peers]]\naddress = '10.0.0.1'\nlabels = {'not an identifier' = 'x'}\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load(config)
    assert str(caught.value) == (
        f"{config}: peers[0].labels: key 'not an identifier' must be an identifier of at "
        "most 64 chars"
    )


def test_a_device_peer_with_stamp_padding_and_dscp_and_bad_ones_named(tmp_path):
    config = tmp_path / "peers.toml"
    config.write_text(
        "[[peers]]\naddress = '192.0.2.1'\nmethod = 'stamp'\ndscp = 'EF'\n"
        "[[peers]]\naddress = '192.0.2.2:5000'\npadding = 100\n"
    )
    router, other = (spec.target() for spec in Settings.load(config).peers)
    assert (router.port, router.method, router.padding, router.dscp) == (862, "stamp", None, 46)
    assert (other.port, other.method, other.padding, other.dscp) == (5000, "twamp", 100, 0)
    for table, message in (
        ("dscp = 64", "peers[0].dscp: Input should be less than or equal to 63"),
        (
            "dscp = 'af5'",
            "peers[0].dscp: must be 0..63 or a name (df, cs0..cs7, af11..af43, "
            "ef, voice-admit, le), got 'af5'",
        ),
        ("padding = -1", "peers[0].padding: Input should be greater than or equal to 0"),
        (
            "method = 'stamp'\npadding = 10",
            "peers[0].padding: must be an integer within 30..1458 for stamp, got 10",
        ),
        (
            "method = 'icmp'\npadding = 10",
            "peers[0].padding: only TWAMP and STAMP probes are padded, not icmp",
        ),
    ):
        config.write_text(f"[[peers]]\naddress = '192.0.2.1'\n{table}\n")
        with pytest.raises(SettingsError) as caught:
            Settings.load(config)
        assert str(caught.value) == f"{config}: {message}"
