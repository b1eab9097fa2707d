"""catalogue inventory customers orders events settings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 04:39:43.727128
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("order_number_seq", start=1001)))
    op.create_table(
        "app_settings",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_app_settings")),
    )
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=True),
        sa.Column("channel_id", sa.Text(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    op.create_index(
        "ix_events_channel_id_position", "events", ["channel_id", "position"], unique=False
    )
    op.create_index("ix_events_order_id_sequence", "events", ["order_id", "sequence"], unique=False)
    op.create_table(
        "locations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("100"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('warehouse', 'store')", name=op.f("ck_locations_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("code", name=op.f("uq_locations_code")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("weight_grams", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reorder_point", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reorder_quantity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("allow_backorder", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "reorder_point >= 0 AND reorder_quantity >= 0",
            name=op.f("ck_products_reorder_not_negative"),
        ),
        sa.CheckConstraint("unit_price >= 0", name=op.f("ck_products_unit_price_not_negative")),
        sa.CheckConstraint("weight_grams >= 0", name=op.f("ck_products_weight_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_products_sku")),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column(
            "email_normalized",
            sa.Text(),
            sa.Computed("lower(email)", persisted=True),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column(
            "addresses",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("channel_id", sa.Text(), nullable=True, comment="the channel that created it"),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_customers_channel_id_channels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("email_normalized", name=op.f("uq_customers_email_normalized")),
    )
    op.create_table(
        "inventory_levels",
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("on_hand", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("reserved", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_inventory_levels_on_hand_not_negative")),
        sa.CheckConstraint(
            "reserved <= on_hand", name=op.f("ck_inventory_levels_available_not_negative")
        ),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_inventory_levels_reserved_not_negative")),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_inventory_levels_location_id_locations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_inventory_levels_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("product_id", "location_id", name=op.f("pk_inventory_levels")),
    )
    op.create_index(
        op.f("ix_inventory_levels_location_id"), "inventory_levels", ["location_id"], unique=False
    )
    op.create_table(
        "inventory_movements",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("on_hand_delta", sa.Integer(), nullable=False),
        sa.Column("reserved_delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cause_type", sa.Text(), nullable=False),
        sa.Column("cause_id", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "cause_type IN ('adjustment', 'order', 'shipment', 'return', 'replenishment')",
            name=op.f("ck_inventory_movements_cause_type"),
        ),
        sa.CheckConstraint(
            "on_hand_delta <> 0 OR reserved_delta <> 0",
            name=op.f("ck_inventory_movements_changes_something"),
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_inventory_movements_location_id_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_inventory_movements_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_movements")),
    )
    op.create_index(
        "ix_inventory_movements_cause_id", "inventory_movements", ["cause_id"], unique=False
    )
    op.create_index(
        "ix_inventory_movements_product_id_location_id",
        "inventory_movements",
        ["product_id", "location_id"],
        unique=False,
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("email_normalized", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("payment_status", sa.Text(), nullable=False),
        sa.Column("payment_method", sa.Text(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("shipping", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("authorized", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("captured", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("refunded", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("voided", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("shipping_address", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("billing_address", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("risk_score", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "risk_reasons",
            sa.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("event_sequence", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'on_hold', 'confirmed', 'partially_shipped', 'shipped', 'delivered', 'cancelled')",
            name=op.f("ck_orders_status"),
        ),
        sa.CheckConstraint(
            "captured >= 0 AND refunded >= 0 AND refunded <= captured AND authorized >= 0",
            name=op.f("ck_orders_payments"),
        ),
        sa.CheckConstraint(
            "subtotal >= 0 AND shipping >= 0 AND total = subtotal + shipping",
            name=op.f("ck_orders_totals"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_orders_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_orders_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("channel_id", "external_id", name="uq_orders_channel_id_external_id"),
        sa.UniqueConstraint("number", name=op.f("uq_orders_number")),
    )
    op.create_index("ix_orders_channel_id_id", "orders", ["channel_id", "id"], unique=False)
    op.create_index("ix_orders_customer_id_id", "orders", ["customer_id", "id"], unique=False)
    op.create_index(
        "ix_orders_email_normalized_created_at",
        "orders",
        ["email_normalized", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_orders_expires_at_pending",
        "orders",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending' AND payment_status = 'unpaid'"),
    )
    op.create_index("ix_orders_status_id", "orders", ["status", "id"], unique=False)
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
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("quantity_shipped", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("quantity_returned", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "quantity_backordered", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity_positive")),
        sa.CheckConstraint(
            "quantity_backordered >= 0 AND quantity_backordered <= quantity",
            name=op.f("ck_order_lines_backordered_within_quantity"),
        ),
        sa.CheckConstraint(
            "quantity_returned >= 0 AND quantity_returned <= quantity_shipped",
            name=op.f("ck_order_lines_returned_within_shipped"),
        ),
        sa.CheckConstraint(
            "quantity_shipped >= 0 AND quantity_shipped <= quantity",
            name=op.f("ck_order_lines_shipped_within_quantity"),
        ),
        sa.CheckConstraint("unit_price >= 0", name=op.f("ck_order_lines_unit_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_order_lines_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint("order_id", "position", name="uq_order_lines_order_id_position"),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('authorization', 'capture', 'refund', 'void')", name=op.f("ck_payments_kind")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_payments_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index("ix_payments_order_id", "payments", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_payments_order_id", table_name="payments")
    op.drop_table("payments")
    op.drop_table("order_lines")
    op.drop_table("order_allocations")
    op.drop_index("ix_orders_status_id", table_name="orders")
    op.drop_index(
        "ix_orders_expires_at_pending",
        table_name="orders",
        postgresql_where=sa.text("status = 'pending' AND payment_status = 'unpaid'"),
    )
    op.drop_index("ix_orders_email_normalized_created_at", table_name="orders")
    op.drop_index("ix_orders_customer_id_id", table_name="orders")
    op.drop_index("ix_orders_channel_id_id", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_inventory_movements_product_id_location_id", table_name="inventory_movements")
    op.drop_index("ix_inventory_movements_cause_id", table_name="inventory_movements")
    op.drop_table("inventory_movements")
    op.drop_index(op.f("ix_inventory_levels_location_id"), table_name="inventory_levels")
    op.drop_table("inventory_levels")
    op.drop_table("customers")
    op.drop_table("products")
    op.drop_table("locations")
    op.drop_index("ix_events_order_id_sequence", table_name="events")
    op.drop_index("ix_events_channel_id_position", table_name="events")
    op.drop_table("events")
    op.drop_table("app_settings")
    op.execute(sa.schema.DropSequence(sa.Sequence("order_number_seq")))
