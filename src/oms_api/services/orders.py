"""Orders after placement: reading them, and every state change through one entry point.

A change locks the order row (`FOR UPDATE`), moves it through the one door
(`services/transitions.py`: the pure machine's answer, a conditional UPDATE), and records
its events in the same transaction. Releasing
reservations locks the affected stock levels in (product, location) order — the same
order placement uses — so the two never deadlock.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import String, bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.db import driver_connection
from oms_api.domain import events as event_types
from oms_api.domain.orders import OrderCommand, OrderStatus, after_payment, cancels_the_rest
from oms_api.domain.payments import (
    EXPIRABLE_SQL,
    PaymentKind,
    PaymentTotals,
    apply_payment,
    is_settled,
    payment_limit,
    payment_status,
)
from oms_api.errors import NotFound
from oms_api.ids import new_id
from oms_api.models import Channel, Event, Order
from oms_api.outbox import event_data_sql, record_events
from oms_api.services.automation import allocate_if_automatic
from oms_api.services.backorders import plan_release_fills, record_fills
from oms_api.services.order_documents import ORDER_PAGE_SQL, document_from_row, load_order
from oms_api.services.order_state import lock_order, record_order_events, settle_fulfilment
from oms_api.services.pagination import Page, PageStatement, fetch_page, page_statement, paginate
from oms_api.services.reservations import cancel_unshipped, release_unshipped
from oms_api.services.scoping import fence_sql, fence_values, scope_to_bound_channel
from oms_api.services.shipments import cancel_open_shipments
from oms_api.services.stock import move_stock
from oms_api.services.transitions import ORDER, transition


async def get_order(
    conn: asyncpg.Connection, *, order_id: str, channel_id: str | None
) -> dict[str, Any]:
    return await load_order(conn, order_id, channel_id=channel_id)


async def list_orders(
    session: AsyncSession,
    *,
    channel_id: str | None,
    status: str | None = None,
    channel_code: str | None = None,
    customer_id: str | None = None,
    external_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    q: str | None = None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """Newest first. Filters combine with AND; `q` is an order number or an email. One
    statement: the page of ids, chosen first, and their documents."""
    values: dict[str, Any] = fence_values(channel_id)
    if status is not None:
        values["status"] = status
    if channel_code is not None:
        values["channel_code"] = channel_code
    if customer_id is not None:
        values["customer_id"] = customer_id
    if external_id is not None:
        values["external_id"] = external_id
    if created_after is not None:
        values["created_after"] = created_after
    if created_before is not None:
        values["created_before"] = created_before
    if q is not None:
        text = q.strip().lstrip("#")
        # ASCII digits only: `str.isdigit()` also takes `²` or `①`, which `int()` refuses.
        if text.isascii() and text.isdigit() and len(text) <= 18:
            values["number"] = int(text)
        elif "@" in text:
            values["email"] = text  # folded by the database, as orders' email_normalized
        else:
            values["q_external_id"] = text
    statement = _list_statement(frozenset(values), limit, cursor is not None)
    return await fetch_page(
        await driver_connection(session), statement, values, cursor=cursor,
        render=document_from_row,
    )  # fmt: skip


@lru_cache(maxsize=512)
def _list_statement(filters: frozenset[str], limit: int, after_cursor: bool) -> PageStatement:
    """The list's statement for one set of filters (their names, as `list_orders` binds
    them) and page size, compiled once."""
    stmt = scope_to_bound_channel(select(Order.id), filters, Order.channel_id)
    if "status" in filters:
        stmt = stmt.where(Order.status == bindparam("status"))
    if "channel_code" in filters:
        stmt = stmt.join(Channel, Channel.id == Order.channel_id).where(
            Channel.code == bindparam("channel_code")
        )
    if "customer_id" in filters:
        stmt = stmt.where(Order.customer_id == bindparam("customer_id"))
    if "external_id" in filters:
        stmt = stmt.where(Order.external_id == bindparam("external_id"))
    if "created_after" in filters:
        stmt = stmt.where(Order.created_at >= bindparam("created_after"))
    if "created_before" in filters:
        stmt = stmt.where(Order.created_at < bindparam("created_before"))
    if "number" in filters:
        stmt = stmt.where(Order.number == bindparam("number"))
    if "email" in filters:
        stmt = stmt.where(Order.email_normalized == func.lower(bindparam("email", type_=String)))
    if "q_external_id" in filters:
        stmt = stmt.where(Order.external_id == bindparam("q_external_id"))
    return page_statement(
        stmt, keys=[Order.id], documents=ORDER_PAGE_SQL, limit=limit, after_cursor=after_cursor
    )


async def order_events(
    session: AsyncSession, *, order_id: str, channel_id: str | None, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """The order's timeline, oldest first, a page at a time by its `sequence`."""
    conn = await driver_connection(session)
    visible = await conn.fetchval(
        f"SELECT 1 FROM orders WHERE id = $1 AND {fence_sql('channel_id', 2)}",
        order_id, channel_id,
    )  # fmt: skip
    if not visible:
        raise NotFound(f"No order with id {order_id}.")
    data = literal_column(event_data_sql(Event.__tablename__), type_=Event.data.type).label("data")
    stmt = select(Event.id, Event.type, Event.sequence, Event.created_at, data).where(
        Event.order_id == order_id
    )
    page = await paginate(
        session, stmt, keys=[Event.sequence], limit=limit, cursor=cursor, descending=False
    )
    return Page([dict(row._mapping) for row in page.items], page.next_cursor)


def _totals(row: asyncpg.Record) -> PaymentTotals:
    return PaymentTotals(row["authorized"], row["captured"], row["refunded"], row["voided"])


async def change_state(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    channel_id: str | None,
    command: OrderCommand,
    reason: str | None = None,
) -> dict[str, Any]:
    """The single entry point for hold, release, cancel and expire."""
    row = await lock_order(conn, order_id, channel_id)
    current = OrderStatus(row["status"])
    ready = is_settled(_totals(row), row["total"], row["payment_method"])
    if command is OrderCommand.EXPIRE:
        # The cancellation email says "not paid in time" for this reason exactly
        # (templates/order_cancelled.*): a shop's own note is never told to the customer.
        reason = reason or "expired: not paid in time"
    cancelling = cancels_the_rest(current, command)
    moved = await transition(
        conn, ORDER, order_id, current, command, (reason, cancelling), ready_to_confirm=ready
    )
    types = moved.events
    shipment_events: list[tuple[str, dict[str, Any]]] = []
    if cancelling:  # open shipments first: their units go back to the reservations released
        shipment_events = await cancel_open_shipments(conn, order_id, reason)
        releases = await release_unshipped(
            conn,
            order_id=order_id,
            reason="order_expired" if command is OrderCommand.EXPIRE else "order_cancelled",
        )
        # What they release goes on to waiting backorders, in the same call of the stock path.
        fills = await plan_release_fills(conn, releases)
        await move_stock(conn, [*releases, *(m for f in fills for m in f.moves())])
        await cancel_unshipped(conn, order_id)
        await record_fills(conn, fills)
    if current is OrderStatus.PARTIALLY_SHIPPED:  # the rest cancelled: delivered already?
        types += await settle_fulfilment(conn, order_id, moved.target)
    document = await load_order(conn, order_id, channel_id=None)
    await record_events(
        conn, [*shipment_events, *((t, document) for t in types)], order_id=order_id
    )
    if event_types.ORDER_CONFIRMED in types:  # released from hold, confirmed
        await allocate_if_automatic(conn, order_id, moved.target)
    return document


# What of an order's captured money paid its exchanges' orders: the credit each exchange's
# order was paid with (the capture `returns._place_exchange` records with the order, at
# its creation, referenced by its return's number). Spent there: neither refunded on this
# order nor credited again. Only that capture: a later one on the exchange's order (its
# balance, paid by the customer) may name the return too, and is money of its own.
CREDITED_SQL = """
SELECT coalesce(sum(p.amount), 0)::bigint FROM returns r
JOIN orders x ON x.id = r.exchange_order_id
JOIN payments p ON p.order_id = x.id AND p.kind = 'capture' AND p.created_at = x.created_at
               AND p.reference = 'return ' || r.number
WHERE r.order_id = $1
"""


async def credited_to_exchanges(conn: asyncpg.Connection, order_id: str) -> int:
    """What of the order's captured money paid its exchanges' orders (`CREDITED_SQL`)."""
    return int(await conn.fetchval(CREDITED_SQL, order_id))


def refundable(order: asyncpg.Record, credited: int) -> int:
    """What a refund may take now of a locked order (`lock_order`'s row): captured, less
    refunded, less what paid its exchanges — `payment_limit`'s rule, the one place it is."""
    return payment_limit(_totals(order), PaymentKind.REFUND, order["total"], credited=credited)


async def record_payment(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    channel_id: str | None,
    kind: PaymentKind,
    amount: int,
    reference: str | None,
) -> dict[str, Any]:
    """Record a payment transaction; a pending order whose payment is now settled is
    confirmed in the same transaction."""
    row = await lock_order(conn, order_id, channel_id)
    current = OrderStatus(row["status"])
    credited = await credited_to_exchanges(conn, order_id) if kind is PaymentKind.REFUND else 0
    totals = apply_payment(
        _totals(row), kind, amount, row["total"], cancelled=current is OrderStatus.CANCELLED,
        credited=credited,
    )  # fmt: skip
    types = [event_types.PAYMENT_RECORDED]
    await conn.execute(
        "INSERT INTO payments (id, order_id, kind, amount, reference, created_at) VALUES ($1, $2, $3, $4, $5, now())",
        new_id("pay"), order_id, kind.value, amount, reference,
    )  # fmt: skip
    await conn.execute(
        """
        UPDATE orders SET authorized = $2, captured = $3, refunded = $4, voided = $5,
            payment_status = $6, updated_at = now(), version = version + 1
        WHERE id = $1
        """,
        order_id, totals.authorized, totals.captured, totals.refunded, totals.voided,
        payment_status(totals).value,
    )  # fmt: skip
    command = after_payment(
        current, settled=is_settled(totals, row["total"], row["payment_method"])
    )
    if command is not None:
        moved = await transition(conn, ORDER, order_id, current, command)
        types += moved.events
        current = moved.target
    document = await record_order_events(conn, order_id, types)
    if event_types.ORDER_CONFIRMED in types:
        await allocate_if_automatic(conn, order_id, current)
    return document


async def expire_pending_orders(conn: asyncpg.Connection, *, limit: int = 100) -> int:
    """Cancel pending orders past `expires_at` with no payment in force (no authorization
    or capture holds: `domain.payments.payment_in_force`), e.g. one whose authorization
    was voided. Safe from many processes at once: each claims its orders with SKIP
    LOCKED. Expire one per transaction (`limit=1`, as housekeeping does) where requests
    run: each order locks its stock levels in turn, so a transaction of several holds one
    order's levels while it waits for the next one's, out of the order placements lock
    them in (a deadlock)."""
    ids = await conn.fetch(
        f"""
        SELECT id FROM orders
        WHERE status = 'pending' AND expires_at <= now() AND {EXPIRABLE_SQL}
        ORDER BY expires_at LIMIT $1
        FOR UPDATE SKIP LOCKED
        """,
        limit,
    )
    for record in ids:
        await change_state(
            conn, order_id=record["id"], channel_id=None, command=OrderCommand.EXPIRE
        )
    return len(ids)
