"""oms_place_order writes every column of the plan's rows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

The writer listed each table's columns by hand (0008's list, 0010 adding one), so a key
of the plan missing from the list vanished: `return_status` did. Now each row goes in as
its table's row type (`INSERT INTO orders SELECT * FROM jsonb_populate_record(NULL::orders,
…)`): the table is the column list. What the row type cannot catch — a plan key the table
lacks (dropped silently by jsonb_populate_record) or a column the plan lacks (NULL, not
its default) — `services/placement.py` refuses once, at import, against the models (which
tests/test_migrations.py holds equal to the migrated schema).

Both bodies are frozen here as text: the one this revision writes, and for the downgrade
the one it replaces (0010's).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLACE_ORDER = """
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
    -- and the service checks once that the plan's rows have exactly those keys.
    INSERT INTO orders
    SELECT * FROM jsonb_populate_record(NULL::orders, o)
    ON CONFLICT (channel_id, external_id) DO NOTHING
    RETURNING id INTO placed;
    IF placed IS NULL THEN
        RETURN QUERY SELECT 'external_id_taken'::text, x.id FROM orders x
            WHERE x.channel_id = o->>'channel_id' AND x.external_id = o->>'external_id';
        RETURN;
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

# 0010's body, as it was live before this revision.
PLACE_ORDER_0010 = """
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
    INSERT INTO orders (exchange_for_return_id, id, number, channel_id, external_id, customer_id, email_normalized, status,
    payment_status, payment_method, currency, subtotal, shipping, total, authorized, captured,
    refunded, voided, shipping_address, billing_address, note, metadata, risk_score,
    risk_reasons, hold_reason, cancel_reason, event_sequence, version, expires_at, created_at,
    updated_at, confirmed_at, shipped_at, delivered_at, cancelled_at)
    SELECT exchange_for_return_id, id, number, channel_id, external_id, customer_id, email_normalized, status,
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
    op.execute(PLACE_ORDER)


def downgrade() -> None:
    op.execute(PLACE_ORDER_0010)
