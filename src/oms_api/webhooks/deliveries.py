"""What happens to queued deliveries besides sending them: the one statement each for
dropping an endpoint's pending deliveries (it was deleted or disabled) and for moving the
due time of an order's later deliveries to an endpoint, which wait for the earlier one
(`dispatcher.CLAIM_SQL` sends an order's deliveries to an endpoint in `sequence` order).
Used by the dispatcher and by `services.webhooks` alike."""

from __future__ import annotations

from datetime import datetime

import asyncpg

DROP_PENDING_SQL = (
    "UPDATE webhook_deliveries SET status = 'dropped' WHERE endpoint_id = $1 AND status = 'pending'"
)

# The order's pending deliveries to the endpoint ($1) after the one of the event ($2).
_LATER = """
UPDATE webhook_deliveries later SET next_attempt_at = {to}
FROM events head, events e
WHERE head.id = $2 AND e.order_id = head.order_id AND e.sequence > head.sequence
  AND later.event_id = e.id AND later.endpoint_id = $1 AND later.status = 'pending'
  AND later.next_attempt_at {beyond} {to}
"""
POSTPONE_LATER_SQL = _LATER.format(to="$3", beyond="<")
BRING_LATER_FORWARD_SQL = _LATER.format(to="now()", beyond=">")


async def drop_pending(conn: asyncpg.Connection, endpoint_id: str) -> None:
    """The endpoint's pending deliveries become `dropped`: never sent, nor queued, nor
    counted (its endpoint is deleted or disabled)."""
    await conn.execute(DROP_PENDING_SQL, endpoint_id)


async def postpone_later(
    conn: asyncpg.Connection, endpoint_id: str, event_id: str, until: datetime
) -> None:
    """The order's later deliveries to the endpoint are due no sooner than `until` (the
    earlier one's retry), so the claim does not walk past them while they cannot go."""
    await conn.execute(POSTPONE_LATER_SQL, endpoint_id, event_id, until)


async def bring_later_forward(conn: asyncpg.Connection, endpoint_id: str, event_id: str) -> None:
    """The order's later deliveries to the endpoint are due now (the earlier one is retried
    now): they go as soon as it is delivered."""
    await conn.execute(BRING_LATER_FORWARD_SQL, endpoint_id, event_id)
