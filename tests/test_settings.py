from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from oms_api.db import async_url, libpq_url
from oms_api.settings import Settings


def test_defaults_follow_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "OMS_DATA_DIR", "OMS_WEBHOOK_RETRY_DELAYS", "OMS_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.database_url is None
    assert settings.data_dir == Path(".oms-data")
    assert settings.webhook_timeout == 10
    assert settings.webhook_allow_private_urls is False
    assert settings.pending_order_ttl == 86400
    assert sum(settings.webhook_retry_delays) >= 72 * 3600


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/oms")
    monkeypatch.setenv("OMS_WEBHOOK_RETRY_DELAYS", "1, 2,30")
    monkeypatch.setenv("OMS_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("OMS_PENDING_ORDER_TTL", "60")
    monkeypatch.setenv("OMS_LOG_FORMAT", "json")
    monkeypatch.setenv("OMS_DATA_DIR", "/var/lib/oms")
    settings = Settings()
    assert settings.database_url == "postgresql://u@db:5432/oms"
    assert settings.webhook_retry_delays == (1, 2, 30)
    assert settings.webhook_allow_private_urls is True
    assert settings.pending_order_ttl == 60
    assert settings.log_format == "json"
    assert settings.data_dir == Path("/var/lib/oms")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "sqlite:///x.db"),
        ("OMS_READ_DATABASE_URL", "mysql://replica/oms"),
        ("OMS_READ_MAX_LAG_SECONDS", "0"),
        ("OMS_WEBHOOK_RETRY_DELAYS", "5,-1"),
        ("OMS_WEBHOOK_RETRY_DELAYS", ","),
        ("OMS_LOG_FORMAT", "xml"),
        ("OMS_PENDING_ORDER_TTL", "0"),
        # Each of these was a traceback at startup (found trying the README's table).
        ("OMS_LOG_LEVEL", "LOUD"),
        ("OMS_SMTP_URL", "smtp://"),
        ("OMS_SMTP_URL", "smtp://mail.example.com:99999"),
        ("OMS_SMTP_URL", "smtps://mail.example.com:abc"),
        ("OMS_SMTP_URL", "file:"),
        ("OMS_SMTP_FROM", "not an address"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_a_read_replica_is_configured_beside_the_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMS_READ_DATABASE_URL", raising=False)
    assert Settings().read_database_url is None
    monkeypatch.setenv("OMS_READ_DATABASE_URL", "postgresql://u@replica:5432/oms")
    monkeypatch.setenv("OMS_READ_MAX_LAG_SECONDS", "2.5")
    settings = Settings()
    assert settings.read_database_url == "postgresql://u@replica:5432/oms"
    assert settings.read_max_lag_seconds == 2.5


def test_database_urls_are_normalised_for_asyncpg() -> None:
    assert async_url("postgres://u:p@h:1/d") == "postgresql+asyncpg://u:p@h:1/d"
    assert (
        async_url("postgresql://u@h/d?sslmode=require") == "postgresql+asyncpg://u@h/d?ssl=require"
    )
    assert (
        libpq_url("postgresql+asyncpg://u@/d?host=/run/pg") == "postgresql://u@/d?host=%2Frun%2Fpg"
    )


def test_good_values_of_the_checked_settings_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_LOG_LEVEL", "debug")
    monkeypatch.setenv("OMS_SMTP_URL", "smtp://user:p%40ss@mail.example.com:2525")
    monkeypatch.setenv("OMS_SMTP_FROM", "no-reply@localhost")
    settings = Settings()
    assert settings.log_level == "DEBUG"
    assert settings.smtp_url == "smtp://user:p%40ss@mail.example.com:2525"
    for url in ("smtps://mail.example.com", "file:/tmp/mail", "file:mail"):
        monkeypatch.setenv("OMS_SMTP_URL", url)
        assert Settings().smtp_url == url


def test_a_bad_setting_is_one_line_from_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the README promises: `error: …`, exit 1 — not a traceback."""
    import subprocess
    import sys

    from tests.conftest import service_env

    for name, value, message in [
        ("OMS_LOG_LEVEL", "LOUD", "OMS_LOG_LEVEL must be one of DEBUG, INFO, WARNING"),
        ("OMS_SMTP_URL", "smtp://", "OMS_SMTP_URL names no host"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "oms_api.cli", "migrate"],
            env=service_env(DATABASE_URL="postgresql://unused@127.0.0.1:1/x", **{name: value}),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(f"error: {message}"), result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
