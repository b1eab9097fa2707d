"""The order list on a large table: every shape of its one statement reads an index on the
plan PostgreSQL keeps.

The list's statement is compiled once per shape (`services/orders._list_statement`) and
run with values bound, so after five runs PostgreSQL may keep a generic plan — one made
without the values. A generic plan once read every order to find a page (a hash join over
the whole table, half a second a page on a million orders); this checks each shape on
200,000 orders, in a transaction rolled back with its statistics.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from oms_api.services.orders import _list_statement
from oms_api.services.scoping import FENCE_PARAM

FILTERS: dict[str, Any] = {
    "status": "confirmed",
    "channel_code": "plans",
    "customer_id": "cus_plans_7",
    "external_id": "ext-7",
    "created_after": datetime(2026, 1, 1, tzinfo=UTC),
    "created_before": datetime(2026, 1, 1, tzinfo=UTC),
    "number": 1_000_000_007,
    "email": "plans-7@example.com",
    "q_external_id": "ext-7",
}
VALUES: dict[str, Any] = {**FILTERS, FENCE_PARAM: "ch_plans", "cursor_0": "ord_plans_000100000"}


@pytest.mark.timeout(300)
async def test_every_shape_of_the_order_list_reads_an_index_on_a_generic_plan(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        # Rows for the planner's statistics only: no foreign keys checked for them.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            """INSERT INTO orders (id, number, channel_id, customer_id, email_normalized, status,
                                   payment_status, currency, subtotal, shipping, total,
                                   event_sequence, created_at, updated_at)
               SELECT 'ord_plans_' || lpad(i::text, 9, '0'), 1000000000 + i, 'ch_plans',
                      'cus_plans_' || (i % 1000), 'plans-' || (i % 1000) || '@example.com',
                      (ARRAY['pending', 'confirmed', 'cancelled', 'shipped'])[1 + i % 4],
                      'unpaid', 'EUR', 1000, 0, 1000, 0, now() - make_interval(secs => i), now()
               FROM generate_series(1, 200000) i"""
        )
        await conn.execute("ANALYZE orders")
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        shapes = [frozenset()] + [frozenset({name}) for name in FILTERS]
        shapes.append(frozenset({"status", "created_after", "created_before"}))
        checked = 0
        for shape, fenced, after_cursor in itertools.product(shapes, (False, True), (False, True)):
            statement = _list_statement(
                shape | ({FENCE_PARAM} if fenced else set()), 50, after_cursor
            )
            await conn.execute(f"PREPARE page AS {statement.sql}")
            args = ", ".join(_literal(VALUES[name]) for name in statement.names)
            explained = await conn.fetch(
                f"EXPLAIN EXECUTE page({args})" if args else "EXPLAIN EXECUTE page"
            )
            plan = "\n".join(row[0] for row in explained)
            await conn.execute("DEALLOCATE page")
            assert "Seq Scan on orders" not in plan, (sorted(shape), fenced, after_cursor, plan)
            checked += 1
        assert checked == len(shapes) * 4
    finally:
        await transaction.rollback()
        await conn.close()


def _literal(value: Any) -> str:
    """A parameter's value as SQL text (EXPLAIN binds none); typed by the statement."""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return str(value) if isinstance(value, int) else "'" + text.replace("'", "''") + "'"
