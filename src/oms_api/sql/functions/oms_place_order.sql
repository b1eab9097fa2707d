-- oms_place_order: the head definition (installed by migration 0019).
-- Writes a planned order (one jsonb record) through the stock and event paths.
-- To change it: edit this file, then a new revision that installs this text as a
-- literal (docs/architecture.md, Migrations).
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
