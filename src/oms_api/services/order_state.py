"""An order's state: lock it, move it (through the one door, `services/transitions.py`),
record its events. Used by the order commands and by shipments, whose progress derives the
order's state after confirmation (`settle_fulfilment`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from oms_api.domain.orders import Fulfilment, OrderStatus, fulfilment_commands
from oms_api.errors import NotFound
from oms_api.outbox import record_events
from oms_api.services.order_documents import load_order
from oms_api.services.scoping import fence_sql
from oms_api.services.transitions import ORDER, transition

LOCK_ORDER_SQL = f"""
SELECT id, channel_id, status, currency, total, payment_method, authorized, captured,
       refunded, voided, confirmed_at, now() AS now
FROM orders WHERE id = $1 AND {fence_sql("channel_id", 2)}
FOR UPDATE
"""

FULFILMENT_SQL = """
SELECT (SELECT coalesce(sum(quantity - quantity_cancelled), 0) FROM order_lines
        WHERE order_id = $1) AS units,
       (SELECT coalesce(sum(quantity_shipped), 0) FROM order_lines WHERE order_id = $1) AS shipped,
       count(*) FILTER (WHERE s.status IN ('shipped', 'delivered')) AS shipments_out,
       count(*) FILTER (WHERE s.status = 'delivered') AS shipments_delivered,
       max(s.delivered_at) FILTER (WHERE s.status = 'delivered') AS delivered_at
FROM shipments s WHERE s.order_id = $1
"""


async def lock_order(
    conn: asyncpg.Connection, order_id: str, channel_id: str | None
) -> asyncpg.Record:
    """The order's row, locked for this transaction; 404 if missing or another channel's.
    Every change of an order starts here, so changes of one order run one at a time."""
    row = await conn.fetchrow(LOCK_ORDER_SQL, order_id, channel_id)
    if row is None:
        raise NotFound(f"No order with id {order_id}.")
    return row


async def record_order_events(
    conn: asyncpg.Connection, order_id: str, types: Sequence[str]
) -> dict[str, Any]:
    """Reload the order's document and record `types` with it as their data (the order as
    it is after the change); the document."""
    document = await load_order(conn, order_id, channel_id=None)
    await record_events(conn, types, order_id=order_id, data=document)
    return document


async def settle_fulfilment(
    conn: asyncpg.Connection, order_id: str, status: OrderStatus
) -> list[str]:
    """Move the order (now `status`) to the state its lines and shipments derive, through
    the machine's steps; the events of those steps (none if it is already there). A
    delivered order is dated by its last shipment's delivery (a carrier's time, or when it
    was delivered by hand)."""
    row = await conn.fetchrow(FULFILMENT_SQL, order_id)
    if row is None:  # an aggregate always answers one row
        raise RuntimeError("the fulfilment read answered no row")
    counts = dict(row)
    delivered_at = counts.pop("delivered_at")  # the order's: its last shipment's delivery
    events: list[str] = []
    for command in fulfilment_commands(status, Fulfilment(**counts)):
        moved = await transition(conn, ORDER, order_id, status, command, (None, None, delivered_at))
        status = moved.target
        events += moved.events
    return events
