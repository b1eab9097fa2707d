"""idempotency claim function: take the lock, then look up with a fresh snapshot

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

In one statement, the lookup's snapshot predates the advisory lock, so a duplicate that
gets the lock just after the first request commits would not see its record. In a VOLATILE
PL/pgSQL function each statement takes a new snapshot (READ COMMITTED): the lookup runs
after the lock is held and sees every record committed before it. Still one round trip.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM_FUNCTION = """
CREATE FUNCTION oms_idempotency_claim(lock_key text, p_principal text, p_key text)
RETURNS TABLE (got boolean, request_hash bytea, response_status integer, response_body bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(lock_key, 7)) THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::integer, NULL::bytea;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT true, r.request_hash, r.response_status, r.response_body
        FROM (SELECT 1) AS one
        LEFT JOIN idempotency_records r
          ON r.principal = p_principal AND r.key = p_key AND r.expires_at > now();
END
$$
"""


def upgrade() -> None:
    op.execute(CLAIM_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION oms_idempotency_claim(text, text, text)")
