"""customer profiles: what each channel knows of a customer, beside the unified record

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

One customer per email stays the business's record (`customers`); what a channel gives
(the email as it spelt it, name, phone, addresses) now lives in that channel's
`customer_profiles` row, and a channel key reads only its own. An order's customer must be
one its channel knows: `orders (customer_id, channel_id)` references a profile.

Existing rows carried over:
- the channel that created a customer (`customers.channel_id`) gets a profile with the
  name, phone and addresses it gave; those leave the shared row, which keeps only what
  the admin gave (customers created with an admin key keep theirs);
- every other channel with orders for the customer gets a profile holding the email (the
  old model never stored what those channels sent).

Downgrade puts the earliest profile's channel back as the creator and copies its values
into the shared row where that row has none; values other channels gave are dropped
(the old model had nowhere to keep them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_profiles",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False, comment="as this channel spelt it"),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column(
            "addresses",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
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
            ["channel_id"], ["channels.id"], name=op.f("fk_customer_profiles_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_profiles_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "channel_id", name=op.f("pk_customer_profiles")),
    )
    op.create_index(
        "ix_customer_profiles_channel_id_created_at_customer_id",
        "customer_profiles",
        ["channel_id", "created_at", "customer_id"],
    )
    op.create_index("ix_customers_created_at_id", "customers", ["created_at", "id"])
    op.execute(
        """
        INSERT INTO customer_profiles (customer_id, channel_id, email, name, phone, addresses,
                                       created_at, updated_at)
        SELECT id, channel_id, email, name, phone, addresses, created_at, updated_at
        FROM customers WHERE channel_id IS NOT NULL
        """
    )
    op.execute(
        """
        INSERT INTO customer_profiles (customer_id, channel_id, email, created_at, updated_at)
        SELECT o.customer_id, o.channel_id, c.email, min(o.created_at), min(o.created_at)
        FROM orders o JOIN customers c ON c.id = o.customer_id
        GROUP BY o.customer_id, o.channel_id, c.email
        ON CONFLICT (customer_id, channel_id) DO NOTHING
        """
    )
    op.execute(
        "UPDATE customers SET name = NULL, phone = NULL, addresses = '[]' "
        "WHERE channel_id IS NOT NULL"
    )
    op.drop_constraint("fk_customers_channel_id_channels", "customers", type_="foreignkey")
    op.drop_column("customers", "channel_id")
    op.drop_constraint("fk_orders_customer_id_customers", "orders", type_="foreignkey")
    op.create_foreign_key(
        "fk_orders_customer_id_customer_profiles",
        "orders",
        "customer_profiles",
        ["customer_id", "channel_id"],
        ["customer_id", "channel_id"],
    )


def downgrade() -> None:
    op.drop_constraint("fk_orders_customer_id_customer_profiles", "orders", type_="foreignkey")
    op.create_foreign_key(
        "fk_orders_customer_id_customers", "orders", "customers", ["customer_id"], ["id"]
    )
    op.add_column(
        "customers",
        sa.Column("channel_id", sa.Text(), nullable=True, comment="the channel that created it"),
    )
    op.create_foreign_key(
        "fk_customers_channel_id_channels", "customers", "channels", ["channel_id"], ["id"]
    )
    op.execute(
        """
        UPDATE customers c
        SET channel_id = p.channel_id,
            name = coalesce(c.name, p.name),
            phone = coalesce(c.phone, p.phone),
            addresses = CASE WHEN c.addresses = '[]'::jsonb THEN p.addresses ELSE c.addresses END
        FROM (SELECT DISTINCT ON (customer_id) * FROM customer_profiles
              ORDER BY customer_id, created_at, channel_id) p
        WHERE p.customer_id = c.id
        """
    )
    op.drop_index("ix_customers_created_at_id", table_name="customers")
    op.drop_index(
        "ix_customer_profiles_channel_id_created_at_customer_id", table_name="customer_profiles"
    )
    op.drop_table("customer_profiles")
