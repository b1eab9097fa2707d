"""oms_move_stock reads moves as the ledger's row type; oms_open_levels opens empty levels

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

`oms_move_stock` read its moves through `jsonb_to_recordset(…) AS x(id text, …)` and
inserted the ledger row through a column list: two hand-kept lists in the one stock path,
where a move's key missing from them vanished. Now each move is read as
`jsonb_populate_recordset(NULL::inventory_movements, …)` and inserted whole: the table is
the column list. Otherwise it behaves as 0008's: the same order of moves (and so of locks),
the same level updates, the same refusals.

`oms_open_levels` opens empty levels (nothing on hand, no ledger row) for pairs without
one: `services/stock.lock_levels(create_missing=True)` inserted them from Python, the one
write of `inventory_levels` outside the database's stock functions.

Every body is frozen here as text: those this revision installs and, for the downgrade,
the `oms_move_stock` it replaces (0008's).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVE_STOCK = """
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

OPEN_LEVELS = """
CREATE OR REPLACE FUNCTION oms_open_levels(p_product_ids text[], p_location_ids text[])
RETURNS void
LANGUAGE sql VOLATILE AS $$
INSERT INTO inventory_levels (product_id, location_id)
SELECT * FROM unnest(p_product_ids, p_location_ids) ORDER BY 1, 2
ON CONFLICT DO NOTHING
$$
"""

# 0008's, for the downgrade.
MOVE_STOCK_0008 = """
CREATE OR REPLACE FUNCTION oms_move_stock(p_moves jsonb) RETURNS void
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


def upgrade() -> None:
    op.execute(MOVE_STOCK)
    op.execute(OPEN_LEVELS)


def downgrade() -> None:
    op.execute("DROP FUNCTION oms_open_levels(text[], text[])")
    op.execute(MOVE_STOCK_0008)
