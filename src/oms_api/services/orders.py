"""Orders after placement: reading them, and every state change through one entry point.

A change locks the order row (`FOR UPDATE`), asks the pure state machine what follows,
writes the new state, and records its events in the same transaction. Releasing
reservations locks the affected stock levels in (product, location) order — the same
order placement uses — so the two never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.db import driver_connection
from oms_api.domain import events as event_types
from oms_api.domain.errors import DomainError
from oms_api.domain.orders import (
    OrderCommand,
    OrderStatus,
    next_status,
    releases_reservations,
    transition_events,
)
from oms_api.domain.payments import (
    PaymentKind,
    PaymentTotals,
    apply_payment,
    is_settled,
    payment_status,
)
from oms_api.errors import Conflict, NotFound, Unprocessable
from oms_api.ids import new_id
from oms_api.jsonutil import dumps
from oms_api.models import Channel, Order
from oms_api.services.order_documents import load_order, load_orders
from oms_api.services.pagination import Page, paginate

LOCK_ORDER_SQL = """
SELECT id, channel_id, status, total, payment_method, authorized, captured, refunded, voided,
       event_sequence, confirmed_at, now() AS now
FROM orders WHERE id = $1 AND ($2::text IS NULL OR channel_id = $2)
FOR UPDATE
"""

LOCK_RESERVATIONS_SQL = """
SELECT a.product_id, a.location_id, a.sku, a.quantity
FROM order_allocations a
JOIN inventory_levels il ON il.product_id = a.product_id AND il.location_id = a.location_id
WHERE a.order_id = $1 AND a.quantity > 0
ORDER BY a.product_id, a.location_id
FOR UPDATE OF il, a
"""

RELEASE_RESERVATIONS_SQL = """
WITH u AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::text[])
         AS u(product_id, location_id, sku, quantity, movement_id)
), levels AS (
    UPDATE inventory_levels il SET reserved = il.reserved - u.quantity, updated_at = $7
    FROM u WHERE il.product_id = u.product_id AND il.location_id = u.location_id
), allocations AS (
    UPDATE order_allocations a SET quantity = 0
    FROM u WHERE a.order_id = $1 AND a.product_id = u.product_id AND a.location_id = u.location_id
)
INSERT INTO inventory_movements (id, product_id, sku, location_id, on_hand_delta,
                                 reserved_delta, reason, cause_type, cause_id, created_at)
SELECT u.movement_id, u.product_id, u.sku, u.location_id, 0, -u.quantity, $8, 'order', $1, $7
FROM u
"""

INSERT_EVENTS_SQL = """
INSERT INTO events (id, type, order_id, channel_id, sequence, data, created_at)
SELECT u.id, u.type, $1, $2, u.sequence, $3::jsonb, $4
FROM unnest($5::text[], $6::text[], $7::int[]) AS u(id, type, sequence)
"""


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
    """Newest first. Filters combine with AND; `q` is an order number or an email. The page
    of ids is chosen first, then their documents are read in one statement."""
    stmt = select(Order.id)
    if channel_id is not None:
        stmt = stmt.where(Order.channel_id == channel_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if channel_code is not None:
        stmt = stmt.join(Channel, Channel.id == Order.channel_id).where(
            Channel.code == channel_code
        )
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if external_id is not None:
        stmt = stmt.where(Order.external_id == external_id)
    if created_after is not None:
        stmt = stmt.where(Order.created_at >= created_after)
    if created_before is not None:
        stmt = stmt.where(Order.created_at < created_before)
    if q is not None:
        text = q.strip().lstrip("#")
        if text.isdigit() and len(text) <= 18:
            stmt = stmt.where(Order.number == int(text))
        elif "@" in text:
            stmt = stmt.where(Order.email_normalized == text.lower())
        else:
            stmt = stmt.where(Order.external_id == text)
    page = await paginate(session, stmt, keys=[Order.id], limit=limit, cursor=cursor)
    documents = await load_orders(await driver_connection(session), [r.id for r in page.items])
    return Page(documents, page.next_cursor)


async def order_events(
    conn: asyncpg.Connection, *, order_id: str, channel_id: str | None
) -> list[dict[str, Any]]:
    """The order's timeline, oldest first."""
    visible = await conn.fetchval(
        "SELECT 1 FROM orders WHERE id = $1 AND ($2::text IS NULL OR channel_id = $2)",
        order_id, channel_id,
    )  # fmt: skip
    if not visible:
        raise NotFound(f"No order with id {order_id}.")
    rows = await conn.fetch(
        "SELECT id, type, sequence, created_at, data FROM events WHERE order_id = $1 ORDER BY sequence",
        order_id,
    )
    return [dict(r) for r in rows]


async def _lock(conn: asyncpg.Connection, order_id: str, channel_id: str | None) -> asyncpg.Record:
    row = await conn.fetchrow(LOCK_ORDER_SQL, order_id, channel_id)
    if row is None:
        raise NotFound(f"No order with id {order_id}.")
    return row


def _totals(row: asyncpg.Record) -> PaymentTotals:
    return PaymentTotals(row["authorized"], row["captured"], row["refunded"], row["voided"])


async def _release_reservations(
    conn: asyncpg.Connection, order_id: str, now: datetime, reason: str
) -> None:
    held = await conn.fetch(LOCK_RESERVATIONS_SQL, order_id)
    if not held:
        return
    await conn.execute(
        RELEASE_RESERVATIONS_SQL,
        order_id,
        [r["product_id"] for r in held],
        [r["location_id"] for r in held],
        [r["sku"] for r in held],
        [r["quantity"] for r in held],
        [new_id("mov") for _ in held],
        now,
        reason,
    )


async def _record_events(
    conn: asyncpg.Connection, row: asyncpg.Record, types: Sequence[str], now: datetime
) -> dict[str, Any]:
    """Reload the order's document and record `types` with it as their data."""
    document = await load_order(conn, row["id"], channel_id=None)
    first = row["event_sequence"] + 1
    await conn.execute(
        INSERT_EVENTS_SQL,
        row["id"], row["channel_id"], dumps(document).decode(), now,
        [new_id("evt") for _ in types], list(types), list(range(first, first + len(types))),
    )  # fmt: skip
    return document


async def change_state(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    channel_id: str | None,
    command: OrderCommand,
    reason: str | None = None,
) -> dict[str, Any]:
    """The single entry point for hold, release, cancel and expire."""
    row = await _lock(conn, order_id, channel_id)
    current = OrderStatus(row["status"])
    ready = is_settled(_totals(row), row["total"], row["payment_method"])
    target = next_status(current, command, ready_to_confirm=ready)
    types = transition_events(current, command, target)
    now = row["now"]
    if releases_reservations(target):
        await _release_reservations(
            conn,
            order_id,
            now,
            "order_expired" if command is OrderCommand.EXPIRE else "order_cancelled",
        )
    if command is OrderCommand.EXPIRE:
        reason = reason or "expired: not paid in time"
    await conn.execute(
        """
        UPDATE orders SET status = $2::text, updated_at = $3::timestamptz, version = version + 1,
            event_sequence = event_sequence + $4::int,
            hold_reason = CASE WHEN $2 = 'on_hold' THEN $5::text
                               WHEN $2 = 'cancelled' THEN hold_reason END,
            cancel_reason = CASE WHEN $2 = 'cancelled' THEN $5 END,
            cancelled_at = CASE WHEN $2 = 'cancelled' THEN $3 END,
            confirmed_at = CASE WHEN $2 = 'confirmed' THEN coalesce(confirmed_at, $3)
                                ELSE confirmed_at END
        WHERE id = $1
        """,
        order_id, target.value, now, len(types), reason,
    )  # fmt: skip
    return await _record_events(conn, row, types, now)


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
    row = await _lock(conn, order_id, channel_id)
    current = OrderStatus(row["status"])
    if current is OrderStatus.CANCELLED and kind in (
        PaymentKind.AUTHORIZATION,
        PaymentKind.CAPTURE,
    ):
        raise Conflict(
            f"Cannot record a {kind.value} on a cancelled order; refunds and voids only.",
            code="order_cancelled",
        )
    try:
        totals = apply_payment(_totals(row), kind, amount, row["total"])
    except DomainError as exc:
        if exc.code == "invalid_amount":
            raise Unprocessable(exc.detail, code=exc.code) from None
        raise Conflict(exc.detail, code=exc.code, **exc.extra) from None
    types = [event_types.PAYMENT_RECORDED]
    target = current
    if current is OrderStatus.PENDING and is_settled(totals, row["total"], row["payment_method"]):
        target = next_status(current, OrderCommand.CONFIRM, ready_to_confirm=True)
        types.append(event_types.ORDER_CONFIRMED)
    now = row["now"]
    await conn.execute(
        "INSERT INTO payments (id, order_id, kind, amount, reference, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        new_id("pay"), order_id, kind.value, amount, reference, now,
    )  # fmt: skip
    await conn.execute(
        """
        UPDATE orders SET authorized = $2, captured = $3, refunded = $4, voided = $5,
            payment_status = $6, status = $7::text, updated_at = $8::timestamptz,
            version = version + 1, event_sequence = event_sequence + $9::int,
            confirmed_at = CASE WHEN $7 = 'confirmed' THEN coalesce(confirmed_at, $8)
                                ELSE confirmed_at END
        WHERE id = $1
        """,
        order_id, totals.authorized, totals.captured, totals.refunded, totals.voided,
        payment_status(totals).value, target.value, now, len(types),
    )  # fmt: skip
    return await _record_events(conn, row, types, now)


async def expire_pending_orders(conn: asyncpg.Connection, *, limit: int = 100) -> int:
    """Cancel unpaid pending orders past `expires_at`. Safe from many processes at once:
    each claims its orders with SKIP LOCKED."""
    ids = await conn.fetch(
        """
        SELECT id FROM orders
        WHERE status = 'pending' AND payment_status = 'unpaid' AND expires_at <= now()
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
