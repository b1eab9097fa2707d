"""Placement: reservation in the same transaction, exact stock, clear refusals."""

from __future__ import annotations

import httpx

from oms_api.schemas.orders import AllocationPublic, OrderLinePublic, OrderPublic
from tests.factories import Shop, create_product, inventory, order_body, place, stock, unique


async def test_placement_reserves_stock_and_answers_the_order(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10, unit_price=1250)
    body = order_body(None, [(product["sku"], 3)], shipping_price=490, external_id=unique("web"))
    response = await place(client, body, headers=shop.headers)
    assert response.status_code == 201, response.text
    order = response.json()
    OrderPublic.model_validate(order)  # the document matches the documented schema...
    assert set(order) == set(OrderPublic.model_fields)  # ...field for field
    assert set(order["lines"][0]) == set(OrderLinePublic.model_fields)
    assert set(order["allocations"][0]) == set(AllocationPublic.model_fields)
    assert order["status"] == "pending"
    assert order["payment_status"] == "unpaid"
    assert order["channel"] == shop.channel["code"]
    assert order["totals"] == {"subtotal": 3750, "shipping": 490, "total": 4240}
    assert order["lines"][0]["quantity"] == 3
    assert order["lines"][0]["unit_price"] == 1250
    line = order["lines"][0]
    assert order["allocations"] == [
        {"line_id": line["id"], "sku": product["sku"], "location_id": shop.locations[0]["id"],
         "quantity": 3}
    ]  # fmt: skip
    assert (line["quantity_reserved"], line["quantity_backordered"], line["quantity_shipped"],
            line["quantity_cancelled"], line["quantity_returned"]) == (3, 0, 0, 0, 0)  # fmt: skip
    level = await inventory(admin, product["sku"])
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 3, 7)

    fetched = await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)
    assert fetched.status_code == 200
    assert fetched.json() == order  # the placement response is the order as stored

    timeline = (await client.get(f"/v1/orders/{order['id']}/events", headers=shop.headers)).json()[
        "data"
    ]
    assert [e["type"] for e in timeline] == ["order.created"]
    assert timeline[0]["sequence"] == 1
    assert timeline[0]["data"] == order


async def test_numbers_ascend(admin: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    numbers = []
    for _ in range(3):
        response = await place(
            client, order_body(None, [(product["sku"], 1)]), headers=shop.headers
        )
        numbers.append(response.json()["number"])
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3


async def test_insufficient_stock_lists_every_short_line_and_reserves_nothing(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    plenty = await shop.product(admin, 100)
    few = await shop.product(admin, 2)
    none = await shop.product(admin, 0)
    body = order_body(None, [(plenty["sku"], 5), (few["sku"], 3), (none["sku"], 1)])
    response = await place(client, body, headers=shop.headers)
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "insufficient_stock"
    assert sorted(problem["lines"], key=lambda x: x["sku"]) == sorted(
        [
            {"sku": few["sku"], "requested": 3, "available": 2},
            {"sku": none["sku"], "requested": 1, "available": 0},
        ],
        key=lambda x: x["sku"],
    )
    assert (await inventory(admin, plenty["sku"]))["reserved"] == 0
    assert (await inventory(admin, few["sku"]))["reserved"] == 0


async def test_demand_for_one_sku_on_several_lines_is_summed(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    body = order_body(None, [(product["sku"], 3), (product["sku"], 3)])
    response = await place(client, body, headers=shop.headers)
    assert response.status_code == 409
    assert response.json()["lines"] == [{"sku": product["sku"], "requested": 6, "available": 5}]
    ok = await place(
        client, order_body(None, [(product["sku"], 2), (product["sku"], 3)]), headers=shop.headers
    )
    assert ok.status_code == 201
    assert (await inventory(admin, product["sku"]))["available"] == 0


async def test_allocation_prefers_one_location_then_priority(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin, locations=2)  # location 0 has the better priority
    first, second = (loc["id"] for loc in shop.locations)
    a = await shop.product(admin, 5, at=0)
    b = await shop.product(admin, 0)
    await stock(admin, a["sku"], second, 5)
    await stock(admin, b["sku"], second, 5)
    # Only the second location has both: it ships from one place.
    order = (
        await place(client, order_body(None, [(a["sku"], 1), (b["sku"], 1)]), headers=shop.headers)
    ).json()
    assert {x["location_id"] for x in order["allocations"]} == {second}
    # A alone: both have it, the better priority wins.
    order = (await place(client, order_body(None, [(a["sku"], 2)]), headers=shop.headers)).json()
    assert order["allocations"] == [
        {"line_id": order["lines"][0]["id"], "sku": a["sku"], "location_id": first, "quantity": 2}
    ]
    # More than either has alone: split across both.
    order = (await place(client, order_body(None, [(a["sku"], 6)]), headers=shop.headers)).json()
    assert sum(x["quantity"] for x in order["allocations"]) == 6
    assert {x["location_id"] for x in order["allocations"]} == {first, second}


async def test_channel_locations_limit_what_it_can_sell(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    other = await Shop.open(admin)
    product = await create_product(admin)
    await stock(admin, product["sku"], other.locations[0]["id"], 10)  # stock only elsewhere
    response = await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    assert response.status_code == 409
    assert response.json()["lines"][0]["available"] == 0


async def test_backorders_for_products_that_allow_them(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 2, allow_backorder=True)
    response = await place(client, order_body(None, [(product["sku"], 5)]), headers=shop.headers)
    assert response.status_code == 201, response.text
    line = response.json()["lines"][0]
    assert line["quantity"] == 5
    assert line["quantity_backordered"] == 3
    level = await inventory(admin, product["sku"])
    assert (level["reserved"], level["available"]) == (2, 0)  # never negative


async def test_price_defaults_to_the_product_and_may_be_given(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10, unit_price=999)
    body = order_body(None, [])
    body["lines"] = [
        {"sku": product["sku"], "quantity": 1},
        {"sku": product["sku"], "quantity": 1, "unit_price": 0},
    ]
    order = (await place(client, body, headers=shop.headers)).json()
    assert [line["unit_price"] for line in order["lines"]] == [999, 0]
    assert order["totals"]["subtotal"] == 999


async def test_external_id_is_unique_per_channel(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    other = await Shop.open(admin)
    product = await shop.product(admin, 10)
    await stock(admin, product["sku"], other.locations[0]["id"], 10)
    ref = unique("ext")
    first = await place(
        client, order_body(None, [(product["sku"], 1)], external_id=ref), headers=shop.headers
    )
    assert first.status_code == 201
    again = await place(
        client, order_body(None, [(product["sku"], 1)], external_id=ref), headers=shop.headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "external_id_taken"
    assert again.json()["order_id"] == first.json()["id"]
    assert (await inventory(admin, product["sku"]))[
        "reserved"
    ] == 1  # the refused one reserved nothing
    elsewhere = await place(
        client, order_body(None, [(product["sku"], 1)], external_id=ref), headers=other.headers
    )
    assert elsewhere.status_code == 201


async def test_bad_orders_get_clear_answers(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10)
    inactive = await shop.product(admin, 10, active=False)
    sku = product["sku"]
    cases = [
        (order_body(None, [("NO-SUCH-SKU", 1)]), 422, "unknown_sku"),
        (order_body(None, [(inactive["sku"], 1)]), 422, "product_inactive"),
        (order_body(None, [(sku, 0)]), 422, "validation_error"),
        (order_body(None, []), 422, "validation_error"),
        (order_body(None, [(sku, 1)] * 501), 422, "validation_error"),
        (order_body(None, [(sku, 1)], status="confirmed"), 422, "validation_error"),
        (order_body(None, [(sku, 1)], id="ord_mine"), 422, "validation_error"),
        (order_body(None, [(sku, 1)], totals={"total": 1}), 422, "validation_error"),
        (order_body("someone-else", [(sku, 1)]), 422, "channel_mismatch"),
        (order_body(None, [(sku, 1)], currency="USD"), 422, "currency_mismatch"),
        (
            {"customer_id": "cus_nope", "lines": [{"sku": sku, "quantity": 1}]},
            404,
            "not_found",
        ),
        ({"lines": [{"sku": sku, "quantity": 1}]}, 422, "validation_error"),
        (
            order_body(
                None, [(sku, 1)], shipping_address={"line1": "x", "city": "y", "country": "Germany"}
            ),
            422,
            "validation_error",
        ),
        (
            order_body(
                None, [(sku, 1)], payment={"method": "card", "status": "paid", "amount": 10**9}
            ),
            422,
            "capture_exceeds_authorized",
        ),
    ]
    for body, status, code in cases:
        response = await place(client, body, headers=shop.headers)
        assert (response.status_code, response.json()["code"]) == (status, code), (
            body,
            response.text,
        )
    assert (await inventory(admin, sku))["reserved"] == 0
    unbound = await place(admin, order_body(None, [(sku, 1)]))
    assert unbound.json()["code"] == "channel_required"
    unknown = await place(admin, order_body("no-such-channel", [(sku, 1)]))
    assert unknown.json()["code"] == "unknown_channel"
    by_admin = await place(admin, order_body(shop.channel["code"], [(sku, 1)]))
    assert by_admin.status_code == 201


async def test_inline_customer_is_found_or_created_by_email(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10)
    email = f"{unique('Mixed.Case')}@Example.com"
    first = (
        await place(
            client,
            order_body(None, [(product["sku"], 1)], customer={"email": email}),
            headers=shop.headers,
        )
    ).json()
    second = (
        await place(
            client,
            order_body(None, [(product["sku"], 1)], customer={"email": email.lower()}),
            headers=shop.headers,
        )
    ).json()
    assert first["customer_id"] == second["customer_id"]
    history = await client.get(f"/v1/customers/{first['customer_id']}/orders", headers=shop.headers)
    assert [o["id"] for o in history.json()["data"]] == [second["id"], first["id"]]
    by_id = await place(
        client,
        {"customer_id": first["customer_id"], "lines": [{"sku": product["sku"], "quantity": 1}]},
        headers=shop.headers,
    )
    assert by_id.json()["customer_id"] == first["customer_id"]


async def test_lines_read_back_in_the_order_they_were_placed(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    skus = [(await shop.product(admin, 5))["sku"] for _ in range(4)]
    order_lines = [(skus[2], 1), (skus[0], 2), (skus[3], 1), (skus[1], 3)]
    placed = await place(client, order_body(None, order_lines), headers=shop.headers)
    assert placed.status_code == 201, placed.text
    read = (await client.get(f"/v1/orders/{placed.json()['id']}", headers=shop.headers)).json()
    assert [(line["sku"], line["quantity"]) for line in read["lines"]] == order_lines
    assert read["lines"] == placed.json()["lines"]
