"""report summaries: revenue is numeric, exact past bigint

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03

An order may total up to 10^15 minor units, so a day's or a month's revenue per channel
can pass bigint (9.2 x 10^18). The summariser then failed every pass ("bigint out of
range") and no day was summarised again: every report fell back to live sums. The
reports' live sums are numeric already; the summary columns are now numeric too.
Existing rows keep their values (a widening).

Downgrade: rows whose revenue does not fit bigint are deleted, and their days and months
are no longer marked summarised — the reports compute those live, as they did.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("report_sales", "report_sku_sales")
BIGINT_MAX = 9223372036854775807


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN revenue TYPE numeric")


def downgrade() -> None:
    too_large = f"abs(revenue) > {BIGINT_MAX}"
    op.execute(
        "CREATE TEMPORARY TABLE unfit_days ON COMMIT DROP AS"
        f" SELECT day FROM report_sales WHERE {too_large}"
        f" UNION SELECT day FROM report_sku_sales WHERE span = 'day' AND {too_large}"
        " UNION SELECT d.day FROM report_days d JOIN report_sku_sales s"
        "   ON s.span = 'month' AND s.day = date_trunc('month', d.day)::date"
        f"   AND abs(s.revenue) > {BIGINT_MAX}"
    )
    op.execute("DELETE FROM report_sales WHERE day IN (SELECT day FROM unfit_days)")
    op.execute(
        "DELETE FROM report_sku_sales WHERE span = 'day' AND day IN (SELECT day FROM unfit_days)"
    )
    op.execute("DELETE FROM report_days WHERE day IN (SELECT day FROM unfit_days)")
    # Their months lose their month rows, as the summariser drops a re-derived day's.
    unfit_months = "(SELECT date_trunc('month', day)::date FROM unfit_days)"
    op.execute(f"DELETE FROM report_months WHERE month IN {unfit_months}")
    for table in ("report_sku_sales", "report_lead_times"):
        op.execute(f"DELETE FROM {table} WHERE span = 'month' AND day IN {unfit_months}")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN revenue TYPE bigint")
