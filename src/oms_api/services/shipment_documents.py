"""Shipments and pickups as the API returns them: one renderer each, from rows, for
responses, reads and events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from oms_api.domain.shipments import ShipmentStatus, TrackingStatus, TrackingUpdate, latest_tracking
from oms_api.errors import NotFound
from oms_api.jsonutil import iso
from oms_api.services.scoping import fence_sql

SHIPMENT_TIMES = ("created_at", "updated_at", "picking_at", "packed_at", "shipped_at",
                  "delivered_at", "cancelled_at")  # fmt: skip


def tracking_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": row["status"], "description": row["description"],
            "location": row["location"], "occurred_at": iso(row["occurred_at"])}  # fmt: skip


def _latest(row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Of the candidate updates the row carries, the one the shipment shows (the rule:
    `domain.shipments.latest_tracking`)."""
    candidates = {c["id"]: c for c in row["latest_"] or ()}
    chosen = latest_tracking(
        ShipmentStatus(row["status"]), row["delivered_at"],
        (TrackingUpdate(c["id"], TrackingStatus(c["status"]),
                        datetime.fromisoformat(c["occurred_at"])) for c in candidates.values()),
    )  # fmt: skip
    return None if chosen is None else candidates[chosen.id]


def shipment_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row`: the shipments row with `order_number`, `lines_` (JSON: line_id, sku, name,
    quantity in line order), `pickup_id` and `latest_` (JSON: the tracking updates
    `latest_tracking` may show)."""
    latest = _latest(row)
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "order_number": row["order_number"],
        "channel_id": row["channel_id"],
        "location_id": row["location_id"],
        "status": row["status"],
        "lines": [
            {"line_id": x["line_id"], "sku": x["sku"], "name": x["name"], "quantity": x["quantity"]}
            for x in row["lines_"] or ()
        ],
        "carrier": row["carrier"],
        "service": row["service"],
        "tracking_number": row["tracking_number"],
        "tracking_url": row["tracking_url"],
        "weight_grams": row["weight_grams"],
        "latest_tracking": None if latest is None else tracking_document(latest),
        "pickup_id": row["pickup_id"],
        "cancel_reason": row["cancel_reason"],
        **{name: iso(row[name]) for name in SHIPMENT_TIMES},
        "version": row["version"],
    }


# The updates `domain.shipments.latest_tracking` chooses among, each the newest (by
# `occurred_at`, then id) of: every update; for a delivered shipment, its `delivered`
# updates, and its updates from no later than `delivered_at`.
_NEWEST = """(SELECT t.id, t.status, t.description, t.location, t.occurred_at
     FROM tracking_events t WHERE t.shipment_id = s.id{} ORDER BY t.occurred_at DESC, t.id DESC
     LIMIT 1)"""
_CANDIDATES = " UNION ".join(
    _NEWEST.format(also)
    for also in ("", " AND s.status = 'delivered' AND t.status = 'delivered'",
                 " AND s.status = 'delivered' AND t.occurred_at <= s.delivered_at")
)  # fmt: skip

SHIPMENT_SELECT = f"""
SELECT s.*, o.number AS order_number,
  (SELECT json_agg(json_build_object('line_id', l.id, 'sku', l.sku, 'name', l.name,
                                     'quantity', sl.quantity) ORDER BY l.position)
   FROM shipment_lines sl JOIN order_lines l ON l.id = sl.line_id
   WHERE sl.shipment_id = s.id) AS lines_,
  (SELECT ps.pickup_id FROM pickup_shipments ps
   WHERE ps.shipment_id = s.id AND ps.active) AS pickup_id,
  (SELECT json_agg(c) FROM ({_CANDIDATES}) c) AS latest_
FROM shipments s JOIN orders o ON o.id = s.order_id
"""


async def load_shipments(
    conn: asyncpg.Connection, shipment_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The documents of `shipment_ids`, in that order."""
    rows = await conn.fetch(SHIPMENT_SELECT + " WHERE s.id = ANY($1::text[])", list(shipment_ids))
    by_id = {r["id"]: shipment_document(r) for r in rows}
    return [by_id[i] for i in shipment_ids]


async def load_shipment(
    conn: asyncpg.Connection, shipment_id: str, *, channel_id: str | None
) -> dict[str, Any]:
    """The shipment's document; 404 if missing or (for a channel-bound caller) not its own."""
    row = await conn.fetchrow(
        SHIPMENT_SELECT + f" WHERE s.id = $1 AND {fence_sql('s.channel_id', 2)}",
        shipment_id,
        channel_id,
    )
    if row is None:
        raise NotFound(f"No shipment with id {shipment_id}.")
    return shipment_document(row)


def pickup_document(row: Mapping[str, Any], parcels: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    shipments = [
        {"shipment_id": p["shipment_id"], "order_number": p["order_number"],
         "tracking_number": p["tracking_number"], "weight_grams": p["weight_grams"]}
        for p in parcels
    ]  # fmt: skip
    return {
        "id": row["id"],
        "location_id": row["location_id"],
        "carrier": row["carrier"],
        "ready_at": iso(row["ready_at"]),
        "note": row["note"],
        "status": row["status"],
        "shipments": shipments,
        "parcel_count": len(shipments),
        "total_weight_grams": sum(s["weight_grams"] for s in shipments),
        **{
            name: iso(row[name])
            for name in ("created_at", "updated_at", "collected_at", "cancelled_at")
        },
        "version": row["version"],
    }


# A pickup's parcels: those on it (and, once it is cancelled, those that were).
PICKUP_PARCELS_SQL = """
SELECT ps.pickup_id, s.id AS shipment_id, o.number AS order_number, s.tracking_number,
       s.weight_grams
FROM pickup_shipments ps
JOIN shipments s ON s.id = ps.shipment_id JOIN orders o ON o.id = s.order_id
WHERE ps.pickup_id = ANY($1::text[])
ORDER BY o.number, s.id
"""


async def load_pickups(conn: asyncpg.Connection, pickup_ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM pickups WHERE id = ANY($1::text[])", list(pickup_ids))
    parcels: dict[str, list[Any]] = {}
    for p in await conn.fetch(PICKUP_PARCELS_SQL, list(pickup_ids)):
        parcels.setdefault(p["pickup_id"], []).append(p)
    by_id = {r["id"]: pickup_document(r, parcels.get(r["id"], [])) for r in rows}
    return [by_id[i] for i in pickup_ids if i in by_id]
