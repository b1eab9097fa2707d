"""returns (RMAs), their lines; orders' return status and exchange link

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

New tables; existing orders get `return_status = 'none'` (no returns existed before).
`oms_place_order` also writes `exchange_for_return_id`, so exchanges place their orders
through the same writer. Downgrade drops returns with their history (units received back
stay counted in the lines' `quantity_returned` and in stock).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# oms_place_order also writes `exchange_for_return_id` (frozen here as this revision
# installs it; the head definition lives in src/oms_api/sql/functions/).
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

# Downgrade puts back the function as revision 0008 created it.
PLACE_ORDER_0008 = """
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
    op.execute(sa.schema.CreateSequence(sa.Sequence("return_number_seq", start=10001)))
    op.create_table(
        "returns",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False, comment="the order's"),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column(
            "exchange_lines",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("location_id", sa.Text(), nullable=False, comment="where it is sent back to"),
        sa.Column("refund_amount", sa.BigInteger(), nullable=True),
        sa.Column("refund_shipping", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("exchange_order_id", sa.Text(), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        *[
            sa.Column(
                n, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
            )
            for n in ("created_at", "updated_at")
        ],
        *[
            sa.Column(n, sa.DateTime(timezone=True), nullable=True)
            for n in ("approved_at", "received_at", "completed_at", "rejected_at", "cancelled_at")
        ],
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'received', 'completed', 'rejected', 'cancelled')",
            name=op.f("ck_returns_status"),
        ),
        sa.CheckConstraint(
            "resolution IN ('refund', 'exchange')", name=op.f("ck_returns_resolution")
        ),
        sa.CheckConstraint(
            "refund_amount IS NULL OR refund_amount >= 0",
            name=op.f("ck_returns_refund_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_returns_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["exchange_order_id"], ["orders.id"], name=op.f("fk_returns_exchange_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_returns_location_id_locations")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_returns_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
        sa.UniqueConstraint("number", name=op.f("uq_returns_number")),
    )
    op.create_index("ix_returns_order_id", "returns", ["order_id"])
    op.create_index("ix_returns_channel_id_id", "returns", ["channel_id", "id"])
    op.create_index("ix_returns_status_id", "returns", ["status", "id"])
    op.create_table(
        "return_lines",
        sa.Column("return_id", sa.Text(), nullable=False),
        sa.Column("line_id", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("quantity_restocked", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("quantity_damaged", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_return_lines_quantity_positive")),
        sa.CheckConstraint(
            "quantity_restocked >= 0 AND quantity_damaged >= 0 "
            "AND quantity_restocked + quantity_damaged <= quantity",
            name=op.f("ck_return_lines_received_within_quantity"),
        ),
        sa.CheckConstraint(
            "reason IN ('damaged', 'wrong_item', 'not_as_described', 'no_longer_needed', "
            "'size_or_fit', 'other')",
            name=op.f("ck_return_lines_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["line_id"], ["order_lines.id"], name=op.f("fk_return_lines_line_id_order_lines")
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["returns.id"],
            name=op.f("fk_return_lines_return_id_returns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("return_id", "line_id", name=op.f("pk_return_lines")),
    )
    op.create_index("ix_return_lines_line_id", "return_lines", ["line_id"])
    op.add_column(
        "orders",
        sa.Column("return_status", sa.Text(), server_default=sa.text("'none'"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_orders_return_status"),
        "orders",
        "return_status IN ('none', 'requested', 'partially_returned', 'returned')",
    )
    op.add_column("orders", sa.Column("exchange_for_return_id", sa.Text(), nullable=True))
    op.create_foreign_key(
        "fk_orders_exchange_for_return_id_returns",
        "orders",
        "returns",
        ["exchange_for_return_id"],
        ["id"],
    )
    op.execute(PLACE_ORDER)


def downgrade() -> None:
    op.execute(PLACE_ORDER_0008)
    op.drop_constraint("fk_orders_exchange_for_return_id_returns", "orders", type_="foreignkey")
    op.drop_column("orders", "exchange_for_return_id")
    op.drop_constraint(op.f("ck_orders_return_status"), "orders", type_="check")
    op.drop_column("orders", "return_status")
    op.drop_index("ix_return_lines_line_id", table_name="return_lines")
    op.drop_table("return_lines")
    op.drop_index("ix_returns_status_id", table_name="returns")
    op.drop_index("ix_returns_channel_id_id", table_name="returns")
    op.drop_index("ix_returns_order_id", table_name="returns")
    op.drop_table("returns")
    op.execute(sa.schema.DropSequence(sa.Sequence("return_number_seq")))
