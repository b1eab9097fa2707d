from __future__ import annotations

import httpx
from fastapi import FastAPI

from oms_api.main import create_app
from tests.conftest import free_port, make_settings


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
