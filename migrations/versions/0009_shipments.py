"""shipments, tracking, carrier pickups; locations' ship-from address

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

New tables only (and `locations.address`, empty for existing locations): nothing to carry
over. Downgrade drops them with every shipment, tracking update and pickup in them (that
history is lost); units in open shipments become free reservations again
(`quantity_in_shipments` back to 0), and shipped units stay counted on their lines.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _times(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(n, sa.DateTime(timezone=True), nullable=True) for n in names]


def _created_updated() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(n, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
        for n in ("created_at", "updated_at")
    ]


def upgrade() -> None:
    op.add_column(
        "locations",
        sa.Column("address", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_table(
        "shipments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False, comment="the order's"),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("carrier", sa.Text(), nullable=True),
        sa.Column("carrier_key", sa.Text(), nullable=True, comment="the carrier, normalised"),
        sa.Column("service", sa.Text(), nullable=True),
        sa.Column("tracking_number", sa.Text(), nullable=True),
        sa.Column("tracking_url", sa.Text(), nullable=True),
        sa.Column("weight_grams", sa.Integer(), nullable=False),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        *_created_updated(),
        *_times("picking_at", "packed_at", "shipped_at", "delivered_at", "cancelled_at"),
        sa.CheckConstraint(
            "status IN ('pending', 'picking', 'packed', 'shipped', 'delivered', 'cancelled')",
            name=op.f("ck_shipments_status"),
        ),
        sa.CheckConstraint("weight_grams >= 0", name=op.f("ck_shipments_weight_not_negative")),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_shipments_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_shipments_location_id_locations")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_shipments_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
    )
    op.create_index("ix_shipments_order_id", "shipments", ["order_id"])
    op.create_index("ix_shipments_channel_id_id", "shipments", ["channel_id", "id"])
    op.create_index("ix_shipments_status_id", "shipments", ["status", "id"])
    op.create_index("ix_shipments_location_id_status", "shipments", ["location_id", "status"])
    op.create_table(
        "shipment_lines",
        sa.Column("shipment_id", sa.Text(), nullable=False),
        sa.Column("line_id", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_shipment_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["line_id"], ["order_lines.id"], name=op.f("fk_shipment_lines_line_id_order_lines")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_shipment_lines_shipment_id_shipments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shipment_id", "line_id", name=op.f("pk_shipment_lines")),
    )
    op.create_index("ix_shipment_lines_line_id", "shipment_lines", ["line_id"])
    op.create_table(
        "tracking_events",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("shipment_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('in_transit', 'out_for_delivery', 'delivery_attempted', 'exception', "
            "'delivered')",
            name=op.f("ck_tracking_events_status"),
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_tracking_events_shipment_id_shipments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_events")),
        sa.UniqueConstraint(
            "shipment_id",
            "status",
            "occurred_at",
            name=op.f("uq_tracking_events_shipment_id_status_occurred_at"),
        ),
    )
    op.create_table(
        "pickups",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("carrier", sa.Text(), nullable=False),
        sa.Column("carrier_key", sa.Text(), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        *_created_updated(),
        *_times("collected_at", "cancelled_at"),
        sa.CheckConstraint(
            "status IN ('scheduled', 'collected', 'cancelled')", name=op.f("ck_pickups_status")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_pickups_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pickups")),
    )
    op.create_index("ix_pickups_location_id_id", "pickups", ["location_id", "id"])
    op.create_table(
        "pickup_shipments",
        sa.Column("pickup_id", sa.Text(), nullable=False),
        sa.Column("shipment_id", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.ForeignKeyConstraint(
            ["pickup_id"],
            ["pickups.id"],
            name=op.f("fk_pickup_shipments_pickup_id_pickups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_pickup_shipments_shipment_id_shipments"),
        ),
        sa.PrimaryKeyConstraint("pickup_id", "shipment_id", name=op.f("pk_pickup_shipments")),
    )
    # A parcel is on at most one pickup that is not cancelled.
    op.create_index(
        "ix_pickup_shipments_shipment_id_active",
        "pickup_shipments",
        ["shipment_id"],
        unique=True,
        postgresql_where=sa.text("active"),
    )


def downgrade() -> None:
    op.execute(
        "UPDATE order_reservations SET quantity_in_shipments = 0 WHERE quantity_in_shipments > 0"
    )
    op.drop_index("ix_pickup_shipments_shipment_id_active", table_name="pickup_shipments")
    op.drop_table("pickup_shipments")
    op.drop_index("ix_pickups_location_id_id", table_name="pickups")
    op.drop_table("pickups")
    op.drop_table("tracking_events")
    op.drop_index("ix_shipment_lines_line_id", table_name="shipment_lines")
    op.drop_table("shipment_lines")
    op.drop_index("ix_shipments_location_id_status", table_name="shipments")
    op.drop_index("ix_shipments_status_id", table_name="shipments")
    op.drop_index("ix_shipments_channel_id_id", table_name="shipments")
    op.drop_index("ix_shipments_order_id", table_name="shipments")
    op.drop_table("shipments")
    op.drop_column("locations", "address")
