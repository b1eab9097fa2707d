"""Reports read the orders placed in a period from one index

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

`ix_orders_created_at_report`: every period report (`services/reports.py`: sales by day,
channel and SKU, fulfilment, returns) starts from the orders placed in the period, not
cancelled, of the caller's channel. Keyed by `created_at`, it holds every column those
reports read of an order (`id` to join its lines and shipments, `channel_id`, `status`,
`currency`, `total`, `delivered_at`), so they read the period's orders from the index alone
(an index-only scan) instead of the whole table. It costs each placement one index entry;
docs/performance.md shows the plans and timings with and without it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_orders_created_at_report",
        "orders",
        ["created_at"],
        postgresql_include=["id", "channel_id", "status", "currency", "total", "delivered_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_orders_created_at_report", table_name="orders")
