"""Locations, products, stock adjustments and the ledger that always equals the levels."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.checks import assert_stock_consistent
from tests.factories import (
    Shop,
    create_key,
    create_location,
    create_product,
    inventory,
    order_body,
    place,
    stock,
    unique,
)


async def test_locations_and_products(admin: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    location = await create_location(admin, kind="store", priority=5)
    assert location["id"].startswith("loc_")
    assert (location["kind"], location["priority"]) == ("store", 5)
    read = await admin.get(f"/v1/locations/{location['id']}")
    assert read.json() == location
    assert read.headers["etag"] == '"1"'  # what If-Match takes (its PATCH sent it; GET did not)
    dup = await admin.post("/v1/locations", json={"code": location["code"], "name": "x"})
    assert dup.json()["code"] == "location_code_taken"
    assert (
        await admin.post("/v1/locations", json={"code": unique("l"), "name": "x", "kind": "van"})
    ).status_code == 422

    product = await create_product(admin, unit_price=1999, reorder_point=3)
    fetched = await admin.get(f"/v1/products/{product['sku']}")
    assert fetched.json() == product
    assert fetched.headers["etag"] == '"1"'
    dup = await admin.post(
        "/v1/products",
        json={"sku": product["sku"], "name": "x", "unit_price": 1, "currency": "EUR"},
    )
    assert (dup.status_code, dup.json()["code"]) == (409, "sku_taken")
    for bad in (
        {"unit_price": -1},
        {"currency": "euro"},
        {"sku": "has space"},
        {"reorder_point": -2},
    ):
        body = {"sku": unique("S"), "name": "x", "unit_price": 1, "currency": "EUR"} | bad
        assert (await admin.post("/v1/products", json=body)).status_code == 422, bad

    url = f"/v1/products/{product['sku']}"
    patched = await admin.patch(url, json={"unit_price": 2499}, headers={"If-Match": '"1"'})
    assert patched.json()["unit_price"] == 2499
    assert patched.json()["version"] == 2
    assert (
        await admin.patch(url, json={"active": False}, headers={"If-Match": '"1"'})
    ).status_code == 412
    assert (await admin.patch(url, json={"sku": "NEW"})).status_code == 422
    assert (await admin.patch("/v1/products/NOPE-404", json={"name": "x"})).status_code == 404

    reader = await create_key(admin, ["inventory:read"])
    auth = {"Authorization": f"Bearer {reader['secret']}"}
    assert (await client.get(url, headers=auth)).status_code == 200
    assert (await client.patch(url, json={"name": "x"}, headers=auth)).status_code == 403
    assert (
        await client.post("/v1/locations", json={"code": unique("l"), "name": "x"}, headers=auth)
    ).status_code == 403


async def test_adjustments_move_on_hand_and_write_the_ledger(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    location = await create_location(admin)
    product = await create_product(admin)
    result = await stock(admin, product["sku"], location["id"], 10)
    assert result["level"]["on_hand"] == 10
    assert result["level"]["available"] == 10
    assert result["movement"]["on_hand_delta"] == 10
    assert result["movement"]["cause_type"] == "adjustment"

    down = await admin.post(
        "/v1/inventory/adjustments",
        json={
            "sku": product["sku"],
            "location_id": location["id"],
            "delta": -3,
            "reason": "damaged",
            "note": "dropped",
        },
    )
    assert down.json()["level"]["on_hand"] == 7
    movements = (await admin.get("/v1/inventory/movements", params={"sku": product["sku"]})).json()[
        "data"
    ]
    assert [(m["on_hand_delta"], m["reason"]) for m in movements] == [
        (-3, "damaged"),
        (10, "received"),
    ]
    assert movements[0]["note"] == "dropped"
    levels = (await admin.get("/v1/inventory", params={"sku": product["sku"]})).json()["data"]
    assert [(lv["location_id"], lv["on_hand"]) for lv in levels] == [(location["id"], 7)]
    await assert_stock_consistent(app)


async def test_adjustments_refuse_negative_available_and_stale_counts(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    await place(client, order_body(None, [(product["sku"], 4)]), headers=shop.headers)
    adjust = {"sku": product["sku"], "location_id": shop.locations[0]["id"], "reason": "lost"}

    refused = await admin.post("/v1/inventory/adjustments", json=adjust | {"delta": -2})
    assert refused.status_code == 409
    assert refused.json()["code"] == "negative_available"
    assert refused.json()["available"] == 1
    assert (
        await admin.post("/v1/inventory/adjustments", json=adjust | {"delta": -1})
    ).status_code == 201

    stale = await admin.post(
        "/v1/inventory/adjustments",
        json=adjust | {"delta": 3, "reason": "cycle_count", "expected_on_hand": 5},
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_count"
    assert stale.json()["on_hand"] == 4
    counted = await admin.post(
        "/v1/inventory/adjustments",
        json=adjust | {"delta": 3, "reason": "cycle_count", "expected_on_hand": 4},
    )
    assert counted.json()["level"]["on_hand"] == 7
    for bad in (
        {"delta": 0},
        {"delta": 1, "reason": "gift"},
        {"delta": 1, "sku": "NOPE-1"},
        {"delta": 1, "location_id": "loc_nope"},
    ):
        assert (
            await admin.post("/v1/inventory/adjustments", json=adjust | bad)
        ).status_code == 422, bad
    summary = await inventory(admin, product["sku"])
    assert (summary["on_hand"], summary["reserved"], summary["available"]) == (7, 4, 3)


async def test_concurrent_cycle_counts_with_the_same_expectation_apply_once(
    admin: httpx.AsyncClient,
) -> None:
    location = await create_location(admin)
    product = await create_product(admin)
    await stock(admin, product["sku"], location["id"], 10)
    body = {
        "sku": product["sku"],
        "location_id": location["id"],
        "delta": -1,
        "reason": "cycle_count",
        "expected_on_hand": 10,
    }
    responses = await asyncio.gather(
        *(admin.post("/v1/inventory/adjustments", json=body) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert (await inventory(admin, product["sku"]))["on_hand"] == 9


async def test_inventory_summary_sums_locations_and_channel_keys_see_their_own(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    elsewhere = await create_location(admin)
    product = await shop.product(admin, 4)
    await stock(admin, product["sku"], elsewhere["id"], 6)
    total = await inventory(admin, product["sku"])
    assert (total["on_hand"], total["available"]) == (10, 10)
    assert len(total["levels"]) == 2
    mine = (await client.get(f"/v1/inventory/{product['sku']}", headers=shop.headers)).json()
    assert mine["on_hand"] == 4
    assert [lv["location_id"] for lv in mine["levels"]] == [shop.locations[0]["id"]]
    assert (await client.get("/v1/inventory/NOPE-404", headers=shop.headers)).status_code == 404


async def test_the_ledger_follows_orders_and_cancellations(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10)
    order = (
        await place(client, order_body(None, [(product["sku"], 3)]), headers=shop.headers)
    ).json()
    await client.post(f"/v1/orders/{order['id']}/cancel", headers=shop.headers)
    movements = (await admin.get("/v1/inventory/movements", params={"sku": product["sku"]})).json()[
        "data"
    ]
    assert [(m["reserved_delta"], m["reason"], m["cause_type"]) for m in movements] == [
        (-3, "order_cancelled", "order"), (3, "order_placed", "order"), (0, "received", "adjustment"),
    ]  # fmt: skip
    assert movements[0]["cause_id"] == order["id"]
    await assert_stock_consistent(app)


async def test_a_sku_with_a_slash_is_read_and_changed_by_its_path(
    admin: httpx.AsyncClient,
) -> None:
    """A SKU may hold `/` (`Sku`'s pattern), but `/v1/products/{sku}` and
    `/v1/inventory/{sku}` matched one path segment: such a product was created and then
    could never be read, changed (deactivated) or counted through them, percent-encoded
    (`%2F`, as generated clients send it) or not — 404 (found by an outside-in attack)."""
    sku = f"{unique('BOX')}/10"
    created = await admin.post(
        "/v1/products",
        json={"sku": sku, "name": "A box of ten", "unit_price": 100, "currency": "EUR"},
    )
    assert created.status_code == 201, created.text
    location = await create_location(admin)
    await stock(admin, sku, location["id"], 3)
    for path in (sku, sku.replace("/", "%2F")):
        got = await admin.get(f"/v1/products/{path}")
        assert (got.status_code, got.json()["sku"]) == (200, sku), got.text
        changed = await admin.patch(f"/v1/products/{path}", json={"active": False})
        assert (changed.status_code, changed.json()["active"]) == (200, False), changed.text
        counted = await admin.get(f"/v1/inventory/{path}")
        assert (counted.status_code, counted.json()["on_hand"]) == (200, 3), counted.text
    # The lists beside `{sku}` are still theirs.
    assert (await admin.get("/v1/inventory/movements", params={"sku": sku})).status_code == 200
