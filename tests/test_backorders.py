"""Backorders fill themselves: stock arriving where an order's channel sells from is
reserved for its backordered lines, oldest order first, in the transaction that brings it
— an adjustment, a replenishment received, a resellable return."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from oms_api.domain.orders import OrderCommand
from oms_api.main import housekeeping_pass
from oms_api.services.orders import change_state
from tests.checks import assert_stock_consistent
from tests.factories import Shop, create_channel, inventory, order_body, place, stock

PAID = {"method": "card", "status": "paid"}
SHIP_TO = {"name": "Ada Lovelace", "line1": "12 St James Sq", "city": "London",
           "postal_code": "SW1Y 4JH", "country": "GB"}  # fmt: skip


async def order(
    client: httpx.AsyncClient, shop: Shop, lines: list[tuple[str, int]], **fields: Any
) -> dict[str, Any]:
    body = order_body(None, lines, payment=PAID, shipping_address=SHIP_TO) | fields
    response = await place(client, body, headers=shop.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def read(client: httpx.AsyncClient, shop: Shop, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/orders/{order_id}", headers=shop.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def units(document: dict[str, Any]) -> list[tuple[int, int]]:
    """Each line's (reserved, backordered)."""
    return [(line["quantity_reserved"], line["quantity_backordered"]) for line in document["lines"]]


async def event_types(client: httpx.AsyncClient, shop: Shop, order_id: str) -> list[str]:
    page = await client.get(f"/v1/orders/{order_id}/events", headers=shop.headers,
                            params={"limit": 200})  # fmt: skip
    return [e["type"] for e in page.json()["data"]]


async def adjust(admin: httpx.AsyncClient, sku: str, location_id: str, delta: int,
                 reason: str) -> dict[str, Any]:  # fmt: skip
    response = await admin.post(
        "/v1/inventory/adjustments",
        json={"sku": sku, "location_id": location_id, "delta": delta, "reason": reason},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_received_stock_fills_the_oldest_order_first(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    location = shop.locations[0]["id"]
    product = await shop.product(admin, 1, allow_backorder=True)
    sku = product["sku"]
    older = await order(client, shop, [(sku, 4)])  # 1 reserved, 3 backordered
    newer = await order(client, shop, [(sku, 2)])  # 2 backordered
    assert units(older) == [(1, 3)]
    assert units(newer) == [(0, 2)]

    result = await adjust(admin, sku, location, 4, "received")
    # The older order takes its 3, the newer the 1 left; the level answers after both.
    assert (result["level"]["on_hand"], result["level"]["reserved"]) == (5, 5)
    assert units(await read(client, shop, older["id"])) == [(4, 0)]
    assert units(await read(client, shop, newer["id"])) == [(1, 1)]
    filled = await read(client, shop, older["id"])
    assert filled["allocations"] == [
        {"line_id": filled["lines"][0]["id"], "sku": sku, "location_id": location, "quantity": 4}
    ]
    assert (await event_types(client, shop, older["id"]))[-1] == "order.backorder_filled"
    assert (await event_types(client, shop, newer["id"]))[-1] == "order.backorder_filled"
    movements = (await admin.get("/v1/inventory/movements", params={"sku": sku})).json()["data"]
    fills = [m for m in movements if m["reason"] == "backorder_filled"]
    assert sorted((m["cause_id"], m["reserved_delta"], m["cause_type"]) for m in fills) == sorted(
        [(older["id"], 3, "order"), (newer["id"], 1, "order")]
    )
    # The next arrival finishes the newer one; a third unit stays available.
    await adjust(admin, sku, location, 2, "correction")
    assert units(await read(client, shop, newer["id"])) == [(2, 0)]
    assert (await inventory(admin, sku))["available"] == 1
    await assert_stock_consistent(app)


@pytest.mark.parametrize("reason", ["cycle_count"])
async def test_a_recount_does_not_fill_backorders(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, reason: str
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 0, allow_backorder=True)
    waiting = await order(client, shop, [(product["sku"], 2)])
    await adjust(admin, product["sku"], shop.locations[0]["id"], 3, reason)
    assert units(await read(client, shop, waiting["id"])) == [(0, 2)]
    assert (await inventory(admin, product["sku"]))["available"] == 3
    await assert_stock_consistent(app)


async def test_only_orders_whose_channel_sells_from_there_and_still_open(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, other = await Shop.open(admin), await Shop.open(admin)
    product = await shop.product(admin, 0, allow_backorder=True)
    cancelled = await order(client, shop, [(product["sku"], 1)])
    response = await client.post(f"/v1/orders/{cancelled['id']}/cancel", headers=shop.headers)
    assert response.status_code == 200, response.text
    elsewhere = await order(client, other, [(product["sku"], 1)])  # other sells elsewhere
    waiting = await order(client, shop, [(product["sku"], 1)])
    await stock(admin, product["sku"], shop.locations[0]["id"], 5)
    assert units(await read(client, other, elsewhere["id"])) == [(0, 1)]
    assert units(await read(client, shop, waiting["id"])) == [(1, 0)]
    assert (await read(client, shop, cancelled["id"]))["lines"][0]["quantity_cancelled"] == 1
    # A channel with no location list sells from everywhere: it takes from the next arrival.
    everywhere = await create_channel(admin, location_ids=[])
    open_order = await place(admin, order_body(everywhere["code"], [(product["sku"], 6)],
                                               payment=PAID))  # fmt: skip
    assert open_order.status_code == 201, open_order.text
    assert units(open_order.json()) == [(4, 2)]
    await stock(admin, product["sku"], other.locations[0]["id"], 3)
    after = (await admin.get(f"/v1/orders/{open_order.json()['id']}")).json()
    assert units(after) == [(6, 0)]
    assert units(await read(client, other, elsewhere["id"])) == [(1, 0)]  # older: filled first
    await assert_stock_consistent(app)


async def test_a_replenishment_received_and_a_resellable_return_fill_backorders(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    location = shop.locations[0]["id"]
    product = await shop.product(admin, 2, allow_backorder=True, reorder_point=0,
                                 reorder_quantity=1)  # fmt: skip
    first = await order(client, shop, [(product["sku"], 2)])  # takes the 2: a request opens
    [request] = (await admin.get("/v1/replenishments", params={"sku": product["sku"]})).json()[
        "data"
    ]
    waiting = await order(client, shop, [(product["sku"], 2)])  # 2 backordered
    received = await admin.post(f"/v1/replenishments/{request['id']}/receive",
                                json={"location_id": location})  # fmt: skip
    assert received.status_code == 200, received.text
    assert units(await read(client, shop, waiting["id"])) == [(1, 1)]

    # The first order ships, comes back resellable: that unit fills the last backorder.
    shipped = (await admin.post(f"/v1/orders/{first['id']}/allocate")).json()["data"][0]
    for command, body in (("pick", None), ("pack", None),
                          ("ship", {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
                          ("deliver", None)):  # fmt: skip
        moved = await admin.post(f"/v1/shipments/{shipped['id']}/{command}", json=body)
        assert moved.status_code == 200, moved.text
    rma = await admin.post(
        "/v1/returns",
        json={
            "order_id": first["id"],
            "resolution": "refund",
            "lines": [{"line_id": first["lines"][0]["id"], "quantity": 1, "reason": "size_or_fit"}],
        },
    )
    assert rma.status_code == 201, rma.text
    assert (await admin.post(f"/v1/returns/{rma.json()['id']}/approve")).status_code == 200
    back = await admin.post(
        f"/v1/returns/{rma.json()['id']}/receive",
        json={
            "location_id": location,
            "lines": [
                {"line_id": first["lines"][0]["id"], "quantity": 1, "condition": "resellable"}
            ],
        },
    )
    assert back.status_code == 200, back.text
    assert units(await read(client, shop, waiting["id"])) == [(2, 0)]
    assert (await event_types(client, shop, waiting["id"])).count("order.backorder_filled") == 2
    await assert_stock_consistent(app)


async def test_arrivals_and_cancellations_at_once_in_two_processes(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, live_servers: Any
) -> None:
    """Twelve backordered orders; twenty one-unit deliveries and four cancellations fired
    together at two server processes. Every request succeeds (no deadlock: orders are
    locked before levels on every path), the units go to the open orders oldest first, and
    stock, reservations and lines still add up."""
    servers = live_servers(2)
    shop = await Shop.open(admin)
    location = shop.locations[0]["id"]
    product = await shop.product(admin, 0, allow_backorder=True)
    orders = [await order(client, shop, [(product["sku"], 2)]) for _ in range(12)]
    cancelled = {orders[i]["id"] for i in (1, 4, 7, 10)}
    admin_headers = dict(admin.headers)
    calls = [
        ("POST", "/v1/inventory/adjustments", admin_headers,
         {"sku": product["sku"], "location_id": location, "delta": 1, "reason": "received"})
        for _ in range(20)
    ] + [("POST", f"/v1/orders/{i}/cancel", shop.headers, None) for i in cancelled]  # fmt: skip
    limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        responses = await asyncio.gather(*(
            http.request(method, servers[n % 2].url + path, headers=headers, json=body)
            for n, (method, path, headers, body) in enumerate(calls)
        ))  # fmt: skip
    assert [r.status_code for r in responses] == [201] * 20 + [200] * 4, [
        r.text for r in responses if r.status_code >= 300
    ]
    documents = [await read(client, shop, o["id"]) for o in orders]
    open_orders = [d for d in documents if d["id"] not in cancelled]
    reserved = [d["lines"][0]["quantity_reserved"] for d in open_orders]
    # 20 units over 8 open orders of 2 (16 wanted); what a cancelled order took before its
    # cancellation went on to the others: every open order is whole.
    assert reserved == [2] * 8
    level = await inventory(admin, product["sku"])
    assert (level["on_hand"], level["reserved"], level["available"]) == (20, 16, 4)
    await assert_stock_consistent(app)


async def test_units_a_cancellation_releases_fill_the_next_waiting_order(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 3, allow_backorder=True)
    first = await order(client, shop, [(product["sku"], 3)])  # takes the 3
    waiting = await order(client, shop, [(product["sku"], 2)])  # backordered
    assert units(waiting) == [(0, 2)]
    cancelled = await client.post(f"/v1/orders/{first['id']}/cancel", headers=shop.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert units(await read(client, shop, waiting["id"])) == [(2, 0)]
    assert (await event_types(client, shop, waiting["id"]))[-1] == "order.backorder_filled"
    assert (await inventory(admin, product["sku"]))["available"] == 1
    await assert_stock_consistent(app)


async def test_a_cancellation_releasing_at_two_locations_fills_a_waiting_unit_once(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # Found by a concurrency tester: a cancelled order held units at two locations, and each
    # location's release filled the same backordered unit, so the waiting line of 1 held a
    # reservation at both (the level's reserved rose by 2, the line's by 1).
    shop = await Shop.open(admin, locations=2)
    first_location, second_location = (loc["id"] for loc in shop.locations)
    product = await shop.product(admin, 2, allow_backorder=True)
    await stock(admin, product["sku"], second_location, 2)
    first = await order(client, shop, [(product["sku"], 4)])  # 2 at each location
    assert {a["location_id"] for a in first["allocations"]} == {first_location, second_location}
    waiting = await order(client, shop, [(product["sku"], 1)])
    assert units(waiting) == [(0, 1)]

    cancelled = await client.post(f"/v1/orders/{first['id']}/cancel", headers=shop.headers)
    assert cancelled.status_code == 200, cancelled.text
    filled = await read(client, shop, waiting["id"])
    assert units(filled) == [(1, 0)]
    assert sum(a["quantity"] for a in filled["allocations"]) == 1
    assert (await inventory(admin, product["sku"]))["reserved"] == 1
    await assert_stock_consistent(app)


async def test_a_line_filled_from_two_locations_at_once_counts_both(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # The line takes 2 released at one location and 1 at the other: both count in its
    # quantity_reserved, not only one location's share.
    shop = await Shop.open(admin, locations=2)
    product = await shop.product(admin, 2, allow_backorder=True)
    await stock(admin, product["sku"], shop.locations[1]["id"], 2)
    first = await order(client, shop, [(product["sku"], 4)])  # 2 at each location
    waiting = await order(client, shop, [(product["sku"], 3)])
    assert units(waiting) == [(0, 3)]

    cancelled = await client.post(f"/v1/orders/{first['id']}/cancel", headers=shop.headers)
    assert cancelled.status_code == 200, cancelled.text
    filled = await read(client, shop, waiting["id"])
    assert units(filled) == [(3, 0)]
    assert sum(a["quantity"] for a in filled["allocations"]) == 3
    assert (await inventory(admin, product["sku"]))["reserved"] == 3
    await assert_stock_consistent(app)


async def feed_sequences(client: httpx.AsyncClient, shop: Shop, order_id: str) -> list[int]:
    """The order's events' sequences in the order the event feed gives them."""
    sequences: list[int] = []
    after: str | None = None
    while True:
        params = {"limit": 200} | ({"after": after} if after else {})
        page = (await client.get("/v1/events", params=params, headers=shop.headers)).json()
        sequences += [e["sequence"] for e in page["data"] if e["order_id"] == order_id]
        if not page["data"]:
            return sequences
        after = page["data"][-1]["id"]


async def test_a_fill_never_puts_an_order_s_events_before_its_earlier_ones_in_the_feed(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # Found by a concurrency tester polling the feed: a cancellation, its transaction id
    # taken when it locked its order, waited for the stock levels while an order was placed
    # and backordered (a later transaction id); it then filled that order, whose
    # order.backorder_filled came first in the feed — ordered by transaction id — before
    # its order.created, order.confirmed: sequence 4, then 1, 2, 3.
    shop = await Shop.open(admin)
    product = await shop.product(admin, 2, allow_backorder=True)
    first = await order(client, shop, [(product["sku"], 2)])
    async with app.state.database.transaction() as cancelling:
        await cancelling.execute("SELECT pg_current_xact_id()")  # as locking the order does
        waiting = await order(client, shop, [(product["sku"], 1)])  # committed meanwhile
        assert units(waiting) == [(0, 1)]
        await change_state(
            cancelling, order_id=first["id"], channel_id=None, command=OrderCommand.CANCEL
        )
    await housekeeping_pass(app.state.database)
    assert units(await read(client, shop, waiting["id"])) == [(1, 0)]
    sequences = await feed_sequences(client, shop, waiting["id"])
    assert sequences == sorted(sequences), sequences
    assert sequences == list(range(1, len(sequences) + 1))
    await assert_stock_consistent(app)


async def test_a_filled_order_is_a_new_version(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 0, allow_backorder=True)
    waiting = await order(client, shop, [(product["sku"], 2)])
    await stock(admin, product["sku"], shop.locations[0]["id"], 2)
    filled = await read(client, shop, waiting["id"])
    assert filled["version"] == waiting["version"] + 1
    assert filled["updated_at"] > waiting["updated_at"]
    page = await client.get(f"/v1/orders/{waiting['id']}/events", headers=shop.headers)
    assert page.json()["data"][-1]["data"]["version"] == filled["version"]


async def test_a_waiting_order_busy_at_a_release_is_filled_by_housekeeping(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """A cancellation holds its levels, so it passes over a waiting order another request
    holds at that moment rather than wait (waiting could deadlock). The pair is kept, and
    the next housekeeping pass fills the order from what is still available."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 2, allow_backorder=True)
    first = await order(client, shop, [(product["sku"], 2)])
    waiting = await order(client, shop, [(product["sku"], 2)])
    async with app.state.database.transaction() as busy:  # another request holds the order
        await busy.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", waiting["id"])
        cancelled = await client.post(f"/v1/orders/{first['id']}/cancel", headers=shop.headers)
        assert cancelled.status_code == 200, cancelled.text
    assert units(await read(client, shop, waiting["id"])) == [(0, 2)]
    assert (await inventory(admin, product["sku"]))["available"] == 2

    # A pass fills it: this one, or another process's running at the same moment (every
    # app on the test database keeps its own housekeeping), which this one then skips.
    for _ in range(50):
        await housekeeping_pass(app.state.database)
        if units(await read(client, shop, waiting["id"])) == [(2, 0)]:
            break
        await asyncio.sleep(0.1)
    assert units(await read(client, shop, waiting["id"])) == [(2, 0)]
    assert (await inventory(admin, product["sku"]))["available"] == 0
    async with app.state.database.transaction() as conn:
        left = "SELECT count(*) FROM backorder_checks WHERE product_id = $1"
        assert await conn.fetchval(left, product["id"]) == 0
    await assert_stock_consistent(app)


async def test_arrivals_racing_new_orders_at_two_locations_leave_nothing_unfilled(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, live_servers: Any
) -> None:
    """Stock arriving at either of a channel's two locations while new orders of the same
    product are placed, fired together at two server processes: whatever the interleaving,
    no unit stays available while an order still waits for one. (An arrival read the
    waiting orders before it had the level; an order placed meanwhile, which held the
    level, was backordered, and the arrival left its units available.) Six rounds, each a
    new product: 3 units at the
    first location, ten orders of 2 waiting (17 backordered), then ten arrivals of 2
    alternating between the locations and five new orders of 1 at once: 23 units for 25
    wanted — the ten older orders whole, 2 units backordered, none available."""
    servers = live_servers(2)
    shop = await Shop.open(admin, locations=2)
    first, second = (loc["id"] for loc in shop.locations)
    admin_headers = dict(admin.headers)
    limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
    outcomes = []
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        for _ in range(6):
            product = await shop.product(admin, 3, allow_backorder=True)
            sku = product["sku"]
            older = [await order(client, shop, [(sku, 2)]) for _ in range(10)]
            calls = [
                ("/v1/orders", shop.headers,
                 order_body(None, [(sku, 1)], payment=PAID, shipping_address=SHIP_TO))
                if n % 3 == 2 else
                ("/v1/inventory/adjustments", admin_headers,
                 {"sku": sku, "location_id": first if n % 2 else second, "delta": 2,
                  "reason": "received"})
                for n in range(15)
            ]  # fmt: skip
            responses = await asyncio.gather(*(
                http.post(servers[n % 2].url + path, headers=headers, json=body)
                for n, (path, headers, body) in enumerate(calls)
            ))  # fmt: skip
            assert [r.status_code for r in responses] == [201] * 15, [
                r.text for r in responses if r.status_code != 201
            ]
            newer = [r.json() for r in responses if r.url.path == "/v1/orders"]
            await housekeeping_pass(app.state.database)
            documents = [await read(client, shop, o["id"]) for o in older + newer]
            outcomes.append((
                (await inventory(admin, sku))["available"],
                sum(d["lines"][0]["quantity_backordered"] for d in documents),
                [units(d) for d in documents[:10]] == [[(2, 0)]] * 10,
            ))  # fmt: skip
    assert outcomes == [(0, 2, True)] * 6, outcomes
    await assert_stock_consistent(app)


async def test_an_order_that_read_before_the_level_existed_is_filled_by_housekeeping(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """An order whose read found no level of the product at the channel's second location
    (it never held it) is backordered while the first stock there arrives: the arrival
    cannot see the order (not committed yet), nor the order the arrival's level (made after
    its read). The order notes the place, and the next housekeeping pass fills it."""
    shop = await Shop.open(admin, locations=2)
    first, second = (loc["id"] for loc in shop.locations)
    product = await shop.product(admin, 1, allow_backorder=True)
    sku = product["sku"]
    await order(client, shop, [(sku, 1)])  # the first location's unit: none available
    async with app.state.database.transaction() as busy:  # holds the first level
        await busy.execute(
            "SELECT 1 FROM inventory_levels WHERE product_id = $1 AND location_id = $2 "
            "FOR UPDATE", product["id"], first,
        )  # fmt: skip
        placing = asyncio.create_task(order(client, shop, [(sku, 1)]))
        for _ in range(500):  # until the order's read waits for the level
            await busy.execute("SELECT pg_stat_clear_snapshot()")
            if await busy.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the order's read never waited for the level")
        await adjust(admin, sku, second, 1, "received")  # none waiting: stays available
    waiting = await placing
    assert units(waiting) == [(0, 1)]
    assert (await inventory(admin, sku))["available"] == 1

    await housekeeping_pass(app.state.database)
    assert units(await read(client, shop, waiting["id"])) == [(1, 0)]
    assert (await inventory(admin, sku))["available"] == 0
    await assert_stock_consistent(app)
