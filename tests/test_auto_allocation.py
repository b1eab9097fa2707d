"""Auto-allocation: with `auto_allocate` on, an order's shipments are created in the
transaction that confirms it — at placement, on payment, on release from hold — and for the
units a filled backorder reserves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.checks import assert_stock_consistent
from tests.factories import Shop, bearer, create_key, order_body, place, stock

PAID = {"method": "card", "status": "paid"}


@pytest.fixture
async def auto_allocation(admin: httpx.AsyncClient) -> AsyncIterator[None]:
    response = await admin.put("/v1/settings/fulfillment", json={"auto_allocate": True})
    assert response.status_code == 200, response.text
    assert response.json() == {"auto_allocate": True}
    try:
        yield
    finally:
        await admin.put("/v1/settings/fulfillment", json={"auto_allocate": False})


async def shipments_of(admin: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    response = await admin.get("/v1/shipments", params={"order_id": order_id})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def events_of(admin: httpx.AsyncClient, order_id: str) -> list[str]:
    page = await admin.get(f"/v1/orders/{order_id}/events", params={"limit": 200})
    return [e["type"] for e in page.json()["data"]]


async def test_the_setting_is_off_by_default_and_only_unbound_keys_change_it(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    assert (await admin.get("/v1/settings/fulfillment")).json() == {"auto_allocate": False}
    shop = await Shop.open(admin)
    bound = bearer((await create_key(admin, ["orders:write"], shop.channel["id"]))["secret"])
    refused = await client.put("/v1/settings/fulfillment", json={"auto_allocate": True},
                               headers=bound)  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (403, "channel_bound_key")
    for bad in ({"auto_allocate": "maybe"}, {"auto_allocate": True, "extra": 1}, [True]):
        response = await admin.put("/v1/settings/fulfillment", json=bad)
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert (await admin.get("/v1/settings/fulfillment")).json() == {"auto_allocate": False}


async def test_off_a_confirmed_order_waits_for_allocate(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    placed = await place(client, order_body(None, [(product["sku"], 1)], payment=PAID),
                         headers=shop.headers)  # fmt: skip
    assert placed.json()["status"] == "confirmed"
    assert await shipments_of(admin, placed.json()["id"]) == []


@pytest.mark.usefixtures("auto_allocation")
async def test_a_paid_order_ships_from_each_location_that_holds_it(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin, locations=2)
    product = await shop.product(admin, 2, at=0)
    await stock(admin, product["sku"], shop.locations[1]["id"], 2)  # 4 ordered: both hold 2
    placed = await place(client, order_body(None, [(product["sku"], 4)], payment=PAID),
                         headers=shop.headers)  # fmt: skip
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "confirmed"
    shipments = await shipments_of(admin, order["id"])
    assert sorted(
        (s["location_id"], s["lines"][0]["quantity"], s["status"]) for s in shipments
    ) == sorted([(shop.locations[0]["id"], 2, "pending"), (shop.locations[1]["id"], 2, "pending")])
    assert await events_of(admin, order["id"]) == [
        "order.created",
        "payment.recorded",
        "order.confirmed",
        "shipment.created",
        "shipment.created",
    ]
    await assert_stock_consistent(app)


@pytest.mark.usefixtures("auto_allocation")
async def test_pending_then_paid_and_a_held_order_released(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10)
    pending = await place(
        client, order_body(None, [(product["sku"], 1)],
                           payment={"method": "card", "status": "pending"}),
        headers=shop.headers,
    )  # fmt: skip
    assert pending.json()["status"] == "pending"
    assert await shipments_of(admin, pending.json()["id"]) == []
    paid = await client.post(
        f"/v1/orders/{pending.json()['id']}/payments",
        headers=shop.headers,
        json={"kind": "authorization", "amount": pending.json()["totals"]["total"]},
    )
    assert paid.json()["status"] == "confirmed"
    assert len(await shipments_of(admin, pending.json()["id"])) == 1
    # Held before payment: payment does not confirm it, the release does — and allocates.
    held = await place(
        client, order_body(None, [(product["sku"], 1)],
                           payment={"method": "card", "status": "pending"}),
        headers=shop.headers,
    )  # fmt: skip
    order_id = held.json()["id"]
    assert (
        await client.post(
            f"/v1/orders/{order_id}/hold", headers=shop.headers, json={"reason": "call the buyer"}
        )
    ).json()["status"] == "on_hold"
    await client.post(
        f"/v1/orders/{order_id}/payments",
        headers=shop.headers,
        json={"kind": "capture", "amount": held.json()["totals"]["total"]},
    )
    assert await shipments_of(admin, order_id) == []
    released = await client.post(f"/v1/orders/{order_id}/release", headers=shop.headers)
    assert released.json()["status"] == "confirmed"
    assert len(await shipments_of(admin, order_id)) == 1
    assert (await events_of(admin, order_id))[-3:] == [
        "order.released",
        "order.confirmed",
        "shipment.created",
    ]


@pytest.mark.usefixtures("auto_allocation")
async def test_a_filled_backorder_gets_its_own_shipment(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 1, allow_backorder=True)
    placed = await place(client, order_body(None, [(product["sku"], 3)], payment=PAID),
                         headers=shop.headers)  # fmt: skip
    order = placed.json()
    [first] = await shipments_of(admin, order["id"])
    assert first["lines"][0]["quantity"] == 1  # what was reserved; 2 wait for stock
    await stock(admin, product["sku"], shop.locations[0]["id"], 5)
    shipments = await shipments_of(admin, order["id"])
    assert sorted(s["lines"][0]["quantity"] for s in shipments) == [1, 2]
    assert (await events_of(admin, order["id"]))[-2:] == [
        "order.backorder_filled",
        "shipment.created",
    ]
    await assert_stock_consistent(app)
