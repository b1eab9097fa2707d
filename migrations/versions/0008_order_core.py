"""order core: reservations per line and location, one path for stock and for events

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

- `order_reservations` replaces `order_allocations`: units of one *line* reserved at one
  location (`quantity`), of which `quantity_in_shipments` are in open shipments. A row
  exists only while it holds units.
- Lines count every unit once: `quantity = quantity_reserved + quantity_backordered +
  quantity_shipped + quantity_cancelled` (a CHECK), with `quantity_cancelled` new.
- Orders record `shipped_at` and `delivered_at`.
- `oms_move_stock(moves)` is the one path for stock: it changes the levels and writes one
  ledger row per move, in one statement; every change of `on_hand` or `reserved` calls it.
- `oms_record_events(order_id, events, data, channel_id)` is the one path for events: it
  bumps the order's `event_sequence` and writes the outbox rows.
- `oms_place_order(plan, document)` writes a planned order (one jsonb record) through both.

Existing rows carried over:
- a cancelled order's lines: every unit not shipped counts as cancelled (its reservations
  were already released);
- any other order: each product's allocation rows are spread over that product's lines
  in line order, each line taking `quantity - backordered` units, so every line's
  reservations sum to what it had reserved and every location keeps what it held; a line
  whose units the allocations did not cover (none, in a consistent database) counts the
  rest as backordered. The levels and the ledger are not touched: they still agree.

Downgrade sums the reservations back into `order_allocations` per (order, product,
location); cancelled orders' lines keep their cancelled units only as `quantity` (the old
schema had no column for them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The functions as this revision creates them, frozen: later revisions replace them with
# texts of their own, and the head definitions live in src/oms_api/sql/functions/.
MOVE_STOCK = """
CREATE FUNCTION oms_move_stock(p_moves jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m record;
BEGIN
    -- Move by move, in (product, location) order (the order every path locks levels in);
    -- each a keyed update of its level and its ledger row. The CHECK constraints refuse any
    -- level that would go negative. (One set-based UPDATE was planned against
    -- jsonb_to_recordset's 100-row estimate: a scan of every level.)
    FOR m IN SELECT * FROM jsonb_to_recordset(p_moves) AS x(id text, product_id text, sku text, location_id text, on_hand_delta bigint,
    reserved_delta bigint, reason text, cause_type text, cause_id text, note text)
             ORDER BY x.product_id, x.location_id
    LOOP
        IF m.on_hand_delta > 0 THEN  -- stock arriving where none was kept: a level from zero
            INSERT INTO inventory_levels (product_id, location_id)
            VALUES (m.product_id, m.location_id) ON CONFLICT DO NOTHING;
        END IF;
        UPDATE inventory_levels
        SET on_hand = on_hand + m.on_hand_delta, reserved = reserved + m.reserved_delta,
            updated_at = now()
        WHERE product_id = m.product_id AND location_id = m.location_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'oms_move_stock: no stock level for product % at location %',
                m.product_id, m.location_id;
        END IF;
        INSERT INTO inventory_movements (id, product_id, sku, location_id, on_hand_delta,
                                         reserved_delta, reason, cause_type, cause_id, note,
                                         created_at)
        VALUES (m.id, m.product_id, m.sku, m.location_id, m.on_hand_delta, m.reserved_delta,
                m.reason, m.cause_type, m.cause_id, m.note, now());
    END LOOP;
END
$$
"""

RECORD_EVENTS = """
CREATE FUNCTION oms_record_events(p_order_id text, p_events jsonb, p_data jsonb DEFAULT NULL,
                                  p_channel_id text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    how_many integer := jsonb_array_length(p_events);
    last_sequence integer;
    channel text := p_channel_id;
BEGIN
    -- An order's events take the next numbers of its sequence, and its channel.
    IF p_order_id IS NOT NULL THEN
        UPDATE orders SET event_sequence = event_sequence + how_many WHERE id = p_order_id
        RETURNING event_sequence, channel_id INTO last_sequence, channel;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'oms_record_events: no order %', p_order_id;
        END IF;
    END IF;
    INSERT INTO events (id, type, order_id, channel_id, sequence, data, created_at)
    SELECT e.id, e.type, p_order_id, channel, last_sequence - how_many + e.n::integer,
           coalesce(e.data, p_data), now()
    FROM ROWS FROM (jsonb_to_recordset(p_events) AS (id text, type text, data jsonb))
         WITH ORDINALITY AS e(id, type, data, n);
END
$$
"""

PLACE_ORDER = """
CREATE FUNCTION oms_place_order(p jsonb, p_document text)
RETURNS TABLE (outcome text, order_id text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    o jsonb := p->'order';
    placed text;
    recorded integer;
BEGIN
    -- The channel's profile of the customer first: the order references it.
    IF jsonb_typeof(p->'profile') = 'object' THEN
        INSERT INTO customer_profiles AS cp (customer_id, channel_id, email, name, phone,
                                             created_at, updated_at)
        VALUES (o->>'customer_id', o->>'channel_id', p->'profile'->>'email',
                p->'profile'->>'name', p->'profile'->>'phone', now(), now())
        ON CONFLICT (customer_id, channel_id) DO UPDATE
        SET name = coalesce(excluded.name, cp.name), phone = coalesce(excluded.phone, cp.phone),
            updated_at = excluded.updated_at, version = cp.version + 1;
    END IF;
    INSERT INTO orders (id, number, channel_id, external_id, customer_id, email_normalized, status,
    payment_status, payment_method, currency, subtotal, shipping, total, authorized, captured,
    refunded, voided, shipping_address, billing_address, note, metadata, risk_score,
    risk_reasons, hold_reason, cancel_reason, event_sequence, version, expires_at, created_at,
    updated_at, confirmed_at, shipped_at, delivered_at, cancelled_at)
    SELECT id, number, channel_id, external_id, customer_id, email_normalized, status,
    payment_status, payment_method, currency, subtotal, shipping, total, authorized, captured,
    refunded, voided, shipping_address, billing_address, note, metadata, risk_score,
    risk_reasons, hold_reason, cancel_reason, event_sequence, version, expires_at, created_at,
    updated_at, confirmed_at, shipped_at, delivered_at, cancelled_at FROM jsonb_populate_record(NULL::orders, o)
    ON CONFLICT (channel_id, external_id) DO NOTHING
    RETURNING id INTO placed;
    IF placed IS NULL THEN
        RETURN QUERY SELECT 'external_id_taken'::text, x.id FROM orders x
            WHERE x.channel_id = o->>'channel_id' AND x.external_id = o->>'external_id';
        RETURN;
    END IF;
    INSERT INTO order_lines (id, order_id, position, product_id, sku, name, quantity, unit_price,
    quantity_reserved, quantity_backordered, quantity_shipped, quantity_cancelled,
    quantity_returned)
    SELECT id, order_id, position, product_id, sku, name, quantity, unit_price,
    quantity_reserved, quantity_backordered, quantity_shipped, quantity_cancelled,
    quantity_returned FROM jsonb_populate_recordset(NULL::order_lines, p->'lines');
    INSERT INTO order_reservations (line_id, location_id, product_id, quantity, quantity_in_shipments)
    SELECT line_id, location_id, product_id, quantity, quantity_in_shipments
    FROM jsonb_populate_recordset(NULL::order_reservations, p->'reservations');
    IF jsonb_array_length(p->'stock_moves') > 0 THEN
        PERFORM oms_move_stock(p->'stock_moves');
    END IF;
    INSERT INTO payments (id, order_id, kind, amount, reference, created_at)
    SELECT id, order_id, kind, amount, reference, created_at
    FROM jsonb_populate_recordset(NULL::payments, p->'payments');
    PERFORM oms_record_events(placed, p->'events', p_document::jsonb);
    IF jsonb_typeof(p->'idempotency') = 'object' THEN
        INSERT INTO idempotency_records AS r (principal, key, request_hash, response_status,
                                              response_body, created_at, expires_at)
        VALUES (p->'idempotency'->>'principal', p->'idempotency'->>'key',
                decode(p->'idempotency'->>'request_hash', 'hex'), 201,
                convert_to(p_document, 'UTF8'), now(),
                (p->'idempotency'->>'expires_at')::timestamptz)
        ON CONFLICT (principal, key) DO UPDATE
        SET request_hash = excluded.request_hash, response_status = excluded.response_status,
            response_body = excluded.response_body, created_at = excluded.created_at,
            expires_at = excluded.expires_at
        WHERE r.expires_at <= now()
        RETURNING 1 INTO recorded;
        IF recorded IS NULL THEN
            RETURN QUERY SELECT 'idempotency_key_taken'::text, placed;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT 'placed'::text, placed;
END
$$
"""


def upgrade() -> None:
    op.add_column("orders", sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "order_lines",
        sa.Column("quantity_reserved", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "order_lines",
        sa.Column("quantity_cancelled", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "order_reservations",
        sa.Column("line_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=False, comment="the line's"),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "quantity_in_shipments", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_reservations_quantity_positive")),
        sa.CheckConstraint(
            "quantity_in_shipments >= 0 AND quantity_in_shipments <= quantity",
            name=op.f("ck_order_reservations_in_shipments_within_quantity"),
        ),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["order_lines.id"],
            name=op.f("fk_order_reservations_line_id_order_lines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_order_reservations_location_id_locations"),
        ),
        sa.PrimaryKeyConstraint("line_id", "location_id", name=op.f("pk_order_reservations")),
    )
    # Each product's allocations, spread over its lines in order: line i needs the units
    # (lo, hi] of the product's running total, location j holds (lo, hi] of its own; a
    # reservation is every overlap.
    op.execute(
        """
        WITH need AS (
            SELECT l.id AS line_id, l.order_id, l.product_id,
                   sum(l.quantity - l.quantity_backordered - l.quantity_shipped)
                       OVER (PARTITION BY l.order_id, l.product_id ORDER BY l.position) AS hi,
                   l.quantity - l.quantity_backordered - l.quantity_shipped AS n
            FROM order_lines l JOIN orders o ON o.id = l.order_id
            WHERE o.status <> 'cancelled'
        ), have AS (
            SELECT a.order_id, a.product_id, a.location_id,
                   sum(a.quantity)
                       OVER (PARTITION BY a.order_id, a.product_id ORDER BY a.location_id) AS hi,
                   a.quantity AS n
            FROM order_allocations a WHERE a.quantity > 0
        )
        INSERT INTO order_reservations (line_id, location_id, product_id, quantity)
        SELECT need.line_id, have.location_id, need.product_id,
               least(need.hi, have.hi) - greatest(need.hi - need.n, have.hi - have.n)
        FROM need JOIN have ON have.order_id = need.order_id AND have.product_id = need.product_id
        WHERE least(need.hi, have.hi) > greatest(need.hi - need.n, have.hi - have.n)
        """
    )
    op.execute(
        """
        UPDATE order_lines l
        SET quantity_cancelled = l.quantity - l.quantity_shipped, quantity_backordered = 0
        FROM orders o WHERE o.id = l.order_id AND o.status = 'cancelled'
        """
    )
    op.execute(
        """
        UPDATE order_lines l
        SET quantity_reserved = r.reserved,
            quantity_backordered = l.quantity - l.quantity_shipped - r.reserved
        FROM (SELECT x.id, coalesce((SELECT sum(quantity) FROM order_reservations
                                     WHERE line_id = x.id), 0) AS reserved
              FROM order_lines x JOIN orders o ON o.id = x.order_id
              WHERE o.status <> 'cancelled') r
        WHERE r.id = l.id
        """
    )
    op.drop_constraint(op.f("ck_order_lines_shipped_within_quantity"), "order_lines", type_="check")
    op.drop_constraint(
        op.f("ck_order_lines_backordered_within_quantity"), "order_lines", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_order_lines_quantities_not_negative"),
        "order_lines",
        "quantity_reserved >= 0 AND quantity_backordered >= 0 AND quantity_shipped >= 0 "
        "AND quantity_cancelled >= 0",
    )
    op.create_check_constraint(
        op.f("ck_order_lines_quantities_add_up"),
        "order_lines",
        "quantity = quantity_reserved + quantity_backordered + quantity_shipped + "
        "quantity_cancelled",
    )
    op.drop_table("order_allocations")
    op.execute(MOVE_STOCK)
    op.execute(RECORD_EVENTS)
    op.execute(PLACE_ORDER)


def downgrade() -> None:
    op.execute("DROP FUNCTION oms_place_order(jsonb, text)")
    op.execute("DROP FUNCTION oms_record_events(text, jsonb, jsonb, text)")
    op.execute("DROP FUNCTION oms_move_stock(jsonb)")
    op.create_table(
        "order_allocations",
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "quantity >= 0", name=op.f("ck_order_allocations_quantity_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_order_allocations_location_id_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_allocations_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_order_allocations_product_id_products")
        ),
        sa.PrimaryKeyConstraint(
            "order_id", "product_id", "location_id", name=op.f("pk_order_allocations")
        ),
    )
    op.execute(
        """
        INSERT INTO order_allocations (order_id, product_id, location_id, sku, quantity)
        SELECT l.order_id, r.product_id, r.location_id, l.sku, sum(r.quantity)
        FROM order_reservations r JOIN order_lines l ON l.id = r.line_id
        GROUP BY l.order_id, r.product_id, r.location_id, l.sku
        """
    )
    op.drop_table("order_reservations")
    op.drop_constraint(op.f("ck_order_lines_quantities_add_up"), "order_lines", type_="check")
    op.drop_constraint(op.f("ck_order_lines_quantities_not_negative"), "order_lines", type_="check")
    op.create_check_constraint(
        op.f("ck_order_lines_backordered_within_quantity"),
        "order_lines",
        "quantity_backordered >= 0 AND quantity_backordered <= quantity",
    )
    op.create_check_constraint(
        op.f("ck_order_lines_shipped_within_quantity"),
        "order_lines",
        "quantity_shipped >= 0 AND quantity_shipped <= quantity",
    )
    op.drop_column("order_lines", "quantity_cancelled")
    op.drop_column("order_lines", "quantity_reserved")
    op.drop_column("orders", "delivered_at")
    op.drop_column("orders", "shipped_at")
