"""Reports: every figure is computed in PostgreSQL, in one statement per report.

Every report over a period counts the orders *placed* in it (`orders.created_at` within the
period's bounds, `domain.reports.Period`) and leaves cancelled orders out. A channel-bound
key sees only its own channel's orders (`scoping.fence_sql`), and for the inventory report
only the locations its channel sells from (`scoping.fence_location_sql`). The optional
`channel` filter (a channel code) narrows further; naming another channel from a bound key,
or a code no channel has, gives no rows — as the orders list does.

Every period report reads the period's clean days from per-day summaries and computes the
others live, in one statement (`services/report_summaries.py`; docs/reports.md, "How fresh,
how exact"): the live days' orders from the index `ix_orders_created_at_report` (one range
scan per day), their lines, shipments and returns per order through their own indexes.
What that costs on a million orders: docs/performance.md, "Reports".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from oms_api.domain.reports import (
    Period,
    SalesGrouping,
    reasons_in_full,
    return_rate,
)
from oms_api.services.report_summaries import (
    HOUR_SQL,
    LEAD_TIMES_CTE,
    ORDER_RETURNS,
    ORDER_SKUS,
    ORDER_UNITS,
    TOUCHED_DAYS_CTE,
    WHOLE_ORDER,
    orders_on_days,
)
from oms_api.services.scoping import fence_location_sql, fence_sql, summary_fence_sql

# Sorts and hashes of a report over a year hold up to a million rows: in memory (at 64 MB
# fulfilment's grouping spilled to disk). No JIT: compiling one of these plans took ~100 ms.
# Planned for each call's own parameters: asyncpg prepares each statement once per
# connection, and after five calls PostgreSQL may keep a generic plan, which cannot drop
# the parts a NULL channel or code turns off nor see the period's days (measured on a
# million orders: 0.4-1.4 s against 8-300 ms planned for the call; planning takes ~10 ms).
REPORT_WORK_MEM = (
    "SET LOCAL work_mem = '128MB'; SET LOCAL jit = off; "
    "SET LOCAL plan_cache_mode = force_custom_plan"
)

# Sales per UTC day or per channel: orders, units (their lines' quantities not cancelled),
# revenue (the orders' totals), per currency. Clean days from the per-day summary; the live
# days' orders counted and summed on their own, their units over their lines, then the two
# put side by side; both added up per key. Revenue is a numeric sum: totals reach 10^15 each,
# so a period's can pass bigint (answered exactly, past 64 bits too: jsonutil.dumps).
SALES_BY_ORDER_SQL = {
    SalesGrouping.DAY: "to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    SalesGrouping.CHANNEL: "o.channel",
}
SALES_SUMMARY_KEY = {
    SalesGrouping.DAY: "to_char(s.day, 'YYYY-MM-DD')",
    SalesGrouping.CHANNEL: "c.code",
}
_SALES_BY_ORDER = """
WITH {days},
o AS MATERIALIZED ({orders}),
totals AS (
    SELECT {key} AS key, o.currency, count(*) AS orders, sum(o.total) AS revenue
    FROM o GROUP BY 1, 2
),
units AS (
    SELECT {key} AS key, o.currency, sum(l.units) AS units
    FROM o CROSS JOIN LATERAL ({order_units}) l
    GROUP BY 1, 2
),
figures AS (
    SELECT t.key, t.currency, t.orders, coalesce(u.units, 0) AS units, t.revenue
    FROM totals t LEFT JOIN units u ON u.key = t.key AND u.currency = t.currency
    UNION ALL
    SELECT {summary_key}, s.currency, s.orders, s.units, s.revenue
    FROM report_sales s
    JOIN channels c ON c.id = s.channel_id
    WHERE s.day IN (SELECT day FROM summarised)
      AND {fence} AND ($4::text IS NULL OR c.code = $4)
)
SELECT key, currency, sum(orders)::bigint AS orders, sum(units)::bigint AS units,
       sum(revenue) AS revenue
FROM figures GROUP BY 1, 2
ORDER BY 1, 2
"""

# Per SKU, of the period's clean days and whole months from the summary, of the live days'
# orders: orders holding units of it not cancelled, units, revenue (quantity x unit price).
_SKU_FIGURES = """
sku_figures AS (
    SELECT s.sku, s.currency, s.holders, s.orders, s.units, s.revenue
    FROM sku_summary s
    LEFT JOIN channels c ON c.id = s.channel_id
    WHERE {fence} AND ($4::text IS NULL OR c.code = $4)
    UNION ALL
    SELECT l.sku, o.currency, count(*), count(*) FILTER (WHERE l.units > 0), sum(l.units),
           sum(l.revenue)
    FROM o CROSS JOIN LATERAL ({order_skus}) l
    GROUP BY l.sku, o.currency
)"""

# Sales per SKU: orders holding it, units, revenue, per currency — units cancelled (the rest
# of an order cancelled after some shipped) not sold. A SKU on two lines of one order counts
# that order once; a line cancelled whole, not at all (a SKU no order holds units of: no row).
_SALES_BY_SKU = """
WITH {days},
o AS MATERIALIZED ({orders}),
{sku_figures}
SELECT sku AS key, currency, sum(orders)::bigint AS orders, sum(units)::bigint AS units,
       sum(revenue) AS revenue
FROM sku_figures
GROUP BY sku, currency
HAVING sum(orders) > 0
ORDER BY sku, currency
"""

# Fulfilment lead times over the orders placed in the period: the totals (`location_id` ''),
# and per shipping location (orders with a shipment there not cancelled): orders placed,
# shipped and delivered, and the median and p90 of the hours to ship and to deliver, exactly
# as percentile_cont computes them over every lead time (`report_summaries.LEAD_TIMES_CTE`
# says which).
#
# Counts per whole hour come from the summaries (whole months from month rows less their
# dirty days' day rows, other clean days from day rows) and from the live days' orders
# (reached per order: `ix_shipments_order_id`); their running sum says which hour's
# bucket holds each rank percentile_cont reads (floor and ceiling of p x (n - 1), 0-based);
# only those buckets' lead times are read (the day rows' sorted `hours`, and the live ones),
# and the two values are interpolated as percentile_cont does: lo + (hi - lo) x fraction.
_FULFILMENT = """
WITH {days},
o AS MATERIALIZED ({orders}),
{lead_times},
counts AS (
    SELECT x.location_id, x.kind, x.hour, sum(x.orders)::bigint AS orders
    FROM (
        SELECT t.location_id, t.kind, t.hour, t.orders
        FROM report_lead_times t
        LEFT JOIN channels c ON c.id = t.channel_id
        WHERE t.span = 'month' AND t.day IN (SELECT month FROM whole_months)
          AND {month_fence} AND ($4::text IS NULL OR c.code = $4)
        UNION ALL
        SELECT t.location_id, t.kind, t.hour, t.orders
        FROM report_lead_times t
        JOIN channels c ON c.id = t.channel_id
        WHERE t.span = 'day' AND t.day IN (SELECT day FROM loose_days)
          AND {day_fence} AND ($4::text IS NULL OR c.code = $4)
        UNION ALL
        SELECT t.location_id, t.kind, t.hour, -t.orders
        FROM report_lead_times t
        JOIN channels c ON c.id = t.channel_id
        WHERE t.span = 'day' AND t.day IN (SELECT day FROM stale_days)
          AND {day_fence} AND ($4::text IS NULL OR c.code = $4)
        UNION ALL
        SELECT l.location_id, l.kind, {live_hour}, 1 FROM lead_times l
    ) x
    GROUP BY 1, 2, 3
),
ranked AS (
    SELECT location_id, kind, hour, orders,
           sum(orders) OVER (PARTITION BY location_id, kind ORDER BY hour) - orders AS before,
           sum(orders) OVER (PARTITION BY location_id, kind) AS total
    FROM counts WHERE kind <> 'placed'
),
ranks AS (
    SELECT DISTINCT r.location_id, r.kind, r.total::bigint AS total, p.p,
           floor(p.p * (r.total - 1)::float8)::bigint AS lo,
           ceil(p.p * (r.total - 1)::float8)::bigint AS hi
    FROM ranked r, unnest(ARRAY[0.5, 0.9]::float8[]) p(p)
),
summarised_days AS (SELECT array_agg(day) AS days FROM summarised),
percentiles AS (
    SELECT k.location_id, k.kind,
           array_agg(CASE WHEN k.hi = k.lo THEN lo.hours
                          ELSE lo.hours + (k.p * (k.total - 1)::float8 - k.lo) * (hi.hours - lo.hours)
                     END ORDER BY k.p) AS figures
    FROM ranks k
    CROSS JOIN LATERAL ({pick_lo}) b
    CROSS JOIN LATERAL (SELECT b.hours[k.lo - b.before + 1] AS hours) lo
    CROSS JOIN LATERAL (
        SELECT CASE WHEN k.hi < b.before + b.orders THEN b.hours[k.hi - b.before + 1]
                    ELSE ({pick_hi}) END AS hours
    ) hi
    GROUP BY 1, 2
),
places AS (
    SELECT '{whole_order}' AS location_id
    UNION SELECT location_id FROM counts WHERE kind = 'placed' AND orders > 0
)
SELECT nullif(x.location_id, '{whole_order}') AS location_id, l.code AS location_code,
       coalesce((SELECT sum(orders) FROM counts c
                 WHERE c.location_id = x.location_id AND c.kind = 'placed'), 0)::bigint
           AS orders_placed,
       coalesce((SELECT sum(orders) FROM counts c
                 WHERE c.location_id = x.location_id AND c.kind = 'shipped'), 0)::bigint
           AS orders_shipped,
       coalesce((SELECT sum(orders) FROM counts c
                 WHERE c.location_id = x.location_id AND c.kind = 'delivered'), 0)::bigint
           AS orders_delivered,
       (SELECT figures FROM percentiles p
        WHERE p.location_id = x.location_id AND p.kind = 'shipped') AS ship,
       (SELECT figures FROM percentiles p
        WHERE p.location_id = x.location_id AND p.kind = 'delivered') AS deliver
FROM places x
LEFT JOIN locations l ON l.id = x.location_id
ORDER BY location_code NULLS FIRST
"""

# Returns per SKU over the orders placed in the period: units sold (the lines' quantities
# less those cancelled), units returned (return lines of returns neither rejected nor
# cancelled), per reason. Clean days from the summaries, the live days' orders computed.
_RETURNS = """
WITH {days},
o AS MATERIALIZED ({orders}),
{sku_figures},
sold AS (
    SELECT sku, sum(units)::bigint AS units_sold FROM sku_figures
    GROUP BY sku HAVING sum(holders) > 0
),
per_reason AS (
    SELECT r.sku, r.reason, r.units
    FROM report_returns r
    JOIN channels c ON c.id = r.channel_id
    WHERE r.day IN (SELECT day FROM summarised)
      AND {return_fence} AND ($4::text IS NULL OR c.code = $4)
    UNION ALL
    SELECT x.sku, x.reason, x.units
    FROM o CROSS JOIN LATERAL ({order_returns}) x
),
returned AS (
    SELECT x.sku, sum(x.units)::bigint AS units, jsonb_object_agg(x.reason, x.units) AS reasons
    FROM (
        SELECT sku, reason, sum(units)::bigint AS units FROM per_reason GROUP BY sku, reason
    ) x
    GROUP BY x.sku
)
SELECT s.sku, s.units_sold, coalesce(r.units, 0)::bigint AS units_returned, r.reasons
FROM sold s LEFT JOIN returned r ON r.sku = s.sku
ORDER BY s.sku
"""

# Stock per SKU over the locations the caller may see ($1: a channel-bound key's channel):
# on hand, reserved, available, the reorder point, whether it is low, and what the stock on
# hand is worth at the product's price (numeric: up to 10^11 a unit, it can pass bigint).
# Low-stock products first, then by SKU.
INVENTORY_SQL = f"""
SELECT p.sku, coalesce(v.on_hand, 0)::bigint AS on_hand,
       coalesce(v.reserved, 0)::bigint AS reserved,
       coalesce(v.on_hand - v.reserved, 0)::bigint AS available,
       p.reorder_point,
       coalesce(v.on_hand - v.reserved, 0) <= p.reorder_point AS low_stock,
       coalesce(v.on_hand, 0) * p.unit_price AS stock_value, p.currency
FROM products p
LEFT JOIN (
    SELECT il.product_id, sum(il.on_hand) AS on_hand, sum(il.reserved) AS reserved
    FROM inventory_levels il
    WHERE {fence_location_sql("il.location_id", 1)}
    GROUP BY il.product_id
) v ON v.product_id = p.id
ORDER BY low_stock DESC, p.sku
"""

# The sorted lead times of the bucket (`ranked` row) of location `k.location_id`, kind
# `k.kind` that holds the 0-based rank `{rank}`, and its place: `before` (ranks before it),
# `orders` (how many it holds), `hours` — from the clean days' day rows and the live days.
_BUCKET = """
    SELECT r.before, r.orders, array_agg(v.hours ORDER BY v.hours) AS hours
    FROM ranked r
    CROSS JOIN LATERAL (
        SELECT unnest(t.hours) AS hours
        FROM report_lead_times t
        JOIN channels c ON c.id = t.channel_id
        WHERE t.span = 'day' AND t.location_id = r.location_id AND t.kind = r.kind
          AND t.hour = r.hour AND t.day = ANY((SELECT days FROM summarised_days)::date[])
          AND {day_fence} AND ($4::text IS NULL OR c.code = $4)
        UNION ALL
        SELECT l.hours FROM lead_times l
        WHERE l.location_id = r.location_id AND l.kind = r.kind AND {live_hour} = r.hour
    ) v
    WHERE r.location_id = k.location_id AND r.kind = k.kind
      AND {rank} >= r.before AND {rank} < r.before + r.orders
    GROUP BY r.before, r.orders"""

# Each report's statement, built once.
_LIVE_ORDERS = orders_on_days("live", 3, 4)
_SUMMARY_FENCE = fence_sql("s.channel_id", 3)
# The SKU summary adds up every channel too: an unbound caller naming none reads that.
_SKU_FENCE = summary_fence_sql("s.channel_id", 3, 4)
SALES_SQL = {
    grouping: _SALES_BY_ORDER.format(
        days=TOUCHED_DAYS_CTE, orders=_LIVE_ORDERS, key=SALES_BY_ORDER_SQL[grouping],
        summary_key=SALES_SUMMARY_KEY[grouping], fence=_SUMMARY_FENCE, order_units=ORDER_UNITS,
    )
    for grouping in (SalesGrouping.DAY, SalesGrouping.CHANNEL)
}  # fmt: skip
SALES_SQL[SalesGrouping.SKU] = _SALES_BY_SKU.format(
    days=TOUCHED_DAYS_CTE, orders=_LIVE_ORDERS,
    sku_figures=_SKU_FIGURES.format(fence=_SKU_FENCE, order_skus=ORDER_SKUS),
)  # fmt: skip
_LEAD_FENCE = {
    "day_fence": fence_sql("t.channel_id", 3),
    "live_hour": HOUR_SQL.format(hours="l.hours"),
}
FULFILMENT_SQL = _FULFILMENT.format(
    days=TOUCHED_DAYS_CTE, orders=_LIVE_ORDERS, lead_times=LEAD_TIMES_CTE,
    month_fence=summary_fence_sql("t.channel_id", 3, 4), whole_order=WHOLE_ORDER,
    pick_lo=_BUCKET.format(rank="k.lo", **_LEAD_FENCE),
    pick_hi=f"SELECT x.hours[k.hi - x.before + 1] FROM ({_BUCKET.format(rank='k.hi', **_LEAD_FENCE)}) x",
    **_LEAD_FENCE,
)  # fmt: skip
RETURNS_SQL = _RETURNS.format(
    days=TOUCHED_DAYS_CTE, orders=_LIVE_ORDERS,
    sku_figures=_SKU_FIGURES.format(fence=_SKU_FENCE, order_skus=ORDER_SKUS),
    return_fence=fence_sql("r.channel_id", 3), order_returns=ORDER_RETURNS,
)  # fmt: skip

SALES_COLUMNS = {
    SalesGrouping.DAY: ["day", "currency", "orders", "units", "revenue"],
    SalesGrouping.CHANNEL: ["channel", "currency", "orders", "units", "revenue"],
    SalesGrouping.SKU: ["sku", "currency", "orders", "units", "revenue"],
}
FULFILMENT_FIGURES = [
    "orders_placed", "orders_shipped", "orders_delivered", "hours_to_ship_median",
    "hours_to_ship_p90", "hours_to_deliver_median", "hours_to_deliver_p90",
]  # fmt: skip
FULFILMENT_COLUMNS = ["location_id", "location_code", *FULFILMENT_FIGURES]
RETURNS_COLUMNS = ["sku", "units_sold", "units_returned", "return_rate", "reasons"]
INVENTORY_COLUMNS = [
    "sku", "on_hand", "reserved", "available", "reorder_point", "low_stock", "stock_value",
    "currency",
]  # fmt: skip


def _envelope(period: Period | None, **rest: Any) -> dict[str, Any]:
    return {
        "from": period.first.isoformat() if period else None,
        "to": period.last.isoformat() if period else None,
        "generated_at": datetime.now(UTC),
        **rest,
    }


def summary_args(period: Period, channel_id: str | None, channel: str | None) -> list[Any]:
    """The parameters of a statement that reads the summaries: the period's first and last
    days (ISO text), the caller's channel, the channel code asked for."""
    return [period.first.isoformat(), period.last.isoformat(), channel_id, channel]


async def sales(
    conn: asyncpg.Connection, *, period: Period, group_by: SalesGrouping,
    channel_id: str | None, channel: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Sales in `period` grouped by UTC day, channel code or SKU, per currency."""
    await conn.execute(REPORT_WORK_MEM)
    rows = await conn.fetch(SALES_SQL[group_by], *summary_args(period, channel_id, channel))
    key = group_by.value
    return _envelope(
        period, group_by=key,
        rows=[
            {key: r["key"], "currency": r["currency"], "orders": r["orders"],
             "units": r["units"], "revenue": int(r["revenue"])}
            for r in rows
        ],
    )  # fmt: skip


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _figures(row: asyncpg.Record) -> dict[str, Any]:
    """A fulfilment row's figures; hours to two decimals (null where nothing shipped or
    was delivered)."""
    ship, deliver = row["ship"] or [None, None], row["deliver"] or [None, None]
    return {
        "orders_placed": row["orders_placed"], "orders_shipped": row["orders_shipped"],
        "orders_delivered": row["orders_delivered"],
        "hours_to_ship_median": _hours(ship[0]), "hours_to_ship_p90": _hours(ship[1]),
        "hours_to_deliver_median": _hours(deliver[0]), "hours_to_deliver_p90": _hours(deliver[1]),
    }  # fmt: skip


async def fulfilment(
    conn: asyncpg.Connection, *, period: Period, channel_id: str | None, channel: str | None
) -> dict[str, Any]:
    """Lead times of the orders placed in `period`: the totals, and per shipping location."""
    await conn.execute(REPORT_WORK_MEM)
    rows = await conn.fetch(FULFILMENT_SQL, *summary_args(period, channel_id, channel))
    totals = next((r for r in rows if r["location_id"] is None), None)
    empty = dict.fromkeys(FULFILMENT_FIGURES) | {
        "orders_placed": 0, "orders_shipped": 0, "orders_delivered": 0,
    }  # fmt: skip
    return _envelope(
        period,
        **(_figures(totals) if totals is not None else empty),
        rows=[
            {"location_id": r["location_id"], "location_code": r["location_code"]} | _figures(r)
            for r in rows
            if r["location_id"] is not None
        ],
    )


async def returns(
    conn: asyncpg.Connection, *, period: Period, channel_id: str | None, channel: str | None
) -> dict[str, Any]:
    """Per SKU sold in `period`: units sold and returned, the rate, units per reason."""
    await conn.execute(REPORT_WORK_MEM)
    rows = await conn.fetch(RETURNS_SQL, *summary_args(period, channel_id, channel))
    return _envelope(
        period,
        rows=[
            {
                "sku": r["sku"], "units_sold": r["units_sold"],
                "units_returned": r["units_returned"],
                "return_rate": return_rate(r["units_returned"], r["units_sold"]),
                "reasons": reasons_in_full(_decoded(r["reasons"])),
            }
            for r in rows
        ],
    )  # fmt: skip


def _decoded(value: Any) -> dict[str, int] | None:
    """A `jsonb` value as asyncpg gives it (text, unless a codec decoded it)."""
    if value is None or isinstance(value, dict):
        return value
    decoded: dict[str, int] = orjson.loads(value)
    return decoded


async def inventory(conn: asyncpg.Connection, *, channel_id: str | None) -> dict[str, Any]:
    """Stock per SKU at the locations the caller may see; low-stock products first."""
    rows = await conn.fetch(INVENTORY_SQL, channel_id)
    return _envelope(None, rows=[dict(r) | {"stock_value": int(r["stock_value"])} for r in rows])
