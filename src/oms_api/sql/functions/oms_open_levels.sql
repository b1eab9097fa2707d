-- oms_open_levels: the head definition (installed by migration 0012).
-- Empty stock levels (nothing on hand or reserved, so no ledger row) for the given
-- (product, location) pairs that have none, so that a decision about a place that never
-- held the product locks a level like any other (services/stock.lock_levels). With
-- oms_move_stock, the only writers of inventory_levels.
-- To change it: edit this file, then a new revision that installs this text as a
-- literal (docs/architecture.md, Migrations).
CREATE OR REPLACE FUNCTION oms_open_levels(p_product_ids text[], p_location_ids text[])
RETURNS void
LANGUAGE sql VOLATILE AS $$
INSERT INTO inventory_levels (product_id, location_id)
SELECT * FROM unnest(p_product_ids, p_location_ids) ORDER BY 1, 2
ON CONFLICT DO NOTHING
$$;
