"""Migrations that reshape data carry existing rows over: each test fills a database at the
revision before one, upgrades through it, and checks what became of every row — then
downgrades and checks again."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from oms_api import migrations_runner
from oms_api.domain.reports import SalesGrouping
from oms_api.main import create_app
from oms_api.services import report_summaries, reports
from tests.checks import assert_stock_consistent
from tests.conftest import ADMIN_KEY, ROOT, create_database, drop_database, make_settings
from tests.test_report_summaries import LIVE_FULFILMENT_SQL


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    url = await create_database(server_url)
    try:
        yield url
    finally:
        await drop_database(url)


@asynccontextmanager
async def admin_client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the database at `url` (as migrated now), and a client with the admin key."""
    app = create_app(make_settings(url))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as admin:  # fmt: skip
        yield admin


async def migrate(url: str, revision: str, *, down: bool = False) -> None:
    run = migrations_runner.downgrade if down else migrations_runner.upgrade
    await asyncio.to_thread(run, url, revision)


async def test_0007_moves_what_each_channel_gave_into_its_profile(empty_database: str) -> None:
    url = empty_database
    await migrate(url, "0006")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO channels (id, code, name) VALUES ('ch_a', 'a', 'A'), ('ch_b', 'b', 'B');
            INSERT INTO customers (id, email, name, phone, addresses, channel_id, created_at)
            VALUES
              ('cus_1', 'Ada@Example.com', 'Ada', '+44 1', '[{"line1": "A street"}]', 'ch_a',
               '2025-12-01'),
              ('cus_2', 'grace@example.com', 'Grace (admin)', NULL, '[]', NULL, '2025-12-01'),
              ('cus_3', 'alan@example.com', 'Alan', NULL, '[]', 'ch_b', '2025-12-01');
            INSERT INTO orders (id, number, channel_id, customer_id, email_normalized, status,
                                payment_status, currency, subtotal, shipping, total, created_at)
            VALUES ('ord_1', 1, 'ch_a', 'cus_1', 'ada@example.com', 'pending', 'unpaid', 'EUR',
                    0, 0, 0, '2026-01-01'),
                   ('ord_2', 2, 'ch_b', 'cus_1', 'ada@example.com', 'pending', 'unpaid', 'EUR',
                    0, 0, 0, '2026-02-01'),
                   ('ord_3', 3, 'ch_a', 'cus_2', 'grace@example.com', 'pending', 'unpaid', 'EUR',
                    0, 0, 0, '2026-03-01');
            """
        )
        await migrate(url, "0007")
        profiles = {
            (r["customer_id"], r["channel_id"]): dict(r)
            for r in await conn.fetch("SELECT * FROM customer_profiles")
        }
        assert profiles.keys() == {
            ("cus_1", "ch_a"), ("cus_1", "ch_b"), ("cus_2", "ch_a"), ("cus_3", "ch_b"),
        }  # fmt: skip
        creator = profiles["cus_1", "ch_a"]
        assert (creator["email"], creator["name"], creator["phone"]) == (
            "Ada@Example.com", "Ada", "+44 1",
        )  # fmt: skip
        assert creator["addresses"] == '[{"line1": "A street"}]'
        other = profiles["cus_1", "ch_b"]
        assert (other["name"], other["phone"], other["addresses"]) == (None, None, "[]")
        assert str(other["created_at"].date()) == "2026-02-01"  # its first order
        assert profiles["cus_2", "ch_a"]["name"] is None
        shared = {r["id"]: dict(r) for r in await conn.fetch("SELECT * FROM customers")}
        assert (shared["cus_1"]["name"], shared["cus_1"]["addresses"]) == (None, "[]")
        assert shared["cus_2"]["name"] == "Grace (admin)"  # what the admin gave stays
        with pytest.raises(asyncpg.ForeignKeyViolationError):  # an order needs a profile
            await conn.execute(
                """INSERT INTO orders (id, number, channel_id, customer_id, email_normalized,
                                       status, payment_status, currency, subtotal, shipping, total)
                   VALUES ('ord_4', 4, 'ch_b', 'cus_2', 'x', 'pending', 'unpaid', 'EUR', 0, 0, 0)"""
            )

        await migrate(url, "0006", down=True)
        back = {r["id"]: dict(r) for r in await conn.fetch("SELECT * FROM customers")}
        assert (back["cus_1"]["channel_id"], back["cus_1"]["name"], back["cus_1"]["phone"]) == (
            "ch_a", "Ada", "+44 1",
        )  # fmt: skip
        assert back["cus_1"]["addresses"] == '[{"line1": "A street"}]'
        assert (back["cus_2"]["name"], back["cus_3"]["channel_id"]) == ("Grace (admin)", "ch_b")
    finally:
        await conn.close()


# What the placement before 0008 wrote, for six orders in every state it had: stock at two
# locations, orders with their lines, per-(order, product, location) allocations, and the
# ledger rows of every change. P does not backorder; Q does.
BEFORE_0008 = """
INSERT INTO channels (id, code, name) VALUES ('ch', 'web', 'Web');
INSERT INTO locations (id, code, name, kind, priority)
VALUES ('loc_1', 'one', 'One', 'warehouse', 10), ('loc_2', 'two', 'Two', 'warehouse', 20);
INSERT INTO products (id, sku, name, unit_price, currency, allow_backorder)
VALUES ('p', 'P', 'P', 100, 'EUR', false), ('q', 'Q', 'Q', 100, 'EUR', true);
INSERT INTO customers (id, email) VALUES ('cus', 'ada@example.com');
INSERT INTO customer_profiles (customer_id, channel_id, email) VALUES ('cus', 'ch', 'ada@example.com');
INSERT INTO inventory_levels (product_id, location_id, on_hand, reserved) VALUES
  ('p', 'loc_1', 6, 6), ('p', 'loc_2', 6, 5), ('q', 'loc_1', 2, 2);
INSERT INTO orders (id, number, channel_id, customer_id, email_normalized, status,
                    payment_status, currency, subtotal, shipping, total, event_sequence)
SELECT id, n, 'ch', 'cus', 'ada@example.com', status, 'unpaid', 'EUR', 0, 0, 0, 1
FROM (VALUES ('o1', 1, 'pending'), ('o2', 2, 'on_hold'), ('o3', 3, 'confirmed'),
             ('o4', 4, 'cancelled'), ('o5', 5, 'confirmed'), ('o6', 6, 'confirmed')) v(id, n, status);
INSERT INTO order_lines (id, order_id, position, product_id, sku, name, quantity, unit_price,
                         quantity_backordered)
VALUES ('l1', 'o1', 1, 'p', 'P', 'P', 3, 100, 0), ('l2', 'o2', 1, 'p', 'P', 'P', 2, 100, 0),
       ('l3a', 'o3', 1, 'p', 'P', 'P', 2, 100, 0), ('l3b', 'o3', 2, 'p', 'P', 'P', 1, 100, 0),
       ('l4', 'o4', 1, 'p', 'P', 'P', 1, 100, 0), ('l5', 'o5', 1, 'q', 'Q', 'Q', 4, 100, 2),
       ('l6', 'o6', 1, 'p', 'P', 'P', 3, 100, 0);
INSERT INTO order_allocations (order_id, product_id, location_id, sku, quantity) VALUES
  ('o1', 'p', 'loc_1', 'P', 3), ('o2', 'p', 'loc_1', 'P', 2), ('o3', 'p', 'loc_2', 'P', 3),
  ('o4', 'p', 'loc_2', 'P', 0), ('o5', 'q', 'loc_1', 'Q', 2), ('o6', 'p', 'loc_1', 'P', 1),
  ('o6', 'p', 'loc_2', 'P', 2);
INSERT INTO inventory_movements (id, product_id, sku, location_id, on_hand_delta, reserved_delta,
                                 reason, cause_type, cause_id) VALUES
  ('m1', 'p', 'P', 'loc_1', 6, 0, 'received', 'adjustment', 'm1'),
  ('m2', 'p', 'P', 'loc_2', 6, 0, 'received', 'adjustment', 'm2'),
  ('m3', 'q', 'Q', 'loc_1', 2, 0, 'received', 'adjustment', 'm3'),
  ('m4', 'p', 'P', 'loc_1', 0, 3, 'order_placed', 'order', 'o1'),
  ('m5', 'p', 'P', 'loc_1', 0, 2, 'order_placed', 'order', 'o2'),
  ('m6', 'p', 'P', 'loc_2', 0, 3, 'order_placed', 'order', 'o3'),
  ('m7', 'p', 'P', 'loc_2', 0, 1, 'order_placed', 'order', 'o4'),
  ('m8', 'p', 'P', 'loc_2', 0, -1, 'order_cancelled', 'order', 'o4'),
  ('m9', 'q', 'Q', 'loc_1', 0, 2, 'order_placed', 'order', 'o5'),
  ('m10', 'p', 'P', 'loc_1', 0, 1, 'order_placed', 'order', 'o6'),
  ('m11', 'p', 'P', 'loc_2', 0, 2, 'order_placed', 'order', 'o6');
"""


async def test_0008_carries_every_orders_reservations_over_per_line(empty_database: str) -> None:
    url = empty_database
    await migrate(url, "0007")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(BEFORE_0008)
        await migrate(url, "0008")
        reservations = {
            (r["line_id"], r["location_id"]): r["quantity"]
            for r in await conn.fetch("SELECT * FROM order_reservations")
        }
        assert reservations == {
            ("l1", "loc_1"): 3, ("l2", "loc_1"): 2,
            ("l3a", "loc_2"): 2, ("l3b", "loc_2"): 1,  # one allocation, spread over two lines
            ("l5", "loc_1"): 2,  # two more backordered
            ("l6", "loc_1"): 1, ("l6", "loc_2"): 2,  # one line held at two locations
        }  # fmt: skip
        lines = {
            r["id"]: (r["quantity_reserved"], r["quantity_backordered"], r["quantity_shipped"],
                      r["quantity_cancelled"])
            for r in await conn.fetch("SELECT * FROM order_lines")
        }  # fmt: skip
        assert lines == {
            "l1": (3, 0, 0, 0), "l2": (2, 0, 0, 0), "l3a": (2, 0, 0, 0), "l3b": (1, 0, 0, 0),
            "l4": (0, 0, 0, 1), "l5": (2, 2, 0, 0), "l6": (3, 0, 0, 0),
        }  # fmt: skip
        assert await conn.fetchval("SELECT to_regclass('order_allocations')") is None
    finally:
        await conn.close()

    # The service, at head, finds them consistent and works on them like on new orders.
    await migrate(url, "head")
    app = create_app(make_settings(url))
    async with app.router.lifespan_context(app):
        await assert_stock_consistent(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://t",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as admin:
            order = (await admin.get("/v1/orders/o6")).json()
            assert [(a["line_id"], a["location_id"], a["quantity"]) for a in order["allocations"]] == [
                ("l6", "loc_1", 1), ("l6", "loc_2", 2),
            ]  # fmt: skip
            cancelled = await admin.post("/v1/orders/o1/cancel", json={"reason": "migrated"})
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["lines"][0]["quantity_cancelled"] == 3
            released = await admin.post("/v1/orders/o2/cancel")
            assert released.json()["status"] == "cancelled"
            level = (await admin.get("/v1/inventory/P")).json()["levels"]
            assert {lv["location_id"]: lv["reserved"] for lv in level} == {"loc_1": 1, "loc_2": 5}
            # A migrated order split over two lines, and one over two places, ship.
            for order_id, parcels in (("o3", 1), ("o6", 2)):
                made = await admin.post(f"/v1/orders/{order_id}/allocate")
                assert made.status_code == 201, made.text
                assert len(made.json()["data"]) == parcels
                for shipment in made.json()["data"]:
                    for step, body in (("pick", None), ("pack", None),
                                       ("ship", {"carrier": "UPS", "tracking_number": "1Z1"})):  # fmt: skip
                        done = await admin.post(f"/v1/shipments/{shipment['id']}/{step}", json=body)
                        assert done.status_code == 200, done.text
                assert (await admin.get(f"/v1/orders/{order_id}")).json()["status"] == "shipped"
            # ...and come back: a migrated line returned, received, completed (never paid).
            line = (await admin.get("/v1/orders/o3")).json()["lines"][0]["id"]
            rma = (await admin.post("/v1/returns", json={
                "order_id": "o3", "resolution": "refund",
                "lines": [{"line_id": line, "quantity": 1, "reason": "other"}],
            })).json()  # fmt: skip
            assert rma["status"] == "requested", rma
            await admin.post(f"/v1/returns/{rma['id']}/approve")
            received = await admin.post(f"/v1/returns/{rma['id']}/receive", json={
                "location_id": "loc_2",
                "lines": [{"line_id": line, "quantity": 1, "condition": "resellable"}],
            })  # fmt: skip
            assert received.json()["status"] == "received", received.text
            done = await admin.post(f"/v1/returns/{rma['id']}/complete", json={"refund_amount": 0})
            assert done.json()["status"] == "completed", done.text
            backordered = (await admin.get("/v1/orders/o5")).json()["lines"][0]
            assert (backordered["quantity_reserved"], backordered["quantity_backordered"]) == (2, 2)
        await assert_stock_consistent(app)

    await migrate(url, "0007", down=True)
    conn = await asyncpg.connect(url)
    try:  # what is still reserved goes back into allocations; shipped units stay on lines
        allocations = {
            (r["order_id"], r["product_id"], r["location_id"]): r["quantity"]
            for r in await conn.fetch("SELECT * FROM order_allocations")
        }
        assert allocations == {("o5", "q", "loc_1"): 2}
        shipped = await conn.fetchval("SELECT sum(quantity_shipped) FROM order_lines")
        assert shipped == 6
        assert await conn.fetchval("SELECT sum(quantity_returned) FROM order_lines") == 1
    finally:
        await conn.close()


async def test_0013_totals_each_products_stock_so_the_next_fall_is_seen(
    empty_database: str,
) -> None:
    """0013 fills `stock_totals` from the levels as they are: the first fall after it
    through a reorder point opens a request, as it would have with totals kept all along."""
    url = empty_database
    await migrate(url, "0012")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO locations (id, code, name, kind, priority)
            VALUES ('loc_1', 'one', 'One', 'warehouse', 10), ('loc_2', 'two', 'Two', 'warehouse', 20);
            INSERT INTO products (id, sku, name, unit_price, currency, reorder_point,
                                  reorder_quantity)
            VALUES ('p', 'P', 'P', 100, 'EUR', 8, 30), ('q', 'Q', 'Q', 100, 'EUR', 0, 0),
                   ('r', 'R', 'R', 100, 'EUR', 5, 10);
            INSERT INTO inventory_levels (product_id, location_id, on_hand, reserved) VALUES
              ('p', 'loc_1', 6, 2), ('p', 'loc_2', 7, 1), ('q', 'loc_1', 3, 3);
            INSERT INTO inventory_movements (id, product_id, sku, location_id, on_hand_delta,
                                             reserved_delta, reason, cause_type, cause_id)
            VALUES ('m1', 'p', 'P', 'loc_1', 6, 2, 'received', 'adjustment', 'm1'),
                   ('m2', 'p', 'P', 'loc_2', 7, 1, 'received', 'adjustment', 'm2'),
                   ('m3', 'q', 'Q', 'loc_1', 3, 3, 'received', 'adjustment', 'm3');
            """
        )
        await migrate(url, "0013")
        totals = dict(await conn.fetch("SELECT product_id, available FROM stock_totals"))
        assert totals == {"p": 10, "q": 0}  # (6-2) + (7-1); none for R, which has no level
        # 10 → 8 at loc_2: the crossing of P's point, seen against the carried total.
        await conn.execute(
            """SELECT oms_move_stock('[{"id": "m4", "product_id": "p", "sku": "P",
                 "location_id": "loc_2", "on_hand_delta": 0, "reserved_delta": 2,
                 "reason": "order_placed", "cause_type": "order", "cause_id": "o1"}]')"""
        )
        [request] = await conn.fetch(
            "SELECT sku, quantity, available_at_opening FROM replenishments"
        )
        assert tuple(request) == ("P", 30, 8)
        assert await conn.fetchval("SELECT available FROM stock_totals WHERE product_id = 'p'") == 8
        await migrate(url, "0012", down=True)
        levels = await conn.fetch(
            "SELECT product_id, location_id, on_hand, reserved FROM inventory_levels ORDER BY 1, 2"
        )
        assert [tuple(r) for r in levels] == [
            ("p", "loc_1", 6, 2),
            ("p", "loc_2", 7, 3),
            ("q", "loc_1", 3, 3),
        ]
        assert await conn.fetchval("SELECT to_regclass('stock_totals')") is None
    finally:
        await conn.close()


async def test_0018_keeps_a_placements_response_once_and_gives_it_back_on_downgrade(
    empty_database: str,
) -> None:
    """At 0018 a placement's Idempotency-Key record names its `order.created` event instead
    of keeping a copy of the document, and a paid order's three events keep it once; the
    retry answers the same document. Downgraded, the record has its body again (the
    event's data) and every event its data, and the retry still answers it."""
    from tests.factories import create_channel, create_location, create_product, order_body
    from tests.factories import stock as add_stock

    url = empty_database
    await migrate(url, "head")

    async def placed_again(key: str, body: dict[str, object]) -> httpx.Response:
        async with admin_client(url) as admin:
            return await admin.post("/v1/orders", json=body, headers={"Idempotency-Key": key})

    async with admin_client(url) as admin:
        location = await create_location(admin)
        channel = await create_channel(admin, location_ids=[location["id"]])
        product = await create_product(admin)
        await add_stock(admin, product["sku"], location["id"], 5)
        body = order_body(
            channel["code"], [(product["sku"], 2)], payment={"method": "card", "status": "paid"}
        )
        first = await admin.post("/v1/orders", json=body, headers={"Idempotency-Key": "k-18"})
        assert first.status_code == 201, first.text
    conn = await asyncpg.connect(url)
    try:
        stored = await conn.fetchrow(
            "SELECT response_body, response_event_id FROM idempotency_records WHERE key = 'k-18'"
        )
        assert stored["response_body"] is None
        assert await conn.fetchval(
            "SELECT type FROM events WHERE id = $1", stored["response_event_id"]
        ) == "order.created"  # fmt: skip
        again = await placed_again("k-18", body)
        assert (again.status_code, again.json()) == (201, first.json())

        await migrate(url, "0018", down=True)
        await migrate(url, "-1", down=True)
        body_after = await conn.fetchval(
            "SELECT response_body FROM idempotency_records WHERE key = 'k-18'"
        )
        assert body_after is not None
        assert json.loads(body_after) == first.json()
        # The paid order's three events each have the document again.
        datas = await conn.fetch("SELECT data FROM events WHERE order_id = $1", first.json()["id"])
        assert [json.loads(r["data"]) for r in datas] == [first.json()] * 3
        await migrate(url, "head")
        again = await placed_again("k-18", body)
        assert (again.status_code, again.json()) == (201, first.json())
        assert await conn.fetchval("SELECT count(*) FROM orders") == 1
    finally:
        await conn.close()


async def test_0017_reports_stay_exact_before_and_after_the_summaries_are_built(
    empty_database: str,
) -> None:
    """0017 writes no summary: on a database filled at 0016 every day is computed live, and
    the figures are the sums of its orders (fulfilment: percentile_cont over every lead
    time); once the summariser has built the days, every report gives the same figures from
    the summaries. An event already in the outbox at the upgrade leaves no day dirty."""
    url = empty_database
    await migrate(url, "0016")
    today = datetime.now(UTC).date()
    old, recent = today - timedelta(days=40), today - timedelta(days=3)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO channels (id, code, name) VALUES ('ch_a', 'a', 'A'), ('ch_b', 'b', 'B');
            INSERT INTO customers (id, email) VALUES ('cus_1', 'ada@example.com');
            INSERT INTO customer_profiles (customer_id, channel_id, email)
            VALUES ('cus_1', 'ch_a', 'ada@example.com'), ('cus_1', 'ch_b', 'ada@example.com');
            INSERT INTO locations (id, code, name, kind)
            VALUES ('loc_1', 'one', 'One', 'warehouse'), ('loc_2', 'two', 'Two', 'warehouse');
            INSERT INTO products (id, sku, name, unit_price, currency)
            VALUES ('p', 'P', 'P', 1000, 'EUR'), ('q', 'Q', 'Q', 500, 'EUR');
            """
        )
        orders = [  # id, channel, placed, status, delivered after (h), subtotal
            ("ord_1", "ch_a", datetime.combine(old, time(10), UTC), "delivered", 52.0, 2500),
            ("ord_2", "ch_b", datetime.combine(old, time(12), UTC), "shipped", None, 1000),
            ("ord_3", "ch_a", datetime.combine(recent, time(9), UTC), "confirmed", None, 1500),
            ("ord_4", "ch_a", datetime.combine(recent, time(11), UTC), "cancelled", None, 1000),
            ("ord_5", "ch_b", datetime.combine(recent, time(14), UTC), "delivered", 44.0, 1000),
            ("ord_6", "ch_a", datetime.combine(recent, time(15), UTC), "shipped", None, 3000),
        ]
        for number, (order_id, channel, placed, status, delivered, subtotal) in enumerate(orders):
            await conn.execute(
                """INSERT INTO orders (id, number, channel_id, customer_id, email_normalized,
                                       status, payment_status, currency, subtotal, shipping,
                                       total, created_at, delivered_at)
                   VALUES ($1, $2, $3, 'cus_1', 'ada@example.com', $4, 'paid', 'EUR', $5, 0,
                           $5, $6::timestamptz,
                           $6::timestamptz + make_interval(secs => $7::float8 * 3600))""",
                order_id, number + 1, channel, status, subtotal, placed, delivered,
            )  # fmt: skip
        await conn.execute(
            """
            INSERT INTO order_lines (id, order_id, position, product_id, sku, name, quantity,
                                     unit_price, quantity_shipped, quantity_reserved,
                                     quantity_cancelled, quantity_returned)
            VALUES ('l_1p', 'ord_1', 1, 'p', 'P', 'P', 2, 1000, 2, 0, 0, 0),
                   ('l_1q', 'ord_1', 2, 'q', 'Q', 'Q', 1, 500, 1, 0, 0, 0),
                   ('l_2', 'ord_2', 1, 'p', 'P', 'P', 1, 1000, 1, 0, 0, 0),
                   ('l_3', 'ord_3', 1, 'q', 'Q', 'Q', 3, 500, 0, 3, 0, 0),
                   ('l_4', 'ord_4', 1, 'p', 'P', 'P', 1, 1000, 0, 0, 1, 0),
                   ('l_5', 'ord_5', 1, 'p', 'P', 'P', 1, 1000, 1, 0, 0, 1),
                   ('l_6', 'ord_6', 1, 'p', 'P', 'P', 3, 1000, 1, 0, 2, 0);
            """
        )
        shipments = [  # id, order, location, status, shipped after, delivered after (h)
            ("s_1", "ord_1", "loc_1", "delivered", 5.0, 30.0),
            ("s_2", "ord_1", "loc_2", "delivered", 7.5, 52.0),
            ("s_3", "ord_2", "loc_1", "shipped", 3.0, None),
            ("s_4", "ord_3", "loc_2", "pending", None, None),
            ("s_5", "ord_5", "loc_2", "delivered", 20.0, 44.0),
            ("s_6", "ord_6", "loc_1", "shipped", 2.25, None),
        ]
        for shipment_id, order_id, location, status, shipped, delivered in shipments:
            await conn.execute(
                """INSERT INTO shipments (id, order_id, channel_id, location_id, status,
                                          weight_grams, shipped_at, delivered_at)
                   SELECT $1, o.id, o.channel_id, $3, $4, 0,
                          o.created_at + make_interval(secs => $5::float8 * 3600),
                          o.created_at + make_interval(secs => $6::float8 * 3600)
                   FROM orders o WHERE o.id = $2""",
                shipment_id, order_id, location, status, shipped, delivered,
            )  # fmt: skip
        await conn.execute(
            """
            INSERT INTO returns (id, number, order_id, channel_id, status, resolution,
                                 location_id)
            VALUES ('ret_1', 'R-1', 'ord_5', 'ch_b', 'completed', 'refund', 'loc_2');
            INSERT INTO return_lines (return_id, line_id, quantity, reason)
            VALUES ('ret_1', 'l_5', 1, 'damaged');
            INSERT INTO events (id, type, order_id, channel_id, sequence, data)
            VALUES ('evt_1', 'return.completed', 'ord_5', 'ch_b', 1, '{}');
            """
        )
        await migrate(url, "0017")
        assert await conn.fetchval("SELECT count(*) FROM report_days") == 0
        first, last = old.replace(day=1), today

        async def figures() -> dict[str, list[tuple[Any, ...]]]:
            answers = {}
            for fence, code in ((None, None), ("ch_a", None), (None, "b")):
                args = (first.isoformat(), last.isoformat(), fence, code)
                statements = {
                    **{f"sales by {g.value}": reports.SALES_SQL[g] for g in SalesGrouping},
                    "returns": reports.RETURNS_SQL, "fulfillment": reports.FULFILMENT_SQL,
                }  # fmt: skip
                for name, sql in statements.items():
                    answers[f"{name} {fence} {code}"] = [
                        tuple(r) for r in await conn.fetch(sql, *args)
                    ]
                live = await conn.fetch(
                    LIVE_FULFILMENT_SQL,
                    datetime.combine(first, time(), UTC),
                    datetime.combine(last + timedelta(days=1), time(), UTC), fence, code,
                )  # fmt: skip
                assert answers[f"fulfillment {fence} {code}"] == [tuple(r) for r in live]
            return answers

        live = await figures()
        # Worked out by hand: A has ord_1, ord_3, ord_6 (ord_4 cancelled), B ord_2, ord_5.
        assert live["sales by channel None None"] == [
            ("a", "EUR", 3, 3 + 3 + 1, 2500 + 1500 + 3000),
            ("b", "EUR", 2, 2, 2000),
        ]
        assert live["returns None None"] == [("P", 5, 1, '{"damaged": 1}'), ("Q", 4, 0, None)]
        assert live["fulfillment None None"][0][2:5] == (5, 4, 2)  # placed, shipped, delivered

        while True:  # the summariser builds every day, from the first order's month
            async with conn.transaction():
                if not await report_summaries.summarise(conn):
                    break
        clean = await conn.fetch(
            f"WITH {report_summaries.TOUCHED_DAYS_CTE} SELECT day FROM summarised",
            first.isoformat(), last.isoformat(),
        )  # fmt: skip
        assert len(clean) == (last - first).days + 1  # the event before the upgrade: seen
        assert await conn.fetchval("SELECT count(*) FROM report_months") >= 1
        assert await figures() == live

        await migrate(url, "0016", down=True)
        assert await conn.fetchval("SELECT to_regclass('report_lead_times')") is None
        assert await conn.fetchval("SELECT count(*) FROM orders") == 6
    finally:
        await conn.close()


async def test_0019_keeps_each_events_data_and_0020_drops_what_stopped_endpoints_left(
    empty_database: str,
) -> None:
    """0019 makes `events.data` json: every event's document comes through unchanged (and
    back to jsonb on downgrade). 0020 marks `dropped` the deliveries still pending for an
    endpoint already disabled or deleted, and leaves an enabled endpoint's pending; down
    again, a dropped delivery is `failed` (0019 knows no `dropped`)."""
    url = empty_database
    await migrate(url, "0018")
    document = {"id": "ord_m19", "total": 12.5, "lines": [{"sku": "Ä-1", "quantity": 2}],
                "metadata": {"b": 1, "a": [True, None, "日本"]}}  # fmt: skip
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO events (id, type, data) VALUES ('evt_m19', 'order.created', $1::jsonb)",
            json.dumps(document),
        )
        await migrate(url, "0019")
        stored = await conn.fetchrow(
            "SELECT pg_typeof(data)::text AS type, data::text AS text FROM events "
            "WHERE id = 'evt_m19'"
        )
        assert stored["type"] == "json"
        assert json.loads(stored["text"]) == document
        for endpoint in ("whe_on", "whe_off", "whe_gone"):
            await conn.execute(
                "INSERT INTO webhook_endpoints (id, url, events, secret) "
                "VALUES ($1, 'https://hooks.example.com/x', '{*}', 'whsec_x')",
                endpoint,
            )
        await conn.execute(
            "INSERT INTO events (id, type, data) VALUES ('evt_m20', 'order.created', '{}')"
        )
        await conn.execute("UPDATE webhook_endpoints SET status = 'disabled' WHERE id = 'whe_off'")
        await conn.execute("UPDATE webhook_endpoints SET status = 'deleted' WHERE id = 'whe_gone'")

        async def statuses() -> dict[str, str]:
            rows = await conn.fetch(
                "SELECT endpoint_id, status FROM webhook_deliveries WHERE event_id = 'evt_m20'"
            )
            return {r["endpoint_id"]: r["status"] for r in rows}

        assert await statuses() == {
            "whe_on": "pending",
            "whe_off": "pending",
            "whe_gone": "pending",
        }
        await migrate(url, "0020")
        assert await statuses() == {
            "whe_on": "pending",
            "whe_off": "dropped",
            "whe_gone": "dropped",
        }
        await migrate(url, "0019", down=True)
        assert await statuses() == {"whe_on": "pending", "whe_off": "failed", "whe_gone": "failed"}
        await migrate(url, "0018", down=True)
        back = await conn.fetchrow(
            "SELECT pg_typeof(data)::text AS type, data FROM events WHERE id = 'evt_m19'"
        )
        assert back["type"] == "jsonb"
        assert json.loads(back["data"]) == document
    finally:
        await conn.close()


async def test_0021_recomputes_authorized_so_what_a_sale_left_open_is_open(
    empty_database: str,
) -> None:
    """An order paid 800 of 1000 directly (a sale), then authorized the other 200, was
    recorded before 0021 with `authorized` 200: nothing open. 0021 replays its payments and
    sets `authorized` to 1000, so the 200 is open (it can be voided); an order authorized
    and captured in the usual way is untouched. Downgrade gives back the sum of the
    authorizations."""
    from tests.factories import create_channel, create_location, create_product, order_body
    from tests.factories import stock as add_stock

    url = empty_database
    await migrate(url, "head")
    async with admin_client(url) as admin:
        location = await create_location(admin)
        channel = await create_channel(admin, location_ids=[location["id"]])
        product = await create_product(admin, unit_price=1000)
        await add_stock(admin, product["sku"], location["id"], 5)
        sale = await admin.post("/v1/orders", json=order_body(
            channel["code"], [(product["sku"], 1)],
            payment={"method": "card", "status": "paid", "amount": 800},
        ))  # fmt: skip
        usual = await admin.post(
            "/v1/orders", json=order_body(channel["code"], [(product["sku"], 1)])
        )
        assert sale.status_code == usual.status_code == 201, (sale.text, usual.text)
        for order_id, kind, amount in (
            (sale.json()["id"], "authorization", 200),
            (usual.json()["id"], "authorization", 1000),
            (usual.json()["id"], "capture", 600),
        ):
            paid = await admin.post(
                f"/v1/orders/{order_id}/payments",
                json={"kind": kind, "amount": amount, "reference": kind},
            )
            assert paid.status_code == 200, paid.text
    conn = await asyncpg.connect(url)
    try:

        async def authorized() -> tuple[int, int]:
            rows = await conn.fetch(
                "SELECT id, authorized FROM orders WHERE id = ANY($1::text[])",
                [sale.json()["id"], usual.json()["id"]],
            )
            by_id = {r["id"]: r["authorized"] for r in rows}
            return by_id[sale.json()["id"]], by_id[usual.json()["id"]]

        assert await authorized() == (1000, 1000)
        await migrate(url, "0020", down=True)
        assert await authorized() == (200, 1000)  # as recorded before 0021
        await migrate(url, "head")
        assert await authorized() == (1000, 1000)
        # Run again, it changes nothing.
        spec = importlib.util.spec_from_file_location(
            "revision_0021", ROOT / "migrations/versions/0021_sales_are_authorizations.py"
        )
        assert spec is not None
        assert spec.loader is not None
        revision = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(revision)
        assert await conn.execute(revision.REPLAY) == "UPDATE 0"
    finally:
        await conn.close()
    async with admin_client(url) as admin:
        voided = await admin.post(
            f"/v1/orders/{sale.json()['id']}/payments",
            json={"kind": "void", "amount": 200, "reference": "v"},
        )
        assert voided.status_code == 200, voided.text
        assert voided.json()["payment_amounts"]["voided"] == 200


async def test_0022_keeps_summaries_and_on_downgrade_leaves_unfit_days_to_live_sums(
    empty_database: str,
) -> None:
    """0022 makes the summaries' revenue numeric (a day of orders of up to 10^15 each passed
    bigint, and the summariser failed every pass): the rows written before keep their
    values. Downgrade cannot keep a revenue past bigint: that day's rows go, the day and its
    month are no longer summarised (the reports sum them live), other days stay."""
    url = empty_database
    await migrate(url, "0021")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("""
            INSERT INTO report_days (day) VALUES ('2026-10-01'), ('2026-10-02'), ('2026-11-01');
            INSERT INTO report_months (month) VALUES ('2026-10-01');
            INSERT INTO report_sales (day, channel_id, currency, orders, units, revenue) VALUES
                ('2026-10-01', 'ch_a', 'USD', 2, 3, 9223372036854775807),
                ('2026-10-02', 'ch_a', 'USD', 1, 1, 500),
                ('2026-11-01', 'ch_a', 'USD', 1, 1, 700);
            INSERT INTO report_sku_sales (span, day, channel_id, currency, sku, holders, orders,
                                          units, revenue) VALUES
                ('day', '2026-10-01', 'ch_a', 'USD', 'S', 2, 2, 3, 9223372036854775807),
                ('day', '2026-10-02', 'ch_a', 'USD', 'S', 1, 1, 1, 500),
                ('day', '2026-11-01', 'ch_a', 'USD', 'S', 1, 1, 1, 700),
                ('month', '2026-11-01', 'ch_a', 'USD', 'S', 1, 1, 1, 700);
        """)  # fmt: skip
        await migrate(url, "head")
        sales = "SELECT day::text, revenue FROM report_sales ORDER BY day"
        assert [tuple(r) for r in await conn.fetch(sales)] == [
            ("2026-10-01", 9223372036854775807), ("2026-10-02", 500), ("2026-11-01", 700),
        ]  # fmt: skip
        # A day past bigint, as the summariser may now write one.
        await conn.execute(
            "UPDATE report_sales SET revenue = revenue + 1 WHERE day = '2026-10-01';"
            "UPDATE report_sku_sales SET revenue = 10000000000000000000"
            " WHERE day = '2026-11-01' AND span = 'month'"
        )
        await migrate(url, "0021", down=True)
        assert [tuple(r) for r in await conn.fetch(sales)] == [("2026-10-02", 500)]
        assert [r[0] for r in await conn.fetch("SELECT day::text FROM report_days")] == [
            "2026-10-02"
        ]
        assert await conn.fetchval("SELECT count(*) FROM report_months") == 0
        assert [tuple(r) for r in await conn.fetch(
            "SELECT span, day::text, revenue FROM report_sku_sales ORDER BY span, day"
        )] == [("day", "2026-10-02", 500)]  # fmt: skip
        await migrate(url, "head")
        assert [tuple(r) for r in await conn.fetch(sales)] == [("2026-10-02", 500)]
    finally:
        await conn.close()
