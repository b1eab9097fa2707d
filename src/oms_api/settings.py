"""All configuration, read once from the environment (pydantic-settings)."""

from __future__ import annotations

import logging
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# 5 s … 12 h, eleven attempts after the first, spanning a little over 75 hours.
DEFAULT_WEBHOOK_RETRY_DELAYS = (
    5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 43200, 43200, 43200, 43200,
)  # fmt: skip


# 30 s … 6 h, twelve retries spanning about a day and a half: a mail server down that long
# loses nothing.
DEFAULT_NOTIFICATION_RETRY_DELAYS = (30, 120, 600, 1800, 3600, 7200, 14400, 21600, 21600, 21600,
                                     21600, 21600)  # fmt: skip


class Settings(BaseSettings):
    """The service's configuration. Each field is an environment variable, `OMS_` + its name,
    except `DATABASE_URL`."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "OMS_DATABASE_URL"),
        description="PostgreSQL URL; unset means an embedded PostgreSQL in data_dir.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="A streaming replica of DATABASE_URL for lists, reports and the event feed; "
        "unset: every read on the primary.",
    )
    read_db_pool_size: int | None = Field(
        default=None,
        ge=1,
        description="Connections to the replica per process; unset: db_pool_size.",
    )
    read_max_lag_seconds: float = Field(
        default=5.0, gt=0, description="Replica lag past which reads go to the primary."
    )
    read_check_interval: float = Field(
        default=1.0, gt=0, description="Seconds between checks of the replica's health and lag."
    )
    data_dir: Path = Field(default=Path(".oms-data"), description="Embedded PostgreSQL's home.")
    admin_api_key: str | None = Field(default=None, description="A bootstrap admin key.")
    webhook_retry_delays: Annotated[tuple[int, ...], NoDecode] = DEFAULT_WEBHOOK_RETRY_DELAYS
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_allow_private_urls: bool = False
    webhook_disable_after: int = Field(
        default=3 * 86400,
        gt=0,
        description="Seconds of continuous failure before an endpoint is disabled.",
    )
    webhook_concurrency: int = Field(
        default=32, ge=1, le=1000, description="Deliveries in flight per process."
    )
    webhook_endpoint_concurrency: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Deliveries in flight per process to one endpoint, unless it is fast "
        "(its last answer, within the last minute, came in under a second, and none in "
        "flight has waited longer): a slow or silent endpoint's backlog never takes every "
        "slot, and a fast one may use them all.",
    )
    webhook_endpoints_per_channel: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Webhook endpoints a channel may have (and shop-wide ones the shop may): "
        "each multiplies every event's deliveries.",
    )
    webhook_poll_interval: float = Field(
        default=2.0, gt=0, description="Seconds between queue polls without NOTIFY."
    )
    dispatcher: bool = Field(default=True, description="Run the webhook dispatcher inside `serve`.")
    pending_order_ttl: int = Field(default=86400, gt=0)
    maintenance_interval: float = Field(
        default=30.0, gt=0, description="Seconds between housekeeping passes (order expiry, …)."
    )
    log_format: Literal["json", "console"] = Field(
        default_factory=lambda: "console" if sys.stderr.isatty() else "json"
    )
    log_level: str = "INFO"
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    statement_timeout_ms: int = Field(default=30_000, ge=0)
    idle_in_transaction_timeout_ms: int = Field(
        default=60_000,
        ge=0,
        description="PostgreSQL idle_in_transaction_session_timeout of the service's own "
        "connections; 0 = the server's.",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    rate_limit: float = Field(
        default=0, ge=0, description="Requests per second per API key and process; 0 = off."
    )
    rate_limit_burst: int = Field(default=50, ge=1, description="Requests a key may send at once.")
    # Customer notifications (docs/notifications.md).
    smtp_url: str | None = Field(
        default=None,
        description="smtp://user:pass@host:587 (STARTTLS when offered), smtps://… or file:DIR; "
        "unset: notifications are recorded as skipped, never sent.",
    )
    smtp_timeout: float = Field(default=10.0, gt=0, description="Seconds per SMTP attempt.")
    smtp_from: str = Field(
        default="no-reply@localhost",
        description="Sender address of a channel that sets no `from` of its own.",
    )
    notification_retry_delays: Annotated[tuple[int, ...], NoDecode] = (
        DEFAULT_NOTIFICATION_RETRY_DELAYS
    )
    notification_poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between the notifier's passes."
    )

    @field_validator("webhook_retry_delays", "notification_retry_delays", mode="before")
    @classmethod
    def _parse_delays(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not parts:
                raise ValueError("give at least one delay, in seconds, comma-separated")
            return tuple(int(p) for p in parts)
        return value

    @field_validator("webhook_retry_delays", "notification_retry_delays")
    @classmethod
    def _positive_delays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in value):
            raise ValueError("delays must be positive seconds")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        """What `notifications.mail.Transport.from_url` can use, refused here in one line
        rather than as a traceback when the notifier starts."""
        if not value:
            return None
        if value.startswith("file:"):
            if not value.removeprefix("file:").removeprefix("//").strip():
                raise ValueError("OMS_SMTP_URL=file:DIR needs a directory (file:/var/mail/oms)")
            return value
        if not value.startswith(("smtp://", "smtps://")):
            raise ValueError("OMS_SMTP_URL must be smtp://…, smtps://… or file:DIR")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port that is no number or too large
        except ValueError as exc:
            raise ValueError(f"OMS_SMTP_URL is not a valid URL: {exc}") from None
        if not parts.hostname:
            raise ValueError("OMS_SMTP_URL names no host: smtp://user:pass@host:587")
        return value

    @field_validator("smtp_from")
    @classmethod
    def _smtp_from(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,253}", value):
            raise ValueError("OMS_SMTP_FROM must be an email address (no-reply@example.com)")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        names = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"OMS_LOG_LEVEL must be one of {', '.join(names)}, not {value!r}")
        return level

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _postgres_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        name = "DATABASE_URL" if info.field_name == "database_url" else "OMS_READ_DATABASE_URL"
        if not value.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
            raise ValueError(f"{name} must be a postgresql:// URL")
        try:
            urlsplit(value).port  # noqa: B018 - raises on a port that is no number or too large
        except ValueError as exc:
            raise ValueError(f"{name} is not a valid URL: {exc}") from None
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
