"""Shipments: made from an order's reservations, moved through their machine, shipped —
the units leave through the one stock path — and delivered; the order's state follows.

Every change locks the order row first (then the shipment, then stock levels in
(product, location) order), so changes of one order's shipments run one at a time:
two concurrent `/ship` calls ship once, two shipments cannot take the same units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain import events as E
from oms_api.domain.carriers import carrier_key, tracking_url
from oms_api.domain.errors import DomainError
from oms_api.domain.orders import OrderStatus
from oms_api.domain.shipments import (
    OPEN,
    LineInfo,
    ReservationBook,
    ShipmentCommand,
    ShipmentPlan,
    ShipmentStatus,
    TrackingStatus,
    check_fulfillable,
    check_tracking_time,
    delivery_time,
    plan_allocation,
    plan_shipment,
    tracking_command,
)
from oms_api.errors import NotFound
from oms_api.ids import new_id
from oms_api.models import Shipment
from oms_api.outbox import record_events
from oms_api.services.order_documents import load_order
from oms_api.services.order_state import lock_order, settle_fulfilment
from oms_api.services.pagination import Page, paginate_documents
from oms_api.services.reservations import change_lines, load_held, write_book
from oms_api.services.scoping import fence_location_sql, fence_sql, scope_to_channel
from oms_api.services.shipment_documents import (
    load_shipment,
    load_shipments,
    tracking_document,
)
from oms_api.services.stock import lock_levels, move_stock, stock_move
from oms_api.services.transitions import SHIPMENT, Moved, transition

# The location, and whether the order's channel ($2) sells from it: the one "sells from"
# rule (scoping.fence_location_sql), as for a channel-bound key's own stock and returns.
LOCATION_SQL = f"""
SELECT l.id, {fence_location_sql("l.id", 2)} AS allowed FROM locations l WHERE l.id = $1
"""

LINES_SQL = """
SELECT l.id, l.sku, l.product_id, p.weight_grams
FROM order_lines l JOIN products p ON p.id = l.product_id
WHERE l.order_id = $1 ORDER BY l.position
"""

INSERT_SHIPMENT_SQL = """
WITH s AS (
    INSERT INTO shipments (id, order_id, channel_id, location_id, status, weight_grams)
    VALUES ($1, $2, $3, $4, 'pending', $5)
)
INSERT INTO shipment_lines (shipment_id, line_id, quantity)
SELECT $1, * FROM unnest($6::text[], $7::int[])
"""

SHIPMENT_HEAD_SQL = f"""
SELECT order_id FROM shipments WHERE id = $1 AND {fence_sql("channel_id", 2)}
"""

LOCK_SHIPMENT_SQL = "SELECT * FROM shipments WHERE id = $1 FOR UPDATE"

SHIPMENT_LINES_SQL = """
SELECT sl.line_id, sl.quantity, l.sku, l.product_id
FROM shipment_lines sl JOIN order_lines l ON l.id = sl.line_id
WHERE sl.shipment_id = $1 ORDER BY l.position
"""

OPEN_SHIPMENTS_SQL = """
SELECT id FROM shipments WHERE order_id = $1 AND status = ANY($2::text[]) ORDER BY id FOR UPDATE
"""


@dataclass(frozen=True, slots=True)
class Parcel:
    """What a packer or a shipper tells about the parcel: all optional until it ships."""

    carrier: str | None = None
    service: str | None = None
    tracking_number: str | None = None
    weight_grams: int | None = None


async def _lock_fulfillable_order(
    conn: asyncpg.Connection, order_id: str, channel_id: str | None
) -> asyncpg.Record:
    order = await lock_order(conn, order_id, channel_id)
    check_fulfillable(OrderStatus(order["status"]))
    return order


async def create_shipment(
    conn: asyncpg.Connection, *, channel_id: str | None, order_id: str, location_id: str,
    lines: Sequence[tuple[str, int]],
) -> list[dict[str, Any]]:  # fmt: skip
    """One shipment from `location_id`, taking each line's units from its reservation there
    and moving the rest of the reservation there from elsewhere."""
    order = await _lock_fulfillable_order(conn, order_id, channel_id)
    location = await conn.fetchrow(LOCATION_SQL, location_id, order["channel_id"])
    if location is None:
        raise DomainError(
            "unknown_location", f"No location with id {location_id}.", kind="invalid",
            loc=["body", "location_id"],
        )  # fmt: skip
    if not location["allowed"]:
        raise DomainError(
            "location_not_allowed",
            f"The order's channel does not ship from location {location_id}.",
            kind="invalid", loc=["body", "location_id"],
        )  # fmt: skip
    info = {r["id"]: r for r in await conn.fetch(LINES_SQL, order_id)}
    held = await load_held(conn, order_id)
    asked = {line_id for line_id, _ in lines}
    keys = {(h.product_id, h.location_id) for h in held if h.line_id in asked}
    keys |= {(info[i]["product_id"], location_id) for i in asked if i in info}
    levels = await lock_levels(conn, keys)
    available_here = {
        product_id: on_hand - reserved
        for (product_id, loc), (on_hand, reserved) in levels.items()
        if loc == location_id
    }
    plan = plan_shipment(
        location_id, lines,
        {i: LineInfo(i, r["sku"], r["product_id"]) for i, r in info.items()},
        held, available_here,
    )  # fmt: skip
    return await _create(conn, order, [plan], ReservationBook(held), info)


async def allocate(
    conn: asyncpg.Connection, *, channel_id: str | None, order_id: str,
    nothing_is_an_error: bool = True,
) -> list[dict[str, Any]]:  # fmt: skip
    """A shipment per location holding the order's reserved units not yet in one. None to
    make: 409 `nothing_to_allocate`, or (`nothing_is_an_error=False`, auto-allocation) no
    shipment."""
    order = await _lock_fulfillable_order(conn, order_id, channel_id)
    held = await load_held(conn, order_id)
    plans = plan_allocation(held)
    if not plans and not nothing_is_an_error:
        return []
    if not plans:
        raise DomainError(
            "nothing_to_allocate",
            "Every reserved unit of this order is already in a shipment, or none is reserved "
            "(backordered units ship once stock arrives).",
        )
    info = {r["id"]: r for r in await conn.fetch(LINES_SQL, order_id)}
    return await _create(conn, order, plans, ReservationBook(held), info)


async def _create(
    conn: asyncpg.Connection, order: asyncpg.Record, plans: Sequence[ShipmentPlan],
    book: ReservationBook, info: dict[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    moves = []
    for plan in plans:
        for m in plan.moves:  # the reservation follows the shipment: released there, held here
            book.move(m)
            moves += [
                stock_move(product_id=m.product_id, location_id=m.from_location, sku=m.sku,
                           reserved=-m.quantity, reason="reservation_moved", cause_type="order",
                           cause_id=order["id"]),
                stock_move(product_id=m.product_id, location_id=m.to_location, sku=m.sku,
                           reserved=m.quantity, reason="reservation_moved", cause_type="order",
                           cause_id=order["id"]),
            ]  # fmt: skip
    await move_stock(conn, moves)
    ids = []
    for plan in plans:
        shipment_id = new_id("shp")
        for line_id, quantity in plan.lines:
            book.hold(line_id, plan.location_id, quantity)
        weight = sum(info[line_id]["weight_grams"] * q for line_id, q in plan.lines)
        await conn.execute(
            INSERT_SHIPMENT_SQL, shipment_id, order["id"], order["channel_id"], plan.location_id,
            weight, [line_id for line_id, _ in plan.lines], [q for _, q in plan.lines],
        )  # fmt: skip
        ids.append(shipment_id)
    await write_book(conn, book)
    documents = await load_shipments(conn, ids)
    await record_events(conn, [(E.SHIPMENT_CREATED, d) for d in documents], order_id=order["id"])
    return documents


async def _locked_shipment(
    conn: asyncpg.Connection, shipment_id: str, channel_id: str | None
) -> tuple[asyncpg.Record, asyncpg.Record]:
    """(the order's row, the shipment's row), both locked, order first; 404 if the
    shipment is missing or another channel's."""
    order_id = await conn.fetchval(SHIPMENT_HEAD_SQL, shipment_id, channel_id)
    if order_id is None:
        raise NotFound(f"No shipment with id {shipment_id}.")
    order = await lock_order(conn, order_id, None)
    shipment = await conn.fetchrow(LOCK_SHIPMENT_SQL, shipment_id)
    if shipment is None:  # shipments are never deleted
        raise NotFound(f"No shipment with id {shipment_id}.")
    return order, shipment


async def change_shipment(
    conn: asyncpg.Connection, *, channel_id: str | None, shipment_id: str,
    command: ShipmentCommand, parcel: Parcel | None = None, reason: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The single entry point for pick, pack, ship, deliver and cancel."""
    order, shipment = await _locked_shipment(conn, shipment_id, channel_id)
    moved = await _move(
        conn, shipment, command, parcel or Parcel(), reason,
        order_status=OrderStatus(order["status"]),
    )  # fmt: skip
    if command is ShipmentCommand.SHIP:
        await _send_off(conn, order["id"], shipment)
    elif command is ShipmentCommand.CANCEL:
        await _unhold(conn, order["id"], [shipment])
    return await _record_progress(conn, order, shipment_id, moved)


async def _move(
    conn: asyncpg.Connection, shipment: asyncpg.Record, command: ShipmentCommand,
    parcel: Parcel, reason: str | None, *, order_status: OrderStatus | None = None,
    delivered_at: datetime | None = None,
) -> Moved[ShipmentStatus]:  # fmt: skip
    """The shipment (locked, as read) moved by `command` through the one door, with what
    is told about its parcel (and, delivered by a carrier's update, when: else now); the
    machine decides with the order's status and the parcel's carrier and tracking number
    (shipping needs them: `domain.shipments.decide`)."""
    carrier = parcel.carrier or shipment["carrier"]
    number = parcel.tracking_number or shipment["tracking_number"]
    return await transition(
        conn, SHIPMENT, shipment["id"], ShipmentStatus(shipment["status"]), command,
        (reason, parcel.carrier, carrier_key(parcel.carrier) if parcel.carrier else None,
         parcel.service, parcel.tracking_number, tracking_url(carrier, number),
         parcel.weight_grams, delivered_at),
        order_status=order_status, carrier=carrier, tracking_number=number,
    )  # fmt: skip


async def _record_progress(
    conn: asyncpg.Connection, order: asyncpg.Record, shipment_id: str,
    moved: Moved[ShipmentStatus],
) -> dict[str, Any]:  # fmt: skip
    """Record the shipment's events and, when it shipped or was delivered, move the order
    to the state its fulfilment derives, with its events; the shipment's document."""
    document = await load_shipment(conn, shipment_id, channel_id=None)
    events: list[tuple[str, dict[str, Any]]] = [(t, document) for t in moved.events]
    if moved.target in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED):
        steps = await settle_fulfilment(conn, order["id"], OrderStatus(order["status"]))
        if steps:
            order_document = await load_order(conn, order["id"], channel_id=None)
            events += [(t, order_document) for t in steps]
    await record_events(conn, events, order_id=order["id"])
    return document


async def _send_off(conn: asyncpg.Connection, order_id: str, shipment: asyncpg.Record) -> None:
    """The shipment's units leave its location: on hand and reserved drop there (ledger
    `cause_type=shipment`), the lines count them shipped."""
    lines = await conn.fetch(SHIPMENT_LINES_SQL, shipment["id"])
    book = ReservationBook(await load_held(conn, order_id))
    for line in lines:
        book.ship(line["line_id"], shipment["location_id"], line["quantity"])
    await move_stock(
        conn,
        [
            stock_move(product_id=line["product_id"], location_id=shipment["location_id"],
                       sku=line["sku"], on_hand=-line["quantity"], reserved=-line["quantity"],
                       reason="shipped", cause_type="shipment", cause_id=shipment["id"])
            for line in lines
        ],
    )  # fmt: skip
    await write_book(conn, book)
    await change_lines(
        conn, [(line["line_id"], -line["quantity"], 0, line["quantity"]) for line in lines]
    )


async def _unhold(
    conn: asyncpg.Connection, order_id: str, shipments: Sequence[asyncpg.Record]
) -> None:
    """Open shipments' units go back to the order's free reservations where they are."""
    book = ReservationBook(await load_held(conn, order_id))
    for shipment in shipments:
        for line in await conn.fetch(SHIPMENT_LINES_SQL, shipment["id"]):
            book.hold(line["line_id"], shipment["location_id"], -line["quantity"])
    await write_book(conn, book)


async def cancel_open_shipments(
    conn: asyncpg.Connection, order_id: str, reason: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """Cancel the order's open shipments (its row is locked); their events."""
    ids = [r["id"] for r in await conn.fetch(OPEN_SHIPMENTS_SQL, order_id, [s.value for s in OPEN])]
    locked = [await conn.fetchrow(LOCK_SHIPMENT_SQL, i) for i in ids]
    shipments = [s for s in locked if s is not None]  # shipments are never deleted
    if not shipments:
        return []
    await _unhold(conn, order_id, shipments)
    types = [
        (await _move(conn, shipment, ShipmentCommand.CANCEL, Parcel(), reason)).events
        for shipment in shipments
    ]
    documents = await load_shipments(conn, [s["id"] for s in shipments])
    return [(t, d) for ts, d in zip(types, documents, strict=True) for t in ts]


# --- tracking ------------------------------------------------------------------------------

INSERT_TRACKING_SQL = """
INSERT INTO tracking_events (id, shipment_id, status, description, location, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (shipment_id, status, occurred_at) DO NOTHING
RETURNING id
"""

TRACKING_SQL = """
SELECT shipment_id, status, description, location, occurred_at FROM tracking_events
WHERE shipment_id = ANY($1::text[]) ORDER BY occurred_at, id
"""


async def with_tracking(
    conn: asyncpg.Connection, documents: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each shipment's document with its tracking history, oldest first."""
    history: dict[str, list[dict[str, Any]]] = {d["id"]: [] for d in documents}
    for row in await conn.fetch(TRACKING_SQL, list(history)):
        history[row["shipment_id"]].append(tracking_document(row))
    return [d | {"tracking": history[d["id"]]} for d in documents]


async def add_tracking(
    conn: asyncpg.Connection, *, channel_id: str | None, shipment_id: str,
    status: TrackingStatus, description: str | None, location: str | None,
    occurred_at: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Record a carrier's update (once: the same status at the same time again changes
    nothing) if its time can be true (`domain.shipments.check_tracking_time`); `delivered`
    delivers a shipped shipment, dated by the carrier (`domain.shipments.delivery_time`). A late or out-of-order update is history: the shipment
    never moves back, and shows the update `latest_tracking` chooses. The shipment with
    its history."""
    order, shipment = await _locked_shipment(conn, shipment_id, channel_id)
    command = tracking_command(ShipmentStatus(shipment["status"]), status)
    now = await conn.fetchval("SELECT now()")
    check_tracking_time(
        status, occurred_at, now=now, created_at=shipment["created_at"],
        shipped_at=shipment["shipped_at"],
    )  # fmt: skip
    inserted = await conn.fetchval(
        INSERT_TRACKING_SQL, new_id("trk"), shipment_id, status.value, description, location,
        occurred_at,
    )  # fmt: skip
    if inserted is not None:
        # The event carries the history too: a late update does not change `latest_tracking`,
        # and without it a receiver could not see what arrived.
        shipment_now = await load_shipment(conn, shipment_id, channel_id=None)
        document = (await with_tracking(conn, [shipment_now]))[0]
        await record_events(conn, [(E.SHIPMENT_TRACKING_UPDATED, document)], order_id=order["id"])
        if command is not None:  # the machine's answer (409 unless it has shipped; all rolled back)
            delivered_at = delivery_time(occurred_at, now=now, shipped_at=shipment["shipped_at"])
            moved = await _move(conn, shipment, command, Parcel(), None, delivered_at=delivered_at)
            await _record_progress(conn, order, shipment_id, moved)
    document = await load_shipment(conn, shipment_id, channel_id=None)
    return (await with_tracking(conn, [document]))[0]


async def order_tracking(
    conn: asyncpg.Connection, *, channel_id: str | None, order_id: str
) -> dict[str, Any]:
    order = await load_order(conn, order_id, channel_id=channel_id)
    ids = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM shipments WHERE order_id = $1 ORDER BY id", order_id
        )
    ]
    return {
        "order_id": order["id"],
        "order_number": order["number"],
        "status": order["status"],
        "shipments": await with_tracking(conn, await load_shipments(conn, ids)),
    }


# --- reads ---------------------------------------------------------------------------------


async def list_shipments(
    session: AsyncSession, *, channel_id: str | None, status: str | None,
    location_id: str | None, order_id: str | None, limit: int, cursor: str | None,
) -> Page[dict[str, Any]]:  # fmt: skip
    """Newest first; filters combine."""
    stmt = scope_to_channel(select(Shipment.id), channel_id, Shipment.channel_id)
    if status is not None:
        stmt = stmt.where(Shipment.status == status)
    if location_id is not None:
        stmt = stmt.where(Shipment.location_id == location_id)
    if order_id is not None:
        stmt = stmt.where(Shipment.order_id == order_id)
    return await paginate_documents(
        session, stmt, keys=[Shipment.id], limit=limit, cursor=cursor, load=load_shipments
    )
