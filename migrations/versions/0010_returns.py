"""returns (RMAs), their lines; orders' return status and exchange link

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

New tables; existing orders get `return_status = 'none'` (no returns existed before).
`oms_place_order` also writes `exchange_for_return_id`, so exchanges place their orders
through the same writer. Downgrade drops returns with their history (units received back
stay counted in the lines' `quantity_returned` and in stock).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
    op.execute(_writer("exchange_for_return_id, "))


def downgrade() -> None:
    op.execute(_writer(""))
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


def _writer(extra_columns: str) -> str:
    """oms_place_order as migration 0008 wrote it, inserting `extra_columns` too."""
    spec = importlib.util.spec_from_file_location(
        "order_core_0008", Path(__file__).with_name("0008_order_core.py")
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    columns = module.ORDER_COLUMNS
    return module.PLACE_ORDER.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(
        columns, extra_columns + columns
    )
