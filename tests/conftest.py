"""Test harness: a real PostgreSQL, a fresh database per session, the real migrations.

The server is `OMS_TEST_DATABASE_URL` or `DATABASE_URL` when set (any database on it: the
tests create their own); otherwise an embedded PostgreSQL in `.pytest-oms-data/`, so
`pytest` works on a fresh machine with nothing else installed.

Tests commit for real and keep apart by using unique data (see `factories.py`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from oms_api import migrations_runner
from oms_api.api.problems import UNEXPECTED_ERRORS
from oms_api.db import libpq_url
from oms_api.embedded import EmbeddedPostgres
from oms_api.main import create_app
from oms_api.settings import Settings

ADMIN_KEY = "test-admin-" + secrets.token_hex(8)
ROOT = Path(__file__).resolve().parents[1]


def _unexpected_errors() -> float:
    return sum(
        sample.value
        for metric in UNEXPECTED_ERRORS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


@pytest.fixture(autouse=True)
def no_unexpected_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Any 500 answered by the in-process app during a test fails that test: no input may
    ever produce one. Tests that provoke one on purpose are marked `provokes_500`."""
    before = _unexpected_errors()
    yield
    if request.node.get_closest_marker("provokes_500") is None:
        assert _unexpected_errors() == before, "the app answered 500: see the logged traceback"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(libpq_url(url))
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server to create test databases on."""
    configured = os.environ.get("OMS_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    embedded = EmbeddedPostgres(ROOT / ".pytest-oms-data", owner=False)
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


async def create_database(server: str) -> str:
    name = f"oms_test_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(_with_database(server, "postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(server, name)


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(_with_database(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh database for this session, migrated to head with the real migrations."""
    url = await create_database(server_url)
    await asyncio.to_thread(migrations_runner.upgrade, url)
    try:
        yield url
    finally:
        await drop_database(url)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_api_key": ADMIN_KEY,
        "log_format": "console",
        "log_level": "WARNING",
        "db_pool_size": 20,
        "dispatcher": False,
        "webhook_allow_private_urls": True,
        "webhook_retry_delays": (1,) * 30,
        "webhook_timeout": 3,
        "webhook_poll_interval": 0.2,
        # No housekeeping pass in the background: tests run one when they mean to
        # (`main.housekeeping_pass`). Every 30 s, it raced them — held the summariser's
        # cursor, the outbox horizon or a backorder pair at the moment a test looked.
        "maintenance_interval": 3600.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    # No webhook dispatcher here: tests that deliver run one (tests/test_webhooks.py), so a
    # test of another process's dispatcher (the worker) is not helped by this one.
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client of the real app."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://oms.test") as c:
        yield c


@pytest.fixture(scope="session")
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated with the bootstrap admin key."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://oms.test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """`oms-api serve` in a subprocess, on a free loopback port."""

    def __init__(self, env: dict[str, str], *extra_args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(env.get("OMS_TEST_LOG_DIR", "/tmp")) / f"oms-serve-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "oms_api.cli", "serve", "--port", str(self.port), *extra_args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int | None = None, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        finally:
            self._log.close()
        return code


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`oms-api worker` in a subprocess."""
    return subprocess.Popen(
        [sys.executable, "-m", "oms_api.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def service_env(**values: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "OMS_TEST_DATABASE_URL"}
    }
    env.update(
        {
            "OMS_ADMIN_API_KEY": ADMIN_KEY,
            "OMS_LOG_FORMAT": "json",
            "OMS_LOG_LEVEL": "WARNING",
            "OMS_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "OMS_WEBHOOK_RETRY_DELAYS": ",".join(["1"] * 30),
            "OMS_WEBHOOK_TIMEOUT": "3",
            "OMS_WEBHOOK_POLL_INTERVAL": "0.2",
        }
    )
    env.update(values)
    return env


@pytest.fixture
def live_servers(database_url: str) -> Iterator[Any]:
    """Start `n` API processes on the session database: `servers = live_servers(2)`."""
    with ExitStack() as stack:

        def start(n: int = 1, *extra: str) -> list[LiveServer]:
            servers = [
                LiveServer(service_env(DATABASE_URL=database_url), "--no-migrate", *extra)
                for _ in range(n)
            ]
            for server in servers:
                stack.callback(server.stop)
            for server in servers:
                server.wait_ready()
            return servers

        yield start
