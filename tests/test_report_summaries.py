"""The reports' summaries (services/report_summaries.py) never change a report's figures.

For every kind of change to a past order — cancelled, a line's rest cancelled after a parcel
shipped, shipped, delivered, a return received and completed (refunded), a refund — each
summary-backed report (sales by day, channel and SKU; returns) answers exactly what the live
SQL answers, before the summariser has run (the day is dirty: computed live) and after (the
day read from the summaries). "The live SQL" is the same statement with no day summarised.
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
from tests.factories import bearer, create_key
from tests.test_reports import _ok, _order, _return, _ship
from tests.test_returns import ReturnsDesk

STATEMENTS = {
    **{f"sales by {g.value}": reports.SALES_SQL[g] for g in SalesGrouping},
    "returns": reports.RETURNS_SQL,
}


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
    tables = ("report_sales", "report_sku_sales", "report_returns")

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
