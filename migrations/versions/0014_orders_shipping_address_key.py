"""orders.shipping_address_key: the place an order ships to, for velocity by address

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

The risk rule "many orders to one shipping address in a short window" counts orders by the
place their shipping address names, however it is spelt (`domain.risk.address_key`: the
street lines, postal code, city and country, case-folded, punctuation and whitespace
ignored, hashed to 32 hex digits). Placement computes the key once, in Python, and stores
it with the order; placement's read (`services/placement.READ_SQL`, `recent_to_address`)
looks up the key's latest `address_velocity_max_orders` orders by
`ix_orders_shipping_address_key_id` — a short backward index scan, like the email's
(0006). Cheaper for placement than an expression index over the `shipping_address` JSON,
which would normalise in SQL on every insert and every read. Partial: orders without a
shipping address have no key and take no index entry.

Orders placed before this revision keep a NULL key (the normalisation lives in Python, and
a migration does not import the app): the rule counts orders placed from now on, so it is
whole again one window (at most 30 days) after the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("shipping_address_key", sa.Text(), nullable=True))
    op.create_index(
        "ix_orders_shipping_address_key_id",
        "orders",
        ["shipping_address_key", "id"],
        postgresql_where=sa.text("shipping_address_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_shipping_address_key_id", table_name="orders")
    op.drop_column("orders", "shipping_address_key")
