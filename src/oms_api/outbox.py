"""The outbox writer: the one way an event is recorded.

Every event — an order's state change, a payment, a shipment, an endpoint disabled — is
written by `oms_record_events` (`sql/functions/`) in the transaction of the change it
announces: an order's events take the next numbers of its `sequence` and its channel.
The webhook fan-out trigger and the event feed read what it writes.

It belongs to neither `services/` nor `webhooks/`: services record their events here,
and so does the webhook dispatcher (`webhook_endpoint.disabled`), which imports no
service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from oms_api.ids import new_id
from oms_api.jsonutil import dumps

RECORD_EVENTS_SQL = "SELECT oms_record_events($1, $2::jsonb, $3::json, $4)"


def event_data_sql(alias: str) -> str:
    """An event's data, as SQL over the events row `alias`. Events recorded together that
    carry the same document (an order's `order.created`, `payment.recorded` and
    `order.confirmed` at placement) store it once: the first keeps it, each later one
    stores NULL, meaning the data of the order's nearest earlier event that has some
    (`oms_record_events`; one probe of `ix_events_order_id_sequence`). Every reader of
    event data reads it through this."""
    return (
        f"coalesce({alias}.data, (SELECT d.data FROM events d WHERE d.order_id = {alias}.order_id"
        f" AND d.sequence < {alias}.sequence AND d.data IS NOT NULL"
        " ORDER BY d.sequence DESC LIMIT 1))"
    )


async def record_events(
    conn: asyncpg.Connection,
    events: Sequence[str | tuple[str, Mapping[str, Any]]],
    *,
    order_id: str | None,
    data: Mapping[str, Any] | None = None,
    channel_id: str | None = None,
) -> None:
    """Record `events` in order: types (each with `data`), or (type, its own data) pairs.
    With `order_id` they join that order's sequence and channel; without, `channel_id` (or
    none: seen by admin keys only)."""
    rows = [
        {"id": new_id("evt"), "type": e} if isinstance(e, str)
        else {"id": new_id("evt"), "type": e[0], "data": e[1]}
        for e in events
    ]  # fmt: skip
    if not rows:
        return
    await conn.execute(
        RECORD_EVENTS_SQL,
        order_id,
        dumps(rows).decode(),
        None if data is None else dumps(data).decode(),
        channel_id,
    )
