"""The reports' summaries (services/report_summaries.py) never change a report's figures.

For every kind of change to a past order — cancelled, a line's rest cancelled after a parcel
shipped, shipped, delivered, a return received and completed (refunded), a refund — each
summary-backed report (sales by day, channel and SKU; returns) answers exactly what the live
SQL answers, before the summariser has run (the day is dirty: computed live) and after (the
day read from the summaries). "The live SQL" is the same statement with no day summarised.

Fulfilment's median and p90 are checked against a different statement: the plain
percentile_cont over every lead time of the period (`LIVE_FULFILMENT_SQL`, what the report
computed before it had summaries), to the last bit of each double.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from oms_api.db import libpq_url
from oms_api.domain.reports import SalesGrouping
from oms_api.services import report_summaries, reports
from oms_api.services.scoping import fence_sql
from tests.factories import bearer, create_key
from tests.test_fulfilment import _through
from tests.test_reports import _ok, _order, _return, _set_times, _ship
from tests.test_returns import ReturnsDesk

STATEMENTS = {
    **{f"sales by {g.value}": reports.SALES_SQL[g] for g in SalesGrouping},
    "returns": reports.RETURNS_SQL,
}


# The fulfilment report as plain SQL over every order placed in [$1, $2): per order and
# shipping location its first shipment shipped and its last delivered (every shipment not
# cancelled there delivered), the order delivered by its own `delivered_at`; median and p90
# by percentile_cont. The reference the summary-backed FULFILMENT_SQL must equal.
LIVE_FULFILMENT_SQL = f"""
WITH o AS MATERIALIZED (
    SELECT o.id, o.created_at, CASE WHEN o.status = 'delivered' THEN o.delivered_at END
               AS delivered_at
    FROM orders o
    JOIN channels c ON c.id = o.channel_id
    WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled'
      AND {fence_sql("o.channel_id", 3)} AND ($4::text IS NULL OR c.code = $4)
),
facts AS MATERIALIZED (
    SELECT o.id, s.location_id, grouping(s.location_id) AS whole_order,
           extract(epoch FROM min(s.shipped_at) - o.created_at) / 3600 AS to_ship,
           CASE WHEN bool_and(s.delivered_at IS NOT NULL)
                THEN extract(epoch FROM max(s.delivered_at) - o.created_at) / 3600 END
               AS to_deliver
    FROM o JOIN shipments s ON s.order_id = o.id
    WHERE s.status <> 'cancelled'
    GROUP BY GROUPING SETS ((o.id, o.created_at, s.location_id), (o.id, o.created_at))
),
placed AS (
    SELECT count(*) AS orders_placed, count(o.delivered_at) AS orders_delivered,
           percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (
               ORDER BY extract(epoch FROM o.delivered_at - o.created_at) / 3600) AS deliver
    FROM o
),
shipped AS (
    SELECT count(f.to_ship) AS orders_shipped,
           percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY f.to_ship) AS ship
    FROM facts f WHERE f.whole_order = 1
),
located AS (
    SELECT f.location_id, count(*) AS orders_placed, count(f.to_ship) AS orders_shipped,
           count(f.to_deliver) AS orders_delivered,
           percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY f.to_ship) AS ship,
           percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY f.to_deliver) AS deliver
    FROM facts f WHERE f.whole_order = 0
    GROUP BY f.location_id
)
SELECT NULL AS location_id, NULL AS location_code, p.orders_placed, s.orders_shipped,
       p.orders_delivered, s.ship, p.deliver
FROM placed p, shipped s
UNION ALL
SELECT x.location_id, l.code, x.orders_placed, x.orders_shipped, x.orders_delivered, x.ship,
       x.deliver
FROM located x JOIN locations l ON l.id = x.location_id
ORDER BY location_code NULLS FIRST
"""


@pytest.fixture(scope="module")
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(libpq_url(database_url))
    try:
        yield connection
    finally:  # leave every day unsummarised: later modules write days behind the outbox
        await connection.execute("DELETE FROM report_days; DELETE FROM report_months")
        await connection.close()


def _period() -> tuple[str, str]:
    today = datetime.now(UTC).date()
    return (today - timedelta(days=40)).isoformat(), today.isoformat()


async def _summarise(conn: asyncpg.Connection) -> None:
    while True:
        async with conn.transaction():
            if not await report_summaries.summarise(conn):
                return


async def _figures(conn: asyncpg.Connection, channel_id: str | None, code: str | None,
                   *, live: bool = False) -> dict[str, list[Any]]:  # fmt: skip
    """Every summary-backed report's rows as its statement answers now; `live`: with no
    day summarised (in a transaction rolled back), i.e. the live SQL over every day."""
    first, last = _period()
    transaction = conn.transaction()
    await transaction.start()
    try:
        if live:
            await conn.execute("DELETE FROM report_days")
        return {
            name: [tuple(r) for r in await conn.fetch(sql, first, last, channel_id, code)]
            for name, sql in STATEMENTS.items()
        }
    finally:
        await transaction.rollback()


async def _clean_days(conn: asyncpg.Connection) -> set[date]:
    first, last = _period()
    sql = f"WITH {report_summaries.TOUCHED_DAYS_CTE} SELECT day FROM summarised"
    return {r["day"] for r in await conn.fetch(sql, first, last)}


async def test_every_change_to_a_past_order_keeps_every_report_exact(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    a = await ReturnsDesk.open(admin, locations=2)
    code, channel_id = a.shop.channel["code"], a.shop.channel["id"]
    shirt = await a.shop.product(admin, 10, at=0, unit_price=1500)
    mug = await a.shop.product(admin, 10, at=1, unit_price=800)
    key = bearer((await create_key(admin, ["reports:read"], channel_id))["secret"])
    today = datetime.now(UTC).date()

    def line(sku: str, quantity: int) -> dict[str, Any]:
        return {"sku": sku, "quantity": quantity}

    to_cancel = await _order(client, a.shop, [line(shirt["sku"], 1)])
    split = await _order(client, a.shop, [line(shirt["sku"], 1), line(mug["sku"], 2)])
    kept = await _order(client, a.shop, [line(shirt["sku"], 2)])

    async def exact(step: str, *, summarised: bool) -> None:
        if summarised:
            await _summarise(conn)
            assert today in await _clean_days(conn), step
        else:
            assert today not in await _clean_days(conn), f"{step}: the day is not dirty"
        for fence, named in ((None, None), (None, code), (channel_id, None)):
            now = await _figures(conn, fence, named)
            assert now == await _figures(conn, fence, named, live=True), (step, fence, named)
        # Through the app, as a channel key: its own channel's figures only.
        mine = await _ok(await client.get("/v1/reports/sales", headers=key,
                                          params={"group_by": "channel"}))  # fmt: skip
        assert [r["channel"] for r in mine["rows"]] == [code], step

    await exact("placed", summarised=True)
    before = await _figures(conn, channel_id, None, live=False)

    async def change(step: str, action: Any) -> None:
        await action
        await exact(step, summarised=False)
        await exact(step, summarised=True)

    await change("cancelled", client.post(f"/v1/orders/{to_cancel['id']}/cancel", json={},
                                          headers=a.shop.headers))  # fmt: skip
    after_cancel = await _figures(conn, channel_id, None, live=False)
    assert after_cancel["sales by channel"] != before["sales by channel"]  # one order fewer

    async def ship_first_then_cancel_rest() -> None:
        shipments = (await _ok(await admin.post(f"/v1/orders/{split['id']}/allocate"),
                               201))["data"]  # fmt: skip
        first = next(s for s in shipments if s["location_id"] == a.shop.locations[0]["id"])
        for step, parcel in (("pick", None), ("pack", {"carrier": "UPS", "tracking_number": "1"}),
                             ("ship", None)):  # fmt: skip
            await _ok(await admin.post(f"/v1/shipments/{first['id']}/{step}", json=parcel))
        await _ok(await admin.post(f"/v1/orders/{split['id']}/cancel"))

    await change("line cancelled after a parcel shipped", ship_first_then_cancel_rest())
    units = {
        r[0]: r[3] for r in (await _figures(conn, channel_id, None, live=False))["sales by sku"]
    }
    assert mug["sku"] not in units  # its two units cancelled: not sold

    async def ship_and_deliver() -> None:
        parcel = await _ship(client, a, kept, "pick", "pack", "ship")
        await exact("shipped", summarised=False)
        await _ok(await a.post(client, f"/v1/shipments/{parcel}/deliver"))

    await change("shipped and delivered", ship_and_deliver())

    async def returned_and_refunded() -> None:
        r = await _return(client, a, kept, [(0, 1, "damaged")])
        await exact("return requested", summarised=False)
        await _ok(await a.post(client, f"/v1/returns/{r}/approve"))
        await _ok(await a.post(client, f"/v1/returns/{r}/receive", {
            "location_id": a.shop.locations[0]["id"],
            "lines": [{"line_id": kept["lines"][0]["id"], "quantity": 1, "condition": "damaged"}],
        }))  # fmt: skip
        await exact("return received", summarised=False)
        await _ok(await a.post(client, f"/v1/returns/{r}/complete", {}))

    await change("returned, received and completed", returned_and_refunded())
    returned = {r[0]: r[2] for r in (await _figures(conn, channel_id, None, live=False))["returns"]}
    assert returned[shirt["sku"]] == 1
    await change("refunded", client.post(
        f"/v1/orders/{kept['id']}/payments", json={"kind": "refund", "amount": 100},
        headers=a.shop.headers,
    ))  # fmt: skip


async def test_the_summariser_is_idempotent_and_one_at_a_time(
    database_url: str, conn: asyncpg.Connection
) -> None:
    """Two summarisers at once: one holds the cursor, the other does nothing (no error, no
    double counting); summarising everything again from scratch gives the same rows."""
    await _summarise(conn)
    tables = ("report_sales", "report_sku_sales", "report_returns", "report_lead_times")

    async def rows() -> list[list[Any]]:
        return [sorted(tuple(r) for r in await conn.fetch(f"SELECT * FROM {t}")) for t in tables]

    first = await rows()
    await conn.execute("DELETE FROM report_days; DELETE FROM report_months")
    other = await asyncpg.connect(libpq_url(database_url))
    try:
        tx1, tx2 = conn.transaction(), other.transaction()
        await tx1.start()
        await tx2.start()
        done = await asyncio.gather(report_summaries.summarise(conn),
                                    report_summaries.summarise(other))  # fmt: skip
        await tx1.commit()
        await tx2.commit()
    finally:
        await other.close()
    assert sorted(d > 0 for d in done) == [False, True]
    await _summarise(conn)
    assert await rows() == first


async def _lead_times(conn: asyncpg.Connection, first: date, last: date,
                      channel_id: str | None, code: str | None) -> tuple[Any, Any]:  # fmt: skip
    """The fulfilment report's rows from its statement (summaries and live days), and from
    the plain percentile_cont SQL over the same period — in one snapshot."""
    async with conn.transaction(isolation="repeatable_read"):
        summarised = await conn.fetch(
            reports.FULFILMENT_SQL, first.isoformat(), last.isoformat(), channel_id, code
        )
        live = await conn.fetch(
            LIVE_FULFILMENT_SQL,
            datetime.combine(first, datetime.min.time(), UTC),
            datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC),
            channel_id, code,
        )  # fmt: skip
    return [tuple(r) for r in summarised], [tuple(r) for r in live]


async def test_fulfilment_percentiles_equal_percentile_cont_at_every_moment(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, conn: asyncpg.Connection,
    database_url: str,
) -> None:  # fmt: skip
    """Orders placed on past days (one in a month already over, read from its month rows),
    with lead times spread over many hours' buckets — so a median's two ranks fall in two
    buckets — then shipped, delivered and cancelled through the API: the fulfilment report
    equals percentile_cont over every lead time, with the days dirty (live) and summarised,
    unbound, naming the channel and as the channel; a channel key sees its own orders only."""
    a = await ReturnsDesk.open(admin, locations=2)
    code, channel_id = a.shop.channel["code"], a.shop.channel["id"]
    shirt = await a.shop.product(admin, 50, at=0, unit_price=1500)
    mug = await a.shop.product(admin, 50, at=1, unit_price=800)
    cap = await a.shop.product(admin, 5, at=0, unit_price=300)
    key = bearer((await create_key(admin, ["reports:read"], channel_id))["secret"])
    today = datetime.now(UTC).date()
    old_day, recent_day = today - timedelta(days=45), today - timedelta(days=2)
    first = old_day.replace(day=1)

    async def placed_on(day: date, hour: float, lines: list[tuple[str, int]],
                        times: list[tuple[float | None, float | None]]) -> dict[str, Any]:  # fmt: skip
        """An order placed at `hour` on `day`, allocated, its shipments (by location) shipped
        and delivered so many hours later (None: not)."""
        order = await _order(client, a.shop, [{"sku": s, "quantity": q} for s, q in lines])
        shipments = (await _ok(await admin.post(f"/v1/orders/{order['id']}/allocate"),
                               201))["data"]  # fmt: skip
        shipments.sort(key=lambda s: [x["id"] for x in a.shop.locations].index(s["location_id"]))
        for shipment, (ship, deliver) in zip(shipments, times, strict=True):
            if ship is not None:
                await _through(client, a, shipment["id"], "pick", "pack", "ship")
            if deliver is not None:
                await _ok(await admin.post(f"/v1/shipments/{shipment['id']}/deliver"))
        at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)
        await _set_times(database_url, order, at,
                         {s["id"]: t for s, t in zip(shipments, times, strict=True)})  # fmt: skip
        return order | {"shipments": shipments}

    shirt_1, mug_1, both = (
        [(shirt["sku"], 1)],
        [(mug["sku"], 1)],
        [(shirt["sku"], 1), (mug["sku"], 1)],
    )
    await placed_on(old_day, 9.5, shirt_1, [(1.25, 26.0)])
    await placed_on(old_day, 13.0, both, [(1.5, 30.25), (5.5, None)])
    await placed_on(recent_day, 8.0, shirt_1, [(2.0, 27.5)])
    await placed_on(recent_day, 10.25, mug_1, [(2.75, 49.0)])
    await placed_on(recent_day, 11.0, both, [(5.75, 28.0), (30.0, 75.5)])
    await placed_on(recent_day, 15.5, mug_1, [(30.5, None)])
    waiting = await placed_on(recent_day, 16.0, shirt_1, [(None, None)])
    to_cancel = await placed_on(recent_day, 17.0, mug_1, [(None, None)])
    in_transit = await placed_on(old_day, 20.0, mug_1, [(3.0, None)])
    lonely = await placed_on(old_day, 21.0, [(cap["sku"], 1)], [(None, None)])  # its only SKU

    async def exact(step: str, *, summarised: bool) -> None:
        if summarised:
            await _summarise(conn)
        clean = await conn.fetch(
            f"WITH {report_summaries.TOUCHED_DAYS_CTE} SELECT day FROM summarised",
            first.isoformat(), today.isoformat(),
        )  # fmt: skip
        assert ({old_day, recent_day} <= {r["day"] for r in clean}) is summarised, step
        for fence, named in ((None, None), (None, code), (channel_id, None)):
            mine, live = await _lead_times(conn, first, today, fence, named)
            assert mine == live, (step, fence, named)
            # Sales and returns over the same period (a whole month read from month rows,
            # less its dirty days): as with no day summarised.
            args = (first.isoformat(), today.isoformat(), fence, named)
            transaction = conn.transaction(isolation="repeatable_read")
            await transaction.start()
            try:
                now = [[tuple(r) for r in await conn.fetch(q, *args)] for q in STATEMENTS.values()]
                await conn.execute("DELETE FROM report_days")  # rolled back
                plain = [
                    [tuple(r) for r in await conn.fetch(q, *args)] for q in STATEMENTS.values()
                ]
            finally:
                await transaction.rollback()
            assert now == plain, (step, fence, named)
        report = await _ok(await client.get("/v1/reports/fulfillment", headers=key, params={
            "from": first.isoformat(), "to": today.isoformat()}))  # fmt: skip
        _, live = await _lead_times(conn, first, today, channel_id, None)
        assert report["orders_placed"] == live[0][2], step  # its own orders only

    await exact("placed on past days", summarised=False)
    await exact("placed on past days", summarised=True)
    month_rows = await conn.fetchval(
        "SELECT count(*) FROM report_lead_times WHERE span = 'month' AND day = $1", first
    )
    assert month_rows > 0  # the old day's month is read from its month rows
    mine, _ = await _lead_times(conn, first, today, channel_id, None)
    assert mine[0][2:5] == (10, 7, 4)  # placed, shipped, delivered (whole orders)

    async def change(step: str, action: Any) -> None:
        await action
        await exact(step, summarised=False)
        await exact(step, summarised=True)

    await change("a past order shipped", _through(
        client, a, waiting["shipments"][0]["id"], "pick", "pack", "ship"))  # fmt: skip
    await change("a past order delivered", admin.post(
        f"/v1/shipments/{in_transit['shipments'][0]['id']}/deliver"))  # fmt: skip
    await change("a past order cancelled", client.post(
        f"/v1/orders/{to_cancel['id']}/cancel", json={}, headers=a.shop.headers))  # fmt: skip
    sold = {r[0] for r in await conn.fetch(reports.RETURNS_SQL, first.isoformat(),
                                           today.isoformat(), channel_id, None)}  # fmt: skip
    assert cap["sku"] in sold
    await change("the only order of a SKU in a whole month cancelled", client.post(
        f"/v1/orders/{lonely['id']}/cancel", json={}, headers=a.shop.headers))  # fmt: skip
    sold = {r[0] for r in await conn.fetch(reports.RETURNS_SQL, first.isoformat(),
                                           today.isoformat(), channel_id, None)}  # fmt: skip
    assert cap["sku"] not in sold
    mine, _ = await _lead_times(conn, first, today, channel_id, None)
    assert mine[0][2:5] == (8, 8, 5)
