"""Settings: constructor arguments, then ``PEERSCOPE_*`` environment variables, then a TOML file.

Nested groups use ``__`` in environment variables (``PEERSCOPE_QUALITY__LATENCY_WEIGHT=0.5``)
and tables in TOML (``[quality]``).
"""

from __future__ import annotations

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
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.core.validation import validate_id, validate_text
from peerscope.probe.admission import (
    DEFAULT_BURST,
    DEFAULT_MAX_SOURCES,
    DEFAULT_RATE_LIMIT,
    parse_network,
)
from peerscope.probe.target import TWAMP_PORT, Method, ProbeTarget

_config_file: ContextVar[Path | None] = ContextVar("peerscope_config_file", default=None)


class SettingsError(ValueError):
    """Invalid settings; the message has one line per offending field."""


class PeerSpec(BaseModel):
    """A peer to probe: a ``[[peers]]`` table in TOML, ``--peer`` or ``POST /api/peers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Declared before ``address``, whose check reads them.
    id: str | None = Field(None, description="Peer id (default: METHOD:ADDRESS).")
    name: str | None = Field(None, description="Display name.")
    method: Method = Field("twamp", description="twamp (a peerscope agent), icmp or tcp.")
    address: str = Field(description="HOST, HOST:PORT, [IPv6] or [IPv6]:PORT.")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_id(value, "id")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return None if value is None else validate_text(value, "name")

    @field_validator("address")
    @classmethod
    def _parses(cls, value: str, info: ValidationInfo) -> str:
        ProbeTarget.parse(value, method=info.data.get("method", "twamp"))
        return value

    def target(self) -> ProbeTarget:
        return ProbeTarget.parse(self.address, method=self.method, peer_id=self.id,
                                 name=self.name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PEERSCOPE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    metrics_interval: float = Field(
        1.0, gt=0, le=3600, description="Seconds between ticks (snapshot, broadcast).")
    latency_samples: int = Field(
        360, ge=2, le=100_000, description="Latency samples kept per peer in memory.")
    system_history_samples: int = Field(
        3600, ge=2, le=1_000_000, description="System samples kept in memory (one per tick).")
    max_clients_in_message: int = Field(
        200, ge=0, le=100_000,
        description="Peers listed in each metrics message, worst quality first.")
    unknown_peer: Literal["register", "raise"] = Field(
        "register",
        description="What a recording call does with an unknown peer id: register it or "
                    "raise KeyError.")
    peer_ttl_s: float = Field(
        300.0, gt=0, description="Seconds a disconnected peer is kept before it is pruned.")
    max_peers: int = Field(
        100_000, ge=1, description="Registering more peers than this raises ValueError.")
    session_history: int = Field(100, ge=1, description="Ended sessions kept in memory.")
    max_pending_events: int = Field(
        10_000, ge=1, le=10_000_000,
        description="Events (peer added, removed, status changed…) held for subscribers "
                    "between two ticks; past it the oldest are dropped.")
    enable_system_metrics: bool = Field(True, description="Sample the host and this process.")
    host: str = Field("127.0.0.1", min_length=1,
                      description="Address the HTTP server binds (another needs a token).")
    port: int = Field(8700, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    token: SecretStr | None = Field(
        None, description="Bearer token for REST and WebSocket; required off loopback.")
    metrics_public: bool = Field(
        True, description="Serve /metrics without the token (for Prometheus).")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names accepted besides loopback ones when no token is set.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (none: CORS off).")
    max_body_bytes: int = Field(
        65_536, ge=1, description="Largest request body accepted; larger gets 413.")
    ws_queue_frames: int = Field(
        4, ge=1, le=1000,
        description="Metrics frames queued per WebSocket subscriber before it misses some.")
    ws_stall_timeout_s: float = Field(
        10.0, gt=0, le=3600,
        description="Seconds a WebSocket subscriber may take no frame (its queue or socket "
                    "buffer full) before it is closed with 1008.")
    ws_max_message_bytes: int = Field(
        65_536, ge=1, description="Largest WebSocket message a client may send.")
    ws_max_messages_per_second: float = Field(
        50.0, gt=0, description="WebSocket messages a client may send per second.")
    ws_ping_interval: float = Field(
        5.0, gt=0, description="Seconds between the server's RTT pings to each WS client.")
    reflector_enabled: bool = Field(
        True, description="Answer TWAMP Light probes from other agents (serve only).")
    reflector_host: str = Field(
        "127.0.0.1", min_length=1, description="Address the probe reflector binds (UDP).")
    reflector_port: int = Field(
        TWAMP_PORT, ge=0, le=65535, description="UDP port of the probe reflector.")
    reflector_rate_limit: float = Field(
        DEFAULT_RATE_LIMIT, gt=0, allow_inf_nan=False,
        description="Probes a second the reflector answers per source address, after a "
                    "burst.")
    reflector_burst: int = Field(
        DEFAULT_BURST, ge=1,
        description="Probes the reflector answers at once from one source address.")
    reflector_max_sources: int = Field(
        DEFAULT_MAX_SOURCES, ge=1,
        description="Source addresses whose rate the reflector tracks; past it the one seen "
                    "first is forgotten.")
    reflector_allow: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) or addresses whose probes the reflector answers "
                    "(none: any).")
    probe_interval: float = Field(
        1.0, ge=0.001, le=3600, description="Seconds between probe rounds to each peer.")
    probe_count: int = Field(
        1, ge=1, le=100, description="Probes per round to each peer, evenly spaced.")
    probe_timeout: float = Field(
        2.0, ge=0.001, le=3600, description="Seconds before an unanswered probe is lost.")
    peers: list[PeerSpec] = Field(
        default_factory=list, description="Peers to probe ([[peers]] tables).")
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="Quality score weights and thresholds.")
    status: StatusRules = Field(
        default_factory=StatusRules, description="When peers turn degraded or disconnected.")

    @field_validator("reflector_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_network(entry)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Build settings from ``overrides``, the environment and ``config_file`` (TOML).

        Raises :class:`SettingsError` with one line per invalid field, naming where it is.
        """
        path: Path | None = None
        if config_file is not None:
            path = Path(config_file)
            if not path.is_file():
                raise SettingsError(f"config file not found: {path}")
        token = _config_file.set(path)
        try:
            return cls(**overrides)
        except ValidationError as error:
            raise SettingsError(describe_errors(error)) from None
        finally:
            _config_file.reset(token)


def describe_errors(error: ValidationError) -> str:
    """One line per field, e.g. ``  quality: latency_weight: must be within 0..1, got 3.0``."""
    lines = ["invalid peerscope settings:"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "settings"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)
