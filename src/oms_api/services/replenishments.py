"""Replenishment requests: opened by the stock path (`oms_move_stock`) when a product's
total available falls to or below its reorder point, read and closed here. Receiving one
brings its stock in through the one stock path (ledger `cause_type=replenishment`) and
fills the backorders waiting at that location (`services/backorders`), in one transaction.

A request speaks of a product's stock over every location, whichever channels sell from
them: every route is for keys not bound to a channel (`api.deps.require_unbound`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.errors import DomainError
from oms_api.domain.replenishments import ReplenishmentCommand, ReplenishmentStatus
from oms_api.errors import NotFound
from oms_api.jsonutil import iso
from oms_api.models import Replenishment
from oms_api.outbox import record_events
from oms_api.services.backorders import lock_waiting_orders, receive_stock
from oms_api.services.pagination import Page, paginate_documents
from oms_api.services.stock import lock_levels, stock_move
from oms_api.services.transitions import REPLENISHMENT, transition

COLUMNS = (
    "id", "product_id", "sku", "status", "quantity", "reorder_point", "available_at_opening",
    "location_id", "quantity_received", "cancel_reason", "created_at", "updated_at",
    "received_at", "cancelled_at", "version",
)  # fmt: skip
TIMES = frozenset({"created_at", "updated_at", "received_at", "cancelled_at"})

LOAD_SQL = f"""
SELECT {", ".join(COLUMNS)} FROM replenishments r
JOIN unnest($1::text[]) WITH ORDINALITY AS k(id, n) USING (id)
ORDER BY k.n
"""


def replenishment_document(row: Any) -> dict[str, Any]:
    return {c: iso(row[c]) if c in TIMES else row[c] for c in COLUMNS}


async def load_replenishments(conn: asyncpg.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    return [replenishment_document(r) for r in await conn.fetch(LOAD_SQL, list(ids))]


async def get_replenishment(conn: asyncpg.Connection, replenishment_id: str) -> dict[str, Any]:
    found = await load_replenishments(conn, [replenishment_id])
    if not found:
        raise NotFound(f"No replenishment with id {replenishment_id}.")
    return found[0]


async def list_replenishments(
    session: AsyncSession, *, status: str | None, sku: str | None, limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:  # fmt: skip
    """Newest first."""
    stmt = select(Replenishment.id)
    if status is not None:
        stmt = stmt.where(Replenishment.status == status)
    if sku is not None:
        stmt = stmt.where(Replenishment.sku == sku)
    return await paginate_documents(
        session, stmt, keys=[Replenishment.id], limit=limit, cursor=cursor,
        load=load_replenishments,
    )  # fmt: skip


async def _locked(conn: asyncpg.Connection, replenishment_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT id, product_id, sku, status, quantity FROM replenishments WHERE id = $1 FOR UPDATE",
        replenishment_id,
    )
    if row is None:
        raise NotFound(f"No replenishment with id {replenishment_id}.")
    return row


async def receive(
    conn: asyncpg.Connection, *, replenishment_id: str, location_id: str, quantity: int | None
) -> dict[str, Any]:
    """`open` → `received`: `quantity` units (the request's by default) come in at the
    location, and the backorders waiting there take what they need."""
    row = await _locked(conn, replenishment_id)
    units = row["quantity"] if quantity is None else quantity
    if await conn.fetchval("SELECT 1 FROM locations WHERE id = $1", location_id) is None:
        raise DomainError(
            "unknown_location", f"No location with id {location_id}.", kind="invalid",
            loc=["body", "location_id"],
        )  # fmt: skip
    moved = await transition(
        conn, REPLENISHMENT, replenishment_id, ReplenishmentStatus(row["status"]),
        ReplenishmentCommand.RECEIVE, (location_id, units),
    )  # fmt: skip
    waiting = await lock_waiting_orders(conn, location_id, [row["product_id"]])
    await lock_levels(conn, [(row["product_id"], location_id)], create_missing=True)
    await receive_stock(conn, location_id, [
        stock_move(product_id=row["product_id"], location_id=location_id, sku=row["sku"],
                   on_hand=units, reason="replenishment_received", cause_type="replenishment",
                   cause_id=replenishment_id)
    ], waiting)  # fmt: skip
    return await _record(conn, replenishment_id, moved.events)


async def cancel(
    conn: asyncpg.Connection, *, replenishment_id: str, reason: str | None
) -> dict[str, Any]:
    """`open` → `cancelled`: nothing comes in."""
    row = await _locked(conn, replenishment_id)
    moved = await transition(
        conn, REPLENISHMENT, replenishment_id, ReplenishmentStatus(row["status"]),
        ReplenishmentCommand.CANCEL, (None, None, reason),
    )  # fmt: skip
    return await _record(conn, replenishment_id, moved.events)


async def _record(
    conn: asyncpg.Connection, replenishment_id: str, types: Sequence[str]
) -> dict[str, Any]:
    document = await get_replenishment(conn, replenishment_id)
    await record_events(conn, types, order_id=None, data=document)
    return document
