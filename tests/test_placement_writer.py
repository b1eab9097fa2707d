"""Placement's writer takes the plan's rows whole: every column the plan gives is written
(`return_status` was dropped by a hand-kept list), and a row type that does not match its
table's columns is refused once, as the service loads — never per order."""

from __future__ import annotations

from typing import Any, TypedDict

import httpx
import pytest
from fastapi import FastAPI

from oms_api.domain.placement import LineRequest, OrderRequest, PaymentRow, plan_order
from oms_api.models import Payment
from oms_api.services import placement
from tests.factories import Shop, order_body, place


class PaymentWithTip(PaymentRow):
    tip: int


class PaymentShort(TypedDict):
    id: str
    order_id: str


def test_a_row_type_with_a_key_the_writer_does_not_know_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"keys it does not know \['tip'\]"):
        placement.writer_columns(PaymentWithTip, Payment)
    with pytest.raises(RuntimeError, match=r"columns the plan lacks \['amount', 'created_at'"):
        placement.writer_columns(PaymentShort, Payment)


def test_the_plan_row_types_are_the_writers_columns() -> None:
    assert "return_status" in placement.WRITER_COLUMNS["order"]
    assert placement.WRITER_COLUMNS["payments"] == placement.writer_columns(PaymentRow, Payment)


async def test_the_writer_writes_every_column_the_plan_gives(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    body = order_body(None, [(product["sku"], 1)])
    assert (await place(client, body, headers=shop.headers)).status_code == 201
    try:
        async with app.state.database.transaction() as conn:
            await _written_whole(conn, shop, product["sku"], body["customer"]["email"])
            raise Rollback  # leave nothing behind
    except Rollback:
        pass


async def _written_whole(conn: Any, shop: Shop, sku: str, email: str) -> None:
    row = await placement.read_placement(
        conn, channel_id=shop.channel["id"], channel_code=None, skus=[sku], customer_id=None,
        email=email,
    )  # fmt: skip
    customer = row["customer"]
    plan = plan_order(
        OrderRequest(lines=[LineRequest(sku, 1)], note="whole"),
        placement.placement_at(
            row, channel_id=shop.channel["id"], customer=customer, pending_ttl_seconds=60,
            shipping_address_key="0" * 32,
        ),
    )  # fmt: skip
    # Values no column default gives: written, or this test fails.
    plan.order["return_status"] = "requested"
    plan.order["risk_score"] = 7
    record = placement.placement_record(plan, customer, None, None, row["now"])
    placement.check_record(record, set(placement.WRITER_COLUMNS))  # every kind, now
    await placement.write_plan(
        conn, plan, channel_code=shop.channel["code"], customer=customer, inline=None,
        idempotency=None, now=row["now"],
    )  # fmt: skip
    written = await conn.fetchrow("SELECT * FROM orders WHERE id = $1", plan.order["id"])
    assert written is not None
    given: dict[str, Any] = dict(plan.order) | {"event_sequence": 1}  # the event path numbers it
    assert {k: written[k] for k in given} == given
    lines = await conn.fetch(
        "SELECT * FROM order_lines WHERE order_id = $1 ORDER BY position", plan.order["id"]
    )
    assert [dict(line) for line in lines] == [dict(line) for line in plan.lines]


class Rollback(Exception):
    pass


def test_a_record_row_with_a_stray_key_is_refused() -> None:
    record: dict[str, Any] = {name: [] for name in placement.WRITER_COLUMNS}
    record["order"] = dict.fromkeys(placement.WRITER_COLUMNS["order"]) | {"colour": "red"}
    with pytest.raises(RuntimeError, match=r"keys it does not know \['colour'\]"):
        placement.check_record(record, set(placement.WRITER_COLUMNS))
