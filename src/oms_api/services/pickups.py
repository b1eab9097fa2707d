"""Carrier pickups and pick lists: what a location hands to a carrier, and what its staff
pick. A pickup gathers parcels of every channel, so pickups are for keys not bound to a
channel: a channel-bound key sees none (404; `scoping.hidden_from_channels` and
`ensure_unfenced`), and the routes that change one refuse it
(403 `channel_bound_key`, `api.deps.require_unbound`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.access import Principal
from oms_api.domain.carriers import carrier_key
from oms_api.domain.errors import DomainError
from oms_api.domain.pickups import EVENT_FOR_STATUS, PickupCommand, PickupStatus, check_ready_at
from oms_api.errors import NotFound
from oms_api.ids import new_id
from oms_api.jsonutil import iso
from oms_api.models import Pickup
from oms_api.outbox import record_events
from oms_api.services.pagination import Page, paginate_documents
from oms_api.services.scoping import ensure_unfenced, fence_sql, hidden_from_channels
from oms_api.services.shipment_documents import load_pickups
from oms_api.services.transitions import PICKUP, transition

SCHEDULE_SQL = """
WITH p AS (
    INSERT INTO pickups (id, location_id, carrier, carrier_key, ready_at, note, status)
    VALUES ($1, $2, $3, $4, $5, $6, 'scheduled')
)
INSERT INTO pickup_shipments (pickup_id, shipment_id)
SELECT $1, s.id FROM shipments s
WHERE s.location_id = $2 AND s.carrier_key = $4 AND s.status = 'shipped'
  AND NOT EXISTS (SELECT 1 FROM pickup_shipments x WHERE x.shipment_id = s.id AND x.active)
ORDER BY s.id
ON CONFLICT (shipment_id) WHERE active DO NOTHING
RETURNING shipment_id
"""


async def schedule_pickup(
    conn: asyncpg.Connection, *, location_id: str, carrier: str, ready_at: datetime,
    note: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Gather every shipped parcel of `carrier` at the location not yet on a pickup, ready
    now or later (`domain.pickups.check_ready_at`)."""
    check_ready_at(ready_at, now=await conn.fetchval("SELECT now()"))
    if await conn.fetchval("SELECT 1 FROM locations WHERE id = $1", location_id) is None:
        raise NotFound(f"No location with id {location_id}.")
    pickup_id = new_id("pu")
    gathered = await conn.fetch(
        SCHEDULE_SQL, pickup_id, location_id, carrier, carrier_key(carrier), ready_at, note
    )
    if not gathered:  # raising rolls the pickup back
        raise DomainError(
            "nothing_to_pick_up",
            f"No shipped parcel of {carrier} at this location is waiting for a pickup.",
        )
    document = (await load_pickups(conn, [pickup_id]))[0]
    await record_events(conn, [(EVENT_FOR_STATUS[PickupStatus.SCHEDULED], document)], order_id=None)
    return document


async def change_pickup(
    conn: asyncpg.Connection, *, pickup_id: str, command: PickupCommand
) -> dict[str, Any]:
    """`collected` or `cancel` (its parcels free for the next pickup)."""
    status = await conn.fetchval("SELECT status FROM pickups WHERE id = $1 FOR UPDATE", pickup_id)
    if status is None:
        raise NotFound(f"No pickup with id {pickup_id}.")
    moved = await transition(conn, PICKUP, pickup_id, PickupStatus(status), command)
    if moved.target is PickupStatus.CANCELLED:
        await conn.execute(
            "UPDATE pickup_shipments SET active = false WHERE pickup_id = $1", pickup_id
        )
    document = (await load_pickups(conn, [pickup_id]))[0]
    await record_events(conn, [(t, document) for t in moved.events], order_id=None)
    return document


async def get_pickup(
    conn: asyncpg.Connection, *, principal: Principal, pickup_id: str
) -> dict[str, Any]:
    ensure_unfenced(principal, what="pickup", ident=pickup_id)
    found = await load_pickups(conn, [pickup_id])
    if not found:
        raise NotFound(f"No pickup with id {pickup_id}.")
    return found[0]


async def list_pickups(
    session: AsyncSession, *, principal: Principal, location_id: str | None, carrier: str | None,
    status: str | None, limit: int, cursor: str | None,
) -> Page[dict[str, Any]]:  # fmt: skip
    stmt = hidden_from_channels(select(Pickup.id), principal)
    if location_id is not None:
        stmt = stmt.where(Pickup.location_id == location_id)
    if carrier is not None:
        stmt = stmt.where(Pickup.carrier_key == carrier_key(carrier))
    if status is not None:
        stmt = stmt.where(Pickup.status == status)
    return await paginate_documents(
        session, stmt, keys=[Pickup.id], limit=limit, cursor=cursor, load=load_pickups
    )


PICK_LIST_SQL = f"""
SELECT l.sku, l.name, sl.quantity, s.id AS shipment_id, o.number AS order_number
FROM shipments s
JOIN shipment_lines sl ON sl.shipment_id = s.id
JOIN order_lines l ON l.id = sl.line_id
JOIN orders o ON o.id = s.order_id
WHERE s.location_id = $1 AND s.status = ANY($2::text[])
  AND {fence_sql("s.channel_id", 3)}
ORDER BY l.sku, o.number, s.id
"""


async def pick_list(
    conn: asyncpg.Connection, *, principal: Principal, location_id: str, statuses: list[str]
) -> dict[str, Any]:
    """Every unit to pick at the location across its open shipments, by SKU (a
    channel-bound key sees its own channel's shipments only)."""
    location = await conn.fetchrow(
        "SELECT id, code, name FROM locations WHERE id = $1", location_id
    )
    if location is None:
        raise NotFound(f"No location with id {location_id}.")
    items: dict[str, dict[str, Any]] = {}
    for row in await conn.fetch(PICK_LIST_SQL, location_id, statuses, principal.channel_id):
        item = items.setdefault(
            row["sku"], {"sku": row["sku"], "name": row["name"], "quantity": 0, "shipments": []}
        )
        item["quantity"] += row["quantity"]
        item["shipments"].append({"shipment_id": row["shipment_id"], "order_number": row["order_number"],
                                  "quantity": row["quantity"]})  # fmt: skip
    now = await conn.fetchval("SELECT now()")
    return {
        "location_id": location_id,
        "location_name": location["name"],
        "statuses": statuses,
        "generated_at": iso(now),
        "items": list(items.values()),
    }
