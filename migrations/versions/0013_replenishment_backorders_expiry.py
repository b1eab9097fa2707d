"""Stock that reorders itself, backorders that fill themselves, every pending order expiring

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

- `stock_totals`: each product's `available` summed over its locations, kept by
  `oms_move_stock` beside the levels (filled here from the levels as they are). Its row is
  where concurrent changes of one product meet, so a fall through the reorder point is
  seen by exactly one of them; `low_stock_reported` remembers that one was reported until
  the total is above the point again (false for every product here: a product already
  at or below its point gets its request at its next fall).
- `replenishments`: the requests opened on such a fall (`open` → `received`/`cancelled`).
- `oms_move_stock` applies the moves on one level in the order given, keeps the totals
  (changed once per call, by the net amount) and, on a fall to or below a product's
  reorder point not yet reported,
  opens a request (when the product has a reorder quantity) and records
  `inventory.low_stock` — and `inventory.out_of_stock` on a fall to 0 — through
  `oms_record_events`. `oms_new_id` makes those rows' ids as `oms_api.ids.new_id` does.
- `backorder_checks`: where a cancellation's released units passed over a waiting order
  that another request held; housekeeping fills from what is still available there.
- `ix_order_lines_product_id_backordered`: the backordered lines waiting for a product
  (`services/backorders`), an entry only for a line with backordered units.
- `ix_orders_expires_at_pending` covers every pending order: whether a payment is in force
  (`domain/payments.payment_in_force`) is no longer the payment status alone.

Every function body is frozen here as text: those this revision installs and, for the
downgrade, the `oms_move_stock` it replaces (0012's).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_ID = """
CREATE OR REPLACE FUNCTION oms_new_id(p_prefix text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet CONSTANT text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    millis bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
    u bit(128) := ('x' || replace(gen_random_uuid()::text, '-', ''))::bit(128);
    bits bit(130);
    encoded text := '';
BEGIN
    bits := B'00' || millis::bit(48) || substring(u FROM 1 FOR 48) || substring(u FROM 67 FOR 32);
    FOR i IN 0 .. 25 LOOP
        encoded := encoded || substr(alphabet, substring(bits FROM i * 5 + 1 FOR 5)::integer + 1, 1);
    END LOOP;
    RETURN p_prefix || '_' || encoded;
END
$$
"""

MOVE_STOCK = """
CREATE OR REPLACE FUNCTION oms_move_stock(p_moves jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m inventory_movements;
    touched text[] := '{}';
    deltas bigint[] := '{}';
    n integer := 0;
    before bigint;
    after bigint;
    reported boolean;
    crossing boolean;
    p record;
    opened text;
    stock_events jsonb;
BEGIN
    -- Each move is read as the ledger's row type: the table is the column list, so no
    -- column of the ledger can be left out here. (A key the table lacks would be dropped:
    -- services/placement.py holds StockMove's keys to the ledger's columns at import.)
    -- Move by move, in (product, location) order (the order every path locks levels in),
    -- and on one level in the order given (units arrive before they are reserved); each a
    -- keyed update of its level and its ledger row. The CHECK constraints refuse any level
    -- that would go negative. (One set-based UPDATE was planned against the functions'
    -- 100-row estimate: a scan of every level.)
    FOR m IN SELECT r.*
             FROM jsonb_array_elements(p_moves) WITH ORDINALITY AS e(move, position)
             CROSS JOIN LATERAL jsonb_populate_record(NULL::inventory_movements, e.move) AS r
             ORDER BY r.product_id, r.location_id, e.position
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
        m.created_at := now();  -- the writer's, not the move's
        INSERT INTO inventory_movements VALUES (m.*);
        -- The change of the product's available, summed (moves come product by product).
        IF n = 0 OR touched[n] <> m.product_id THEN
            n := n + 1;
            touched[n] := m.product_id;
            deltas[n] := 0;
        END IF;
        deltas[n] := deltas[n] + m.on_hand_delta - m.reserved_delta;
    END LOOP;
    -- Then each product's total, in product order, after every level (the order of locks:
    -- levels, then totals), changed once by the call's net amount. Its row serialises the
    -- product's changes at every location. A fall to or below the reorder point is a
    -- crossing unless one was reported since the total was last above it
    -- (`low_stock_reported`): exactly one change sees each.
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN deltas[i] = 0;
        SELECT t.available, t.low_stock_reported INTO before, reported
        FROM stock_totals t WHERE t.product_id = touched[i] FOR UPDATE;
        IF NOT FOUND THEN  -- the product's first stock
            INSERT INTO stock_totals (product_id, available, low_stock_reported)
            VALUES (touched[i], 0, false) ON CONFLICT (product_id) DO NOTHING;
            SELECT t.available, t.low_stock_reported INTO before, reported
            FROM stock_totals t WHERE t.product_id = touched[i] FOR UPDATE;
        END IF;
        after := before + deltas[i];
        SELECT id, sku, reorder_point, reorder_quantity INTO p FROM products WHERE id = touched[i];
        crossing := deltas[i] < 0 AND after <= p.reorder_point AND NOT reported;
        UPDATE stock_totals
        SET available = after,
            low_stock_reported = CASE WHEN after > p.reorder_point THEN false
                                      ELSE reported OR crossing END
        WHERE product_id = touched[i];
        CONTINUE WHEN NOT crossing AND NOT (before > 0 AND after <= 0);
        opened := NULL;
        stock_events := '[]';
        IF crossing THEN
            IF p.reorder_quantity > 0 THEN  -- a product with no reorder quantity is not reordered
                opened := oms_new_id('rpl');
                INSERT INTO replenishments (id, product_id, sku, status, quantity, reorder_point,
                                            available_at_opening, created_at, updated_at)
                VALUES (opened, p.id, p.sku, 'open', p.reorder_quantity, p.reorder_point, after,
                        now(), now());
            END IF;
            stock_events := stock_events || jsonb_build_object('id', oms_new_id('evt'),
                                                               'type', 'inventory.low_stock');
        END IF;
        IF before > 0 AND after <= 0 THEN
            stock_events := stock_events || jsonb_build_object('id', oms_new_id('evt'),
                                                               'type', 'inventory.out_of_stock');
        END IF;
        PERFORM oms_record_events(NULL, stock_events, jsonb_build_object(
            'product_id', p.id, 'sku', p.sku, 'available', after,
            'reorder_point', p.reorder_point, 'reorder_quantity', p.reorder_quantity,
            'replenishment_id', opened));
    END LOOP;
END
$$
"""

# 0012's, for the downgrade.
MOVE_STOCK_0012 = """
CREATE OR REPLACE FUNCTION oms_move_stock(p_moves jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m inventory_movements;
BEGIN
    -- Each move is read as the ledger's row type: the table is the column list, so no
    -- column of the ledger can be left out here. (A key the table lacks would be dropped:
    -- services/placement.py holds StockMove's keys to the ledger's columns at import.)
    -- Move by move, in (product, location) order (the order every path locks levels in);
    -- each a keyed update of its level and its ledger row. The CHECK constraints refuse any
    -- level that would go negative. (One set-based UPDATE was planned against
    -- jsonb_populate_recordset's 100-row estimate: a scan of every level.)
    FOR m IN SELECT * FROM jsonb_populate_recordset(NULL::inventory_movements, p_moves) AS x
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
        m.created_at := now();  -- the writer's, not the move's
        INSERT INTO inventory_movements VALUES (m.*);
    END LOOP;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "stock_totals",
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("low_stock_reported", sa.Boolean(), nullable=False,
                  server_default=sa.text("false")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_stock_totals_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_stock_totals")),
    )  # fmt: skip
    op.execute(
        """
        INSERT INTO stock_totals (product_id, available)
        SELECT product_id, sum(on_hand - reserved) FROM inventory_levels GROUP BY product_id
        """
    )
    op.create_table(
        "replenishments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False,
                  comment="the product's reorder_quantity when it opened"),
        sa.Column("reorder_point", sa.BigInteger(), nullable=False),
        sa.Column("available_at_opening", sa.BigInteger(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=True, comment="where it was received"),
        sa.Column("quantity_received", sa.BigInteger(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'received', 'cancelled')",
                           name=op.f("ck_replenishments_status")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_replenishments_quantity_positive")),
        sa.CheckConstraint(
            "(status = 'received') = (location_id IS NOT NULL AND quantity_received > 0)",
            name=op.f("ck_replenishments_received_somewhere"),
        ),
        sa.ForeignKeyConstraint(["location_id"], ["locations.id"],
                                name=op.f("fk_replenishments_location_id_locations")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"],
                                name=op.f("fk_replenishments_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replenishments")),
    )  # fmt: skip
    op.create_table(
        "backorder_checks",
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["location_id"], ["locations.id"], ondelete="CASCADE",
                                name=op.f("fk_backorder_checks_location_id_locations")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], ondelete="CASCADE",
                                name=op.f("fk_backorder_checks_product_id_products")),
        sa.PrimaryKeyConstraint("product_id", "location_id", name=op.f("pk_backorder_checks")),
    )  # fmt: skip
    op.create_index("ix_replenishments_status_id", "replenishments", ["status", "id"])
    op.create_index("ix_replenishments_product_id_id", "replenishments", ["product_id", "id"])
    op.create_index(
        "ix_order_lines_product_id_backordered", "order_lines", ["product_id"],
        postgresql_where=sa.text("quantity_backordered > 0"),
    )  # fmt: skip
    op.drop_index("ix_orders_expires_at_pending", table_name="orders")
    op.create_index(
        "ix_orders_expires_at_pending", "orders", ["expires_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )  # fmt: skip
    op.execute(NEW_ID)
    op.execute(MOVE_STOCK)


def downgrade() -> None:
    op.execute(MOVE_STOCK_0012)
    op.execute("DROP FUNCTION oms_new_id(text)")
    op.drop_index("ix_orders_expires_at_pending", table_name="orders")
    op.create_index(
        "ix_orders_expires_at_pending", "orders", ["expires_at"],
        postgresql_where=sa.text("status = 'pending' AND payment_status = 'unpaid'"),
    )  # fmt: skip
    op.drop_index("ix_order_lines_product_id_backordered", table_name="order_lines")
    op.drop_table("backorder_checks")
    op.drop_table("replenishments")
    op.drop_table("stock_totals")
