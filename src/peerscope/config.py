"""Settings: constructor arguments, then ``PEERSCOPE_*`` environment variables, then a TOML file.

Nested groups use ``__`` in environment variables (``PEERSCOPE_QUALITY__LATENCY_WEIGHT=0.5``)
and tables in TOML (``[quality]``). A list setting takes JSON or comma-separated items from
the environment (``PEERSCOPE_ALLOWED_HOSTS=a.lan,b.lan``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from peerscope.alert_settings import AlertSettings
from peerscope.config_sources import (
    ENV_PREFIX,
    Environment,
    Location,
    SettingsError,
    SettingsWarning,
    Sources,
    closest,
    dotted,
    fields_of,
    item_type,
    toml_source,
)
from peerscope.core.admission import (
    DEFAULT_BURST,
    DEFAULT_MAX_SOURCES,
    DEFAULT_RATE_LIMIT,
    ReflectorUnpadded,
    parse_network,
)
from peerscope.core.dscp import parse_dscp
from peerscope.core.probe_target import (
    MAX_PADDING,
    TWAMP_PORT,
    Method,
    ProbeTarget,
    TcpRefused,
    check_dscp,
    check_padding,
)
from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.core.reflector_sessions import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_S,
    MAX_SESSION_IDLE_S,
    ReflectorMode,
)
from peerscope.core.validation import validate_id, validate_labels, validate_text
from peerscope.logs import LogFormat, LogLevel, check_format, check_level
from peerscope.store_settings import StoreSettings

__all__ = [
    "MIN_TOKEN_LENGTH",
    "PeerSpec",
    "Settings",
    "SettingsError",
    "SettingsWarning",
    "check_unique_peers",
    "describe_errors",
]

MIN_TOKEN_LENGTH = 16  # shorter draws a SettingsWarning: guessable by anyone who can connect
_config_file: ContextVar[Path | None] = ContextVar("peerscope_config_file", default=None)


class PeerSpec(BaseModel):
    """A peer to probe: a ``[[peers]]`` table in TOML, ``--peer`` or ``POST /api/peers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Declared before ``address``, whose check reads them.
    id: str | None = Field(None, description="Peer id (default: METHOD:ADDRESS).")
    name: str | None = Field(None, description="Display name.")
    method: Method = Field(
        "twamp",
        description="twamp (TWAMP Light: a peerscope agent, a router), stamp (RFC 8762, "
        "default port 862), icmp or tcp.",
    )
    padding: int | None = Field(
        None,
        ge=0,
        le=MAX_PADDING,
        description="TWAMP/STAMP only: octets after the probe's 14-octet header "
        "(default 27 for twamp, 30 for stamp: replies as long as probes).",
    )
    dscp: int = Field(
        0,
        ge=0,
        le=63,
        description="TWAMP/STAMP only: DSCP of the probes, 0..63 or a name (ef, af41, cs5…).",
    )
    address: str = Field(description="HOST, HOST:PORT, [IPv6] or [IPv6]:PORT.")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels shown with the peer (dashboard, Prometheus, alert rules), "
        "e.g. {region = 'eu'}; the prober sets probe_method.",
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_id(value, "id")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return None if value is None else validate_text(value, "name")

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return validate_labels(value)

    @field_validator("address")
    @classmethod
    def _parses(cls, value: str, info: ValidationInfo) -> str:
        ProbeTarget.parse(value, method=info.data.get("method", "twamp"))
        return value

    @field_validator("padding")
    @classmethod
    def _padding_for_the_method(cls, value: int | None, info: ValidationInfo) -> int | None:
        try:
            return check_padding(info.data.get("method", "twamp"), value)
        except ValueError as error:
            raise ValueError(str(error).removeprefix("padding: ")) from None

    @field_validator("dscp", mode="before")
    @classmethod
    def _dscp_by_name(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_dscp(value)
        except ValueError as error:
            raise ValueError(str(error).removeprefix("dscp: ")) from None

    @field_validator("dscp")
    @classmethod
    def _dscp_for_the_method(cls, value: int, info: ValidationInfo) -> int:
        try:
            return check_dscp(info.data.get("method", "twamp"), value)
        except ValueError as error:
            raise ValueError(str(error).removeprefix("dscp: ")) from None

    def target(self) -> ProbeTarget:
        return ProbeTarget.parse(
            self.address,
            method=self.method,
            peer_id=self.id,
            name=self.name,
            labels=self.labels,
            padding=self.padding,
            dscp=self.dscp,
        )


def check_unique_peers(peers: Iterable[tuple[str, PeerSpec]]) -> None:
    """Refuse two peers with one id (they would be merged into one), naming both: each
    peer comes with where it was given (``peers[2]``, ``--peer 10.0.0.1``)."""
    seen: dict[str, str] = {}
    for where, spec in peers:
        peer_id = spec.target().peer_id
        if peer_id in seen:
            raise ValueError(f"{seen[peer_id]} and {where} have the same id {peer_id!r}")
        seen[peer_id] = where


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    metrics_interval: float = Field(
        1.0, gt=0, le=3600, description="Seconds between ticks (snapshot, broadcast)."
    )
    latency_samples: int = Field(
        360, ge=2, le=100_000, description="Latency samples kept per peer in memory."
    )
    system_history_samples: int = Field(
        3600, ge=2, le=1_000_000, description="System samples kept in memory (one per tick)."
    )
    max_clients_in_message: int = Field(
        200,
        ge=0,
        le=100_000,
        description="Peers listed in each metrics message, worst quality first.",
    )
    max_alerts_in_message: int = Field(
        100,
        ge=0,
        le=100_000,
        description="Firing alerts listed in each metrics message, most severe first.",
    )
    unknown_peer: Literal["register", "raise"] = Field(
        "register",
        description="What a recording call does with an unknown peer id: register it or "
        "raise KeyError.",
    )
    peer_ttl_s: float = Field(
        300.0, gt=0, description="Seconds a disconnected peer is kept before it is pruned."
    )
    max_peers: int = Field(
        100_000, ge=1, description="Registering more peers than this raises ValueError."
    )
    session_history: int = Field(100, ge=1, description="Ended sessions kept in memory.")
    max_pending_events: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Events (peer added, removed, status changed…) held for subscribers "
        "between two ticks; past it the oldest are dropped.",
    )
    enable_system_metrics: bool = Field(True, description="Sample the host and this process.")
    loop_lag_interval_s: float = Field(
        0.1,
        ge=0,
        le=10,
        description="Period of the timer whose lateness is the event-loop lag, in seconds "
        "(0: not measured).",
    )
    log_level: LogLevel = Field(
        "INFO",
        description="Least severe log records serve and demo write: DEBUG, INFO, WARNING, "
        "ERROR or CRITICAL (any case).",
    )
    log_format: LogFormat = Field(
        "plain",
        description="Log lines on stderr: plain (for people) or json (an object a line).",
    )
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the HTTP server binds (another needs a token).",
    )
    port: int = Field(8700, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    token: SecretStr | None = Field(
        None,
        description="Bearer token for REST and WebSocket; required off loopback; "
        f"not blank, and {MIN_TOKEN_LENGTH} characters or more.",
    )
    metrics_public: bool = Field(
        True, description="Serve /metrics without the token (for Prometheus)."
    )
    badge_public: bool = Field(
        False,
        description="Serve /api/badge.svg without the token (to embed it in pages that "
        "cannot send one); it shows a peer's name and score, or the count of firing alerts.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names accepted besides loopback ones when no token is set.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (none: CORS off)."
    )
    max_body_bytes: int = Field(
        65_536, ge=1, description="Largest request body accepted; larger gets 413."
    )
    ws_queue_frames: int = Field(
        4,
        ge=1,
        le=1000,
        description="Metrics frames queued per WebSocket subscriber before it misses some.",
    )
    ws_stall_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds a WebSocket subscriber may take no frame (its queue or socket "
        "buffer full) before it is closed with 1008.",
    )
    ws_max_message_bytes: int = Field(
        65_536, ge=1, description="Largest WebSocket message a client may send."
    )
    ws_max_messages_per_second: float = Field(
        50.0, gt=0, description="WebSocket messages a client may send per second."
    )
    ws_ping_interval: float = Field(
        5.0, gt=0, description="Seconds between the server's RTT pings to each WS client."
    )
    tcp_loss_window_s: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="Seconds over which a watched TCP connection's loss (its retransmitted "
        "share of the data segments sent) is taken.",
    )
    reflector_enabled: bool = Field(
        True, description="Answer TWAMP Light probes from other agents (serve only)."
    )
    reflector_host: str = Field(
        "127.0.0.1", min_length=1, description="Address the probe reflector binds (UDP)."
    )
    reflector_port: int = Field(
        TWAMP_PORT, ge=0, le=65535, description="UDP port of the probe reflector."
    )
    reflector_rate_limit: float = Field(
        DEFAULT_RATE_LIMIT,
        gt=0,
        allow_inf_nan=False,
        description="Probes a second the reflector answers per source address, after a burst.",
    )
    reflector_burst: int = Field(
        DEFAULT_BURST,
        ge=1,
        description="Probes the reflector answers at once from one source address.",
    )
    reflector_max_sources: int = Field(
        DEFAULT_MAX_SOURCES,
        ge=1,
        description="Source addresses whose rate the reflector tracks; past it the one seen "
        "first is forgotten.",
    )
    reflector_allow: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) or addresses whose probes the reflector answers (none: any).",
    )
    reflector_mode: ReflectorMode = Field(
        "stateful",
        description="Reply sequence numbers: per test session from 0, so senders can split "
        "loss by direction (stateful), or the sender's own, copied (stateless, RFC 8762).",
    )
    reflector_session_idle_s: float = Field(
        DEFAULT_SESSION_IDLE_S,
        gt=0,
        le=MAX_SESSION_IDLE_S,
        allow_inf_nan=False,
        description="Seconds without a probe after which a sender's test session ends "
        "(RFC 5357's REFWAIT); its next probe starts again at 0.",
    )
    reflector_max_sessions: int = Field(
        DEFAULT_MAX_SESSIONS,
        ge=1,
        description="Test sessions the reflector keeps; past it the one idle longest is forgotten.",
    )
    reflector_unpadded: ReflectorUnpadded = Field(
        "refuse",
        description="Probes shorter than the 41-octet reply: refused (no reply, so the "
        "reflector never amplifies) or answered.",
    )
    reflector_stamp_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="A second UDP port the reflector answers on, e.g. STAMP's 862 (needs root "
        "or CAP_NET_BIND_SERVICE); 0: none.",
    )
    probe_interval: float = Field(
        1.0, ge=0.001, le=3600, description="Seconds between probe rounds to each peer."
    )
    probe_count: int = Field(
        1, ge=1, le=100, description="Probes per round to each peer, evenly spaced."
    )
    probe_timeout: float = Field(
        2.0, ge=0.001, le=3600, description="Seconds before an unanswered probe is lost."
    )
    tcp_refused: TcpRefused = Field(
        "fail",
        description="What a refused TCP probe (the port is closed) is: a failed check, "
        "reported as port_closed (fail), or a round trip that measures the path (reachable).",
    )
    peers: list[PeerSpec] = Field(
        default_factory=list,
        description="Peers to probe ([[peers]] tables; an item may be an address alone).",
    )
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="Quality score weights and thresholds."
    )
    status: StatusRules = Field(
        default_factory=StatusRules, description="When peers turn degraded or disconnected."
    )
    alerts: AlertSettings = Field(
        default_factory=AlertSettings, description="Alert rules and where alerts are told."
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings, description="History kept on disk (SQLite)."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_name(cls, value: object) -> LogLevel:
        return check_level(value, "log_level")

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_name(cls, value: object) -> LogFormat:
        return check_format(value, "log_format")

    @field_validator("reflector_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_network(entry)
        return value

    @field_validator("reflector_stamp_port")
    @classmethod
    def _second_port(cls, value: int, info: ValidationInfo) -> int:
        if value and value == info.data.get("reflector_port"):
            raise ValueError(
                f"reflector_stamp_port: {value} is reflector_port already; pick another "
                "port, or 0 for none"
            )
        return value

    @field_validator("token")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if not secret.strip():
            # Taken as "no token", it would turn authentication off where one was meant.
            raise ValueError(
                "token: must not be empty or blank; leave it unset to serve loopback "
                f"without one, or set a random string of {MIN_TOKEN_LENGTH} or more characters"
            )
        if secret != secret.strip() or not secret.isprintable():
            # A client's "Authorization: Bearer …" loses them on the way (header values are
            # stripped), so such a token could never match: every request would get 401.
            raise ValueError(
                "token: must not begin or end with spaces, nor hold control "
                "characters; no client could send it"
            )
        if len(secret) < MIN_TOKEN_LENGTH:
            warnings.warn(
                f"token: {len(secret)} characters is short enough to guess; use "
                f'{MIN_TOKEN_LENGTH} or more random ones (python -c "import secrets; '
                'print(secrets.token_urlsafe())")',
                SettingsWarning,
                stacklevel=2,
            )
        return value

    @field_validator("peers", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        """A peer may be its address alone, as ``--peer`` takes it."""
        if isinstance(value, list):
            return [{"address": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("peers")
    @classmethod
    def _unique_peers(cls, peers: list[PeerSpec]) -> list[PeerSpec]:
        try:
            check_unique_peers((f"peers[{index}]", spec) for index, spec in enumerate(peers))
        except ValueError as error:
            raise ValueError(f"peers: {error}") from None
        return peers

    @property
    def bearer_token(self) -> str | None:
        """The token clients must send, or None when there is none: the one definition of
        "a token is set" for the bind check and the guard. Blank counts as none, also in
        settings built without validation (``model_copy(update=...)``)."""
        secret = self.token.get_secret_value() if self.token is not None else ""
        return secret if secret.strip() else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, Environment(settings_cls)]
        path = _config_file.get()
        if path is not None:
            sources.append(toml_source(settings_cls, path))
        return tuple(sources)

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        *,
        argument_names: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from ``overrides``, the environment and ``config_file`` (TOML).

        Raises :class:`SettingsError` with one line per problem, naming where the value came
        from: the variable, the file, or the override (by its name in ``argument_names``,
        e.g. a command-line option, else the field's). Warns (:class:`SettingsWarning`)
        about ``PEERSCOPE_*`` variables that are no setting, and about a short token.
        """
        path: Path | None = None
        if config_file is not None:
            path = Path(config_file)
            if not path.is_file():
                raise SettingsError(f"{path}: config file not found")
        token = _config_file.set(path)
        try:
            return cls(**overrides)
        except ValidationError as error:
            sources = Sources(overrides, argument_names or {}, os.environ, path)
            raise SettingsError(describe_errors(error, sources)) from None
        finally:
            _config_file.reset(token)


def describe_errors(
    error: ValidationError, where: Callable[[Location, bool], str | None] | None = None
) -> str:
    """One line per problem, ``where: what``, e.g. ``quality.latency_weight: must be within
    0..1, got 3.0``. ``where(path, missing)`` may name the source of the value at ``path``
    (a variable, a file, an option); by default the line names the field."""
    lines = []
    for item in error.errors():
        path, message = _located(list(item["loc"]), item["msg"].removeprefix("Value error, "))
        if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            message = _not_a_setting(path)
        field = dotted(path) or "settings"
        source = where(path, item["type"] == "missing") if where is not None else None
        lines.append(f"{source or field}: {message}")
    return "\n".join(lines)


def _located(path: list[str | int], message: str) -> tuple[list[str | int], str]:
    """The path and message of a problem, the field a validator's ``field: message`` names
    moved into the path (``quality`` + ``latency_weight: ...``), not said twice."""
    name, colon, rest = message.partition(": ")
    if colon and name.isidentifier() and name.islower():
        if not path or path[-1] != name:
            path = [*path, name]
        message = rest
    return path, message


def _not_a_setting(path: Location) -> str:
    """What to say about a key that is no setting, with the closest one there is."""
    group: Any = Settings
    for part in path[:-1]:
        group = item_type(group) if isinstance(part, int) else fields_of(group).get(part)
    guess = closest(str(path[-1]), fields_of(group))
    return "not a setting" + (f"; did you mean {guess}?" if guess else "")
