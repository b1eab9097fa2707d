"""A million orders for the reports: a database `oms_bench_million` seeded with SQL.

    .venv/bin/python bench/seed_million.py [--orders 1000000] [--batch 50000] [--name oms_bench_million]

Uses the PostgreSQL server in DATABASE_URL (default: the local one on 127.0.0.1:5432).
Drops and creates the database `--name`, migrates it with the project's migrations, then
writes, with `INSERT … SELECT` over `generate_series` (no Python per row), in batches with a
progress bar on stderr:

- 4 channels (`web`, `pos`, `marketplace`, `phone`) over 4 locations in 3 currencies,
  2,000 products, 50,000 customers with a profile in every channel;
- `--orders` orders spread evenly over the last 395 days (13 months), newest now, their
  ids time-ordered like the service's own; 1-3 lines each (1-3 units);
- states as a shop has them: 5 % cancelled; older than a week, almost all delivered
  (1 % shipped and never delivered); the last week shipping; the last two days pending,
  on hold and confirmed;
- one shipment per shipped order (from one of its channel's locations), shipped 2-74 h
  after placement (most within a day) and delivered 1-6 days later;
- returns for about 8 % of delivered orders: one line, 1 unit, six reasons, mostly
  completed (refunded), some requested, approved, rejected or cancelled;
- stock at every location with the order lines' open reservations, with the ledger rows
  that make `inventory verify` hold (one opening row per level).

Every row satisfies every constraint of the schema (the inserts would fail otherwise);
what the seed does not write is history nobody reports on: events, payments, tracking.
Ends with VACUUM ANALYZE, so index-only scans see an all-visible table as a live database
would after autovacuum. Keeps the database; `bench/reports.py` times the reports on it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from run import _db_url, admin_execute  # noqa: E402

from oms_api import migrations_runner  # noqa: E402

DAYS = 395
PRODUCTS = 2000
CUSTOMERS = 50_000
LOCATIONS = (
    ("loc_bench_berlin", "berlin", "warehouse", 10),
    ("loc_bench_paris", "paris", "warehouse", 20),
    ("loc_bench_london", "london", "store", 30),
    ("loc_bench_newark", "newark", "warehouse", 40),
)
CHANNELS = (  # code, the locations it sells from
    ("web", ["loc_bench_berlin", "loc_bench_paris"]),
    ("pos", ["loc_bench_london"]),
    ("marketplace", ["loc_bench_berlin", "loc_bench_newark"]),
    ("phone", []),  # every location
)
REASONS = ("damaged", "wrong_item", "not_as_described", "no_longer_needed", "size_or_fit", "other")

# Helpers living for the seeding session only (pg_temp). `h(n, salt)` is a deterministic
# non-negative pseudo-random integer; `ulid(ms, n)` an id shaped like `ids.new_id`'s:
# 10 Crockford characters of milliseconds, then 16 derived from n (unique per n).
HELPERS = r"""
CREATE FUNCTION pg_temp.h(n bigint, salt int) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT (hashint8(n * 1009 + salt)::bigint & 2147483647) $$;

CREATE FUNCTION pg_temp.crockford(v bigint, width int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT string_agg(substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ',
                            ((v >> (5 * (width - 1 - i))) & 31)::int + 1, 1), '' ORDER BY i)
   FROM generate_series(0, width - 1) AS i $$;

CREATE FUNCTION pg_temp.ulid(prefix text, at timestamptz, n bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT prefix || '_' || pg_temp.crockford((extract(epoch FROM at) * 1000)::bigint, 10)
          || pg_temp.crockford(n >> 40, 8) || pg_temp.crockford(n & 1099511627775, 8) $$;
"""

# One batch of orders [lo, hi]: every table, from the same pure functions of n.
# Order n: placed at base + (n-1)·step; `r` picks its state by its age. Formatted with
# numbers and a timestamp of our own (CREATE TABLE AS takes no bind parameters); pending
# orders expire two days after seeding, so a server started on it does not cancel them.
BATCH = r"""
CREATE TEMP TABLE b_orders ON COMMIT DROP AS
WITH o AS (
    SELECT n, '{base}'::timestamptz + (n - 1) * make_interval(secs => {step}) AS created_at,
           pg_temp.h(n, 1) % 1000 AS r,
           1 + (pg_temp.h(n, 2) % 4)::int AS channel_no,
           1 + (pg_temp.h(n, 3) % 50000) AS customer_no,
           CASE WHEN pg_temp.h(n, 4) % 10 < 6 THEN 'EUR'
                WHEN pg_temp.h(n, 4) % 10 < 8 THEN 'GBP' ELSE 'USD' END AS currency,
           CASE WHEN pg_temp.h(n, 5) % 10 < 3 THEN 0 ELSE 490 END AS shipping,
           1 + (pg_temp.h(n, 6) % 3)::int AS line_count,
           -- hours to ship: most within a day, a tail to 74 h; then 1-6 days to deliver
           2 + least(pg_temp.h(n, 7) % 24, pg_temp.h(n, 8) % 73) + (pg_temp.h(n, 9) % 60) / 60.0
               AS ship_hours,
           24 + (pg_temp.h(n, 10) % 121) + (pg_temp.h(n, 11) % 60) / 60.0 AS deliver_hours
    FROM generate_series({lo}::bigint, {hi}::bigint) AS n
)
SELECT o.*,
       CASE WHEN r < 50 THEN 'cancelled'
            WHEN now() - created_at < interval '2 days' THEN
                 CASE WHEN r < 400 THEN 'pending' WHEN r < 450 THEN 'on_hold' ELSE 'confirmed' END
            WHEN created_at + ship_hours * interval '1 hour' > now() THEN 'confirmed'
            WHEN created_at + (ship_hours + deliver_hours) * interval '1 hour' > now()
                 OR r < 60 THEN 'shipped'
            ELSE 'delivered' END AS status,
       c.id AS channel_id, c.location_ids,
       'cus_bench_' || lpad(customer_no::text, 6, '0') AS customer_id,
       'buyer' || customer_no || '@example.com' AS email,
       pg_temp.ulid('ord', created_at, n) AS id
FROM o
JOIN (SELECT row_number() OVER (ORDER BY id) AS no, id, location_ids FROM channels
      WHERE id LIKE 'ch_bench_%') c ON c.no = o.channel_no;

CREATE TEMP TABLE b_lines ON COMMIT DROP AS
SELECT o.n, o.id AS order_id, o.status, o.created_at, pos,
       pg_temp.ulid('line', o.created_at, o.n * 4 + pos) AS id,
       p.id AS product_id, p.sku, p.name, p.unit_price,
       (CASE WHEN pg_temp.h(o.n, 20 + pos) % 10 < 7 THEN 1
             ELSE 2 + pg_temp.h(o.n, 30 + pos) % 2 END)::int AS quantity
FROM b_orders o
CROSS JOIN generate_series(1, 3) AS pos
JOIN products p ON p.id = 'prod_bench_' || lpad((1 + pg_temp.h(o.n, 10 + pos) % 2000)::text, 5, '0')
WHERE pos <= o.line_count;

INSERT INTO orders (id, number, channel_id, external_id, customer_id, email_normalized, status,
                    payment_status, payment_method, currency, subtotal, shipping, total,
                    authorized, captured, refunded, shipping_address, billing_address,
                    created_at, updated_at, confirmed_at, cancelled_at, shipped_at,
                    delivered_at, expires_at, cancel_reason)
SELECT o.id, 1000 + o.n, o.channel_id, 'EXT-' || o.n, o.customer_id, o.email, o.status,
       CASE WHEN o.status IN ('pending', 'on_hold') THEN 'unpaid'
            WHEN o.status = 'cancelled' THEN 'voided' ELSE 'paid' END,
       'card', o.currency, l.subtotal, o.shipping, l.subtotal + o.shipping,
       0, CASE WHEN o.status IN ('pending', 'on_hold', 'cancelled') THEN 0
               ELSE l.subtotal + o.shipping END, 0,
       jsonb_build_object('name', 'Buyer ' || o.customer_no, 'line1', o.n || ' Main Street',
                          'city', 'Springfield', 'postal_code', '10115', 'country', 'DE'),
       NULL,
       o.created_at, o.created_at,
       CASE WHEN o.status NOT IN ('pending', 'on_hold', 'cancelled')
            THEN o.created_at + interval '3 minutes' END,
       CASE WHEN o.status = 'cancelled' THEN o.created_at + interval '5 hours' END,
       CASE WHEN o.status IN ('shipped', 'delivered')
            THEN o.created_at + o.ship_hours * interval '1 hour' END,
       CASE WHEN o.status = 'delivered'
            THEN o.created_at + (o.ship_hours + o.deliver_hours) * interval '1 hour' END,
       CASE WHEN o.status = 'pending' THEN now() + interval '2 days' END,
       CASE WHEN o.status = 'cancelled' THEN 'customer asked' END
FROM b_orders o
JOIN (SELECT order_id, sum(quantity * unit_price)::bigint AS subtotal FROM b_lines
      GROUP BY order_id) l ON l.order_id = o.id;

INSERT INTO order_lines (id, order_id, position, product_id, sku, name, quantity, unit_price,
                         quantity_reserved, quantity_shipped, quantity_cancelled)
SELECT id, order_id, pos, product_id, sku, name, quantity, unit_price,
       CASE WHEN status IN ('pending', 'on_hold', 'confirmed') THEN quantity ELSE 0 END,
       CASE WHEN status IN ('shipped', 'delivered') THEN quantity ELSE 0 END,
       CASE WHEN status = 'cancelled' THEN quantity ELSE 0 END
FROM b_lines;

-- Open orders hold their units at their channel's first location (every location's
-- levels are summed from these at the end).
INSERT INTO order_reservations (line_id, location_id, product_id, quantity)
SELECT l.id, coalesce(o.location_ids[1], 'loc_bench_berlin'), l.product_id, l.quantity
FROM b_lines l JOIN b_orders o ON o.id = l.order_id
WHERE l.status IN ('pending', 'on_hold', 'confirmed');

CREATE TEMP TABLE b_shipments ON COMMIT DROP AS
SELECT o.n, o.id AS order_id, o.channel_id, o.status, o.created_at, o.ship_hours,
       o.deliver_hours, pg_temp.ulid('shp', o.created_at + interval '1 hour', o.n) AS id,
       CASE WHEN cardinality(o.location_ids) = 0
            THEN (ARRAY['loc_bench_berlin', 'loc_bench_paris', 'loc_bench_london',
                        'loc_bench_newark'])[1 + pg_temp.h(o.n, 40) % 4]
            ELSE o.location_ids[1 + pg_temp.h(o.n, 40) % cardinality(o.location_ids)] END
           AS location_id
FROM b_orders o WHERE o.status IN ('shipped', 'delivered');

INSERT INTO shipments (id, order_id, channel_id, location_id, status, carrier, carrier_key,
                       service, tracking_number, weight_grams, created_at, updated_at,
                       picking_at, packed_at, shipped_at, delivered_at)
SELECT s.id, s.order_id, s.channel_id, s.location_id, s.status, 'UPS', 'ups', 'Standard',
       '1Z' || lpad(s.n::text, 16, '0'), 500, s.created_at + interval '1 hour',
       s.created_at + (s.ship_hours + s.deliver_hours) * interval '1 hour',
       s.created_at + interval '1 hour', s.created_at + interval '90 minutes',
       s.created_at + s.ship_hours * interval '1 hour',
       CASE WHEN s.status = 'delivered'
            THEN s.created_at + (s.ship_hours + s.deliver_hours) * interval '1 hour' END
FROM b_shipments s;

INSERT INTO shipment_lines (shipment_id, line_id, quantity)
SELECT s.id, l.id, l.quantity FROM b_shipments s JOIN b_lines l ON l.order_id = s.order_id;

-- Returns: ~8 % of delivered orders send their first line's first unit back.
CREATE TEMP TABLE b_returns ON COMMIT DROP AS
SELECT s.n, s.order_id, s.channel_id, s.location_id, l.id AS line_id,
       pg_temp.ulid('ret', s.created_at + (s.ship_hours + s.deliver_hours + 48) * interval '1 hour', s.n)
           AS id,
       s.created_at + (s.ship_hours + s.deliver_hours + 48) * interval '1 hour' AS requested_at,
       l.unit_price,
       CASE WHEN pg_temp.h(s.n, 51) % 100 < 80 THEN 'completed'
            WHEN pg_temp.h(s.n, 51) % 100 < 86 THEN 'requested'
            WHEN pg_temp.h(s.n, 51) % 100 < 90 THEN 'approved'
            WHEN pg_temp.h(s.n, 51) % 100 < 95 THEN 'rejected' ELSE 'cancelled' END AS status,
       (ARRAY{reasons})[1 + pg_temp.h(s.n, 52) % 6] AS reason
FROM b_shipments s JOIN b_lines l ON l.order_id = s.order_id AND l.pos = 1
WHERE s.status = 'delivered' AND pg_temp.h(s.n, 50) % 100 < 8
  AND s.created_at + (s.ship_hours + s.deliver_hours + 48) * interval '1 hour' < now();

INSERT INTO returns (id, number, order_id, channel_id, status, resolution, location_id,
                     refund_amount, created_at, updated_at, approved_at, received_at,
                     completed_at, rejected_at, cancelled_at, reject_reason, cancel_reason)
SELECT id, 'RMA-B' || n, order_id, channel_id, status, 'refund', location_id,
       CASE WHEN status = 'completed' THEN unit_price END,
       requested_at, requested_at,
       CASE WHEN status IN ('approved', 'completed') THEN requested_at + interval '1 hour' END,
       CASE WHEN status = 'completed' THEN requested_at + interval '4 days' END,
       CASE WHEN status = 'completed' THEN requested_at + interval '4 days 1 hour' END,
       CASE WHEN status = 'rejected' THEN requested_at + interval '1 hour' END,
       CASE WHEN status = 'cancelled' THEN requested_at + interval '2 hours' END,
       CASE WHEN status = 'rejected' THEN 'outside policy' END,
       CASE WHEN status = 'cancelled' THEN 'kept it' END
FROM b_returns;

INSERT INTO return_lines (return_id, line_id, quantity, reason, quantity_restocked,
                          quantity_damaged)
SELECT id, line_id, 1, reason,
       CASE WHEN status = 'completed' AND reason <> 'damaged' THEN 1 ELSE 0 END,
       CASE WHEN status = 'completed' AND reason = 'damaged' THEN 1 ELSE 0 END
FROM b_returns;

UPDATE order_lines l SET quantity_returned = 1
FROM b_returns r WHERE l.id = r.line_id AND r.status = 'completed';

UPDATE orders o
SET return_status = CASE r.status WHEN 'completed' THEN
                        CASE WHEN t.units = 1 THEN 'returned' ELSE 'partially_returned' END
                    ELSE 'requested' END,
    refunded = CASE WHEN r.status = 'completed' THEN r.unit_price ELSE 0 END,
    payment_status = CASE WHEN r.status = 'completed' THEN 'partially_refunded'
                          ELSE o.payment_status END
FROM b_returns r
JOIN (SELECT order_id, sum(quantity) AS units FROM b_lines GROUP BY order_id) t
  ON t.order_id = r.order_id
WHERE o.id = r.order_id AND r.status IN ('requested', 'approved', 'completed');
"""


def bar(done: int, total: int, started: float) -> None:
    width = 40
    filled = width * done // total
    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done) if done else 0.0
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,} orders "
        f"{elapsed:6.0f} s elapsed, ~{eta:4.0f} s left"
    )
    sys.stderr.flush()


async def seed_shared(conn: asyncpg.Connection) -> None:
    """Locations, channels, products, customers with a profile in every channel."""
    for loc_id, code, kind, priority in LOCATIONS:
        await conn.execute(
            "INSERT INTO locations (id, code, name, kind, priority, address) VALUES "
            "($1, $2, initcap($2), $3, $4, jsonb_build_object('name', 'Bench', 'line1', "
            "'1 Dock Road', 'city', initcap($2), 'postal_code', '10115', 'country', 'DE'))",
            loc_id, code, kind, priority,
        )  # fmt: skip
    for i, (code, locations) in enumerate(CHANNELS, start=1):
        await conn.execute(
            "INSERT INTO channels (id, code, name, location_ids) VALUES ($1, $2, initcap($2), $3)",
            f"ch_bench_{i}", code, locations,
        )  # fmt: skip
    await conn.execute(
        """INSERT INTO products (id, sku, name, unit_price, currency, weight_grams,
                                 reorder_point, reorder_quantity)
           SELECT 'prod_bench_' || lpad(p::text, 5, '0'), 'SKU-' || lpad(p::text, 5, '0'),
                  'Product ' || p, 500 + (p * 7919) % 19500, 'EUR', 100 + p % 900,
                  (p % 5) * 20, 100
           FROM generate_series(1, $1) AS p""",
        PRODUCTS,
    )
    await conn.execute(
        """INSERT INTO customers (id, email, name)
           SELECT 'cus_bench_' || lpad(c::text, 6, '0'), 'buyer' || c || '@example.com',
                  'Buyer ' || c
           FROM generate_series(1, $1) AS c""",
        CUSTOMERS,
    )
    await conn.execute(
        """INSERT INTO customer_profiles (customer_id, channel_id, email, name)
           SELECT c.id, ch.id, c.email, c.name FROM customers c CROSS JOIN channels ch"""
    )


async def seed_stock(conn: asyncpg.Connection) -> None:
    """Every product at every location: on hand 40-240 units beyond what open orders
    hold there, reserved exactly what they hold; two ledger rows per level."""
    await conn.execute(
        """INSERT INTO inventory_levels (product_id, location_id, on_hand, reserved)
           SELECT p.id, l.id, coalesce(r.units, 0) + 40 + pg_temp.h(hashtext(p.id || l.id), 60) % 201,
                  coalesce(r.units, 0)
           FROM products p CROSS JOIN locations l
           LEFT JOIN (SELECT product_id, location_id, sum(quantity) AS units
                      FROM order_reservations GROUP BY 1, 2) r
             ON r.product_id = p.id AND r.location_id = l.id"""
    )
    await conn.execute(
        """INSERT INTO inventory_movements (id, product_id, sku, location_id, on_hand_delta,
                                            reserved_delta, reason, cause_type)
           SELECT 'mov_bench_' || row_number() OVER (), v.product_id, p.sku, v.location_id,
                  v.on_hand, 0, 'received', 'adjustment'
           FROM inventory_levels v JOIN products p ON p.id = v.product_id"""
    )
    await conn.execute(
        """INSERT INTO inventory_movements (id, product_id, sku, location_id, on_hand_delta,
                                            reserved_delta, reason, cause_type)
           SELECT 'mov_bench_r' || row_number() OVER (), v.product_id, p.sku, v.location_id,
                  0, v.reserved, 'reserved', 'order'
           FROM inventory_levels v JOIN products p ON p.id = v.product_id
           WHERE v.reserved > 0"""
    )


async def seed(url: str, orders: int, batch: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(HELPERS)
        async with conn.transaction():
            await seed_shared(conn)
        base = await conn.fetchval("SELECT (now() - make_interval(days => $1))::text", DAYS)
        step = DAYS * 86400 / orders
        started = time.monotonic()
        bar(0, orders, started)
        for lo in range(1, orders + 1, batch):
            hi = min(lo + batch - 1, orders)
            async with conn.transaction():
                await conn.execute(
                    BATCH.format(lo=lo, hi=hi, base=base, step=step, reasons=list(REASONS))
                )
            bar(hi, orders, started)
        sys.stderr.write("\n")
        async with conn.transaction():
            await conn.execute("SELECT setval('order_number_seq', $1)", 1000 + orders)
            await seed_stock(conn)
        sys.stderr.write("VACUUM ANALYZE …\n")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--name", default="oms_bench_million")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = _db_url(server, args.name)
    started = time.monotonic()
    admin_execute(server, f'DROP DATABASE IF EXISTS "{args.name}" WITH (FORCE)')
    admin_execute(server, f'CREATE DATABASE "{args.name}"')
    migrations_runner.upgrade(url)
    asyncio.run(seed(url, args.orders, args.batch))
    print(f"seeded {args.orders:,} orders into {args.name} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
