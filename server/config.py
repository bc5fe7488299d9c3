"""Carnet's configuration: flags > ``CARNET_*`` environment > TOML file > defaults.

Every value is validated by pydantic-settings; a bad value stops the server
with a message that names the setting (see :func:`load_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from storage.embedded import OPLOG_MAX_ENTRIES

KIB = 1024


class ConfigError(Exception):
    """The configuration is invalid; the message lists each bad setting."""


class Settings(BaseSettings):
    """All of Carnet's settings; each is documented in docs/operations.md."""

    model_config = SettingsConfigDict(env_prefix="CARNET_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    data_dir: Path = Path("data")
    mongodb_uri: str | None = None
    """A MongoDB URI; when unset, Carnet starts its embedded SecantusDB."""
    db_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,60}$")] = "carnet"
    embedded_cache_size: Annotated[str, Field(pattern=r"^[0-9]+[MG]$")] = "256M"
    embedded_oplog_entries: Annotated[int, Field(ge=10_000, le=100_000_000)] = OPLOG_MAX_ENTRIES
    """Oplog entries the embedded database keeps (``storage.embedded``)."""
    public_url: str | None = None
    """The URL devices use to reach Carnet; defaults to ``http://HOST:PORT``."""
    allowed_origins: tuple[str, ...] = ()
    """Extra browser origins allowed to open the WebSocket (the public one always is)."""
    trusted_proxy_hops: Annotated[int, Field(ge=0, le=5)] = 0
    """How many reverse proxies append to X-Forwarded-For in front of Carnet."""
    allow_plain_websocket: bool = False
    """Accept ``ws://`` (no TLS) from non-loopback clients when not behind a proxy."""

    max_frame_bytes: Annotated[int, Field(ge=4 * KIB, le=16 * 1024 * KIB)] = 256 * KIB
    max_request_bytes: Annotated[int, Field(ge=64 * KIB, le=64 * 1024 * KIB)] = 4 * 1024 * KIB
    heartbeat_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    auth_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    outbound_queue_bytes: Annotated[int, Field(ge=64 * KIB, le=64 * 1024 * KIB)] = 1024 * KIB
    bad_frames_before_close: Annotated[int, Field(ge=1, le=1000)] = 10
    catch_up_page: Annotated[int, Field(ge=1, le=10_000)] = 200
    undelivered_days: Annotated[int, Field(ge=1, le=365)] = 30
    max_backlog: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000
    """Most messages of one conversation a returning device is sent; older: ``expired``."""
    ack_flush_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    """How often a node writes its devices' cursors and receipts (one batch each)."""
    max_attachment_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024 * KIB)] = 25 * 1024 * KIB

    enrol_code_days: Annotated[int, Field(ge=1, le=90)] = 14
    enrol_attempts_per_code: Annotated[int, Field(ge=1, le=20)] = 5
    enrol_failures_per_address: Annotated[int, Field(ge=1, le=1000)] = 10
    enrol_failures_global: Annotated[int, Field(ge=1, le=100_000)] = 600
    enrol_window_seconds: Annotated[int, Field(ge=10, le=86_400)] = 900

    retention_left_days: Annotated[int, Field(ge=1, le=92)] = 90
    """Days after leaving before an account is erased (arrêté ENT 30/11/2006, art. 6)."""
    retention_metadata_margin_days: Annotated[int, Field(ge=0, le=366)] = 60
    """Conversation metadata is kept until the end of its school year plus this margin."""
    retention_receipts_margin_days: Annotated[int, Field(ge=0, le=366)] = 60
    retention_reports_days: Annotated[int, Field(ge=30, le=1826)] = 365
    retention_audit_days: Annotated[int, Field(ge=183, le=3650)] = 365
    retention_access_log_days: Annotated[int, Field(ge=183, le=366)] = 183
    retention_attachment_days: Annotated[int, Field(ge=1, le=365)] = 30
    retention_requests_days: Annotated[int, Field(ge=365, le=3650)] = 1826
    retention_scheduler: bool = True
    """Run the retention jobs inside the server (one node per job, by lease)."""
    retention_tick_seconds: Annotated[int, Field(ge=1, le=86_400)] = 300
    retention_interval_seconds: Annotated[int, Field(ge=60, le=604_800)] = 86_400
    retention_lease_seconds: Annotated[int, Field(ge=10, le=86_400)] = 900

    log_level: Annotated[str, Field(pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")] = "INFO"
    log_format: Literal["text", "json"] = "text"
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    """The event loop of ``carnet`` commands: uvloop (less CPU per frame) or the standard one."""
    """``json``: one JSON object per line (containers, log shippers)."""

    # SMTP bridge (docs/email-bridge.md); off unless CARNET_BRIDGE_KEY is set.
    bridge_key: SecretStr | None = None
    """32 random bytes, base64url: seals bridge devices' keys at rest and signs links."""
    bridge_previous_keys: tuple[SecretStr, ...] = ()
    """Bridge keys before a rotation: still open old records and verify old links."""
    bridge_from_address: Annotated[str, Field(pattern=r"^[^@\s<>]+@[^@\s<>]+$")] = (
        "carnet@localhost"
    )
    bridge_reply_domain: str | None = None
    """Domain of the signed reply addresses (its MX points at the reply listener)."""
    bridge_listen_host: str = "127.0.0.1"
    bridge_listen_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    """Port of the SMTP reply listener; unset: no listener on this node."""
    bridge_batch_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300
    bridge_link_hours: Annotated[int, Field(ge=1, le=720)] = 72
    bridge_reply_days: Annotated[int, Field(ge=1, le=365)] = 30
    bridge_interval_seconds: Annotated[float, Field(ge=0, le=3600)] = 10.0
    """How often the bridge worker runs; 0 runs it only when asked (tests)."""
    bridge_domain_rate_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 60
    bridge_max_attempts: Annotated[int, Field(ge=1, le=50)] = 10
    bridge_retry_seconds: Annotated[int, Field(ge=1, le=86_400)] = 60
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0

    @field_validator("public_url", "allowed_origins", mode="after")
    @classmethod
    def _origins_are_urls(cls, value: Any) -> Any:
        for url in (value,) if isinstance(value, str) else value or ():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value

    @field_validator("bridge_key", "bridge_previous_keys", mode="after")
    @classmethod
    def _bridge_keys(cls, value: Any) -> Any:
        for key in (value,) if isinstance(value, SecretStr) else value or ():
            text = key.get_secret_value().strip().rstrip("=")
            if len(text) != 43 or not all(c.isalnum() or c in "-_" for c in text):
                raise ValueError("a bridge key is 32 bytes, base64url")
        return value

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of :attr:`public_url`, the origin devices sign."""
        url = self.public_url or f"http://{self.host}:{self.port}"
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def origins(self) -> frozenset[str]:
        return frozenset({self.public_origin, *(o.rstrip("/") for o in self.allowed_origins)})

    @property
    def database_dir(self) -> Path:
        return self.data_dir / "db"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate the settings.

    Args:
        config_file: a TOML file of settings (keys as in :class:`Settings`).
        overrides: values from command-line flags; ``None`` values are ignored.

    Raises:
        ConfigError: a value is invalid or the file cannot be read; the
            message names every offending setting.
    """
    settings_cls: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"configuration file {config_file} does not exist")
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})
        settings_cls = cast(type[Settings], type("Settings", (Settings,), {"model_config": config}))
    try:
        return settings_cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"  {name} (CARNET_{name.upper()}): {err['msg']}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read configuration {config_file}: {exc}") from None
