"""webhooks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 05:12:48.381211
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Every inserted event becomes a pending delivery for each enabled endpoint that wants it,
# in the same transaction; a NOTIFY (sent at commit) wakes the dispatchers.
FAN_OUT_FUNCTION = """
CREATE FUNCTION oms_fan_out_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    created bigint;
BEGIN
    INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, next_attempt_at, created_at)
    SELECT 'whd_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS')
                  || substr(md5(random()::text || e.id || ep.id), 1, 12),
           ep.id, e.id, 'pending', now(), now()
    FROM new_events e
    JOIN webhook_endpoints ep
      ON ep.status = 'enabled'
     AND (ep.channel_id IS NULL OR ep.channel_id = e.channel_id)
     AND ('*' = ANY (ep.events) OR e.type = ANY (ep.events));
    GET DIAGNOSTICS created = ROW_COUNT;
    IF created > 0 THEN
        PERFORM pg_notify('oms_webhook_deliveries', '');
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("events", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'enabled'"), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('enabled', 'disabled', 'deleted')", name=op.f("ck_webhook_endpoints_status")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_webhook_endpoints_channel_id_channels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        "ix_webhook_endpoints_channel_id", "webhook_endpoints", ["channel_id"], unique=False
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("endpoint_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_latency_ms", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_webhook_deliveries_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_id_event_id"
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_id",
        "webhook_deliveries",
        ["endpoint_id", "id"],
        unique=False,
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column(
            "attempted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_snippet", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(
        "ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"], unique=False
    )
    op.execute("ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id()")
    op.drop_index(op.f("ix_events_channel_id_position"), table_name="events")
    op.create_index(
        "ix_events_channel_id_txid_position",
        "events",
        ["channel_id", "txid", "position"],
        unique=False,
    )
    op.create_index("ix_events_txid_position", "events", ["txid", "position"], unique=False)
    op.execute(FAN_OUT_FUNCTION)
    op.execute(
        "CREATE TRIGGER events_fan_out AFTER INSERT ON events "
        "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION oms_fan_out_events()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER events_fan_out ON events")
    op.execute("DROP FUNCTION oms_fan_out_events()")
    op.drop_index("ix_events_txid_position", table_name="events")
    op.drop_index("ix_events_channel_id_txid_position", table_name="events")
    op.create_index(
        op.f("ix_events_channel_id_position"), "events", ["channel_id", "position"], unique=False
    )
    op.drop_column("events", "txid")
    op.drop_index("ix_webhook_attempts_delivery_id", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_endpoint_id_id", table_name="webhook_deliveries")
    op.drop_index(
        "ix_webhook_deliveries_due",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_endpoints_channel_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
