"""Replenishment: the stock path opens one request per fall through a product's reorder
point — whichever way stock falls, also under concurrent orders from two processes — and
the requests are received (stock in through the one path) or cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from tests.checks import assert_stock_consistent
from tests.factories import Shop, bearer, create_key, inventory, order_body, place, stock, unique

PAID = {"method": "card", "status": "paid"}


async def stock_events(app: FastAPI, sku: str) -> list[tuple[str, dict[str, Any]]]:
    """`inventory.*` events of `sku` in the outbox, oldest first: what webhooks deliver and
    the feed shows. (Read from the table: the feed holds back events while any transaction
    on the server is older, which parallel test runs make unpredictable.)"""
    async with app.state.database.transaction() as conn:
        rows = await conn.fetch(
            "SELECT type, data FROM events WHERE type LIKE 'inventory.%' AND data->>'sku' = $1 "
            "ORDER BY position",
            sku,
        )
    return [(r["type"], dict(r["data"])) for r in rows]


async def requests_of(admin: httpx.AsyncClient, sku: str, **params: Any) -> list[dict[str, Any]]:
    response = await admin.get("/v1/replenishments", params={"sku": sku, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def order(client: httpx.AsyncClient, shop: Shop, sku: str, quantity: int) -> dict[str, Any]:
    response = await place(client, order_body(None, [(sku, quantity)], payment=PAID),
                           headers=shop.headers)  # fmt: skip
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_fall_to_the_reorder_point_opens_one_request_and_tells_of_it(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 8, reorder_point=5, reorder_quantity=20)
    sku = product["sku"]
    await order(client, shop, sku, 2)  # 8 → 6: above the point
    assert await requests_of(admin, sku) == []
    await order(client, shop, sku, 1)  # 6 → 5: at the point — the crossing
    [opened] = await requests_of(admin, sku)
    assert opened["status"] == "open"
    assert (opened["quantity"], opened["reorder_point"], opened["available_at_opening"]) == (
        20,
        5,
        5,
    )
    assert opened["product_id"] == product["id"]
    assert opened["id"].startswith("rpl_")
    await order(client, shop, sku, 1)  # 5 → 4: still below, no new crossing
    assert len(await requests_of(admin, sku)) == 1
    assert [t for t, _ in await stock_events(app, sku)] == ["inventory.low_stock"]
    _, data = (await stock_events(app, sku))[0]
    assert data == {"product_id": product["id"], "sku": sku, "available": 5, "reorder_point": 5,
                    "reorder_quantity": 20, "replenishment_id": opened["id"]}  # fmt: skip

    # Rising above the point and falling again is a new crossing.
    await stock(admin, sku, shop.locations[0]["id"], 10)  # 4 → 14
    await order(client, shop, sku, 9)  # 14 → 5
    assert len(await requests_of(admin, sku)) == 2
    # Falling to 0: out of stock as well (no new low-stock crossing: it was below already).
    await order(client, shop, sku, 5)
    assert [t for t, _ in await stock_events(app, sku)] == [
        "inventory.low_stock",
        "inventory.low_stock",
        "inventory.out_of_stock",
    ]
    await assert_stock_consistent(app)


async def test_every_way_stock_falls_is_seen(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    location = shop.locations[0]["id"]
    product = await shop.product(admin, 10, reorder_point=3, reorder_quantity=7)
    damaged = await admin.post(
        "/v1/inventory/adjustments",
        json={"sku": product["sku"], "location_id": location, "delta": -10, "reason": "damaged"},
    )
    assert damaged.status_code == 201, damaged.text
    [opened] = await requests_of(admin, product["sku"])
    assert opened["available_at_opening"] == 0
    assert [t for t, _ in await stock_events(app, product["sku"])] == [
        "inventory.low_stock",
        "inventory.out_of_stock",
    ]


async def test_a_product_without_a_reorder_quantity_is_reported_not_reordered(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 2)  # reorder_point 0, reorder_quantity 0
    await order(client, shop, product["sku"], 2)
    assert await requests_of(admin, product["sku"]) == []
    assert [t for t, _ in await stock_events(app, product["sku"])] == [
        "inventory.low_stock",
        "inventory.out_of_stock",
    ]


async def test_receiving_brings_the_stock_in_through_the_ledger(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin, locations=2)
    product = await shop.product(admin, 3, reorder_point=2, reorder_quantity=12)
    await order(client, shop, product["sku"], 1)
    [opened] = await requests_of(admin, product["sku"], status="open")
    second = shop.locations[1]["id"]

    unknown = await admin.post(f"/v1/replenishments/{opened['id']}/receive",
                               json={"location_id": "loc_nowhere"})  # fmt: skip
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_location")
    received = await admin.post(f"/v1/replenishments/{opened['id']}/receive",
                                json={"location_id": second})  # fmt: skip
    assert received.status_code == 200, received.text
    body = received.json()
    assert (body["status"], body["location_id"], body["quantity_received"]) == (
        "received",
        second,
        12,
    )
    assert body["received_at"] is not None
    assert body["version"] == 2
    level = await inventory(admin, product["sku"])
    assert level["available"] == 2 + 12
    movements = (
        await admin.get(
            "/v1/inventory/movements", params={"sku": product["sku"], "location_id": second}
        )
    ).json()
    [movement] = movements["data"]
    assert (movement["cause_type"], movement["cause_id"], movement["on_hand_delta"]) == (
        "replenishment", opened["id"], 12)  # fmt: skip

    again = await admin.post(f"/v1/replenishments/{opened['id']}/receive",
                             json={"location_id": second})  # fmt: skip
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")
    assert (await admin.post(f"/v1/replenishments/{opened['id']}/cancel")).status_code == 409
    assert [r["id"] for r in await requests_of(admin, product["sku"], status="received")] == [
        opened["id"]
    ]
    assert await requests_of(admin, product["sku"], status="open") == []
    got = await admin.get(f"/v1/replenishments/{opened['id']}")
    assert got.json() == body
    await assert_stock_consistent(app)


async def test_a_partial_receipt_and_a_cancellation(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    first = await shop.product(admin, 1, reorder_point=0, reorder_quantity=5)
    second = await shop.product(admin, 1, reorder_point=0, reorder_quantity=5)
    await order(client, shop, first["sku"], 1)
    await order(client, shop, second["sku"], 1)
    [a] = await requests_of(admin, first["sku"])
    [b] = await requests_of(admin, second["sku"])
    partial = await admin.post(
        f"/v1/replenishments/{a['id']}/receive",
        json={"location_id": shop.locations[0]["id"], "quantity": 3},
    )
    assert partial.json()["quantity_received"] == 3
    assert (await inventory(admin, first["sku"]))["available"] == 3
    cancelled = await admin.post(f"/v1/replenishments/{b['id']}/cancel",
                                 json={"reason": "supplier out"})  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        "supplier out",
    )
    assert cancelled.json()["cancelled_at"] is not None
    assert (await inventory(admin, second["sku"]))["available"] == 0
    bad = await admin.post(
        f"/v1/replenishments/{b['id']}/receive",
        json={"location_id": shop.locations[0]["id"], "quantity": 0},
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")
    missing = await admin.get("/v1/replenishments/rpl_missing")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong_status = await admin.get("/v1/replenishments", params={"status": "closed"})
    assert wrong_status.status_code == 422


async def test_channel_keys_neither_read_nor_receive_requests(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 1, reorder_point=0, reorder_quantity=5)
    await order(client, shop, product["sku"], 1)
    [opened] = await requests_of(admin, product["sku"])
    key = bearer((await create_key(admin, ["inventory:read", "inventory:write"],
                                   shop.channel["id"]))["secret"])  # fmt: skip
    for method, path, body in (
        ("GET", "/v1/replenishments", None),
        ("GET", f"/v1/replenishments/{opened['id']}", None),
        ("POST", f"/v1/replenishments/{opened['id']}/receive",
         {"location_id": shop.locations[0]["id"]}),
        ("POST", f"/v1/replenishments/{opened['id']}/cancel", None),
    ):  # fmt: skip
        response = await client.request(method, path, json=body, headers=key)
        assert (response.status_code, response.json()["code"]) == (403, "channel_bound_key")
    reader = bearer((await create_key(admin, ["orders:read"]))["secret"])
    response = await client.get("/v1/replenishments", headers=reader)
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")


async def test_twenty_orders_crossing_at_once_in_two_processes_open_one_request(
    app: FastAPI, admin: httpx.AsyncClient, live_servers: Any
) -> None:
    """Stock at two locations, twenty one-unit orders fired together at two server
    processes: exactly one of them takes the total from 11 to 10, whatever the
    interleaving — one request, one low-stock event."""
    servers = live_servers(2)
    shop = await Shop.open(admin, locations=2)
    product = await shop.product(admin, 15, at=0, reorder_point=10, reorder_quantity=40)
    await stock(admin, product["sku"], shop.locations[1]["id"], 15)  # 30 in all
    bodies = [order_body(None, [(product["sku"], 1)], payment=PAID) for _ in range(20)]
    limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        responses = await asyncio.gather(*(
            http.post(servers[i % 2].url + "/v1/orders", json=body, headers=shop.headers)
            for i, body in enumerate(bodies)
        ))  # fmt: skip
    assert [r.status_code for r in responses] == [201] * 20
    assert (await inventory(admin, product["sku"]))["available"] == 10
    [opened] = await requests_of(admin, product["sku"])
    assert (opened["available_at_opening"], opened["quantity"]) == (10, 40)
    assert [t for t, _ in await stock_events(app, product["sku"])] == ["inventory.low_stock"]
    await assert_stock_consistent(app)


async def test_a_fresh_sku_filter_and_paging(admin: httpx.AsyncClient) -> None:
    assert await requests_of(admin, unique("NOPE")) == []
    page = await admin.get("/v1/replenishments", params={"limit": 1})
    assert page.status_code == 200
    assert len(page.json()["data"]) <= 1


async def test_deliveries_the_backorders_take_at_once_open_nothing_more(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Units that arrive and are reserved for waiting backorders in the same transaction
    never look like a rise above the point and a fall through it: one request only."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 4, reorder_point=3, reorder_quantity=50,
                                 allow_backorder=True)  # fmt: skip
    await order(client, shop, product["sku"], 1)  # 4 → 3: the crossing
    await order(client, shop, product["sku"], 23)  # 3 reserved, 20 backordered
    for _ in range(3):  # each delivery swallowed whole by the backorder
        level = await stock(admin, product["sku"], shop.locations[0]["id"], 5)
        assert level["level"]["available"] == 0
    assert len(await requests_of(admin, product["sku"])) == 1
    assert [t for t, _ in await stock_events(app, product["sku"])] == [
        "inventory.low_stock",
        "inventory.out_of_stock",
    ]
    await assert_stock_consistent(app)


async def test_a_product_at_or_below_its_point_is_reordered_at_its_next_fall(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Stocked below its point, or its point raised above what is available: the next fall
    is the one reported (once)."""
    shop = await Shop.open(admin)
    low = await shop.product(admin, 4, reorder_point=5, reorder_quantity=10)
    await order(client, shop, low["sku"], 1)
    await order(client, shop, low["sku"], 1)
    assert [r["available_at_opening"] for r in await requests_of(admin, low["sku"])] == [3]

    raised = await shop.product(admin, 10, reorder_point=5, reorder_quantity=30)
    patched = await admin.patch(f"/v1/products/{raised['sku']}", json={"reorder_point": 20})
    assert patched.status_code == 200, patched.text
    assert await requests_of(admin, raised["sku"]) == []  # a change of the point opens nothing
    await order(client, shop, raised["sku"], 1)
    await order(client, shop, raised["sku"], 1)
    [opened] = await requests_of(admin, raised["sku"])
    assert (opened["available_at_opening"], opened["reorder_point"]) == (9, 20)
