"""A capture with no authorization open is a sale: it authorizes what it captures, so the
order's open authorization (authorized - captured - voided) stays exact after one — through
the real app (rules: `domain.payments`; docs/orders.md "Payments").

An order paid in part directly — an exchange's credit, a placement with `payment.status:
paid` and an amount below the total — and the rest authorized later: the authorization is
open, so it can be voided or captured, it counts towards confirming the order, and it
keeps a pending order from expiring.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from oms_api.domain.payments import EXPIRABLE_SQL, payment_in_force
from oms_api.services.orders import expire_pending_orders
from tests.factories import Shop, order_body, place
from tests.test_domain_payments import _reachable
from tests.test_returns import ReturnsDesk, _received

PAYMENT_SUMS = ("authorized", "captured", "refunded", "voided")


async def _part_paid(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, paid: int = 800
) -> tuple[Shop, dict[str, Any]]:
    """An order of 1000 placed with `paid` of it captured directly."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=1000)
    body = order_body(None, [(product["sku"], 1)],
                      payment={"method": "card", "status": "paid", "amount": paid})  # fmt: skip
    placed = await place(client, body, headers=shop.headers)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert (order["status"], order["payment_status"]) == ("pending", "paid")
    return shop, dict(order)


async def _pay(
    client: httpx.AsyncClient, shop: Shop, order_id: str, kind: str, amount: int
) -> httpx.Response:
    return await client.post(
        f"/v1/orders/{order_id}/payments",
        json={"kind": kind, "amount": amount, "reference": kind[0]},
        headers=shop.headers,
    )


async def test_the_rest_authorized_after_a_direct_capture_confirms_the_order(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, order = await _part_paid(admin, client)
    assert order["payment_amounts"] == {
        "authorized": 800, "captured": 800, "refunded": 0, "voided": 0,
    }  # fmt: skip
    rest = await _pay(client, shop, order["id"], "authorization", 200)
    assert rest.status_code == 200, rest.text
    assert (rest.json()["status"], rest.json()["payment_status"]) == ("confirmed", "paid")
    assert rest.json()["payment_amounts"] == {
        "authorized": 1000, "captured": 800, "refunded": 0, "voided": 0,
    }  # fmt: skip
    over = await _pay(client, shop, order["id"], "authorization", 1)  # nothing more owed
    assert (over.status_code, over.json()["code"]) == (409, "amount_exceeds_order_total")


async def test_the_rest_authorized_after_a_direct_capture_can_be_voided(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, order = await _part_paid(admin, client)
    assert (await _pay(client, shop, order["id"], "authorization", 200)).status_code == 200
    too_much = await _pay(client, shop, order["id"], "void", 201)
    assert (too_much.status_code, too_much.json()["code"]) == (409, "void_exceeds_authorized")
    assert too_much.json()["voidable"] == 200
    void = await _pay(client, shop, order["id"], "void", 200)
    assert void.status_code == 200, void.text
    assert void.json()["payment_amounts"] == {
        "authorized": 1000, "captured": 800, "refunded": 0, "voided": 200,
    }  # fmt: skip
    # what the void freed is owed again, and may be authorized anew
    again = await _pay(client, shop, order["id"], "authorization", 200)
    assert again.status_code == 200, again.text


async def test_the_rest_authorized_after_a_direct_capture_can_be_captured(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, order = await _part_paid(admin, client)
    assert (await _pay(client, shop, order["id"], "authorization", 200)).status_code == 200
    over = await _pay(client, shop, order["id"], "capture", 201)
    assert (over.status_code, over.json()["code"]) == (409, "capture_exceeds_authorized")
    assert over.json()["capturable"] == 200
    captured = await _pay(client, shop, order["id"], "capture", 200)
    assert captured.status_code == 200, captured.text
    assert captured.json()["payment_amounts"] == {
        "authorized": 1000, "captured": 1000, "refunded": 0, "voided": 0,
    }  # fmt: skip
    assert (await _pay(client, shop, order["id"], "void", 1)).status_code == 409  # none open


async def test_an_exchange_paid_in_part_by_its_credit_confirms_once_the_rest_is_authorized(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    desk = await ReturnsDesk.open(admin)
    shirt = await desk.shop.product(admin, 5, unit_price=800, name="Shirt")
    jacket = await desk.shop.product(admin, 5, unit_price=1000, name="Jacket")
    order = await desk.shipped(client, [(shirt["sku"], 1)])
    rma = await _received(client, desk, order, 1, resolution="exchange",
                          exchange_lines=[{"sku": jacket["sku"], "quantity": 1}])  # fmt: skip
    done = await desk.post(client, f"/v1/returns/{rma['id']}/complete")
    assert done.status_code == 200, done.text
    exchange_id = done.json()["exchange_order_id"]
    exchange = (await client.get(f"/v1/orders/{exchange_id}", headers=desk.shop.headers)).json()
    assert (exchange["status"], exchange["totals"]["total"]) == ("pending", 1000)
    assert exchange["payment_amounts"] == {
        "authorized": 800, "captured": 800, "refunded": 0, "voided": 0,
    }  # fmt: skip

    rest = await _pay(client, desk.shop, exchange_id, "authorization", 200)
    assert rest.status_code == 200, rest.text
    assert rest.json()["status"] == "confirmed"
    assert (await _pay(client, desk.shop, exchange_id, "capture", 200)).status_code == 200


async def test_a_pending_order_with_an_authorization_open_after_a_refunded_sale_does_not_expire(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop, order = await _part_paid(admin, client, paid=500)
    assert (await _pay(client, shop, order["id"], "refund", 500)).status_code == 200
    held = await _pay(client, shop, order["id"], "authorization", 200)
    assert held.json()["status"] == "pending", held.text  # 500 + 200 does not cover 1000
    async with app.state.database.transaction() as conn:
        await conn.execute(
            "UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1",
            order["id"],
        )
    async with app.state.database.transaction() as conn:
        await expire_pending_orders(conn)
    still = (await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)).json()
    assert still["status"] == "pending"  # the 200 authorized is in force
    assert (await _pay(client, shop, order["id"], "void", 200)).status_code == 200


async def test_expiry_reads_what_is_in_force_from_every_reachable_state(app: FastAPI) -> None:
    """`EXPIRABLE_SQL`, run by PostgreSQL over the sums of every state the payment rules
    reach (tests/test_domain_payments.py), is `payment_in_force` negated: an order expires
    only with no authorization open and nothing captured and not refunded."""
    states = sorted(_reachable(5), key=str)
    async with app.state.database.transaction() as conn:
        rows = await conn.fetch(
            f"""
            SELECT n, {EXPIRABLE_SQL} AS expirable
            FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
                WITH ORDINALITY AS orders(authorized, captured, refunded, voided, n)
            ORDER BY n
            """,
            *([getattr(s, f) for s, _ in states] for f in PAYMENT_SUMS),
        )
    assert len(rows) == len(states)
    for (state, open_), row in zip(states, rows, strict=True):
        assert row["expirable"] is not payment_in_force(state), state
        assert row["expirable"] is (open_ == 0 and state.captured <= state.refunded), state
