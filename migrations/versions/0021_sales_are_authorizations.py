"""A sale counts as an authorization: orders' `authorized` recomputed from their payments

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02

From now on a capture recorded with no authorization open (a sale: a placement paid at
once, an exchange's credit) adds its amount to `authorized` as well as to `captured`
(`domain.payments.add_payment`), so `authorized - captured - voided` is always what is
authorized and still open — an authorization taken after a sale was invisible before.
Orders recorded before keep `authorized` as the sum of their authorizations; this revision
replays each order's payments, oldest first (by the time in the payment's id, taken under
the order's lock), with the new rule (`domain.payments.replay`) and sets `authorized` to
the result. Only orders with a capture can change; `captured`, `refunded` and `voided` do
not depend on the rule, so a row whose sums disagree with its payments is left alone.
Running it twice changes nothing. Downgrade gives every order with a capture back the sum
of its authorizations.

It changes no state: a `pending` order that its now-open authorization covers stays
pending (a revision records no events). Find them with `status = 'pending' AND captured +
greatest(authorized - captured - voided, 0) >= total`; holding and releasing one confirms
it through its state machine, with its events.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLAY = """
WITH RECURSIVE tx AS (
    SELECT order_id, kind, amount,
           row_number() OVER (PARTITION BY order_id
                              ORDER BY substr(id, 5, 10), created_at, id) AS n
    FROM payments
    WHERE order_id IN (SELECT order_id FROM payments WHERE kind = 'capture')
), replayed AS (
    SELECT DISTINCT order_id, 0::bigint AS n, 0::bigint AS a, 0::bigint AS c,
           0::bigint AS r, 0::bigint AS v
    FROM tx
    UNION ALL
    SELECT s.order_id, t.n,
           s.a + CASE WHEN t.kind = 'authorization' THEN t.amount
                      WHEN t.kind = 'capture' AND s.a - s.c - s.v <= 0 THEN t.amount
                      ELSE 0 END,
           s.c + CASE WHEN t.kind = 'capture' THEN t.amount ELSE 0 END,
           s.r + CASE WHEN t.kind = 'refund' THEN t.amount ELSE 0 END,
           s.v + CASE WHEN t.kind = 'void' THEN t.amount ELSE 0 END
    FROM replayed s JOIN tx t ON t.order_id = s.order_id AND t.n = s.n + 1
), final AS (
    SELECT DISTINCT ON (order_id) order_id, a, c, r, v
    FROM replayed ORDER BY order_id, n DESC
)
UPDATE orders o SET authorized = f.a, updated_at = now(), version = o.version + 1
FROM final f
WHERE o.id = f.order_id AND o.authorized <> f.a
  AND (o.captured, o.refunded, o.voided) = (f.c, f.r, f.v)
"""

UNREPLAY = """
UPDATE orders o SET authorized = coalesce(
           (SELECT sum(p.amount) FROM payments p
            WHERE p.order_id = o.id AND p.kind = 'authorization'), 0),
       updated_at = now(), version = o.version + 1
WHERE o.id IN (SELECT order_id FROM payments WHERE kind = 'capture')
  AND o.authorized <> coalesce(
           (SELECT sum(p.amount) FROM payments p
            WHERE p.order_id = o.id AND p.kind = 'authorization'), 0)
"""


def upgrade() -> None:
    op.execute(REPLAY)


def downgrade() -> None:
    op.execute(UNREPLAY)
