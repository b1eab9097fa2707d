"""State changes through the one door (services/transitions.py): the machine's answer
for a shipment cancelled with its order and one delivered by a carrier's tracking;
conflicting commands sent at once to one shipment, order or return — exactly one wins,
every other is answered 409 as the machine refuses it, and the state and stock are what
the winner left; and a row that moved since it was read is never written over."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from oms_api.domain.errors import DomainError, InvalidTransition
from oms_api.domain.shipments import ShipmentCommand as SC
from oms_api.domain.shipments import ShipmentStatus as SS
from oms_api.services.transitions import SHIPMENT, transition
from tests.checks import assert_stock_consistent
from tests.factories import inventory
from tests.test_fulfilment import Warehouse, _at, _through
from tests.test_returns import ReturnsDesk, _lines

TRACKING = {"carrier": "UPS", "tracking_number": "1ZRACE"}


async def test_delivered_tracking_of_a_shipment_not_shipped_is_refused_whole(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    wh = await Warehouse.open(admin)
    product = await wh.shop.product(admin, 10)
    order = await wh.order(client, [(product["sku"], 1)])
    shipment = (await wh.post(client, f"/v1/orders/{order['id']}/allocate")).json()["data"][0]
    await _through(client, wh, shipment["id"], "pick", "pack")
    track = f"/v1/shipments/{shipment['id']}/tracking"
    early = await wh.post(client, track, {"status": "delivered", "occurred_at": _at(minutes=-1)})
    assert (early.status_code, early.json()["code"]) == (409, "invalid_transition")
    assert early.json()["current_state"] == "packed"
    now = (await wh.get(client, f"/v1/shipments/{shipment['id']}")).json()
    assert (now["status"], now["latest_tracking"]) == ("packed", None)  # nothing recorded
    await wh.post(client, f"/v1/shipments/{shipment['id']}/ship", TRACKING)
    delivered = await wh.post(
        client, track, {"status": "delivered", "occurred_at": _at(minutes=-1)}
    )
    assert (delivered.status_code, delivered.json()["status"]) == (201, "delivered")


async def test_cancelling_an_order_cancels_its_open_shipments_through_their_machine(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    wh = await Warehouse.open(admin, locations=2)
    one = await wh.shop.product(admin, 5)
    two = await wh.shop.product(admin, 5, at=1)
    order = await wh.order(client, [(one["sku"], 1), (two["sku"], 1)])
    shipments = (await wh.post(client, f"/v1/orders/{order['id']}/allocate")).json()["data"]
    assert len(shipments) == 2
    await _through(client, wh, shipments[0]["id"], "pick")
    cancelled = await client.post(
        f"/v1/orders/{order['id']}/cancel", json={"reason": "changed mind"},
        headers=wh.shop.headers,
    )  # fmt: skip
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    for shipment in shipments:
        now = (await wh.get(client, f"/v1/shipments/{shipment['id']}")).json()
        assert (now["status"], now["cancel_reason"]) == ("cancelled", "changed mind")
        assert now["cancelled_at"] is not None
    timeline = (
        await client.get(f"/v1/orders/{order['id']}/events", headers=wh.shop.headers)
    ).json()["data"]
    assert [e["type"] for e in timeline][-3:] == [
        "shipment.cancelled", "shipment.cancelled", "order.cancelled",
    ]  # fmt: skip
    assert {e["data"]["id"] for e in timeline[-3:-1]} == {s["id"] for s in shipments}
    for product in (one, two):
        level = await inventory(admin, product["sku"])
        assert (level["on_hand"], level["reserved"]) == (5, 0)
    await assert_stock_consistent(app)


async def test_ship_and_cancel_of_one_shipment_at_once_one_wins(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    wh = await Warehouse.open(admin)
    product = await wh.shop.product(admin, 10)
    for _ in range(3):
        order = await wh.order(client, [(product["sku"], 1)])
        shipment = (await wh.post(client, f"/v1/orders/{order['id']}/allocate")).json()["data"][0]
        await _through(client, wh, shipment["id"], "pick", "pack")
        ship, cancel = await asyncio.gather(
            wh.post(client, f"/v1/shipments/{shipment['id']}/ship", TRACKING),
            wh.post(client, f"/v1/shipments/{shipment['id']}/cancel"),
        )
        assert sorted((ship.status_code, cancel.status_code)) == [200, 409]
        loser = cancel if ship.status_code == 200 else ship
        assert loser.json()["code"] == "invalid_transition"
        now = (await wh.get(client, f"/v1/shipments/{shipment['id']}")).json()
        assert now["status"] == ("shipped" if ship.status_code == 200 else "cancelled")
    await assert_stock_consistent(app)


async def test_an_order_cancelled_while_its_shipment_ships_one_wins(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    wh = await Warehouse.open(admin)
    product = await wh.shop.product(admin, 10)
    order = await wh.order(client, [(product["sku"], 2)])
    shipment = (await wh.post(client, f"/v1/orders/{order['id']}/allocate")).json()["data"][0]
    await _through(client, wh, shipment["id"], "pick", "pack")
    ship, cancel = await asyncio.gather(
        wh.post(client, f"/v1/shipments/{shipment['id']}/ship", TRACKING),
        client.post(f"/v1/orders/{order['id']}/cancel", json={}, headers=wh.shop.headers),
    )
    assert sorted((ship.status_code, cancel.status_code)) == [200, 409]
    loser = cancel if ship.status_code == 200 else ship
    assert loser.json()["code"] == "invalid_transition"
    state = (await client.get(f"/v1/orders/{order['id']}", headers=wh.shop.headers)).json()
    shipped = ship.status_code == 200
    assert state["status"] == ("shipped" if shipped else "cancelled")
    level = await inventory(admin, product["sku"])
    assert (level["on_hand"], level["reserved"]) == ((8, 0) if shipped else (10, 0))
    await assert_stock_consistent(app)


async def test_reject_and_cancel_of_one_return_at_once_one_wins(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    desk = await ReturnsDesk.open(admin, app=app)
    product = await desk.shop.product(admin, 10)
    order = await desk.shipped(client, [(product["sku"], 3)])
    for opened_so_far in (1, 2, 3):
        opened = await desk.open_return(
            client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 1)}
        )
        assert opened.status_code == 201, opened.text
        rma = opened.json()["id"]
        reject, cancel = await asyncio.gather(
            desk.post(client, f"/v1/returns/{rma}/reject", {"reason": "not ours"}),
            desk.post(client, f"/v1/returns/{rma}/cancel"),
        )
        assert sorted((reject.status_code, cancel.status_code)) == [200, 409]
        loser = cancel if reject.status_code == 200 else reject
        assert loser.json()["code"] == "invalid_transition"
        now = (await desk.get(client, f"/v1/returns/{rma}")).json()
        assert now["status"] == ("rejected" if reject.status_code == 200 else "cancelled")
        events = (
            await client.get(
                f"/v1/orders/{order['id']}/events", params={"limit": 200}, headers=desk.shop.headers
            )
        ).json()["data"]
        decided = [e for e in events if e["type"] in ("return.rejected", "return.cancelled")]
        assert len(decided) == opened_so_far  # the loser recorded nothing


async def test_two_completes_of_one_return_refund_once(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    desk = await ReturnsDesk.open(admin, app=app)
    product = await desk.shop.product(admin, 10, unit_price=1000)
    order = await desk.shipped(client, [(product["sku"], 2)])
    rma = (
        await desk.open_return(
            client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 2)}
        )
    ).json()["id"]
    await desk.post(client, f"/v1/returns/{rma}/approve")
    line = order["lines"][0]["id"]
    received = await desk.post(client, f"/v1/returns/{rma}/receive", {
        "location_id": desk.shop.locations[0]["id"],
        "lines": [{"line_id": line, "quantity": 2, "condition": "resellable"}],
    })  # fmt: skip
    assert received.json()["status"] == "received", received.text
    answers = await asyncio.gather(
        *(desk.post(client, f"/v1/returns/{rma}/complete") for _ in range(4))
    )
    assert sorted(r.status_code for r in answers) == [200, 409, 409, 409]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"invalid_transition"}
    state = (await client.get(f"/v1/orders/{order['id']}", headers=desk.shop.headers)).json()
    assert state["payment_amounts"]["refunded"] == 2000
    await assert_stock_consistent(app)


async def test_the_door_refuses_a_row_that_moved_since_it_was_read(
    database_url: str, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Without the lock the services take first: a stale state is never written over."""
    wh = await Warehouse.open(admin)
    product = await wh.shop.product(admin, 10)
    order = await wh.order(client, [(product["sku"], 1)])
    shipment = (await wh.post(client, f"/v1/orders/{order['id']}/allocate")).json()["data"][0]
    await _through(client, wh, shipment["id"], "pick")  # it is picking now
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            # Read as pending; cancel is allowed from picking too: refused, not overwritten.
            with pytest.raises(DomainError) as caught:
                await transition(conn, SHIPMENT, shipment["id"], SS.PENDING, SC.CANCEL)
            assert (caught.value.code, caught.value.extra["current_state"]) == (
                "invalid_transition",
                "picking",
            )
            # Read as pending, pick again: the machine refuses it from where the row is.
            with pytest.raises(InvalidTransition) as refused:
                await transition(conn, SHIPMENT, shipment["id"], SS.PENDING, SC.PICK)
            assert refused.value.extra["current_state"] == "picking"
            moved = await transition(
                conn, SHIPMENT, shipment["id"], SS.PICKING, SC.CANCEL, ("changed our mind",)
            )
            assert (moved.target, moved.events) == (SS.CANCELLED, ["shipment.cancelled"])
            raise Rollback
    except Rollback:
        pass
    finally:
        await conn.close()
    now = (await wh.get(client, f"/v1/shipments/{shipment['id']}")).json()
    assert now["status"] == "picking"  # rolled back: the stock paths were not taken here


class Rollback(Exception):
    pass
