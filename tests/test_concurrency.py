"""The guarantees under real concurrent HTTP requests to two server processes sharing one
database: no oversell, ledger = levels, one order per Idempotency-Key, no deadlocks."""

from __future__ import annotations

import asyncio
import random
import secrets
from typing import Any

import httpx
from fastapi import FastAPI

from tests.checks import assert_stock_consistent
from tests.factories import Shop, inventory, order_body, stock, unique


async def _fire(
    urls: list[str], requests: list[tuple[dict[str, Any], dict[str, str]]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        return await asyncio.gather(
            *(http.post(urls[i % len(urls)] + "/v1/orders", json=body, headers=headers)
              for i, (body, headers) in enumerate(requests))
        )  # fmt: skip


async def test_no_oversell_across_two_processes(
    app: FastAPI, admin: httpx.AsyncClient, live_servers: Any
) -> None:
    servers = live_servers(2)
    shop = await Shop.open(admin, locations=2)
    stock_units = 30
    product = await shop.product(admin, 20, at=0)
    await shop.product(admin, 0)  # noise
    await stock(admin, product["sku"], shop.locations[1]["id"], stock_units - 20)
    requests = [(order_body(None, [(product["sku"], 1)]), shop.headers) for _ in range(100)]
    responses = await _fire([s.url for s in servers], requests)

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    assert statuses.count(201) == stock_units  # exactly S units sold
    assert all(r.json()["code"] == "insufficient_stock" for r in responses if r.status_code == 409)
    level = await inventory(admin, product["sku"])
    assert (level["on_hand"], level["reserved"], level["available"]) == (
        stock_units,
        stock_units,
        0,
    )
    await assert_stock_consistent(app)


async def test_random_multi_unit_orders_never_oversell(
    app: FastAPI, admin: httpx.AsyncClient, live_servers: Any
) -> None:
    servers = live_servers(2)
    shop = await Shop.open(admin)
    a = await shop.product(admin, 40)
    b = await shop.product(admin, 25)
    rng = random.Random(7)
    requests = []
    for _ in range(80):
        lines = [(a["sku"], rng.randint(1, 3))]
        if rng.random() < 0.6:
            lines.append((b["sku"], rng.randint(1, 3)))
        rng.shuffle(lines)
        requests.append((order_body(None, lines), shop.headers))
    responses = await _fire([s.url for s in servers], requests)
    assert {r.status_code for r in responses} <= {201, 409}
    sold: dict[str, int] = {a["sku"]: 0, b["sku"]: 0}
    for r in responses:
        if r.status_code == 201:
            for line in r.json()["lines"]:
                sold[line["sku"]] += line["quantity"]
    for product, on_hand in ((a, 40), (b, 25)):
        level = await inventory(admin, product["sku"])
        assert level["reserved"] == sold[product["sku"]] <= on_hand
        assert level["available"] >= 0
    await assert_stock_consistent(app)


async def test_opposite_line_orders_never_deadlock(
    app: FastAPI, admin: httpx.AsyncClient, live_servers: Any
) -> None:
    servers = live_servers(2)
    shop = await Shop.open(admin, locations=2)
    products = [await shop.product(admin, 500, at=i % 2) for i in range(4)]
    for p in products:  # every product at both locations
        await stock(admin, p["sku"], shop.locations[1]["id"], 500)
    skus = [p["sku"] for p in products]
    requests = []
    for i in range(120):
        order = skus if i % 2 else list(reversed(skus))
        requests.append((order_body(None, [(s, 2) for s in order]), shop.headers))
    responses = await _fire([s.url for s in servers], requests)
    assert [r.status_code for r in responses] == [201] * 120, {
        r.text for r in responses if r.status_code != 201
    }
    await assert_stock_consistent(app)


async def test_same_idempotency_key_concurrently_places_one_order(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, live_servers: Any
) -> None:
    servers = live_servers(2)
    shop = await Shop.open(admin)
    product = await shop.product(admin, 100)
    email = f"{unique('idem')}@example.com"
    body = order_body(None, [(product["sku"], 2)], customer={"email": email})
    headers = shop.headers | {"Idempotency-Key": secrets.token_hex(8)}
    responses = await _fire([s.url for s in servers], [(body, headers)] * 30)
    assert {r.status_code for r in responses} <= {201, 409}
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    listed = (await client.get("/v1/orders", params={"q": email}, headers=shop.headers)).json()[
        "data"
    ]
    assert [o["id"] for o in listed] == list(created)
    assert (await inventory(admin, product["sku"]))["reserved"] == 2
    replay = await _fire([servers[0].url], [(body, headers)])
    assert replay[0].status_code == 201
    assert replay[0].headers["idempotent-replayed"] == "true"
    assert replay[0].json()["id"] in created
