"""Reports (SPEC §4 "Reports"), on a data set whose every figure is worked out by hand.

Channel A sells from two locations, L1 and L2; channel B from its own, L3. Products (EUR):
SHIRT 15.00 (10 at L1, reorder point 10), MUG 8.00 (10 at L1), CAP 10.00 (5 at L2, reorder
point 2); BOOK 20.00 USD (10 at L3). D1 and D2 are the days 5 and 4 days before today (UTC);
the orders' placement times and their shipments' ship and delivery times are set in the
database afterwards (the API cannot backdate them), as "placed at hh:mm, shipped +Xh".

A1  D1 10:00  EUR  SHIRT x2 + MUG x1 + 5.00 shipping = 43.00; from L1: shipped +4h,
                   delivered +28h
A2  D2 09:00  GBP  SHIRT x1 at 13.00 = 13.00; from L1: shipped +10h, not delivered
A3  D2 11:00  EUR  CAP x3 = 30.00; from L2: shipped +20h, delivered +52h
A4  D1 12:00  EUR  MUG x2 = 16.00, cancelled: in no report
A5  D2 15:00  EUR  MUG x1 + MUG x1 (two lines) + 2.00 shipping = 18.00; not shipped
B1  D1 08:00  USD  BOOK x1 = 20.00; from L3: shipped +6h, delivered +30h

Returns on A's orders: R1 on A1, SHIRT x1 `size_or_fit` and MUG x1 `damaged`, received (the
shirt back on the shelf at L1, the mug damaged) and refunded; R2 on A1, SHIRT x1
`wrong_item`, requested (open: it counts); R3 on A3, CAP x1 `other`, cancelled, and R4 on
A3, CAP x2 `not_as_described`, rejected (neither counts).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from oms_api.db import libpq_url
from oms_api.domain.reports import return_rate
from tests.factories import (
    Shop,
    bearer,
    create_key,
    create_location,
    create_product,
    place,
    stock,
    unique,
)
from tests.test_fulfilment import SHIP_TO, _through
from tests.test_returns import ReturnsDesk

PAID = {"method": "card", "status": "paid"}
REASONS = ["damaged", "wrong_item", "not_as_described", "no_longer_needed", "size_or_fit",
           "other"]  # fmt: skip


def _no_reasons(**units: int) -> dict[str, int]:
    return dict.fromkeys(REASONS, 0) | units


class World:
    """The data set above, built through the API, its times then set in the database."""

    a: ReturnsDesk
    a_reports: dict[str, str]
    b_reports: dict[str, str]
    b_code: str
    d1: date
    d2: date
    sku: dict[str, str]
    l1: dict[str, Any]
    l2: dict[str, Any]


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _order(client: httpx.AsyncClient, shop: Shop, lines: list[dict[str, Any]],
                 **fields: Any) -> dict[str, Any]:  # fmt: skip
    body = {"customer": {"email": f"{unique('buyer')}@example.com"}, "lines": lines,
            "shipping_address": SHIP_TO, "payment": PAID, **fields}  # fmt: skip
    return dict(await _ok(await place(client, body, headers=shop.headers), 201))


async def _ship(client: httpx.AsyncClient, desk: ReturnsDesk, order: dict[str, Any],
                *steps: str) -> str:  # fmt: skip
    """Allocate the order (one shipment: its units are reserved at one location) and take
    that shipment through `steps`; its id."""
    [shipment] = (await _ok(await desk.post(client, f"/v1/orders/{order['id']}/allocate"),
                            201))["data"]  # fmt: skip
    await _through(client, desk, shipment["id"], *steps)
    return str(shipment["id"])


async def _return(client: httpx.AsyncClient, desk: ReturnsDesk, order: dict[str, Any],
                  lines: list[tuple[int, int, str]]) -> str:  # fmt: skip
    body = {"order_id": order["id"], "resolution": "refund",
            "lines": [{"line_id": order["lines"][i]["id"], "quantity": q, "reason": reason}
                      for i, q, reason in lines]}  # fmt: skip
    return str((await _ok(await desk.open_return(client, body), 201))["id"])


async def _set_times(
    database_url: str, order: dict[str, Any], placed: datetime,
    shipments: dict[str, tuple[float | None, float | None]],
) -> None:  # fmt: skip
    """The order placed at `placed`; each shipment shipped and delivered so many hours
    after it (None: not); the order delivered when its last shipment was. Written behind
    the outbox's back (no event), so the reports' summaries of the day it was placed and the
    day it now was are dropped, the summariser held off meanwhile (its cursor locked)."""
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute("BEGIN; SELECT 1 FROM report_cursor FOR UPDATE")
        await conn.execute(
            "DELETE FROM report_days WHERE day IN ((SELECT (created_at AT TIME ZONE 'UTC')::date "
            "FROM orders WHERE id = $1), ($2::timestamptz AT TIME ZONE 'UTC')::date)",
            order["id"], placed,
        )  # fmt: skip
        await conn.execute("UPDATE orders SET created_at = $2 WHERE id = $1", order["id"], placed)
        for shipment_id, (ship, deliver) in shipments.items():
            shipped = placed + timedelta(hours=ship) if ship is not None else None
            delivered = placed + timedelta(hours=deliver) if deliver is not None else None
            await conn.execute(
                "UPDATE shipments SET shipped_at = $2, delivered_at = $3 WHERE id = $1",
                shipment_id, shipped, delivered,
            )  # fmt: skip
            await conn.execute(
                "UPDATE orders SET shipped_at = CASE WHEN shipped_at IS NOT NULL THEN $2::timestamptz END, "
                "delivered_at = CASE WHEN delivered_at IS NOT NULL THEN $3::timestamptz END WHERE id = $1",
                order["id"], shipped, delivered,
            )  # fmt: skip
        await conn.execute("COMMIT")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def world(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, database_url: str
) -> World:
    w = World()
    w.a = a = await ReturnsDesk.open(admin, locations=2)
    w.l1, w.l2 = a.shop.locations
    b = await ReturnsDesk.open(admin)
    w.b_code = b.shop.channel["code"]
    w.a_reports = bearer(
        (await create_key(admin, ["reports:read"], a.shop.channel["id"]))["secret"]
    )
    w.b_reports = bearer(
        (await create_key(admin, ["reports:read"], b.shop.channel["id"]))["secret"]
    )
    shirt = await a.shop.product(admin, 10, unit_price=1500, reorder_point=10)
    mug = await a.shop.product(admin, 10, unit_price=800)
    cap = await a.shop.product(admin, 0, unit_price=1000, reorder_point=2)
    await stock(admin, cap["sku"], w.l2["id"], 5)
    book = await b.shop.product(admin, 10, unit_price=2000, currency="USD")
    w.sku = {"shirt": shirt["sku"], "mug": mug["sku"], "cap": cap["sku"], "book": book["sku"]}
    today = datetime.now(UTC).date()
    w.d1, w.d2 = today - timedelta(days=5), today - timedelta(days=4)

    def at(day: date, hour: int) -> datetime:
        return datetime.combine(day, time(hour), UTC)

    def line(sku: str, quantity: int, **price: int) -> dict[str, Any]:
        return {"sku": sku, "quantity": quantity, **price}

    a1 = await _order(client, a.shop, [line(shirt["sku"], 2), line(mug["sku"], 1)],
                      shipping_price=500)  # fmt: skip
    a2 = await _order(client, a.shop, [line(shirt["sku"], 1, unit_price=1300)], currency="GBP")
    a3 = await _order(client, a.shop, [line(cap["sku"], 3)])
    a4 = await _order(client, a.shop, [line(mug["sku"], 2)])
    a5 = await _order(client, a.shop, [line(mug["sku"], 1), line(mug["sku"], 1)],
                      shipping_price=200)  # fmt: skip
    b1 = await _order(client, b.shop, [line(book["sku"], 1)])
    assert [o["totals"]["total"] for o in (a1, a2, a3, a4, a5, b1)] == [
        4300,
        1300,
        3000,
        1600,
        1800,
        2000,
    ]
    s1 = await _ship(client, a, a1, "pick", "pack", "ship", "deliver")
    s2 = await _ship(client, a, a2, "pick", "pack", "ship")
    s3 = await _ship(client, a, a3, "pick", "pack", "ship", "deliver")
    sb = await _ship(client, b, b1, "pick", "pack", "ship", "deliver")
    await _ok(await client.post(f"/v1/orders/{a4['id']}/cancel", json={}, headers=a.shop.headers))

    r1 = await _return(client, a, a1, [(0, 1, "size_or_fit"), (1, 1, "damaged")])
    await _ok(await a.post(client, f"/v1/returns/{r1}/approve"))
    await _ok(await a.post(client, f"/v1/returns/{r1}/receive", {
        "location_id": w.l1["id"],
        "lines": [{"line_id": a1["lines"][0]["id"], "quantity": 1, "condition": "resellable"},
                  {"line_id": a1["lines"][1]["id"], "quantity": 1, "condition": "damaged"}],
    }))  # fmt: skip
    await _ok(await a.post(client, f"/v1/returns/{r1}/complete", {}))
    await _return(client, a, a1, [(0, 1, "wrong_item")])
    r3 = await _return(client, a, a3, [(0, 1, "other")])
    await _ok(await a.post(client, f"/v1/returns/{r3}/cancel", {"reason": "kept it"}))
    r4 = await _return(client, a, a3, [(0, 2, "not_as_described")])
    await _ok(await a.post(client, f"/v1/returns/{r4}/reject", {"reason": "worn"}))

    await _set_times(database_url, a1, at(w.d1, 10), {s1: (4, 28)})
    await _set_times(database_url, a2, at(w.d2, 9), {s2: (10, None)})
    await _set_times(database_url, a3, at(w.d2, 11), {s3: (20, 52)})
    await _set_times(database_url, a4, at(w.d1, 12), {})
    await _set_times(database_url, a5, at(w.d2, 15), {})
    await _set_times(database_url, b1, at(w.d1, 8), {sb: (6, 30)})
    return w


async def _report(client: httpx.AsyncClient, path: str, headers: dict[str, str],
                  **params: Any) -> dict[str, Any]:  # fmt: skip
    return dict(await _ok(await client.get(f"/v1/reports/{path}", params=params,
                                           headers=headers)))  # fmt: skip


def _mine(rows: list[dict[str, Any]], skus: set[str]) -> list[dict[str, Any]]:
    return [r for r in rows if r["sku"] in skus]


async def test_sales_by_day_channel_and_sku(client: httpx.AsyncClient, world: World) -> None:
    w = world
    by_day = await _report(client, "sales", w.a_reports, group_by="day")
    # The default period: today and the 30 days before it, holding D1 and D2.
    today = datetime.now(UTC).date()
    assert (by_day["from"], by_day["to"]) == ((today - timedelta(days=30)).isoformat(),
                                              today.isoformat())  # fmt: skip
    assert by_day["generated_at"].endswith("Z")
    # D1: A1 only (A4 cancelled): 1 order, 2 + 1 units, 43.00.
    # D2 EUR: A3 (3 units, 30.00) and A5 (2 units, 18.00): 2 orders, 5 units, 48.00.
    # D2 GBP: A2: 1 order, 1 unit, 13.00.
    assert by_day["rows"] == [
        {"day": w.d1.isoformat(), "currency": "EUR", "orders": 1, "units": 3, "revenue": 4300},
        {"day": w.d2.isoformat(), "currency": "EUR", "orders": 2, "units": 5, "revenue": 4800},
        {"day": w.d2.isoformat(), "currency": "GBP", "orders": 1, "units": 1, "revenue": 1300},
    ]

    # By channel, A's key: EUR A1 + A3 + A5 = 3 orders, 3 + 3 + 2 units, 43 + 30 + 18 = 91.00.
    code = w.a.shop.channel["code"]
    by_channel = await _report(client, "sales", w.a_reports, group_by="channel")
    assert by_channel["rows"] == [
        {"channel": code, "currency": "EUR", "orders": 3, "units": 8, "revenue": 9100},
        {"channel": code, "currency": "GBP", "orders": 1, "units": 1, "revenue": 1300},
    ]

    # By SKU (revenue: the lines, no shipping): CAP 3 x 10.00; MUG A1's 1 + A5's 1 + 1 (A5
    # counted once) = 3 units, 24.00; SHIRT in EUR 2 x 15.00, in GBP 1 x 13.00.
    by_sku = await _report(client, "sales", w.a_reports, group_by="sku",
                           **{"from": w.d1.isoformat(), "to": w.d2.isoformat()})  # fmt: skip
    assert (by_sku["from"], by_sku["to"], by_sku["group_by"]) == (
        w.d1.isoformat(),
        w.d2.isoformat(),
        "sku",
    )
    expected = sorted([
        {"sku": w.sku["cap"], "currency": "EUR", "orders": 1, "units": 3, "revenue": 3000},
        {"sku": w.sku["mug"], "currency": "EUR", "orders": 2, "units": 3, "revenue": 2400},
        {"sku": w.sku["shirt"], "currency": "EUR", "orders": 1, "units": 2, "revenue": 3000},
        {"sku": w.sku["shirt"], "currency": "GBP", "orders": 1, "units": 1, "revenue": 1300},
    ], key=lambda r: (r["sku"], r["currency"]))  # fmt: skip
    assert by_sku["rows"] == expected

    # One day: D2 alone.
    d2 = await _report(client, "sales", w.a_reports,
                       **{"from": w.d2.isoformat(), "to": w.d2.isoformat()})  # fmt: skip
    assert [(r["day"], r["currency"]) for r in d2["rows"]] == [
        (w.d2.isoformat(), "EUR"),
        (w.d2.isoformat(), "GBP"),
    ]


async def test_a_channel_key_gets_its_own_channels_figures_only(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    w = world
    b_rows = [{"channel": w.b_code, "currency": "USD", "orders": 1, "units": 1, "revenue": 2000}]
    assert (await _report(client, "sales", w.b_reports, group_by="channel"))["rows"] == b_rows
    # The admin names a channel; B naming A's channel, or a code no channel has, gets no
    # rows — as the orders list answers such a filter.
    assert (await _report(client, "sales", admin.headers, group_by="channel",
                          channel=w.b_code))["rows"] == b_rows  # fmt: skip
    a_code = w.a.shop.channel["code"]
    for headers, channel in ((w.b_reports, a_code), (admin.headers, unique("nobody"))):
        for path in ("sales", "fulfillment", "returns"):
            report = await _report(client, path, headers, channel=channel)
            assert report["rows"] == [], (path, channel)
    nothing = await _report(client, "fulfillment", w.b_reports, channel=a_code)
    assert (nothing["orders_placed"], nothing["hours_to_ship_median"]) == (0, None)
    # B's stock is at L3: A's products have none there.
    inventory = await _report(client, "inventory", w.b_reports)
    shirt = next(r for r in inventory["rows"] if r["sku"] == w.sku["shirt"])
    assert (shirt["on_hand"], shirt["stock_value"]) == (0, 0)
    book = next(r for r in inventory["rows"] if r["sku"] == w.sku["book"])
    assert (book["on_hand"], book["currency"]) == (9, "USD")


async def test_fulfilment_lead_times(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    w = world
    report = await _report(client, "fulfillment", w.a_reports,
                           **{"from": w.d1.isoformat(), "to": w.d2.isoformat()})  # fmt: skip
    # Placed: A1, A2, A3, A5 (A4 cancelled). Shipped after 4, 10 and 20 h: median 10,
    # p90 = 10 + 0.8 x (20 - 10) = 18 (percentile_cont interpolates at 0.9 x (3 - 1) = 1.8).
    # Delivered (every shipment) after 28 and 52 h: median 40, p90 = 28 + 0.9 x 24 = 49.6.
    totals = {k: report[k] for k in report if k not in ("from", "to", "generated_at", "rows")}
    assert totals == {
        "orders_placed": 4, "orders_shipped": 3, "orders_delivered": 2,
        "hours_to_ship_median": 10.0, "hours_to_ship_p90": 18.0,
        "hours_to_deliver_median": 40.0, "hours_to_deliver_p90": 49.6,
    }  # fmt: skip
    # L1 ships A1 (4 h, delivered at 28 h) and A2 (10 h): median 7, p90 4 + 0.9 x 6 = 9.4.
    # L2 ships A3 (20 h, delivered at 52 h).
    assert report["rows"] == sorted([
        {"location_id": w.l1["id"], "location_code": w.l1["code"], "orders_placed": 2,
         "orders_shipped": 2, "orders_delivered": 1, "hours_to_ship_median": 7.0,
         "hours_to_ship_p90": 9.4, "hours_to_deliver_median": 28.0, "hours_to_deliver_p90": 28.0},
        {"location_id": w.l2["id"], "location_code": w.l2["code"], "orders_placed": 1,
         "orders_shipped": 1, "orders_delivered": 1, "hours_to_ship_median": 20.0,
         "hours_to_ship_p90": 20.0, "hours_to_deliver_median": 52.0,
         "hours_to_deliver_p90": 52.0},
    ], key=lambda r: r["location_code"])  # fmt: skip
    # B1 alone: shipped after 6 h, delivered after 30 h.
    b = await _report(client, "fulfillment", admin.headers, channel=w.b_code)
    assert (b["orders_placed"], b["hours_to_ship_median"], b["hours_to_deliver_p90"]) == (
        1,
        6.0,
        30.0,
    )
    # D2 alone: A2, A3, A5; shipped after 10 and 20 h, A3 delivered.
    d2 = await _report(client, "fulfillment", w.a_reports,
                       **{"from": w.d2.isoformat(), "to": w.d2.isoformat()})  # fmt: skip
    assert (d2["orders_placed"], d2["orders_shipped"], d2["orders_delivered"],
            d2["hours_to_ship_median"]) == (3, 2, 1, 15.0)  # fmt: skip


async def test_returns_per_sku_and_reason(client: httpx.AsyncClient, world: World) -> None:
    w = world
    report = await _report(client, "returns", w.a_reports)
    # SHIRT: sold 2 (A1) + 1 (A2); returned R1's 1 (size_or_fit) and R2's 1 (wrong_item).
    # MUG: sold 1 (A1) + 2 (A5; A4 cancelled); returned R1's 1 (damaged).
    # CAP: sold 3 (A3); R3 cancelled and R4 rejected count nothing.
    assert report["rows"] == sorted([
        {"sku": w.sku["shirt"], "units_sold": 3, "units_returned": 2, "return_rate": 0.6667,
         "reasons": _no_reasons(size_or_fit=1, wrong_item=1)},
        {"sku": w.sku["mug"], "units_sold": 3, "units_returned": 1, "return_rate": 0.3333,
         "reasons": _no_reasons(damaged=1)},
        {"sku": w.sku["cap"], "units_sold": 3, "units_returned": 0, "return_rate": 0.0,
         "reasons": _no_reasons()},
    ], key=lambda r: r["sku"])  # fmt: skip


async def test_inventory_low_stock_first_with_its_value(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    w = world
    report = await _report(client, "inventory", w.a_reports)
    assert (report["from"], report["to"]) == (None, None)
    rows = {r["sku"]: r for r in report["rows"]}
    # SHIRT: 10 - 2 (A1) - 1 (A2) + 1 back from R1 = 8 on hand, 8 <= reorder point 10: low;
    # worth 8 x 15.00. MUG: 10 - 1 (A1; R1's came back damaged) = 9, A5's 2 reserved, 7
    # available, not low; worth 9 x 8.00. CAP: 5 - 3 (A3) = 2 <= 2: low; worth 2 x 10.00.
    assert rows[w.sku["shirt"]] == {
        "sku": w.sku["shirt"], "on_hand": 8, "reserved": 0, "available": 8, "reorder_point": 10,
        "low_stock": True, "stock_value": 12000, "currency": "EUR",
    }  # fmt: skip
    assert rows[w.sku["mug"]] == {
        "sku": w.sku["mug"], "on_hand": 9, "reserved": 2, "available": 7, "reorder_point": 0,
        "low_stock": False, "stock_value": 7200, "currency": "EUR",
    }  # fmt: skip
    assert (rows[w.sku["cap"]]["available"], rows[w.sku["cap"]]["low_stock"],
            rows[w.sku["cap"]]["stock_value"]) == (2, True, 2000)  # fmt: skip
    flags = [r["low_stock"] for r in report["rows"]]
    assert flags == sorted(flags, reverse=True), "low-stock products first"
    low = [r["sku"] for r in report["rows"] if r["low_stock"]]
    assert low == sorted(low)


async def test_csv_has_one_header_row_and_one_line_per_row(
    client: httpx.AsyncClient, world: World
) -> None:
    w = world
    csv_accept = w.a_reports | {"Accept": "text/csv"}

    async def table(path: str, **params: Any) -> tuple[list[str], list[dict[str, str]]]:
        response = await client.get(f"/v1/reports/{path}", params=params, headers=csv_accept)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        reader = csv.DictReader(io.StringIO(response.text))
        return list(reader.fieldnames or []), list(reader)

    # The client's order of preference decides (RFC 9110): JSON ranked first stays JSON;
    # media types in any case.
    for accept, kind in (("text/csv;q=0.1, application/json", "application/json"),
                         ("text/CSV", "text/csv"), ("*/*", "application/json")):  # fmt: skip
        answer = await client.get(
            "/v1/reports/sales",
            params={"group_by": "day"},
            headers=w.a_reports | {"Accept": accept},
        )
        assert answer.headers["content-type"].startswith(kind), accept
    # Every report, asked for neither JSON nor CSV: 406, never JSON it did not ask for.
    for path in ("sales", "returns", "fulfillment", "inventory"):
        for accept in ("application/pdf", "image/png, text/html;q=0.5", "text/csv;q=0"):
            refused = await client.get(
                f"/v1/reports/{path}", headers=w.a_reports | {"Accept": accept}
            )
            assert refused.status_code == 406, (path, accept, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert (refused.json()["code"], refused.json()["available"]) == (
                "not_acceptable", ["application/json", "text/csv"],
            )  # fmt: skip
    for accept, kind in (("application/*", "application/json"), ("text/*", "text/csv")):
        answer = await client.get("/v1/reports/sales", headers=w.a_reports | {"Accept": accept})
        assert answer.headers["content-type"].startswith(kind), accept

    header, rows = await table("sales", group_by="day")
    assert header == ["day", "currency", "orders", "units", "revenue"]
    assert rows[0] == {"day": w.d1.isoformat(), "currency": "EUR", "orders": "1", "units": "3",
                       "revenue": "4300"}  # fmt: skip
    assert len(rows) == 3

    header, rows = await table("returns")
    assert header == ["sku", "units_sold", "units_returned", "return_rate"] + [
        f"reason_{r}" for r in REASONS
    ]
    shirt = next(r for r in rows if r["sku"] == w.sku["shirt"])
    assert (shirt["return_rate"], shirt["reason_size_or_fit"], shirt["reason_wrong_item"],
            shirt["reason_damaged"]) == ("0.6667", "1", "1", "0")  # fmt: skip

    header, rows = await table("fulfillment")
    assert header[:3] == ["location_id", "location_code", "orders_placed"]
    assert {r["location_code"]: r["hours_to_ship_p90"] for r in rows} == {
        w.l1["code"]: "9.4",
        w.l2["code"]: "20.0",
    }

    header, rows = await table("inventory")
    assert header == ["sku", "on_hand", "reserved", "available", "reorder_point", "low_stock",
                      "stock_value", "currency"]  # fmt: skip
    assert next(r for r in rows if r["sku"] == w.sku["shirt"])["low_stock"] == "true"


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("sales", {"group_by": "week"}, "validation_error"),
        ("sales", {"from": "2026-13-01"}, "validation_error"),
        ("sales", {"to": "yesterday"}, "validation_error"),
        ("sales", {"to": "0"}, "validation_error"),  # not seconds since 1970
        ("returns", {"from": "2026-11-01T00:00:00Z"}, "validation_error"),  # a date, no time
        ("sales", {"from": "2026-11-02", "to": "2026-11-01"}, "invalid_period"),
        ("fulfillment", {"from": "2025-01-01", "to": "2026-01-02"}, "period_too_long"),
        ("returns", {"channel": "Not A Code!"}, "validation_error"),
        ("sales", {"to": "0001-01-01"}, None),  # the calendar's first days: a short period
        ("sales", {"from": "9999-12-31", "to": "9999-12-31"}, None),  # and its last
        ("returns", {"from": "2025-01-01", "to": "2025-12-31"}, None),  # a year
        ("fulfillment", {"from": "2024-01-01", "to": "2024-12-31"}, None),  # a leap year
    ],
)
async def test_bad_periods_and_groupings_are_422(
    admin: httpx.AsyncClient, path: str, params: dict[str, str], code: str | None
) -> None:
    response = await admin.get(f"/v1/reports/{path}", params=params)
    if code is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def test_reports_need_the_reports_scope(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    key = await create_key(admin, ["orders:read", "inventory:read"])
    for path in ("sales", "fulfillment", "returns", "inventory"):
        response = await client.get(f"/v1/reports/{path}", headers=bearer(key["secret"]))
        assert (response.status_code, response.json()["code"]) == (403, "missing_scope"), path
        assert (await client.get(f"/v1/reports/{path}")).status_code == 401


async def test_units_cancelled_after_others_shipped_are_not_sold(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """An order whose first parcel shipped and whose rest was cancelled: `shipped`, so it
    counts — with what it sold, not what was cancelled. Its own channel, so the figures
    are this order's alone."""
    shop = await Shop.open(admin, locations=2)
    kept = await shop.product(admin, 1, at=0, unit_price=1000)
    dropped = await shop.product(admin, 2, at=1, unit_price=500)
    body = {
        "customer": {"email": f"{unique('part')}@example.com"},
        "payment": PAID,
        "shipping_address": SHIP_TO,
        "lines": [{"sku": kept["sku"], "quantity": 1}, {"sku": dropped["sku"], "quantity": 2}],
    }
    order = await _ok(await place(client, body, headers=shop.headers), 201)
    shipments = (await _ok(await admin.post(f"/v1/orders/{order['id']}/allocate"), 201))["data"]
    first = next(s for s in shipments if s["location_id"] == shop.locations[0]["id"])
    for step, parcel in (("pick", None), ("pack", {"carrier": "UPS", "tracking_number": "1Z1"}),
                         ("ship", None)):  # fmt: skip
        await _ok(await admin.post(f"/v1/shipments/{first['id']}/{step}", json=parcel))
    cancelled = await _ok(await admin.post(f"/v1/orders/{order['id']}/cancel"))
    assert cancelled["status"] == "shipped"
    admin_headers = dict(admin.headers)
    code = shop.channel["code"]
    by_channel = await _report(client, "sales", admin_headers, group_by="channel", channel=code)
    # 1 order, 1 unit sold (2 cancelled), revenue the order's total as charged (20.00).
    assert by_channel["rows"] == [
        {"channel": code, "currency": "EUR", "orders": 1, "units": 1, "revenue": 2000}
    ]
    by_sku = await _report(client, "sales", admin_headers, group_by="sku", channel=code)
    assert [(r["sku"], r["orders"], r["units"], r["revenue"]) for r in by_sku["rows"]] == [
        (kept["sku"], 1, 1, 1000)
    ]
    returns = await _report(client, "returns", admin_headers, channel=code)
    sold = {r["sku"]: r["units_sold"] for r in returns["rows"]}
    assert sold.get(kept["sku"]) == 1
    assert sold.get(dropped["sku"], 0) == 0


async def test_stock_value_past_bigint_is_exact_not_500(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """The most a product may cost (10^11 minor units) times a billion units on hand is
    10^20, past PostgreSQL's bigint and a 64-bit integer: the inventory report once answered
    500 for every product (found by an outside-in accountant with two requests). It gives
    the exact value, in JSON and CSV."""
    location = await create_location(admin)
    dear = await create_product(admin, unit_price=100_000_000_000, currency="USD")
    await stock(admin, dear["sku"], location["id"], 1_000_000_000)
    headers = {"Authorization": admin.headers["Authorization"]}
    rows = {r["sku"]: r for r in (await _report(client, "inventory", headers))["rows"]}
    assert rows[dear["sku"]]["stock_value"] == 10**20
    assert (rows[dear["sku"]]["on_hand"], rows[dear["sku"]]["currency"]) == (10**9, "USD")
    response = await client.get("/v1/reports/inventory", headers=headers | {"Accept": "text/csv"})
    assert response.status_code == 200, response.text
    line = next(r for r in csv.DictReader(io.StringIO(response.text)) if r["sku"] == dear["sku"])
    assert line["stock_value"] == str(10**20)


@pytest.mark.parametrize(
    ("returned", "sold", "rate"),
    [(1, 32, 0.0313), (3, 32, 0.0938), (1, 3, 0.3333), (2, 3, 0.6667), (0, 5, 0.0),
     (5, 5, 1.0), (1, 0, 0.0), (1, 80000, 0.0)],
)  # fmt: skip
def test_a_return_rate_is_rounded_as_a_person_rounds(returned: int, sold: int, rate: float) -> None:
    """Found by an accountant: 1 of 32 returned read 0.0312 (`round` rounds a half to even)."""
    assert return_rate(returned, sold) == rate
