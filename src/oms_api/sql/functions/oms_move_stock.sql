-- oms_move_stock: the head definition (installed by migration 0012).
-- The one path for stock: changes the levels and writes one ledger row per move.
-- To change it: edit this file, then a new revision that installs this text as a
-- literal (docs/architecture.md, Migrations).
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
$$;
