"""Placement's SQL round trips, counted on the wire, must stay within a stated budget.

Budget (see docs/performance.md): BEGIN, authenticate, [Idempotency-Key claim],
read-and-lock, [new customer upsert], write, COMMIT:
- returning customer, with Idempotency-Key: 6;  without: 5;
- new customer: one more.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from oms_api.main import create_app
from tests.conftest import ADMIN_KEY, make_settings
from tests.factories import Shop, order_body, unique
from tests.wire import RoundTripCounter


@pytest.fixture
async def counted(
    database_url: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, RoundTripCounter, FastAPI]]:
    counter = RoundTripCounter(database_url)
    await counter.start()
    database = urlsplit(database_url).path.lstrip("/")
    # One pooled connection, so every request reuses its prepared statements.
    app = create_app(make_settings(counter.url(database), db_pool_size=1, db_max_overflow=0))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        yield client, counter, app
    await counter.stop()


async def _round_trips(
    client: httpx.AsyncClient, counter: RoundTripCounter, body: dict, headers: dict
) -> int:
    before = counter.count
    response = await client.post("/v1/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return counter.count - before


async def test_placement_round_trips_stay_within_budget(
    admin: httpx.AsyncClient, counted: tuple[httpx.AsyncClient, RoundTripCounter, FastAPI]
) -> None:
    client, counter, _ = counted
    shop = await Shop.open(admin)
    products = [await shop.product(admin, 1000) for _ in range(3)]
    lines = [(p["sku"], 1) for p in products]
    email = f"{unique('budget')}@example.com"

    def body() -> dict:
        return order_body(None, lines, customer={"email": email})

    keyed = shop.headers | {"Idempotency-Key": secrets.token_hex(8)}
    await _round_trips(
        client, counter, body(), keyed
    )  # warm: prepares statements, creates the customer

    returning_keyed = await _round_trips(
        client, counter, body(), shop.headers | {"Idempotency-Key": secrets.token_hex(8)}
    )
    returning_plain = await _round_trips(client, counter, body(), shop.headers)
    new_customer = await _round_trips(client, counter, order_body(None, lines), shop.headers)
    print(
        f"round trips: keyed={returning_keyed} plain={returning_plain} new customer={new_customer}"
    )
    assert returning_keyed <= 5  # BEGIN, key + Idempotency-Key claim, read+lock, write, COMMIT
    assert returning_plain <= 5
    assert new_customer <= 6


async def test_the_counter_counts(
    counted: tuple[httpx.AsyncClient, RoundTripCounter, FastAPI],
) -> None:
    client, counter, _ = counted
    before = counter.count
    response = await client.get("/v1/channels", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200
    assert counter.count - before >= 2  # at least BEGIN/query and COMMIT/rollback
