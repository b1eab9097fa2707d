"""An order's payments stay within its total, through the real app (rules:
`domain.payments`; docs/orders.md "Payments").

No authorization may leave more authorized and not captured than is still owed, no capture
may take more than the total, no refund more than was captured: so `captured <= total`,
`refunded <= captured`, and the customer's `lifetime_value` (total minus refunded) is
never negative. Payments of one order are applied one at a time (the order row is locked
first), so concurrent requests cannot together pass the limits either.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.factories import Shop, order_body, place


async def _order(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, *, price: int = 1000, **fields: Any
) -> tuple[Shop, dict[str, Any]]:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=price)
    placed = await place(client, order_body(None, [(product["sku"], 1)], **fields),
                         headers=shop.headers)  # fmt: skip
    assert placed.status_code == 201, placed.text
    return shop, dict(placed.json())


async def _pay(
    client: httpx.AsyncClient, shop: Shop, order: dict[str, Any], kind: str, amount: int
) -> httpx.Response:
    return await client.post(
        f"/v1/orders/{order['id']}/payments",
        json={"kind": kind, "amount": amount, "reference": kind[0]},
        headers=shop.headers,
    )


def _refused(response: httpx.Response, code: str, **members: int) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert {k: problem.get(k) for k in members} == members


async def _amounts(client: httpx.AsyncClient, shop: Shop, order: dict[str, Any]) -> Any:
    current = await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)
    return current.json()["payment_amounts"]


async def _lifetime_value(admin: httpx.AsyncClient, order: dict[str, Any]) -> Any:
    customer = await admin.get(f"/v1/customers/{order['customer_id']}")
    assert customer.status_code == 200, customer.text
    return customer.json()["lifetime_value"]


async def test_the_testers_sequence_is_refused_and_lifetime_value_stays_the_total(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, order = await _order(admin, client)
    assert order["totals"]["total"] == 1000

    _refused(await _pay(client, shop, order, "authorization", 50000), "amount_exceeds_order_total",
             total=1000, authorized=0, captured=0, voided=0, requested=50000, authorizable=1000)  # fmt: skip
    _refused(await _pay(client, shop, order, "capture", 50000), "capture_exceeds_authorized",
             total=1000, captured=0, requested=50000, capturable=1000)  # fmt: skip
    _refused(await _pay(client, shop, order, "refund", 30000), "refund_exceeds_captured",
             captured=0, refunded=0, requested=30000, refundable=0)  # fmt: skip
    for kind in ("authorization", "capture"):
        _refused(await _pay(client, shop, order, kind, 10**11), "amount_exceeds_order_total"
                 if kind == "authorization" else "capture_exceeds_authorized")  # fmt: skip

    after = (await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)).json()
    assert (after["payment_status"], after["payments"]) == ("unpaid", [])
    assert after["payment_amounts"] == {"authorized": 0, "captured": 0, "refunded": 0, "voided": 0}
    assert await _lifetime_value(admin, order) == [{"currency": "EUR", "amount": 1000}]


async def test_each_limit_takes_exactly_its_amount_and_not_one_more(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, order = await _order(admin, client)

    assert (await _pay(client, shop, order, "authorization", 600)).status_code == 200
    _refused(await _pay(client, shop, order, "authorization", 401), "amount_exceeds_order_total",
             total=1000, authorized=600, captured=0, requested=401, authorizable=400)  # fmt: skip
    authorized = await _pay(client, shop, order, "authorization", 400)  # exactly what is owed
    assert authorized.status_code == 200, authorized.text
    assert authorized.json()["status"] == "confirmed"
    _refused(await _pay(client, shop, order, "authorization", 1), "amount_exceeds_order_total",
             authorizable=0)  # fmt: skip

    _refused(await _pay(client, shop, order, "capture", 1001), "capture_exceeds_authorized",
             capturable=1000)  # fmt: skip
    assert (await _pay(client, shop, order, "capture", 1000)).status_code == 200
    _refused(await _pay(client, shop, order, "capture", 1), "capture_exceeds_authorized",
             capturable=0)  # fmt: skip

    _refused(await _pay(client, shop, order, "refund", 1001), "refund_exceeds_captured",
             refundable=1000)  # fmt: skip
    refunded = await _pay(client, shop, order, "refund", 1000)
    assert refunded.json()["payment_status"] == "refunded"
    # What was refunded is not owed again: the order takes no new money.
    _refused(await _pay(client, shop, order, "authorization", 1), "amount_exceeds_order_total",
             total=1000, captured=1000, authorizable=0)  # fmt: skip
    _refused(await _pay(client, shop, order, "capture", 1), "capture_exceeds_authorized",
             capturable=0)  # fmt: skip
    _refused(await _pay(client, shop, order, "refund", 1), "refund_exceeds_captured",
             refundable=0)  # fmt: skip

    assert await _amounts(client, shop, order) == {
        "authorized": 1000, "captured": 1000, "refunded": 1000, "voided": 0,
    }  # fmt: skip
    assert await _lifetime_value(admin, order) == [{"currency": "EUR", "amount": 0}]


async def test_a_void_frees_room_for_a_new_authorization(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, order = await _order(admin, client)
    assert (await _pay(client, shop, order, "authorization", 1000)).status_code == 200
    assert (await _pay(client, shop, order, "capture", 300)).status_code == 200
    assert (await _pay(client, shop, order, "void", 700)).status_code == 200  # expired, say
    _refused(await _pay(client, shop, order, "authorization", 701), "amount_exceeds_order_total",
             total=1000, authorized=1000, captured=300, voided=700, authorizable=700)  # fmt: skip
    assert (await _pay(client, shop, order, "authorization", 700)).status_code == 200
    _refused(await _pay(client, shop, order, "capture", 701), "capture_exceeds_authorized",
             capturable=700)  # fmt: skip
    paid = await _pay(client, shop, order, "capture", 700)
    assert paid.json()["payment_amounts"] == {
        "authorized": 1700, "captured": 1000, "refunded": 0, "voided": 700,
    }  # fmt: skip


async def test_placement_takes_no_payment_above_the_total(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=1000)
    for status, code in (("authorized", "amount_exceeds_order_total"),
                         ("paid", "capture_exceeds_authorized")):  # fmt: skip
        body = order_body(None, [(product["sku"], 1)],
                          payment={"method": "card", "status": status, "amount": 1001})  # fmt: skip
        over = await place(client, body, headers=shop.headers)
        assert (over.status_code, over.json()["code"]) == (422, code), over.text
        assert over.json()["errors"][0]["loc"] == ["body", "payment", "amount"]
        assert (over.json()["total"], over.json()["requested"]) == (1000, 1001)
        body["payment"]["amount"] = 1000
        exact = await place(client, body, headers=shop.headers)
        assert exact.status_code == 201, exact.text
        assert exact.json()["status"] == "confirmed"


async def test_concurrent_payments_take_only_what_fits(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, order = await _order(admin, client)

    async def burst(kind: str, amount: int) -> list[int]:
        answers = await asyncio.gather(
            *(_pay(client, shop, order, kind, amount) for _ in range(10))
        )
        assert all(r.status_code in (200, 409) for r in answers), [r.text for r in answers]
        return sorted(r.status_code for r in answers)

    assert await burst("authorization", 300) == [200] * 3 + [409] * 7
    assert await burst("capture", 200) == [200] * 4 + [409] * 6
    assert await burst("void", 100) == [200] + [409] * 9
    assert await burst("authorization", 100) == [200] * 2 + [409] * 8  # 200 owed
    assert await burst("capture", 100) == [200] * 2 + [409] * 8  # 200 authorized and open
    assert await _amounts(client, shop, order) == {
        "authorized": 1100, "captured": 1000, "refunded": 0, "voided": 100,
    }  # fmt: skip

    shop, order = await _order(admin, client)  # no authorization: captures up to the total
    assert await burst("capture", 300) == [200] * 3 + [409] * 7
    assert (await _amounts(client, shop, order))["captured"] == 900
