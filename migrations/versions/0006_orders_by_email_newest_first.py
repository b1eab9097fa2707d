"""orders by email, newest first: (email_normalized, id) instead of (email_normalized, created_at)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

Both readers of an email's orders want the newest first: the order list filtered by
email (`ORDER BY id DESC`, ids are time-ordered) and placement's risk rule, which now looks
at the email's last `velocity_max_orders` orders and counts those inside the window. One
index in id order serves both with a short backward scan, where the old one made the list
read and sort every order of the email.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_email_normalized_id", "orders", ["email_normalized", "id"])
    op.drop_index("ix_orders_email_normalized_created_at", table_name="orders")


def downgrade() -> None:
    op.create_index(
        "ix_orders_email_normalized_created_at", "orders", ["email_normalized", "created_at"]
    )
    op.drop_index("ix_orders_email_normalized_id", table_name="orders")
