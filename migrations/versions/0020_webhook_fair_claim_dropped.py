"""webhook deliveries: claimed per endpoint; `dropped` when their endpoint is deleted or disabled

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The dispatcher claims each endpoint's oldest due deliveries (webhooks/dispatcher.py,
    # CLAIM_SQL): one range of this index per endpoint, instead of the global order.
    op.execute("DROP INDEX ix_webhook_deliveries_due")
    op.execute(
        "CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries "
        "(endpoint_id, next_attempt_at) WHERE status = 'pending'"
    )
    op.execute("ALTER TABLE webhook_deliveries DROP CONSTRAINT ck_webhook_deliveries_status")
    op.execute(
        "ALTER TABLE webhook_deliveries ADD CONSTRAINT ck_webhook_deliveries_status "
        "CHECK (status IN ('pending', 'succeeded', 'failed', 'dropped'))"
    )
    # Deliveries left pending by endpoints deleted or disabled before this revision.
    op.execute(
        "UPDATE webhook_deliveries d SET status = 'dropped' FROM webhook_endpoints ep "
        "WHERE ep.id = d.endpoint_id AND d.status = 'pending' AND ep.status <> 'enabled'"
    )


def downgrade() -> None:
    op.execute("UPDATE webhook_deliveries SET status = 'failed' WHERE status = 'dropped'")
    op.execute("ALTER TABLE webhook_deliveries DROP CONSTRAINT ck_webhook_deliveries_status")
    op.execute(
        "ALTER TABLE webhook_deliveries ADD CONSTRAINT ck_webhook_deliveries_status "
        "CHECK (status IN ('pending', 'succeeded', 'failed'))"
    )
    op.execute("DROP INDEX ix_webhook_deliveries_due")
    op.execute(
        "CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) "
        "WHERE status = 'pending'"
    )
