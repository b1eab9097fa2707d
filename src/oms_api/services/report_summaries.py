"""The reports' summaries, kept from the outbox (docs/reports.md, "How fresh, how exact").

A day's summary rows (`report_sales`, `report_sku_sales`, `report_returns`,
`report_lead_times`: models/reports.py) are derived whole from the orders placed on that UTC
day, by the same figures the live reports compute. The summariser walks the outbox (`events`) in commit order — by (txid,
position), only events of transactions older than every one still running
(`event_feed.HORIZON_CTE`), as the notifier does — from its cursor (`report_cursor`), and
re-derives every day an order placed on it has an event in the batch, plus days never
summarised yet (oldest first), in the transaction that moves the cursor past the batch. A
month's `month` rows of `report_sku_sales` and `report_lead_times` are re-summed from its
days whenever one of them is re-derived, for months before the current one (the current
month is read per day).

Every change a report can see records an event on its order in the same transaction, so a
day is *clean* when it has a `report_days` row and no order placed on it has an event past
the cursor: a report reads clean days from the summaries and computes the others live
(`TOUCHED_DAYS_CTE`), in one statement. Exactness never waits for the summariser; only
speed does. Placement pays nothing: no trigger, no row written on any write path.
"""

from __future__ import annotations

import logging
from datetime import date

import asyncpg

from oms_api.services.event_feed import HORIZON_CTE, PAST_CURSOR, cursor_statements
from oms_api.services.scoping import EVERY_CHANNEL, fence_sql

log = logging.getLogger("oms_api.report_summaries")
CURSOR = "summaries"
# A lead-time row's `location_id` when it is of the whole order (models/reports.py).
WHOLE_ORDER = ""
DAYS_PER_STEP = 31
EVENTS_PER_STEP = 5000


def orders_on_days(days: str, channel: int, code: int) -> str:
    """The orders a period report counts, placed on the UTC days listed by the relation
    `days` (a column `day`), not cancelled, fenced to the channel bound as `$channel`, of
    the channel whose code is `$code` when given. One index range scan per day
    (`ix_orders_created_at_report`: every column read is in the index)."""
    return f"""
    SELECT o.id, o.created_at, o.channel_id, o.currency, o.total, c.code AS channel,
           (o.created_at AT TIME ZONE 'UTC')::date AS day,
           CASE WHEN o.status = 'delivered' THEN o.delivered_at END AS delivered_at
    FROM {days} d
    JOIN orders o ON o.created_at >= d.day::timestamp AT TIME ZONE 'UTC'
                 AND o.created_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
    JOIN channels c ON c.id = o.channel_id
    WHERE o.status <> 'cancelled'
      AND {fence_sql("o.channel_id", channel)}
      AND (${code}::text IS NULL OR c.code = ${code})
"""


# What a report reads of each live order (`o`), reached per order through its indexes
# (`uq_order_lines_order_id_position`, `ix_returns_order_id`, `pk_return_lines`): a
# subquery that groups cannot be flattened into a hash join over every line, so a few live
# days cost a few thousand index probes, whatever the planner guesses of their number.
ORDER_UNITS = """
    SELECT sum(l.quantity - l.quantity_cancelled) AS units
    FROM order_lines l WHERE l.order_id = o.id"""
ORDER_SKUS = """
    SELECT l.sku, sum(l.quantity - l.quantity_cancelled) AS units,
           sum((l.quantity - l.quantity_cancelled) * l.unit_price) AS revenue
    FROM order_lines l WHERE l.order_id = o.id
    GROUP BY l.sku"""
ORDER_RETURNS = """
    SELECT l.sku, rl.reason, sum(rl.quantity) AS units
    FROM returns r
    JOIN return_lines rl ON rl.return_id = r.id
    JOIN order_lines l ON l.id = rl.line_id
    WHERE r.order_id = o.id AND r.status NOT IN ('rejected', 'cancelled')
    GROUP BY l.sku, rl.reason"""

# An order's lead times per shipping location (its shipments not cancelled there): hours
# from placement to the first one shipped, and to the last one delivered once every one was.
# Hours as percentile_cont reads them (the numeric hours as double precision).
ORDER_LEAD_TIMES = """
    SELECT s.location_id,
           (extract(epoch FROM min(s.shipped_at) - o.created_at) / 3600)::float8 AS to_ship,
           CASE WHEN bool_and(s.delivered_at IS NOT NULL)
                THEN (extract(epoch FROM max(s.delivered_at) - o.created_at) / 3600)::float8
           END AS to_deliver
    FROM shipments s WHERE s.order_id = o.id AND s.status <> 'cancelled'
    GROUP BY s.location_id"""
# The lead times of the orders `o` (with `day`, `channel_id`, `delivered_at`: the order's
# own when delivered), one row each: per location ('' the whole order), `kind` 'placed'
# (no hours; at a location: an order with a shipment there not cancelled), 'shipped' and
# 'delivered' (hours). The whole order shipped with its first shipment, delivered when it
# was (every shipment). What the fulfilment report's percentiles are of.
LEAD_TIMES_CTE = f"""
facts AS MATERIALIZED (
    SELECT o.id, o.day, o.channel_id, f.location_id, f.to_ship, f.to_deliver
    FROM o CROSS JOIN LATERAL ({ORDER_LEAD_TIMES}) f
),
lead_times AS (
    SELECT o.day, o.channel_id, '{WHOLE_ORDER}' AS location_id, 'placed' AS kind,
           NULL::float8 AS hours
    FROM o
    UNION ALL
    SELECT o.day, o.channel_id, '{WHOLE_ORDER}', 'delivered',
           (extract(epoch FROM o.delivered_at - o.created_at) / 3600)::float8
    FROM o WHERE o.delivered_at IS NOT NULL
    UNION ALL
    SELECT f.day, f.channel_id, '{WHOLE_ORDER}', 'shipped', min(f.to_ship)
    FROM facts f GROUP BY f.id, f.day, f.channel_id HAVING min(f.to_ship) IS NOT NULL
    UNION ALL
    SELECT f.day, f.channel_id, f.location_id, 'placed', NULL FROM facts f
    UNION ALL
    SELECT f.day, f.channel_id, f.location_id, 'shipped', f.to_ship
    FROM facts f WHERE f.to_ship IS NOT NULL
    UNION ALL
    SELECT f.day, f.channel_id, f.location_id, 'delivered', f.to_deliver
    FROM facts f WHERE f.to_deliver IS NOT NULL
)"""
# A lead time's bucket in `report_lead_times`: its whole hour (0 for 'placed').
HOUR_SQL = "coalesce(floor({hours}), 0)::integer"


# The days of the period $1..$2 a report reads from the summaries (`summarised`: written,
# and no order placed on them has an event past the cursor) and those it computes live
# (`live`). In the report's own statement: one snapshot for summaries, days and cursor.
# The days come as ISO text (asyncpg would send the calendar's last day as `infinity`).
# A month within the period whose days all have summary rows (`whole_months`) is read from
# its month rows, which add up its day rows as they stand: its dirty days (`stale_days`,
# computed live) are taken back out by subtracting their day rows. The other clean days
# (`loose_days`) are read from their day rows.
TOUCHED_DAYS_CTE = f"""
touched AS (
    SELECT DISTINCT (o.created_at AT TIME ZONE 'UTC')::date AS day
    FROM report_cursor k
    JOIN events e ON (e.txid, e.position) > (k.txid, k.position)
    JOIN orders o ON o.id = e.order_id
    WHERE k.name = '{CURSOR}'
),
summarised AS (
    SELECT r.day FROM report_days r
    WHERE r.day BETWEEN $1::text::date AND $2::text::date AND r.day NOT IN (SELECT day FROM touched)
),
live AS (
    SELECT d::date AS day FROM generate_series($1::text::date, $2::text::date, interval '1 day') d
    EXCEPT SELECT day FROM summarised
),
whole_months AS (
    SELECT m.month FROM report_months m
    WHERE m.month >= $1::text::date AND (m.month + interval '1 month')::date <= $2::text::date + 1
      AND (SELECT count(*) FROM report_days r
           WHERE r.day >= m.month AND r.day < (m.month + interval '1 month')::date)
          = (m.month + interval '1 month')::date - m.month
),
loose_days AS (
    SELECT day FROM summarised
    WHERE date_trunc('month', day)::date NOT IN (SELECT month FROM whole_months)
),
stale_days AS (
    SELECT day FROM touched
    WHERE date_trunc('month', day)::date IN (SELECT month FROM whole_months)
),
sku_summary AS (
    SELECT s.channel_id, s.currency, s.sku, s.holders, s.orders, s.units, s.revenue
    FROM report_sku_sales s
    WHERE s.span = 'month' AND s.day IN (SELECT month FROM whole_months)
    UNION ALL
    SELECT s.channel_id, s.currency, s.sku, s.holders, s.orders, s.units, s.revenue
    FROM report_sku_sales s
    WHERE s.span = 'day' AND s.day IN (SELECT day FROM loose_days)
    UNION ALL
    SELECT s.channel_id, s.currency, s.sku, -s.holders, -s.orders, -s.units, -s.revenue
    FROM report_sku_sales s
    WHERE s.span = 'day' AND s.day IN (SELECT day FROM stale_days)
)"""

LOCK_CURSOR_SQL, ADVANCE_CURSOR_SQL = cursor_statements("report_cursor")
# A batch of committed events after the cursor: the last one's place and the days of the
# orders they are about.
SCAN_SQL = f"""
WITH {HORIZON_CTE},
batch AS (
    SELECT e.txid, e.position, e.order_id
    FROM events e, horizon
    WHERE {PAST_CURSOR}
    ORDER BY e.txid, e.position
    LIMIT $3
)
SELECT (SELECT array_agg(DISTINCT (o.created_at AT TIME ZONE 'UTC')::date)
        FROM batch b JOIN orders o ON o.id = b.order_id) AS days,
       (SELECT count(*) FROM batch) AS events,
       last.txid, last.position
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    SELECT txid, position FROM batch ORDER BY txid DESC, position DESC LIMIT 1
) last ON true
"""
# Days from the first order's month to today (UTC) never summarised, oldest first.
UNSUMMARISED_SQL = """
SELECT d::date AS day
FROM generate_series(
    (SELECT date_trunc('month', min(created_at) AT TIME ZONE 'UTC') FROM orders),
    (now() AT TIME ZONE 'UTC')::date, interval '1 day') d
WHERE NOT EXISTS (SELECT 1 FROM report_days r WHERE r.day = d::date)
ORDER BY 1
LIMIT $1
"""

_DAYS = "unnest($1::date[]) AS d(day)"
_ORDERS = orders_on_days("(SELECT day FROM " + _DAYS + ")", 2, 3)
DERIVE_SQL = [
    "DELETE FROM report_sales WHERE day = ANY($1::date[])",
    "DELETE FROM report_sku_sales WHERE span = 'day' AND day = ANY($1::date[])",
    "DELETE FROM report_returns WHERE day = ANY($1::date[])",
    f"""
    WITH o AS MATERIALIZED ({_ORDERS}),
    totals AS (
        SELECT o.day, o.channel_id, o.currency, count(*) AS orders, sum(o.total) AS revenue
        FROM o GROUP BY 1, 2, 3
    ),
    units AS (
        SELECT o.day, o.channel_id, o.currency, sum(l.units) AS units
        FROM o CROSS JOIN LATERAL ({ORDER_UNITS}) l
        GROUP BY 1, 2, 3
    )
    INSERT INTO report_sales (day, channel_id, currency, orders, units, revenue)
    SELECT t.day, t.channel_id, t.currency, t.orders, coalesce(u.units, 0), t.revenue
    FROM totals t
    LEFT JOIN units u ON (u.day, u.channel_id, u.currency) = (t.day, t.channel_id, t.currency)
    """,
    f"""
    WITH o AS MATERIALIZED ({_ORDERS}),
    lines AS (
        SELECT o.day, o.channel_id, o.currency, l.sku, l.units, l.revenue
        FROM o CROSS JOIN LATERAL ({ORDER_SKUS}) l
    )
    INSERT INTO report_sku_sales (span, day, channel_id, currency, sku, holders, orders, units,
                                  revenue)
    SELECT 'day', day, coalesce(channel_id, '{EVERY_CHANNEL}'), currency, sku, count(*),
           count(*) FILTER (WHERE units > 0), sum(units), sum(revenue)
    FROM lines GROUP BY GROUPING SETS ((day, channel_id, currency, sku), (day, currency, sku))
    """,
    f"""
    WITH o AS MATERIALIZED ({_ORDERS})
    INSERT INTO report_returns (day, channel_id, sku, reason, units)
    SELECT o.day, o.channel_id, x.sku, x.reason, sum(x.units)
    FROM o CROSS JOIN LATERAL ({ORDER_RETURNS}) x
    GROUP BY 1, 2, 3, 4
    """,
    "DELETE FROM report_lead_times WHERE span = 'day' AND day = ANY($1::date[])",
    f"""
    WITH o AS MATERIALIZED ({_ORDERS}),
    {LEAD_TIMES_CTE}
    INSERT INTO report_lead_times (span, day, channel_id, location_id, kind, hour, orders, hours)
    SELECT 'day', day, channel_id, location_id, kind, {HOUR_SQL.format(hours="hours")},
           count(*),
           CASE WHEN kind <> 'placed' THEN array_agg(hours ORDER BY hours) END
    FROM lead_times
    GROUP BY 2, 3, 4, 5, 6
    """,
    """
    INSERT INTO report_days (day) SELECT unnest($1::date[])
    ON CONFLICT (day) DO UPDATE SET summarised_at = now()
    """,
]
# The months of the days re-derived lose their month rows; those before the current month
# whose every day is summarised get them back, re-summed from the days (with any such month
# still without them: a month just ended).
DROP_MONTHS_SQL = [
    """DELETE FROM report_months
       WHERE month IN (SELECT date_trunc('month', d)::date FROM unnest($1::date[]) d)""",
    """DELETE FROM report_sku_sales
       WHERE span = 'month'
         AND day IN (SELECT date_trunc('month', d)::date FROM unnest($1::date[]) d)""",
    """DELETE FROM report_lead_times
       WHERE span = 'month'
         AND day IN (SELECT date_trunc('month', d)::date FROM unnest($1::date[]) d)""",
]
MONTHS_DUE_SQL = """
SELECT r.month FROM (
    SELECT date_trunc('month', day)::date AS month, count(*) AS days FROM report_days
    WHERE day < date_trunc('month', now() AT TIME ZONE 'UTC')::date
    GROUP BY 1
) r
WHERE r.days = (r.month + interval '1 month')::date - r.month
EXCEPT SELECT month FROM report_months
"""
SUM_MONTHS_SQL = [
    """
    INSERT INTO report_sku_sales (span, day, channel_id, currency, sku, holders, orders, units,
                                  revenue)
    SELECT 'month', date_trunc('month', s.day)::date, s.channel_id, s.currency, s.sku,
           sum(s.holders), sum(s.orders), sum(s.units), sum(s.revenue)
    FROM unnest($1::date[]) m(month)
    JOIN report_sku_sales s ON s.span = 'day' AND s.day >= m.month
                           AND s.day < (m.month + interval '1 month')::date
    GROUP BY 2, 3, 4, 5
    """,
    f"""
    INSERT INTO report_lead_times (span, day, channel_id, location_id, kind, hour, orders)
    SELECT 'month', t.month, coalesce(t.channel_id, '{EVERY_CHANNEL}'), t.location_id, t.kind,
           t.hour, sum(t.orders)
    FROM (SELECT m.month, d.channel_id, d.location_id, d.kind, d.hour, d.orders
          FROM unnest($1::date[]) m(month)
          JOIN report_lead_times d ON d.span = 'day' AND d.day >= m.month
                                  AND d.day < (m.month + interval '1 month')::date) t
    GROUP BY GROUPING SETS ((t.month, t.channel_id, t.location_id, t.kind, t.hour),
                            (t.month, t.location_id, t.kind, t.hour))
    """,
    "INSERT INTO report_months (month) SELECT unnest($1::date[])",
]


async def derive_days(conn: asyncpg.Connection, days: list[date]) -> None:
    """Re-derive the summaries of `days` from the orders, in the caller's transaction. No
    JIT: compiling these statements took ~300 ms each, for a day's 10 ms of work."""
    await conn.execute("SET LOCAL jit = off")
    for statement in DERIVE_SQL:
        if "$2" in statement:
            await conn.execute(statement, days, None, None)
        else:
            await conn.execute(statement, days)
    for statement in DROP_MONTHS_SQL:
        await conn.execute(statement, days)
    months = [r["month"] for r in await conn.fetch(MONTHS_DUE_SQL)]
    if months:
        for statement in SUM_MONTHS_SQL:
            await conn.execute(statement, months)


async def summarise(
    conn: asyncpg.Connection, *, events: int = EVENTS_PER_STEP, days: int = DAYS_PER_STEP
) -> int:
    """One step, in the caller's transaction: the days touched by up to `events` committed
    events after the cursor, and up to `days` days never summarised, re-derived; the cursor
    moved past those events. The number of days re-derived plus events read (0: caught up,
    or another summariser holds the cursor)."""
    cursor = await conn.fetchrow(LOCK_CURSOR_SQL, CURSOR)
    if cursor is None:
        return 0
    # The scan's snapshot comes first: the days are derived from a later one, so they hold
    # at least every change up to the cursor's new place.
    scan = await conn.fetchrow(SCAN_SQL, cursor["txid"], cursor["position"], events)
    touched = set(scan["days"] or [])
    touched.update(r["day"] for r in await conn.fetch(UNSUMMARISED_SQL, days))
    if touched:
        await derive_days(conn, sorted(touched))
    if scan["events"]:
        await conn.execute(ADVANCE_CURSOR_SQL, CURSOR, scan["txid"], scan["position"])
    if touched or scan["events"]:
        log.debug("%d event(s) read, %d day(s) summarised", scan["events"], len(touched))
    return int(scan["events"]) + len(touched)
