-- oms_move_stock: the head definition (installed by migration 0019).
-- The one path for stock: changes the levels and writes one ledger row per move; keeps
-- each product's total `available` (stock_totals) and, when it falls to or below the
-- product's reorder point, opens one replenishment request and records the stock events.
-- To change it: edit this file, then a new revision that installs this text as a
-- literal (docs/architecture.md, Migrations).
CREATE OR REPLACE FUNCTION oms_move_stock(p_moves jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m inventory_movements;
    touched text[] := '{}';
    deltas bigint[] := '{}';
    n integer := 0;
    before bigint;
    after bigint;
    crossing boolean;
    product_sku text;
    point bigint;
    reorder_qty bigint;
    opened text;
    stock_events jsonb;
BEGIN
    -- Each move is read as the ledger's row type: the table is the column list, so no
    -- column of the ledger can be left out here. (A key the table lacks would be dropped:
    -- services/placement.py holds StockMove's keys to the ledger's columns at import.)
    -- Move by move, in (product, location) order (the order every path locks levels in),
    -- and on one level in the order given (units arrive before they are reserved); each a
    -- keyed update of its level. The CHECK constraints refuse any level that would go
    -- negative. (One set-based UPDATE was planned against the functions'
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
        -- The change of the product's available, summed (moves come product by product).
        IF n = 0 OR touched[n] <> m.product_id THEN
            n := n + 1;
            touched[n] := m.product_id;
            deltas[n] := 0;
        END IF;
        deltas[n] := deltas[n] + m.on_hand_delta - m.reserved_delta;
    END LOOP;
    -- The ledger's rows, all in one statement (the writer's time, not the moves').
    INSERT INTO inventory_movements
    SELECT r.*
    FROM jsonb_array_elements(p_moves) AS e(move)
    CROSS JOIN LATERAL jsonb_populate_record(
        NULL::inventory_movements, e.move || jsonb_build_object('created_at', now())) AS r;
    -- Then each product's total, in product order, after every level (the order of locks:
    -- levels, then totals), changed once by the call's net amount. Its row serialises the
    -- product's changes at every location. A fall to or below the reorder point is a
    -- crossing unless one was reported since the total was last above it
    -- (`low_stock_reported`): exactly one change sees each.
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN deltas[i] = 0;
        -- One UPDATE, which locks the row as it changes it (no SELECT … FOR UPDATE before
        -- it: one WAL record where there were two), HOT (the table's fillfactor leaves
        -- room on its page). The SET sees the row as it was and RETURNING as it is, so
        -- the row keeps whether this change was the crossing (`last_change_crossed`).
        LOOP
            UPDATE stock_totals t
            SET available = t.available + deltas[i],
                low_stock_reported = CASE WHEN t.available + deltas[i] > p.reorder_point
                                          THEN false
                                          ELSE t.low_stock_reported OR deltas[i] < 0 END,
                last_change_crossed = deltas[i] < 0 AND NOT t.low_stock_reported
                                      AND t.available + deltas[i] <= p.reorder_point
            FROM products p
            WHERE t.product_id = touched[i] AND p.id = t.product_id
            RETURNING t.available, t.last_change_crossed, p.sku, p.reorder_point,
                      p.reorder_quantity
            INTO after, crossing, product_sku, point, reorder_qty;
            EXIT WHEN FOUND;
            -- The product's first stock: its total from zero, then the UPDATE again.
            INSERT INTO stock_totals (product_id, available, low_stock_reported)
            VALUES (touched[i], 0, false) ON CONFLICT (product_id) DO NOTHING;
        END LOOP;
        before := after - deltas[i];
        CONTINUE WHEN NOT crossing AND NOT (before > 0 AND after <= 0);
        opened := NULL;
        stock_events := '[]';
        IF crossing THEN
            IF reorder_qty > 0 THEN  -- a product with no reorder quantity is not reordered
                opened := oms_new_id('rpl');
                INSERT INTO replenishments (id, product_id, sku, status, quantity, reorder_point,
                                            available_at_opening, created_at, updated_at)
                VALUES (opened, touched[i], product_sku, 'open', reorder_qty, point, after,
                        now(), now());
            END IF;
            stock_events := stock_events || jsonb_build_object('id', oms_new_id('evt'),
                                                               'type', 'inventory.low_stock');
        END IF;
        IF before > 0 AND after <= 0 THEN
            stock_events := stock_events || jsonb_build_object('id', oms_new_id('evt'),
                                                               'type', 'inventory.out_of_stock');
        END IF;
        PERFORM oms_record_events(NULL, stock_events, json_build_object(
            'product_id', touched[i], 'sku', product_sku, 'available', after,
            'reorder_point', point, 'reorder_quantity', reorder_qty,
            'replenishment_id', opened));
    END LOOP;
END
$$;
