"""Returns: opened by a channel for its shipped units, approved, received (resellable
units back on hand through the one stock path, damaged ones recorded), and completed —
with a refund recorded through the one payment path, or an exchange order placed through
the same plan and writer as any order.

Every change locks the order row first, then the return: changes of one order's returns
run one at a time, so two completes can never refund more than was captured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain import events as E
from oms_api.domain.access import Principal
from oms_api.domain.errors import DomainError
from oms_api.domain.payments import PaymentKind
from oms_api.domain.placement import LineRequest, OrderRequest, PaymentRequest, plan_order
from oms_api.domain.returns import (
    OPEN,
    Resolution,
    ReturnableLine,
    ReturnCommand,
    ReturnSettings,
    ReturnStatus,
    check_completion,
    check_exchange_currency,
    check_exchange_skus,
    check_exchange_still_priced,
    check_receipt,
    check_resolution,
    check_returnable,
    exchange_credit,
    order_return_status,
    refund_amount,
    settled_as,
)
from oms_api.domain.risk import address_key
from oms_api.errors import NotFound
from oms_api.ids import new_id
from oms_api.jsonutil import dumps, iso
from oms_api.models import Return
from oms_api.outbox import record_events
from oms_api.services import placement
from oms_api.services.backorders import lock_waiting_orders, receive_stock
from oms_api.services.order_state import lock_order
from oms_api.services.orders import credited_to_exchanges, record_payment, refundable
from oms_api.services.pagination import Page, paginate_documents
from oms_api.services.scoping import channel_of, fence_location_sql, fence_sql, scope_to_channel
from oms_api.services.stock import stock_move
from oms_api.services.transitions import RETURN, transition

VISIBLE_LOCATION_SQL = f"""
SELECT 1 FROM locations l WHERE l.id = $1 AND {fence_location_sql("l.id", 2)}
"""

RETURNABLE_SQL = """
SELECT l.id AS line_id, l.quantity_shipped AS shipped, l.quantity_returned AS returned,
  coalesce((SELECT sum(rl.quantity - rl.quantity_restocked - rl.quantity_damaged)
            FROM return_lines rl JOIN returns r ON r.id = rl.return_id
            WHERE rl.line_id = l.id AND r.status = ANY($2::text[])), 0) AS pending,
  (SELECT max(coalesce(s.delivered_at, s.shipped_at))
   FROM shipment_lines sl JOIN shipments s ON s.id = sl.shipment_id
   WHERE sl.line_id = l.id AND s.status IN ('shipped', 'delivered')) AS since
FROM order_lines l WHERE l.order_id = $1 ORDER BY l.position
"""

RETURN_LOCATION_SQL = """
SELECT s.location_id FROM shipment_lines sl JOIN shipments s ON s.id = sl.shipment_id
WHERE sl.line_id = ANY($1::text[]) AND s.status IN ('shipped', 'delivered')
ORDER BY s.shipped_at DESC LIMIT 1
"""

INSERT_RETURN_SQL = """
WITH r AS (
    INSERT INTO returns (id, number, order_id, channel_id, status, resolution, exchange_lines,
                         location_id)
    VALUES ($1, 'RMA-' || nextval('return_number_seq'), $2, $3, 'requested', $4, $5::jsonb, $6)
    RETURNING number
), lines AS (
    INSERT INTO return_lines (return_id, line_id, quantity, reason, note)
    SELECT $1, * FROM unnest($7::text[], $8::int[], $9::text[], $10::text[])
)
SELECT number FROM r
"""

RETURN_STATUS_SQL = """
SELECT (SELECT coalesce(sum(quantity_shipped), 0) FROM order_lines WHERE order_id = $1) AS shipped,
       (SELECT coalesce(sum(quantity_returned), 0) FROM order_lines WHERE order_id = $1) AS returned,
       (SELECT count(*) FROM returns WHERE order_id = $1 AND status = ANY($2::text[])) AS open
"""

# What a completed return settled (its state moved through the one door already).
# An exchange completed as a refund keeps no exchange lines: it sends nothing.
SETTLED_SQL = """
UPDATE returns SET refund_amount = coalesce($2, refund_amount),
    refund_shipping = refund_shipping OR $3, exchange_order_id = coalesce($4, exchange_order_id),
    resolution = $5,
    exchange_lines = CASE WHEN $5 = 'refund' THEN '[]'::jsonb ELSE exchange_lines END
WHERE id = $1
"""

RETURN_SELECT = """
SELECT r.*, o.number AS order_number,
  (SELECT json_agg(json_build_object(
      'line_id', rl.line_id, 'sku', l.sku, 'name', l.name, 'unit_price', l.unit_price,
      'quantity', rl.quantity, 'reason', rl.reason, 'note', rl.note,
      'quantity_restocked', rl.quantity_restocked, 'quantity_damaged', rl.quantity_damaged)
      ORDER BY l.position)
   FROM return_lines rl JOIN order_lines l ON l.id = rl.line_id
   WHERE rl.return_id = r.id) AS lines_
FROM returns r JOIN orders o ON o.id = r.order_id
"""

RETURN_TIMES = ("created_at", "updated_at", "approved_at", "received_at", "completed_at",
                "rejected_at", "cancelled_at")  # fmt: skip


def return_document(row: Any) -> dict[str, Any]:
    lines = [
        {"line_id": x["line_id"], "sku": x["sku"], "name": x["name"], "quantity": x["quantity"],
         "unit_price": x["unit_price"], "reason": x["reason"], "note": x["note"],
         "quantity_received": x["quantity_restocked"] + x["quantity_damaged"],
         "quantity_restocked": x["quantity_restocked"], "quantity_damaged": x["quantity_damaged"]}
        for x in row["lines_"] or ()
    ]  # fmt: skip
    return {
        "id": row["id"],
        "number": row["number"],
        "order_id": row["order_id"],
        "order_number": row["order_number"],
        "channel_id": row["channel_id"],
        "status": row["status"],
        "resolution": row["resolution"],
        "lines": lines,
        "exchange_lines": row["exchange_lines"],
        "location_id": row["location_id"],
        "refund_amount": row["refund_amount"],
        "refund_shipping": row["refund_shipping"],
        "exchange_order_id": row["exchange_order_id"],
        "reject_reason": row["reject_reason"],
        "cancel_reason": row["cancel_reason"],
        **{name: iso(row[name]) for name in RETURN_TIMES},
        "version": row["version"],
    }


async def load_returns(conn: asyncpg.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = await conn.fetch(RETURN_SELECT + " WHERE r.id = ANY($1::text[])", list(ids))
    by_id = {r["id"]: return_document(r) for r in rows}
    return [by_id[i] for i in ids]


async def load_return(
    conn: asyncpg.Connection, return_id: str, *, channel_id: str | None
) -> dict[str, Any]:
    row = await conn.fetchrow(
        RETURN_SELECT + f" WHERE r.id = $1 AND {fence_sql('r.channel_id', 2)}",
        return_id, channel_id,
    )  # fmt: skip
    if row is None:
        raise NotFound(f"No return with id {return_id}.")
    return return_document(row)


async def _window(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT value FROM app_settings WHERE key = 'returns'")
    return ReturnSettings.from_json(value).window_days


async def _settle_order(conn: asyncpg.Connection, order_id: str) -> None:
    """The order's `return_status`, from its lines and returns (the order's state is not
    touched: returns never change it)."""
    row = await conn.fetchrow(RETURN_STATUS_SQL, order_id, [s.value for s in OPEN])
    if row is None:  # aggregates always answer one row
        raise RuntimeError("the return status read answered no row")
    status = order_return_status(row["shipped"], row["returned"], row["open"])
    await conn.execute(
        "UPDATE orders SET return_status = $2, updated_at = now(), version = version + 1 "
        "WHERE id = $1 AND return_status <> $2",
        order_id, status.value,
    )  # fmt: skip


async def _record(
    conn: asyncpg.Connection, order_id: str, return_id: str, events: Sequence[str]
) -> dict[str, Any]:
    document = (await load_returns(conn, [return_id]))[0]
    await record_events(conn, [(e, document) for e in events], order_id=order_id)
    return document


async def _check_location(conn: asyncpg.Connection, location_id: str, principal: Principal) -> None:
    """422 `unknown_location` unless the location exists and, for a channel-bound key, its
    channel sells from it: such a key moves stock nowhere else (SPEC §3)."""
    if await conn.fetchval(VISIBLE_LOCATION_SQL, location_id, channel_of(principal)) is None:
        raise DomainError(
            "unknown_location", f"No location with id {location_id}.", kind="invalid",
            loc=["body", "location_id"],
        )  # fmt: skip


async def open_return(
    conn: asyncpg.Connection, *, principal: Principal, order_id: str,
    lines: Sequence[tuple[str, int, str, str | None]], resolution: Resolution,
    exchange_lines: Sequence[tuple[str, int]], location_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    """A return of shipped units of the order: `lines` are (line_id, quantity, reason,
    note). Sent back to `location_id`, by default where the units shipped from."""
    order = await lock_order(conn, order_id, principal.channel_id)
    check_resolution(resolution, exchange_lines)
    returnable = {
        r["line_id"]: ReturnableLine(r["line_id"], r["shipped"], r["returned"], r["pending"], r["since"])
        for r in await conn.fetch(RETURNABLE_SQL, order_id, [s.value for s in OPEN])
    }  # fmt: skip
    check_returnable([(x[0], x[1]) for x in lines], returnable, order["now"], await _window(conn))
    await _check_catalogue(conn, exchange_lines, order["currency"])
    if location_id is None:  # where the units shipped from
        location_id = await conn.fetchval(RETURN_LOCATION_SQL, [x[0] for x in lines])
    if location_id is None:
        raise DomainError(
            "location_required", "Name the location the return is sent back to.",
            kind="invalid", loc=["body", "location_id"],
        )  # fmt: skip
    else:
        await _check_location(conn, location_id, principal)
    return_id = new_id("ret")
    await conn.fetchval(
        INSERT_RETURN_SQL, return_id, order_id, order["channel_id"], resolution.value,
        dumps([{"sku": sku, "quantity": q} for sku, q in exchange_lines]).decode(), location_id,
        [x[0] for x in lines], [x[1] for x in lines], [x[2] for x in lines], [x[3] for x in lines],
    )  # fmt: skip
    await _settle_order(conn, order_id)
    return await _record(conn, order_id, return_id, [E.RETURN_REQUESTED])


async def _check_catalogue(
    conn: asyncpg.Connection, exchange_lines: Sequence[tuple[str, int]], currency: str
) -> None:
    """The catalogue's word on what an exchange sends (`check_exchange_skus`), in the
    order's `currency` (`check_exchange_currency`)."""
    if not exchange_lines:
        return
    skus = sorted({sku for sku, _ in exchange_lines})
    products = await conn.fetch(
        "SELECT sku, active, currency FROM products WHERE sku = ANY($1::text[])", skus
    )
    check_exchange_skus(skus, {r["sku"]: r["active"] for r in products})
    check_exchange_currency(
        [sku for sku, _ in exchange_lines], {r["sku"]: r["currency"] for r in products}, currency
    )


async def _locked(
    conn: asyncpg.Connection, return_id: str, channel_id: str | None
) -> tuple[asyncpg.Record, asyncpg.Record]:
    """(the order's row, the return's row), both locked, order first; 404 if the return is
    missing or another channel's."""
    order_id = await conn.fetchval(
        f"SELECT order_id FROM returns WHERE id = $1 AND {fence_sql('channel_id', 2)}",
        return_id, channel_id,
    )  # fmt: skip
    if order_id is None:
        raise NotFound(f"No return with id {return_id}.")
    order = await lock_order(conn, order_id, None)
    row = await conn.fetchrow(
        "SELECT r.*, (SELECT coalesce(sum(quantity_restocked + quantity_damaged), 0) "
        "FROM return_lines WHERE return_id = r.id) AS received_units, "
        "(SELECT sum(quantity) FROM return_lines WHERE return_id = r.id) AS units "
        "FROM returns r WHERE r.id = $1 FOR UPDATE",
        return_id,
    )
    if row is None:  # returns are never deleted
        raise NotFound(f"No return with id {return_id}.")
    return order, row


async def change_return(
    conn: asyncpg.Connection, *, principal: Principal, return_id: str, command: ReturnCommand,
    reason: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """approve, reject or cancel."""
    order, row = await _locked(conn, return_id, principal.channel_id)
    moved = await transition(
        conn, RETURN, return_id, ReturnStatus(row["status"]), command, (reason,),
        any_in=row["received_units"] > 0,
    )  # fmt: skip
    await _settle_order(conn, order["id"])
    return await _record(conn, order["id"], return_id, moved.events)


@dataclass(frozen=True, slots=True)
class Receipt:
    line_id: str
    quantity: int
    resellable: bool


async def receive(
    conn: asyncpg.Connection, *, principal: Principal, return_id: str, location_id: str,
    receipts: Sequence[Receipt],
) -> dict[str, Any]:  # fmt: skip
    """Units arrive at `location_id`: resellable ones go back on hand there (ledger
    `cause_type=return`), damaged ones are recorded only. Several receipts may make one
    return; it is `received` once every unit is in."""
    order, row = await _locked(conn, return_id, principal.channel_id)
    expected = {
        r["line_id"]: r
        for r in await conn.fetch(
            "SELECT rl.*, l.sku, l.product_id FROM return_lines rl "
            "JOIN order_lines l ON l.id = rl.line_id WHERE rl.return_id = $1",
            return_id,
        )
    }
    all_in = check_receipt(
        [(r.line_id, r.quantity) for r in receipts],
        {line_id: x["quantity"] - x["quantity_restocked"] - x["quantity_damaged"]
         for line_id, x in expected.items()},
        received=row["received_units"], units=row["units"],
    )  # fmt: skip
    moved = await transition(
        conn, RETURN, return_id, ReturnStatus(row["status"]), ReturnCommand.RECEIVE,
        all_in=all_in,
    )  # fmt: skip
    await _check_location(conn, location_id, principal)
    # Resellable units may fill backorders: their orders are locked before the levels.
    restocked = sorted({expected[r.line_id]["product_id"] for r in receipts if r.resellable})
    waiting = await lock_waiting_orders(conn, location_id, restocked)
    await receive_stock(conn, location_id, [
        stock_move(product_id=expected[r.line_id]["product_id"], location_id=location_id,
                   sku=expected[r.line_id]["sku"], on_hand=r.quantity, reason="returned",
                   cause_type="return", cause_id=return_id)
        for r in receipts if r.resellable
    ], waiting)  # fmt: skip
    ids = [r.line_id for r in receipts]
    await conn.execute(
        """
        WITH d AS (
            SELECT line_id, sum(CASE WHEN resellable THEN q ELSE 0 END) AS restocked,
                   sum(CASE WHEN resellable THEN 0 ELSE q END) AS damaged
            FROM unnest($2::text[], $3::int[], $4::bool[]) AS x(line_id, q, resellable)
            GROUP BY line_id
        ), lines AS (
            UPDATE order_lines l SET quantity_returned = l.quantity_returned + d.restocked + d.damaged
            FROM d WHERE l.id = d.line_id
        )
        UPDATE return_lines rl
        SET quantity_restocked = rl.quantity_restocked + d.restocked,
            quantity_damaged = rl.quantity_damaged + d.damaged
        FROM d WHERE rl.return_id = $1 AND rl.line_id = d.line_id
        """,
        return_id, ids, [r.quantity for r in receipts], [r.resellable for r in receipts],
    )  # fmt: skip
    await _settle_order(conn, order["id"])
    return await _record(conn, order["id"], return_id, moved.events)


async def complete(
    conn: asyncpg.Connection, *, principal: Principal, return_id: str,
    explicit_amount: int | None, refund_shipping: bool, pending_ttl_seconds: int,
    instead: Resolution | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A refund return records its refund on the order; an exchange places its new order,
    or with `instead` REFUND is refunded as a refund return is. Either fails whole (409
    `refund_exceeds_captured`, `insufficient_stock`), leaving the return `received`."""
    order, row = await _locked(conn, return_id, principal.channel_id)
    resolution = settled_as(Resolution(row["resolution"]), instead)
    check_completion(resolution, explicit_amount=explicit_amount, refund_shipping=refund_shipping)
    moved = await transition(
        conn, RETURN, return_id, ReturnStatus(row["status"]), ReturnCommand.COMPLETE
    )
    document = (await load_returns(conn, [return_id]))[0]
    refunded: int | None = None
    with_shipping = False
    exchange_order_id: str | None = None
    if resolution is Resolution.REFUND:
        shipping_back = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM returns WHERE order_id = $1 AND refund_shipping)",
            order["id"],
        )
        shipping = await conn.fetchval("SELECT shipping FROM orders WHERE id = $1", order["id"])
        refunded, with_shipping = refund_amount(
            [(x["quantity"], x["unit_price"]) for x in document["lines"]],
            explicit=explicit_amount, shipping=shipping, shipping_refunded_already=shipping_back,
            refund_shipping=refund_shipping,
        )  # fmt: skip
        if refunded > 0:
            await record_payment(
                conn, order_id=order["id"], channel_id=None, kind=PaymentKind.REFUND,
                amount=refunded, reference=f"return {document['number']}",
            )  # fmt: skip
    else:
        exchange_order_id = await _place_exchange(conn, order, document, pending_ttl_seconds)
    await conn.execute(
        SETTLED_SQL, return_id, refunded, with_shipping, exchange_order_id, resolution.value
    )
    await _settle_order(conn, order["id"])
    return await _record(conn, order["id"], return_id, moved.events)


async def _place_exchange(
    conn: asyncpg.Connection, order: asyncpg.Record, document: dict[str, Any], ttl: int
) -> str:
    """The exchange's order: same channel, customer and addresses, the exchange lines at
    catalogue prices, shipping free, paid by a credit of what the returned units cost —
    up to its total. Placed through the same plan and writer as any order."""
    original = await conn.fetchrow(
        "SELECT customer_id, currency, shipping_address, billing_address FROM orders WHERE id = $1",
        order["id"],
    )
    if original is None:  # locked above
        raise RuntimeError("the order vanished")
    wanted = [(x["sku"], x["quantity"]) for x in document["exchange_lines"]]
    row = await placement.read_placement(
        conn, channel_id=order["channel_id"], channel_code=None, skus=sorted({s for s, _ in wanted}),
        customer_id=original["customer_id"], email=None,
    )  # fmt: skip
    check_exchange_still_priced(
        {p["sku"]: p["currency"] for p in row["products"] or ()}, original["currency"]
    )
    prices = {p["sku"]: p["unit_price"] for p in row["products"] or ()}
    total = sum(prices.get(sku, 0) * q for sku, q in wanted)
    credit = exchange_credit(
        [(x["quantity"], x["unit_price"]) for x in document["lines"]], total,
        # what its customer paid on the original order and has not had back: what a
        # refund of it could take
        unspent=refundable(order, await credited_to_exchanges(conn, order["id"])),
    )  # fmt: skip
    request = OrderRequest(
        lines=[LineRequest(sku, q) for sku, q in wanted],
        currency=original["currency"],
        payment=PaymentRequest("exchange_credit", "paid", credit, f"return {document['number']}")
        if credit > 0 else None,
        shipping_address=original["shipping_address"],
        billing_address=original["billing_address"],
        note=f"Exchange for return {document['number']} of order #{document['order_number']}",
        exchange_for_return_id=document["id"],
    )  # fmt: skip
    customer = row["customer"]
    plan = plan_order(
        request,
        placement.placement_at(
            row, channel_id=order["channel_id"], customer=customer, pending_ttl_seconds=ttl,
            shipping_address_key=address_key(original["shipping_address"]),
            purchase=False,  # an exchange is not a new purchase: no velocity rule
        ),
    )  # fmt: skip
    await placement.write_plan(
        conn, plan, channel_code=row["channel"]["code"], customer=customer, inline=None,
        idempotency=None, now=row["now"],
    )  # fmt: skip
    return str(plan.order["id"])


async def list_returns(
    session: AsyncSession, *, channel_id: str | None, status: str | None, order_id: str | None,
    number: str | None, limit: int, cursor: str | None,
) -> Page[dict[str, Any]]:  # fmt: skip
    stmt = scope_to_channel(select(Return.id), channel_id, Return.channel_id)
    if status is not None:
        stmt = stmt.where(Return.status == status)
    if order_id is not None:
        stmt = stmt.where(Return.order_id == order_id)
    if number is not None:
        stmt = stmt.where(Return.number == number.strip().upper())
    return await paginate_documents(
        session, stmt, keys=[Return.id], limit=limit, cursor=cursor, load=load_returns
    )
