"""The papers of fulfilment, gathered and drawn: a shipment's label and packing slip, a
location's pick list, a pickup's manifest (paper.py draws them)."""

from __future__ import annotations

from typing import Any

import asyncpg

from oms_api import paper
from oms_api.domain.access import Principal
from oms_api.domain.shipments import ShipmentStatus, check_label_ready
from oms_api.services.order_documents import load_order
from oms_api.services.pickups import get_pickup
from oms_api.services.shipment_documents import load_shipment

LOCATION_SQL = "SELECT id, code, name, address FROM locations WHERE id = $1"


async def location_of(conn: asyncpg.Connection, location_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(LOCATION_SQL, location_id)
    if row is None:  # shipments and pickups reference their location
        raise RuntimeError(f"location {location_id} is missing")
    return dict(row)


async def shipping_label(
    conn: asyncpg.Connection, *, channel_id: str | None, shipment_id: str
) -> bytes:
    """The 4 by 6 in label; once packed, with a carrier and a tracking number (409
    `label_not_ready` before)."""
    shipment = await load_shipment(conn, shipment_id, channel_id=channel_id)
    check_label_ready(
        ShipmentStatus(shipment["status"]), shipment["carrier"], shipment["tracking_number"]
    )
    order = await load_order(conn, shipment["order_id"], channel_id=None)
    location = await location_of(conn, shipment["location_id"])
    return paper.shipping_label(shipment, order["shipping_address"], location, location["address"])


async def packing_slip(
    conn: asyncpg.Connection, *, channel_id: str | None, shipment_id: str
) -> bytes:
    shipment = await load_shipment(conn, shipment_id, channel_id=channel_id)
    order = await load_order(conn, shipment["order_id"], channel_id=None)
    location = await location_of(conn, shipment["location_id"])
    return paper.packing_slip(shipment, order, location, location["address"])


async def pickup_manifest(
    conn: asyncpg.Connection, *, principal: Principal, pickup_id: str
) -> bytes:
    pickup = await get_pickup(conn, principal=principal, pickup_id=pickup_id)
    location = await location_of(conn, pickup["location_id"])
    return paper.pickup_manifest(pickup, location, location["address"])
