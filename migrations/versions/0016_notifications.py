"""customer notifications: per-channel settings, the notifications, the notifier's cursor

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

New tables, and `customers.accepts_follow_up` (true for every existing customer). The
notifier's cursor starts at the newest event already committed, so upgrading a database
with history emails nobody about the past: only events committed after the upgrade are
told to customers. Downgrade drops every notification (that history is lost).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The notifier's place in the outbox, in the event feed's order (txid, position).
    op.execute(
        """CREATE TABLE notification_cursor (
               name text NOT NULL,
               txid xid8 NOT NULL,
               position bigint NOT NULL,
               updated_at timestamp with time zone DEFAULT now() NOT NULL,
               CONSTRAINT pk_notification_cursor PRIMARY KEY (name))"""
    )
    op.create_table(
        "channel_notification_settings",
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("from_name", sa.Text(), nullable=True),
        sa.Column("from_email", sa.Text(), nullable=True),
        sa.Column("reply_to", sa.Text(), nullable=True),
        sa.Column("kinds", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("follow_up_days", sa.Integer(), server_default=sa.text("7"), nullable=False),
        sa.Column(
            "templates",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
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
        sa.CheckConstraint(
            "follow_up_days BETWEEN 1 AND 365",
            name=op.f("ck_channel_notification_settings_follow_up_days_range"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_notification_settings_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channel_notification_settings")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=True),
        sa.Column("resend_of", sa.Text(), nullable=True),
        sa.Column("shipment_id", sa.Text(), nullable=True),
        sa.Column("return_id", sa.Text(), nullable=True),
        sa.Column("to_email", sa.Text(), nullable=True),
        sa.Column("from_address", sa.Text(), nullable=False),
        sa.Column("reply_to", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column(
            "headers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
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
            "status IN ('pending', 'sent', 'failed', 'skipped')",
            name=op.f("ck_notifications_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_notifications_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_notifications_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("event_id", "kind", name=op.f("uq_notifications_event_id_kind")),
    )
    op.create_index(
        "ix_notifications_channel_id_id", "notifications", ["channel_id", "id"], unique=False
    )
    op.create_index(
        "ix_notifications_next_attempt_at_pending",
        "notifications",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_notifications_order_id_id", "notifications", ["order_id", "id"], unique=False
    )
    op.add_column(
        "customers",
        sa.Column(
            "accepts_follow_up", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
    )
    # The past is not news: start after the newest event already committed.
    op.execute(
        """INSERT INTO notification_cursor (name, txid, position)
           SELECT 'notifications', coalesce(last.txid, '0'::xid8), coalesce(last.position, 0)
           FROM (SELECT 1) AS one
           LEFT JOIN (SELECT txid, position FROM events ORDER BY txid DESC, position DESC
                      LIMIT 1) AS last ON true"""
    )


def downgrade() -> None:
    op.drop_column("customers", "accepts_follow_up")
    op.drop_index("ix_notifications_order_id_id", table_name="notifications")
    op.drop_index(
        "ix_notifications_next_attempt_at_pending",
        table_name="notifications",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_notifications_channel_id_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("channel_notification_settings")
    op.drop_table("notification_cursor")
