"""The event feed: every event, oldest first, for integrators that poll.

Events are ordered by (writing transaction id, position) and only events of
transactions older than every transaction still running in this database are shown
(`HORIZON_CTE`). A transaction that commits late
therefore always sorts after everything already shown: a reader paging with `after`
never skips an event. (Position alone would not do: it is assigned at insert, not at
commit.) The feed reads from the replica when there is one; a cursor the replica has not
replayed yet is unknown there, and the feed is then read on the primary
(`replica.ReadOnPrimary`).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from oms_api.errors import Unprocessable
from oms_api.outbox import event_data_sql
from oms_api.services.scoping import fence_sql

# The cursor is an event the caller may see: another channel's id is as unknown as a made-up
# one (the fence on both reads, so the answers cannot differ).
CURSOR_SQL = f"SELECT 1 FROM events e WHERE e.id = $1 AND {fence_sql('e.channel_id', 2)}"
# The horizon: events of transactions older than it are all committed or gone, and any
# transaction still to commit an event sorts after it. Transaction ids are the server's: a
# long transaction in another database (a report, a bulk load) would hold the snapshot's
# xmin back, and the feed with it, so it is the oldest running transaction not seen running
# in another database (one that ended since the snapshot counts: never too far). The
# notifier reads the outbox up to the same horizon.
#
# On a hot standby (OMS_READ_DATABASE_URL) a snapshot lists no running transaction where
# SQL can see it (PostgreSQL keeps them all in its subtransaction array) and its xmax is
# past the newest commit replayed, which may be past a transaction still running on the
# primary: there the horizon is the snapshot's xmin, the oldest transaction the standby
# knows to be running — every id below it that it has not seen end is in that count — in
# any database of the primary's cluster, as nothing on a standby says which. On the
# primary a snapshot listing none has xmin = xmax, or xmin is the reader's own
# transaction (the notifier's, which has locked its cursor), the one case where xmax
# stays the horizon. Each read is consistent with its own server's snapshot, so a client
# paging across the primary and replicas of any lag never skips an event: every event
# before one shown was committed, and visible, where that one was shown.
HORIZON_CTE = """
snap AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
    SELECT backend_xid AS x FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
),
horizon AS (
    SELECT coalesce(
        (SELECT min(r) FROM pg_snapshot_xip((SELECT s FROM snap)) AS r
         WHERE r::xid NOT IN (SELECT x FROM elsewhere)),
        (SELECT CASE
            WHEN EXISTS (SELECT FROM pg_snapshot_xip(s))
              OR pg_snapshot_xmin(s) = pg_current_xact_id_if_assigned()
            THEN pg_snapshot_xmax(s) ELSE pg_snapshot_xmin(s) END
         FROM snap)) AS h
)"""

# An outbox reader that keeps its place (the notifier, the reports' summariser): its
# cursor is a row (name, txid, position) of its own table, taken by one worker at a time
# (`SKIP LOCKED`: another finds it taken and skips the pass) and moved in the transaction
# that used what it read; it reads the events past it and before the horizon, in commit
# order (`PAST_CURSOR`, with `HORIZON_CTE`, the cursor's txid and position as $1, $2).
PAST_CURSOR = "(e.txid, e.position) > ($1::xid8, $2::bigint) AND e.txid < horizon.h"


def cursor_statements(table: str) -> tuple[str, str]:
    """The statements that take a reader's cursor row in `table` (by name, $1) and move
    it ($2 txid, $3 position)."""
    return (
        f"SELECT txid, position FROM {table} WHERE name = $1 FOR UPDATE SKIP LOCKED",
        f"UPDATE {table} SET txid = $2::xid8, position = $3, updated_at = now() WHERE name = $1",
    )


FEED_SQL = f"""
WITH {HORIZON_CTE},
cursor AS (SELECT txid, position FROM events e WHERE e.id = $1 AND {fence_sql("e.channel_id", 2)})
SELECT e.id, e.type, e.order_id, e.channel_id, e.sequence, e.created_at,
       {event_data_sql("e")} AS data
FROM events e, horizon
WHERE e.txid < horizon.h
  AND ($1::text IS NULL OR (e.txid, e.position) > (SELECT txid, position FROM cursor))
  AND {fence_sql("e.channel_id", 2)}
  AND ($3::text[] IS NULL OR e.type = ANY($3))
ORDER BY e.txid, e.position
LIMIT $4
"""


async def read_feed(
    conn: asyncpg.Connection,
    *,
    after: str | None,
    channel_id: str | None,
    types: list[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    if after is not None and not await conn.fetchval(CURSOR_SQL, after, channel_id):
        raise Unprocessable(
            f"No event with id {after}.", code="invalid_cursor",
            errors=[{"loc": ["query", "after"], "msg": "unknown event id"}],
        )  # fmt: skip
    rows = await conn.fetch(FEED_SQL, after, channel_id, types, limit)
    return [dict(r) for r in rows]
