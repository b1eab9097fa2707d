"""Auto-allocation (`GET/PUT /v1/settings/fulfillment {auto_allocate}`): when it is on, an
order's shipments are created as `POST /v1/orders/{id}/allocate` would, in the
transaction that confirms it — placement, a payment, a release from hold — and in the one
that fills a confirmed order's backorders (the new reserved units get their shipments)."""

from __future__ import annotations

from typing import Any

import asyncpg

from oms_api.domain.orders import FULFILLABLE, OrderStatus
from oms_api.domain.shipments import FulfillmentSettings
from oms_api.services.app_settings import FULFILLMENT
from oms_api.services.shipments import allocate

SETTINGS_SQL = f"SELECT value FROM app_settings WHERE key = '{FULFILLMENT}'"


async def fulfillment_settings(conn: asyncpg.Connection) -> FulfillmentSettings:
    return FulfillmentSettings.from_json(await conn.fetchval(SETTINGS_SQL))


async def allocate_if_automatic(
    conn: asyncpg.Connection, order_id: str, status: str, *,
    settings: FulfillmentSettings | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The shipments auto-allocation creates for the order (now `status`): none when it is
    off, the order is not fulfillable, or every reserved unit is in a shipment already."""
    if OrderStatus(status) not in FULFILLABLE:
        return []
    if settings is None:
        settings = await fulfillment_settings(conn)
    if not settings.auto_allocate:
        return []
    return await allocate(conn, channel_id=None, order_id=order_id, nothing_is_an_error=False)
