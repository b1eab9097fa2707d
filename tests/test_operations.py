from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from oms_api.db import libpq_url
from oms_api.main import create_app
from oms_api.observability import configure_logging, log_time
from tests.conftest import ADMIN_KEY, free_port, make_settings
from tests.factories import Shop, bearer, inventory, order_body


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    assert ready.json()["migration"]


async def _ready(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        return await c.get("/readyz")


async def test_readyz_is_503_when_the_database_is_down() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    response = await _ready(create_app(make_settings(url)))
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


async def test_readyz_is_503_when_migrations_are_behind(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    app.state.migration_head = "9999_future"
    response = await _ready(app)
    assert response.status_code == 503
    assert response.json()["code"] == "migrations_pending"


async def test_metrics_count_requests_by_route_template(admin: httpx.AsyncClient) -> None:
    await admin.get("/v1/channels/ch_missing_for_metrics")
    text = (await admin.get("/metrics")).text
    assert (
        'oms_http_requests_total{method="GET",route="/v1/channels/{channel_id}",status="404"}'
        in text
    )
    assert "oms_http_request_duration_seconds_bucket" in text
    assert "oms_webhook_queue_depth" in text
    assert "oms_webhook_oldest_pending_seconds" in text
    assert "ch_missing_for_metrics" not in text  # ids never become label values


async def test_each_request_is_logged_as_one_json_line(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(database_url, log_format="json", log_level="INFO"))
    try:
        response = await _call(app, "GET", "/healthz", headers={"X-Request-ID": "req-log-1"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure_logging("console", "WARNING")  # as the other tests' app has it
    assert response.status_code == 200
    (line,) = [entry for entry in lines if entry.get("request_id") == "req-log-1"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line.pop("ts"))
    assert isinstance(line.pop("duration_ms"), float)
    assert line == {
        "level": "info", "logger": "oms_api.access", "msg": "GET /healthz 200",
        "request_id": "req-log-1", "status": 200, "route": "/healthz",
    }  # fmt: skip


def test_the_log_time_is_the_millisecond_datetime_writes() -> None:
    for created in (0.0, 1_700_000_000.0004999, 1_700_000_000.0005, 1_700_000_000.9999995,
                    1_700_000_000.9999996, 1_764_675_000.123456, 4_102_444_799.999):  # fmt: skip
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert log_time(created) == expected


async def _call(app: FastAPI, method: str, path: str, **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.request(method, path, **kw)


async def test_api_answers_503_when_the_database_is_down() -> None:
    app = create_app(make_settings(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"))
    async with app.router.lifespan_context(app):
        response = await _call(app, "GET", "/v1/orders", headers=bearer(ADMIN_KEY))
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"


async def test_a_statement_over_the_timeout_is_503_and_its_connection_is_reused(
    admin: httpx.AsyncClient, database_url: str
) -> None:
    """A placement stuck behind a lock it cannot get within OMS_STATEMENT_TIMEOUT_MS is
    cancelled by PostgreSQL and answered 503; the pooled connection stays usable."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    body = order_body(None, [(product["sku"], 1)])
    app = create_app(make_settings(database_url, statement_timeout_ms=300, db_pool_size=1))
    holder = await asyncpg.connect(libpq_url(database_url))
    try:
        async with app.router.lifespan_context(app):
            async with holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM inventory_levels il JOIN products p ON p.id = il.product_id "
                    "WHERE p.sku = $1 FOR UPDATE OF il",
                    product["sku"],
                )
                blocked = await _call(app, "POST", "/v1/orders", json=body, headers=shop.headers)
            placed = await _call(app, "POST", "/v1/orders", json=body, headers=shop.headers)
    finally:
        await holder.close()
    assert blocked.status_code == 503, blocked.text
    assert blocked.json()["code"] == "database_timeout"
    assert blocked.headers["retry-after"] == "1"
    assert placed.status_code == 201, placed.text
    assert (await inventory(admin, product["sku"]))["levels"][0]["reserved"] == 1


async def test_a_database_that_is_down_is_one_log_line_per_background_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found when an embedded PostgreSQL was stopped under a running `serve`: the notifier,
    the dispatcher and housekeeping each logged a 60-line traceback every pass (every
    second or two) for as long as it was down, burying everything else. A database that
    cannot be reached is the server's state, not a bug: one warning per loop and outage,
    naming why; a traceback stays for anything else."""
    import asyncio
    import logging

    from oms_api.db import Database, create_engine
    from oms_api.main import run_housekeeping
    from oms_api.services.notifier import Notifier
    from oms_api.webhooks.dispatcher import Dispatcher

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing_listens_here"
    settings = make_settings(url, webhook_poll_interval=0.05, notification_poll_interval=0.05)
    database = Database(create_engine(settings, url))
    loops = [
        Notifier(settings=settings, database=database).run(),
        Dispatcher(settings=settings, database=database, database_url=url).run(),
        run_housekeeping(database, 0.05),
    ]
    caplog.set_level(logging.INFO, logger="oms_api")
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        await asyncio.sleep(1.5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await database.dispose()
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in failures if r.exc_info], [r.getMessage() for r in failures]
    down = [r.getMessage() for r in failures if "cannot reach the database" in r.getMessage()]
    assert len(down) == 3, [r.getMessage() for r in failures]
    for what in ("a notifier pass", "claiming webhook deliveries", "housekeeping pass"):
        assert any(message.startswith(what) for message in down), down
