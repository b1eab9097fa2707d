"""report summaries: per-day sales, per-day and per-month SKU sales and lead times, per-day returns

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

The summariser (`services/report_summaries.py`, run by housekeeping) fills these from the
orders; a report reads a day from them only once it is summarised and clean, and computes
every other day live. The migration writes no summary: every day of a database that already
has orders is unsummarised (no `report_days` row), so reports stay exact (live) until the
summariser has built them. Its cursor starts at the newest event already committed: the
days it builds from scratch include every change before it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.execute(
        """CREATE TABLE report_cursor (
               name text NOT NULL,
               txid xid8 NOT NULL,
               position bigint NOT NULL,
               updated_at timestamp with time zone DEFAULT now() NOT NULL,
               CONSTRAINT pk_report_cursor PRIMARY KEY (name))"""
    )
    op.execute(
        """INSERT INTO report_cursor (name, txid, position)
           SELECT 'summaries', coalesce(max(txid), '0'::xid8), coalesce(max(position), 0)
           FROM events"""
    )
    op.create_table(
        "report_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("summarised_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_days")),
    )
    op.create_table(
        "report_months",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("summarised_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_report_months")),
    )
    op.create_table(
        "report_sales",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel_id", "currency", name=op.f("pk_report_sales")),
    )
    op.create_table(
        "report_sku_sales",
        sa.Column("span", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("holders", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("span IN ('day', 'month')", name=op.f("ck_report_sku_sales_span")),
        sa.PrimaryKeyConstraint(
            "span", "day", "channel_id", "currency", "sku", name=op.f("pk_report_sku_sales")
        ),
    )
    op.create_table(
        "report_returns",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "channel_id", "sku", "reason", name=op.f("pk_report_returns")
        ),
    )
    op.create_table(
        "report_lead_times",
        sa.Column("span", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("location_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("hours", sa.ARRAY(sa.Double()), nullable=True),
        sa.CheckConstraint("span IN ('day', 'month')", name=op.f("ck_report_lead_times_span")),
        sa.CheckConstraint(
            "kind IN ('placed', 'shipped', 'delivered')", name=op.f("ck_report_lead_times_kind")
        ),
        sa.PrimaryKeyConstraint(
            "span", "day", "channel_id", "location_id", "kind", "hour",
            name=op.f("pk_report_lead_times"),
        ),
    )  # fmt: skip
    # The fulfilment report's percentile: the lead times of one hour's bucket over the period.
    op.create_index(
        "ix_report_lead_times_bucket", "report_lead_times",
        ["location_id", "kind", "hour", "day"], postgresql_where=sa.text("span = 'day'"),
    )  # fmt: skip


def downgrade() -> None:
    for table in (
        "report_lead_times", "report_returns", "report_sku_sales", "report_sales", "report_months",
        "report_days", "report_cursor",
    ):  # fmt: skip
        op.drop_table(table)
