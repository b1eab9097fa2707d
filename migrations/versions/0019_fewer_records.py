"""Fewer WAL records and statements per placement

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02

- `events` is keyed by its public `id` (webhook deliveries reference it); `position`, which
  orders the feed through the (txid, position) indexes and which no query looks up alone,
  loses its own index: one index entry fewer per event.
- `oms_idempotency_claim`, once it holds the key's lock, removes an expired record of the
  key (the purge may not have reached it): `oms_place_order` then records the response with
  a plain INSERT (ON CONFLICT's speculative insert logs two records).
- `events.data` is `json`, not `jsonb`: the document is kept as the text the service wrote.
  Placement no longer parses it into jsonb (a tenth of its database instructions went to
  parsing JSON), an Idempotency-Key's replay of a placement answers the first response
  byte for byte (jsonb printed it again, with its own order of keys and spaces), and a
  webhook's `data` keeps the document's order of keys. `oms_record_events` takes its
  `p_data` as `json`. (The column's compression, lz4 where the server has it, stays.)
  Changing the type rewrites the table: on a large outbox, plan for it.
- `oms_place_order` skips the INSERT of an empty list (reservations, payments) and
  `oms_record_events` asks about events without data only when no data is given: each is a
  statement of its own (an executor and its table's checks) for nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The functions' texts as this revision installs them (their source files may move on).
PLACE_ORDER = """
CREATE OR REPLACE FUNCTION oms_place_order(p jsonb, p_document text)
RETURNS TABLE (outcome text, order_id text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    o jsonb := p->'order';
    placed text;
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
    -- Every column of each row from the plan: the table's row type is the column list,
    -- and the service checks once that the plan's rows have exactly those keys. The row
    -- counts its events already (`event_sequence`). Without an external id nothing can
    -- conflict: a plain insert (ON CONFLICT's speculative insert logs a second record).
    IF o->>'external_id' IS NULL THEN
        INSERT INTO orders
        SELECT * FROM jsonb_populate_record(NULL::orders, o)
        RETURNING id INTO placed;
    ELSE
        INSERT INTO orders
        SELECT * FROM jsonb_populate_record(NULL::orders, o)
        ON CONFLICT (channel_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
        RETURNING id INTO placed;
        IF placed IS NULL THEN
            RETURN QUERY SELECT 'external_id_taken'::text, x.id FROM orders x
                WHERE x.channel_id = o->>'channel_id' AND x.external_id = o->>'external_id';
            RETURN;
        END IF;
    END IF;
    INSERT INTO order_lines
    SELECT * FROM jsonb_populate_recordset(NULL::order_lines, p->'lines');
    -- (An empty list is not a statement: each costs an executor and its table's checks.)
    IF p->'reservations' <> '[]' THEN
        INSERT INTO order_reservations
        SELECT * FROM jsonb_populate_recordset(NULL::order_reservations, p->'reservations');
    END IF;
    IF jsonb_array_length(p->'stock_moves') > 0 THEN
        PERFORM oms_move_stock(p->'stock_moves');
    END IF;
    IF p->'payments' <> '[]' THEN
        INSERT INTO payments
        SELECT * FROM jsonb_populate_recordset(NULL::payments, p->'payments');
    END IF;
    PERFORM oms_record_events(placed, p->'events', p_document::json, o->>'channel_id', true);
    -- The Idempotency-Key's record does not keep a second copy of the document: its
    -- response is the first event's data (`order.created`, the same document). The claim
    -- holds the key's lock and has removed an expired record of it, so nothing can
    -- conflict: a plain INSERT.
    IF jsonb_typeof(p->'idempotency') = 'object' THEN
        INSERT INTO idempotency_records (principal, key, request_hash, response_status,
                                         response_event_id, created_at, expires_at)
        VALUES (p->'idempotency'->>'principal', p->'idempotency'->>'key',
                decode(p->'idempotency'->>'request_hash', 'hex'), 201,
                p->'events'->0->>'id', now(), (p->'idempotency'->>'expires_at')::timestamptz);
    END IF;
    RETURN QUERY SELECT 'placed'::text, placed;
END
$$
"""


RECORD_EVENTS = """
CREATE OR REPLACE FUNCTION oms_record_events(p_order_id text, p_events jsonb, p_data json DEFAULT NULL,
                                  p_channel_id text DEFAULT NULL,
                                  p_numbered boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    how_many integer := jsonb_array_length(p_events);
    last_sequence integer;
    channel text := p_channel_id;
BEGIN
    -- An order's events take the next numbers of its sequence, and its channel.
    IF p_order_id IS NOT NULL AND p_numbered THEN
        last_sequence := how_many;
    ELSIF p_order_id IS NOT NULL THEN
        UPDATE orders SET event_sequence = event_sequence + how_many WHERE id = p_order_id
        RETURNING event_sequence, channel_id INTO last_sequence, channel;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'oms_record_events: no order %', p_order_id;
        END IF;
    END IF;
    -- Every event has data: its own, or `p_data` (a NULL stored below means "as before").
    -- (Asked only without `p_data`: a condition with a sub-query is a statement of its own.)
    IF p_data IS NULL THEN
        IF EXISTS (SELECT FROM jsonb_array_elements(p_events) AS x(event)
                   WHERE coalesce(x.event -> 'data', 'null') = 'null') THEN
            RAISE EXCEPTION 'oms_record_events: an event without data';
        END IF;
    END IF;
    -- An order's events that carry `p_data` store it once: the first of a run of them
    -- keeps it, the next ones store NULL — "the data of the order's nearest earlier event
    -- that has some" (outbox.event_data_sql, how every reader reads it), which is that
    -- first one, since the run's numbers follow each other.
    INSERT INTO events (id, type, order_id, channel_id, sequence, data, created_at)
    SELECT e.id, e.type, p_order_id, channel, last_sequence - how_many + e.n::integer,
           CASE WHEN p_order_id IS NOT NULL AND e.data IS NULL AND e.n > 1
                     AND coalesce(p_events -> (e.n::integer - 2) -> 'data', 'null') = 'null'
                THEN NULL
                ELSE coalesce(e.data, p_data) END,
           now()
    FROM ROWS FROM (jsonb_to_recordset(p_events) AS (id text, type text, data json))
         WITH ORDINALITY AS e(id, type, data, n);
END
$$;
"""


IDEMPOTENCY_CLAIM = """
CREATE OR REPLACE FUNCTION oms_idempotency_claim(lock_key text, p_principal text, p_key text)
RETURNS TABLE (got boolean, request_hash bytea, response_status integer, response_body bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- A placement's record keeps no body of its own: its response is an event's data.
    RETURN QUERY
        SELECT true, r.request_hash, r.response_status,
               coalesce(r.response_body, convert_to(e.data::text, 'UTF8'))
        FROM idempotency_records r
        LEFT JOIN events e ON e.id = r.response_event_id
        WHERE r.principal = p_principal AND r.key = p_key AND r.expires_at > now();
    IF FOUND THEN
        RETURN;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended(lock_key, 7)) THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::integer, NULL::bytea;
        RETURN;
    END IF;
    -- Under the lock, a record of the key that has expired is gone (the purge may not have
    -- reached it yet): whoever records this key's response then simply inserts it.
    RETURN QUERY
        WITH expired AS (
            DELETE FROM idempotency_records x
            WHERE x.principal = p_principal AND x.key = p_key AND x.expires_at <= now()
        )
        SELECT true, r.request_hash, r.response_status,
               coalesce(r.response_body, convert_to(e.data::text, 'UTF8'))
        FROM (SELECT 1) AS one
        LEFT JOIN idempotency_records r
          ON r.principal = p_principal AND r.key = p_key AND r.expires_at > now()
        LEFT JOIN events e ON e.id = r.response_event_id;
END
$$;
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
"""


PLACE_ORDER_BEFORE = """
CREATE OR REPLACE FUNCTION oms_place_order(p jsonb, p_document text)
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
    -- Every column of each row from the plan: the table's row type is the column list,
    -- and the service checks once that the plan's rows have exactly those keys. The row
    -- counts its events already (`event_sequence`). Without an external id nothing can
    -- conflict: a plain insert (ON CONFLICT's speculative insert logs a second record).
    IF o->>'external_id' IS NULL THEN
        INSERT INTO orders
        SELECT * FROM jsonb_populate_record(NULL::orders, o)
        RETURNING id INTO placed;
    ELSE
        INSERT INTO orders
        SELECT * FROM jsonb_populate_record(NULL::orders, o)
        ON CONFLICT (channel_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
        RETURNING id INTO placed;
        IF placed IS NULL THEN
            RETURN QUERY SELECT 'external_id_taken'::text, x.id FROM orders x
                WHERE x.channel_id = o->>'channel_id' AND x.external_id = o->>'external_id';
            RETURN;
        END IF;
    END IF;
    INSERT INTO order_lines
    SELECT * FROM jsonb_populate_recordset(NULL::order_lines, p->'lines');
    INSERT INTO order_reservations
    SELECT * FROM jsonb_populate_recordset(NULL::order_reservations, p->'reservations');
    IF jsonb_array_length(p->'stock_moves') > 0 THEN
        PERFORM oms_move_stock(p->'stock_moves');
    END IF;
    INSERT INTO payments
    SELECT * FROM jsonb_populate_recordset(NULL::payments, p->'payments');
    PERFORM oms_record_events(placed, p->'events', p_document::jsonb, o->>'channel_id', true);
    -- The Idempotency-Key's record does not keep a second copy of the document: its
    -- response is the first event's data (`order.created`, the same document).
    IF jsonb_typeof(p->'idempotency') = 'object' THEN
        INSERT INTO idempotency_records AS r (principal, key, request_hash, response_status,
                                              response_event_id, created_at, expires_at)
        VALUES (p->'idempotency'->>'principal', p->'idempotency'->>'key',
                decode(p->'idempotency'->>'request_hash', 'hex'), 201,
                p->'events'->0->>'id', now(), (p->'idempotency'->>'expires_at')::timestamptz)
        ON CONFLICT (principal, key) DO UPDATE
        SET request_hash = excluded.request_hash, response_status = excluded.response_status,
            response_body = NULL, response_event_id = excluded.response_event_id,
            created_at = excluded.created_at, expires_at = excluded.expires_at
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


RECORD_EVENTS_BEFORE = """
CREATE OR REPLACE FUNCTION oms_record_events(p_order_id text, p_events jsonb, p_data jsonb DEFAULT NULL,
                                  p_channel_id text DEFAULT NULL,
                                  p_numbered boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    how_many integer := jsonb_array_length(p_events);
    last_sequence integer;
    channel text := p_channel_id;
BEGIN
    -- An order's events take the next numbers of its sequence, and its channel.
    IF p_order_id IS NOT NULL AND p_numbered THEN
        last_sequence := how_many;
    ELSIF p_order_id IS NOT NULL THEN
        UPDATE orders SET event_sequence = event_sequence + how_many WHERE id = p_order_id
        RETURNING event_sequence, channel_id INTO last_sequence, channel;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'oms_record_events: no order %', p_order_id;
        END IF;
    END IF;
    -- Every event has data: its own, or `p_data` (a NULL stored below means "as before").
    IF p_data IS NULL AND EXISTS (
        SELECT FROM jsonb_array_elements(p_events) AS x(event)
        WHERE coalesce(x.event -> 'data', 'null') = 'null'
    ) THEN
        RAISE EXCEPTION 'oms_record_events: an event without data';
    END IF;
    -- An order's events that carry `p_data` store it once: the first of a run of them
    -- keeps it, the next ones store NULL — "the data of the order's nearest earlier event
    -- that has some" (outbox.event_data_sql, how every reader reads it), which is that
    -- first one, since the run's numbers follow each other.
    INSERT INTO events (id, type, order_id, channel_id, sequence, data, created_at)
    SELECT e.id, e.type, p_order_id, channel, last_sequence - how_many + e.n::integer,
           CASE WHEN p_order_id IS NOT NULL AND e.data IS NULL AND e.n > 1
                     AND coalesce(p_events -> (e.n::integer - 2) -> 'data', 'null') = 'null'
                THEN NULL
                ELSE coalesce(e.data, p_data) END,
           now()
    FROM ROWS FROM (jsonb_to_recordset(p_events) AS (id text, type text, data jsonb))
         WITH ORDINALITY AS e(id, type, data, n);
END
$$
"""


IDEMPOTENCY_CLAIM_BEFORE = """
CREATE OR REPLACE FUNCTION oms_idempotency_claim(lock_key text, p_principal text, p_key text)
RETURNS TABLE (got boolean, request_hash bytea, response_status integer, response_body bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- A placement's record keeps no body of its own: its response is an event's data.
    RETURN QUERY
        SELECT true, r.request_hash, r.response_status,
               coalesce(r.response_body, convert_to(e.data::text, 'UTF8'))
        FROM idempotency_records r
        LEFT JOIN events e ON e.id = r.response_event_id
        WHERE r.principal = p_principal AND r.key = p_key AND r.expires_at > now();
    IF FOUND THEN
        RETURN;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended(lock_key, 7)) THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::integer, NULL::bytea;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT true, r.request_hash, r.response_status,
               coalesce(r.response_body, convert_to(e.data::text, 'UTF8'))
        FROM (SELECT 1) AS one
        LEFT JOIN idempotency_records r
          ON r.principal = p_principal AND r.key = p_key AND r.expires_at > now()
        LEFT JOIN events e ON e.id = r.response_event_id;
END
$$
"""


MOVE_STOCK_BEFORE = """
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
        PERFORM oms_record_events(NULL, stock_events, jsonb_build_object(
            'product_id', touched[i], 'sku', product_sku, 'available', after,
            'reorder_point', point, 'reorder_quantity', reorder_qty,
            'replenishment_id', opened));
    END LOOP;
END
$$
"""

# lz4 for the document where the server has it, as 0018 set it (a change of type resets a
# column's compression to the default).
EVENT_DATA_LZ4 = """
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE events ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
END
$$
"""


def upgrade() -> None:
    op.execute(
        "ALTER TABLE webhook_deliveries DROP CONSTRAINT fk_webhook_deliveries_event_id_events"
    )
    op.execute("ALTER TABLE events DROP CONSTRAINT pk_events")
    op.execute("ALTER TABLE events DROP CONSTRAINT uq_events_id")
    op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE webhook_deliveries ADD CONSTRAINT fk_webhook_deliveries_event_id_events "
        "FOREIGN KEY (event_id) REFERENCES events (id)"
    )
    for table, columns in (
        ("inventory_movements", ("product_id", "location_id")),
        ("order_reservations", ("location_id",)),
    ):
        for column in columns:
            ref = column.removesuffix("_id") + "s"
            op.drop_constraint(f"fk_{table}_{column}_{ref}", table, type_="foreignkey")
        op.create_foreign_key(
            f"fk_{table}_product_id_inventory_levels", table, "inventory_levels",
            ["product_id", "location_id"], ["product_id", "location_id"],
        )  # fmt: skip
    op.execute("DROP FUNCTION oms_record_events(text, jsonb, jsonb, text, boolean)")
    op.execute("ALTER TABLE events ALTER COLUMN data TYPE json USING data::json")
    op.execute(EVENT_DATA_LZ4)
    for function in (RECORD_EVENTS, MOVE_STOCK, PLACE_ORDER, IDEMPOTENCY_CLAIM):
        op.execute(function)


def downgrade() -> None:
    for table, columns in (
        ("inventory_movements", ("product_id", "location_id")),
        ("order_reservations", ("location_id",)),
    ):
        op.drop_constraint(f"fk_{table}_product_id_inventory_levels", table, type_="foreignkey")
        for column in columns:
            ref = column.removesuffix("_id") + "s"
            op.create_foreign_key(
                f"fk_{table}_{column}_{ref}", table, ref, [column], ["id"]
            )  # fmt: skip
    op.execute("DROP FUNCTION oms_record_events(text, jsonb, json, text, boolean)")
    op.execute("ALTER TABLE events ALTER COLUMN data TYPE jsonb USING data::jsonb")
    op.execute(EVENT_DATA_LZ4)
    for function in (
        RECORD_EVENTS_BEFORE, MOVE_STOCK_BEFORE, PLACE_ORDER_BEFORE, IDEMPOTENCY_CLAIM_BEFORE
    ):  # fmt: skip
        op.execute(function)
    op.execute(
        "ALTER TABLE webhook_deliveries DROP CONSTRAINT fk_webhook_deliveries_event_id_events"
    )
    op.execute("ALTER TABLE events DROP CONSTRAINT pk_events")
    op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (position)")
    op.execute("ALTER TABLE events ADD CONSTRAINT uq_events_id UNIQUE (id)")
    op.execute(
        "ALTER TABLE webhook_deliveries ADD CONSTRAINT fk_webhook_deliveries_event_id_events "
        "FOREIGN KEY (event_id) REFERENCES events (id)"
    )
