"""A customer's purchase figures, as the caller may see them (SPEC §4 "Customers, after
purchase"): `orders_count`, `lifetime_value` per currency, `last_order_at`, `returns_count`.

One person buys through channel A (euros) and channel B (dollars). Worked out by hand:

- A1: 2 x 15.00 EUR + 5.00 shipping = 35.00, paid, shipped; one shirt returned and
  refunded (15.00), a second return opened and cancelled -> counts 35.00 - 15.00 = 20.00.
- A2: 1 x 15.00 EUR, paid, then cancelled -> not counted (nor its time).
- B1: 2 x 8.00 USD = 16.00, paid; 3.00 refunded -> 13.00.
- B2: 1 x 8.00 USD = 8.00, paid -> 8.00.

A sees 1 order, [EUR 2000], 1 return, A1's time; B sees 2 orders, [USD 2100], 0 returns,
B2's time; the admin sees 3 orders, [EUR 2000, USD 2100], 1 return, the later of A1 and B2.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from oms_api.db import libpq_url
from oms_api.services import report_summaries
from tests.factories import Shop, order_body, place, unique
from tests.test_fulfilment import SHIP_TO
from tests.test_returns import ReturnsDesk, _lines, _received

PAID = {"method": "card", "status": "paid"}


def _figures(customer: dict[str, Any]) -> tuple[Any, ...]:
    return (
        customer["orders_count"],
        customer["lifetime_value"],
        datetime.fromisoformat(customer["last_order_at"]) if customer["last_order_at"] else None,
        customer["returns_count"],
    )


def _at(order: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(order["created_at"])


async def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


async def test_each_caller_sees_its_own_figures(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    email = f"{unique('ada')}@example.com"
    a = await ReturnsDesk.open(admin)
    b = await Shop.open(admin)
    shirt = await a.shop.product(admin, 10, unit_price=1500, currency="EUR")
    mug = await b.product(admin, 10, unit_price=800, currency="USD")
    customer = {"email": email}

    a1 = await a.shipped(client, [(shirt["sku"], 2)], shipping_price=500, customer=customer)
    assert (a1["currency"], a1["totals"]["total"]) == ("EUR", 3500)
    refunded = await _ok(await a.open_return(client, {"order_id": a1["id"], "resolution": "refund",
                                                      "lines": _lines(a1, 1)}), 201)  # fmt: skip
    await _ok(await a.post(client, f"/v1/returns/{refunded['id']}/approve"))
    await _ok(await a.post(client, f"/v1/returns/{refunded['id']}/receive", {
        "location_id": a.shop.locations[0]["id"],
        "lines": [{"line_id": a1["lines"][0]["id"], "quantity": 1, "condition": "resellable"}],
    }))  # fmt: skip
    done = await _ok(await a.post(client, f"/v1/returns/{refunded['id']}/complete", {}))
    assert done["refund_amount"] == 1500
    dropped = await _ok(await a.open_return(client, {"order_id": a1["id"], "resolution": "refund",
                                                     "lines": _lines(a1, 1)}), 201)  # fmt: skip
    await _ok(await a.post(client, f"/v1/returns/{dropped['id']}/cancel", {"reason": "kept it"}))

    a2 = await _ok(await place(client, order_body(None, [(shirt["sku"], 1)], customer=customer,
                                                  shipping_address=SHIP_TO, payment=PAID),
                               headers=a.shop.headers), 201)  # fmt: skip
    cancelled = await client.post(f"/v1/orders/{a2['id']}/cancel", json={}, headers=a.shop.headers)
    assert (await _ok(cancelled))["status"] == "cancelled"

    b1 = await _ok(await place(client, order_body(None, [(mug["sku"], 2)], customer=customer,
                                                  shipping_address=SHIP_TO, payment=PAID),
                               headers=b.headers), 201)  # fmt: skip
    assert (b1["currency"], b1["totals"]["total"]) == ("USD", 1600)
    await _ok(await admin.post(f"/v1/orders/{b1['id']}/payments",
                               json={"kind": "refund", "amount": 300}))  # fmt: skip
    b2 = await _ok(await place(client, order_body(None, [(mug["sku"], 1)], customer=customer,
                                                  shipping_address=SHIP_TO, payment=PAID),
                               headers=b.headers), 201)  # fmt: skip
    customer_id = b2["customer_id"]
    assert {a1["customer_id"], a2["customer_id"], b1["customer_id"]} == {customer_id}

    eur, usd = {"currency": "EUR", "amount": 2000}, {"currency": "USD", "amount": 2100}
    expected = {
        "admin": (3, [eur, usd], max(_at(a1), _at(b2)), 1),
        "a": (1, [eur], _at(a1), 1),
        "b": (2, [usd], _at(b2), 0),
    }
    callers = {"admin": admin.headers, "a": a.shop.headers, "b": b.headers}
    for who, headers in callers.items():
        one = await _ok(await client.get(f"/v1/customers/{customer_id}", headers=headers))
        assert _figures(one) == expected[who], who
        listed = await _ok(await client.get("/v1/customers", params={"email": email},
                                             headers=headers))  # fmt: skip
        assert [_figures(c) for c in listed["data"]] == [expected[who]], who


async def test_a_customer_without_orders(admin: httpx.AsyncClient) -> None:
    created = await _ok(
        await admin.post("/v1/customers", json={"email": f"{unique('new')}@example.com"}), 201
    )
    assert _figures(created) == (0, [], None, 0)


async def test_an_exchange_adds_only_what_it_costs_beyond_its_credit(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """An exchange order is paid by a credit of what the returned units cost (returns.md):
    the customer spent that money once, on the original order. A like-for-like exchange adds
    nothing to `lifetime_value`; a pricier one adds the difference, not its whole total."""
    desk = await ReturnsDesk.open(admin)
    small = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt S")
    large = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt L")
    coat = await desk.shop.product(admin, 5, unit_price=3500, name="Coat")
    customer = {"email": f"{unique('swap')}@example.com"}

    async def lifetime_value(order: dict[str, Any]) -> Any:
        got = await _ok(await client.get(f"/v1/customers/{order['customer_id']}",
                                         headers=desk.shop.headers))  # fmt: skip
        return got["orders_count"], got["lifetime_value"]

    async def exchanged(order: dict[str, Any], sku: str) -> dict[str, Any]:
        rma = await _received(client, desk, order, 1, resolution="exchange",
                              exchange_lines=[{"sku": sku, "quantity": 1}])  # fmt: skip
        done = await _ok(await desk.post(client, f"/v1/returns/{rma['id']}/complete"))
        new = await client.get(f"/v1/orders/{done['exchange_order_id']}", headers=desk.shop.headers)
        return await _ok(new)

    first = await desk.shipped(client, [(small["sku"], 1)], customer=customer)
    assert await lifetime_value(first) == (1, [{"currency": "EUR", "amount": 2000}])
    same = await exchanged(first, large["sku"])
    assert (same["totals"]["total"], same["payment_amounts"]["captured"]) == (2000, 2000)
    assert await lifetime_value(first) == (2, [{"currency": "EUR", "amount": 2000}])

    second = await desk.shipped(client, [(small["sku"], 1)], customer=customer)
    dearer = await exchanged(second, coat["sku"])  # a 20.00 credit towards 35.00
    assert (dearer["totals"]["total"], dearer["payment_amounts"]["captured"]) == (3500, 2000)
    assert await lifetime_value(first) == (4, [{"currency": "EUR", "amount": 2000 + 2000 + 1500}])


async def test_sums_past_bigint_are_exact_not_500(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """An order total may reach 10^15 minor units, so 9,224 of them pass PostgreSQL's bigint:
    an outside-in accountant placed 9,300 such orders with one channel key in 35 s, and
    every customer list, this customer's read and the sales reports (every channel's)
    answered 500 from a `::bigint` cast. Two orders here stand for them: placed through the
    API, their totals then raised in the database to 5 x 10^18 each (the API caps one order
    at 10^15), as the reports' tests set times, the day's summaries dropped."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10, unit_price=100, currency="USD")
    email = f"{unique('whale')}@example.com"
    body = order_body(None, [(product["sku"], 1)], payment=PAID, customer={"email": email})
    orders = [await _ok(await place(client, body, headers=shop.headers), 201) for _ in range(2)]
    big = 5 * 10**18
    conn = await asyncpg.connect(libpq_url(app.state.settings.database_url))
    try:
        await conn.execute("BEGIN; SELECT 1 FROM report_cursor FOR UPDATE")
        await conn.execute(
            "UPDATE orders SET subtotal = $2, total = $2 WHERE id = ANY($1::text[])",
            [o["id"] for o in orders], big,
        )  # fmt: skip
        await conn.execute(
            "DELETE FROM report_days WHERE day = (SELECT (created_at AT TIME ZONE 'UTC')::date "
            "FROM orders WHERE id = $1)", orders[0]["id"],
        )  # fmt: skip
        await conn.execute("COMMIT")
    finally:
        await conn.close()

    customer = await _ok(await admin.get(f"/v1/customers/{orders[0]['customer_id']}"))
    assert customer["lifetime_value"] == [{"currency": "USD", "amount": 2 * big}]
    listed = await _ok(await client.get("/v1/customers", headers=shop.headers))
    assert [c["lifetime_value"] for c in listed["data"]] == [
        [{"currency": "USD", "amount": 2 * big}]
    ]
    code = shop.channel["code"]

    async def sales_revenue() -> dict[str, list[int]]:
        return {
            group_by: [r["revenue"] for r in (await _ok(await admin.get(
                "/v1/reports/sales", params={"group_by": group_by, "channel": code}
            )))["rows"]]
            for group_by in ("day", "channel", "sku")
        }  # fmt: skip

    expected = {"day": [2 * big], "channel": [2 * big], "sku": [200]}
    assert await sales_revenue() == expected  # live: the day is not summarised
    # The summariser writes such a day too (its revenue was bigint: every pass failed with
    # "bigint out of range" and no day was summarised again; migration 0022), and the
    # reports read it back from the summary as exactly.
    conn = await asyncpg.connect(libpq_url(app.state.settings.database_url))
    try:
        while True:
            async with conn.transaction():
                if not await report_summaries.summarise(conn):
                    break
        day = orders[0]["created_at"][:10]
        assert await conn.fetchval(
            "SELECT revenue FROM report_sales WHERE day = $1::text::date AND channel_id = $2",
            day, shop.channel["id"],
        ) == 2 * big  # fmt: skip
    finally:
        await conn.close()
    assert await sales_revenue() == expected
