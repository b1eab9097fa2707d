"""Returns through the API: opened for shipped units, approved, received (restocked or
damaged), completed with a refund bounded by what was captured, or with an exchange
order placed like any order; stock consistent after every step."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from tests.checks import assert_stock_consistent
from tests.factories import bearer, create_key, inventory, stock
from tests.paper_reading import barcodes
from tests.test_fulfilment import FROM_ADDRESS, Warehouse, _through, pdf_text


class ReturnsDesk(Warehouse):
    """A warehouse whose channel key may also handle returns."""

    @classmethod
    async def open(
        cls, admin: httpx.AsyncClient, locations: int = 1, app: FastAPI | None = None
    ) -> ReturnsDesk:
        wh = await Warehouse.open(admin, locations)
        key = await create_key(
            admin, ["orders:read", "fulfillment:write", "returns:write"], wh.shop.channel["id"]
        )
        return cls(wh.shop, bearer(key["secret"]), app)

    async def shipped(
        self, client: httpx.AsyncClient, lines: list[tuple[str, int]], **fields: Any
    ) -> dict[str, Any]:
        order = await self.order(client, lines, **fields)
        for shipment in (await self.post(client, f"/v1/orders/{order['id']}/allocate")).json()[
            "data"
        ]:
            await _through(client, self, shipment["id"], "pick", "pack", "ship")
        return dict(
            (await client.get(f"/v1/orders/{order['id']}", headers=self.shop.headers)).json()
        )

    async def open_return(self, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        return await client.post(
            "/v1/returns", json=body, headers=self.shop.headers
        )  # orders:write


def _lines(
    order: dict[str, Any], *quantities: int, reason: str = "size_or_fit"
) -> list[dict[str, Any]]:
    return [
        {"line_id": line["id"], "quantity": q, "reason": reason}
        for line, q in zip(order["lines"], quantities, strict=False) if q
    ]  # fmt: skip


async def _order(client: httpx.AsyncClient, desk: ReturnsDesk, order_id: str) -> dict[str, Any]:
    return dict((await client.get(f"/v1/orders/{order_id}", headers=desk.shop.headers)).json())


async def test_the_whole_refund_flow(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    desk = await ReturnsDesk.open(admin, app=app)
    shirt = await desk.shop.product(admin, 10, unit_price=1500, name="T-shirt")
    mug = await desk.shop.product(admin, 10, unit_price=800, name="Mug")
    order = await desk.shipped(client, [(shirt["sku"], 2), (mug["sku"], 1)], shipping_price=490)
    assert order["payment_amounts"]["captured"] == 3800 + 490
    location = desk.shop.locations[0]["id"]

    opened = await desk.open_return(client, {"order_id": order["id"], "resolution": "refund",
                                             "lines": _lines(order, 1, 1)})  # fmt: skip
    assert opened.status_code == 201, opened.text
    rma = opened.json()
    assert rma["status"] == "requested"
    assert rma["number"].startswith("RMA-")
    assert rma["location_id"] == location  # where it shipped from
    assert (await _order(client, desk, order["id"]))["return_status"] == "requested"

    approved = await desk.post(client, f"/v1/returns/{rma['id']}/approve")
    assert approved.json()["status"] == "approved"
    slip = await desk.get(client, f"/v1/returns/{rma['id']}/slip")
    text, sizes = pdf_text(slip.content)
    assert sizes == [(595, 842)]
    assert barcodes(slip.content, 203) == [rma["number"]]
    for expected in (rma["number"], f"order #{order['number']}", shirt["sku"], "T-shirt", "size or fit",
                     FROM_ADDRESS["line1"], "10115 Berlin"):  # fmt: skip
        assert expected in text, expected

    before = await inventory(admin, shirt["sku"])
    first = await desk.post(client, f"/v1/returns/{rma['id']}/receive", {
        "location_id": location,
        "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1, "condition": "resellable"}],
    })  # fmt: skip
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "approved"  # one of two units in
    assert (await inventory(admin, shirt["sku"]))["on_hand"] == before["on_hand"] + 1
    movement = (
        await admin.get("/v1/inventory/movements", params={"sku": shirt["sku"], "limit": 1})
    ).json()["data"][0]
    assert (movement["cause_type"], movement["cause_id"], movement["on_hand_delta"]) == (
        "return",
        rma["id"],
        1,
    )
    mug_before = await inventory(admin, mug["sku"])
    second = await desk.post(client, f"/v1/returns/{rma['id']}/receive", {
        "location_id": location,
        "lines": [{"line_id": order["lines"][1]["id"], "quantity": 1, "condition": "damaged"}],
    })  # fmt: skip
    received = second.json()
    assert received["status"] == "received"
    assert [(x["quantity_received"], x["quantity_restocked"], x["quantity_damaged"]) for x in received["lines"]] == [
        (1, 1, 0), (1, 0, 1),
    ]  # fmt: skip
    assert (await inventory(admin, mug["sku"]))["on_hand"] == mug_before[
        "on_hand"
    ]  # damaged: not restocked
    after = await _order(client, desk, order["id"])
    assert [x["quantity_returned"] for x in after["lines"]] == [1, 1]
    assert (after["return_status"], after["status"]) == ("partially_returned", "shipped")
    await assert_stock_consistent(app)

    completed = await desk.post(
        client, f"/v1/returns/{rma['id']}/complete", {"refund_shipping": True}
    )
    assert completed.status_code == 200, completed.text
    done = completed.json()
    assert (done["status"], done["refund_amount"], done["refund_shipping"]) == (
        "completed",
        1500 + 800 + 490,
        True,
    )
    paid = await _order(client, desk, order["id"])
    assert (paid["payment_status"], paid["payment_amounts"]["refunded"]) == (
        "partially_refunded",
        2790,
    )
    assert paid["payments"][-1]["kind"] == "refund"
    assert rma["number"] in paid["payments"][-1]["reference"]

    timeline = (
        await client.get(f"/v1/orders/{order['id']}/events", headers=desk.shop.headers)
    ).json()["data"]
    returns = [e["type"] for e in timeline if e["type"].startswith(("return.", "payment."))]
    assert returns == ["payment.recorded", "return.requested", "return.approved", "return.received",
                       "return.received", "payment.recorded", "return.completed"]  # fmt: skip
    assert [e["sequence"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert timeline[-1]["data"]["id"] == rma["id"]
    # The second return's shipping is not refunded again.
    more = await desk.open_return(
        client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 1)}
    )
    await desk.post(client, f"/v1/returns/{more.json()['id']}/approve")
    await desk.post(client, f"/v1/returns/{more.json()['id']}/receive", {
        "location_id": location,
        "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1, "condition": "resellable"}],
    })  # fmt: skip
    last = await desk.post(
        client, f"/v1/returns/{more.json()['id']}/complete", {"refund_shipping": True}
    )
    assert (last.json()["refund_amount"], last.json()["refund_shipping"]) == (1500, False)
    final = await _order(client, desk, order["id"])
    assert (final["return_status"], final["payment_status"]) == ("returned", "refunded")
    await assert_stock_consistent(app)


async def test_what_may_be_returned(admin: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    desk = await ReturnsDesk.open(admin)
    product = await desk.shop.product(admin, 10)
    order = await desk.shipped(client, [(product["sku"], 2)])
    unshipped = await desk.order(client, [(product["sku"], 1)])

    refused = await desk.open_return(client, {"order_id": unshipped["id"], "resolution": "refund",
                                              "lines": _lines(unshipped, 1)})  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (409, "exceeds_returnable")
    first = await desk.open_return(
        client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 2)}
    )
    assert first.status_code == 201
    again = await desk.open_return(
        client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 1)}
    )
    assert (again.status_code, again.json()["code"]) == (
        409,
        "exceeds_returnable",
    )  # both are in an open return
    assert again.json()["lines"] == [
        {"line_id": order["lines"][0]["id"], "requested": 1, "returnable": 0}
    ]
    cancelled = await desk.post(
        client, f"/v1/returns/{first.json()['id']}/cancel", {"reason": "changed mind"}
    )
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        "changed mind",
    )
    assert (await _order(client, desk, order["id"]))["return_status"] == "none"
    assert (await desk.open_return(client, {"order_id": order["id"], "resolution": "refund",
                                            "lines": _lines(order, 1)})).status_code == 201  # fmt: skip

    for body, code in [
        ({"resolution": "exchange", "lines": _lines(order, 1)}, "exchange_lines_required"),
        ({"resolution": "refund", "lines": _lines(order, 1), "exchange_lines": [{"sku": product["sku"], "quantity": 1}]},
         "exchange_lines_not_allowed"),
        ({"resolution": "exchange", "lines": _lines(order, 1), "exchange_lines": [{"sku": "NOPE-1", "quantity": 1}]},
         "unknown_sku"),
        ({"resolution": "refund", "lines": _lines(order, 1, reason="bored")}, "validation_error"),
        ({"resolution": "store_credit", "lines": _lines(order, 1)}, "validation_error"),
        ({"resolution": "refund", "lines": [{"line_id": "line_x", "quantity": 1, "reason": "other"}]}, "unknown_line"),
    ]:  # fmt: skip
        response = await desk.open_return(client, {"order_id": order["id"], **body})
        assert (response.status_code, response.json()["code"]) == (422, code), body


async def test_a_return_names_each_line_once(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """A return line holds one quantity, reason and note: the same `line_id` twice, within
    what may be returned, was checked as their sum and then stored as two rows of one
    (return, line) — 500 (found by an outside-in attack with duplicated ids in bodies)."""
    desk = await ReturnsDesk.open(admin)
    product = await desk.shop.product(admin, 10)
    order = await desk.shipped(client, [(product["sku"], 2)])
    line = order["lines"][0]["id"]
    twice = [{"line_id": line, "quantity": 1, "reason": "damaged"},
             {"line_id": line, "quantity": 1, "reason": "other"}]  # fmt: skip
    refused = await desk.open_return(
        client, {"order_id": order["id"], "resolution": "refund", "lines": twice}
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
    assert refused.json()["errors"][0]["loc"] == ["body", "lines", 1, "line_id"]
    assert (await _order(client, desk, order["id"]))["return_status"] == "none"
    once = await desk.open_return(
        client, {"order_id": order["id"], "resolution": "refund", "lines": twice[:1]}
    )
    assert once.status_code == 201, once.text


async def test_the_return_window(admin: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    desk = await ReturnsDesk.open(admin)
    product = await desk.shop.product(admin, 5)
    order = await desk.shipped(client, [(product["sku"], 1)])
    assert (await admin.get("/v1/settings/returns")).json() == {"window_days": 30}
    try:
        assert (await admin.put("/v1/settings/returns", json={"window_days": 0})).status_code == 200
        closed = await desk.open_return(client, {"order_id": order["id"], "resolution": "refund",
                                                 "lines": _lines(order, 1)})  # fmt: skip
        assert (closed.status_code, closed.json()["code"]) == (409, "return_window_closed")
    finally:
        await admin.put("/v1/settings/returns", json={"window_days": 30})
    opened = await desk.open_return(
        client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 1)}
    )
    assert opened.status_code == 201
    assert (await admin.put("/v1/settings/returns", json={"window_days": -1})).status_code == 422
    channel_key = await client.get("/v1/settings/returns", headers=desk.shop.headers)
    assert channel_key.status_code == 403


async def _received(client: httpx.AsyncClient, desk: ReturnsDesk, order: dict[str, Any], *quantities: int,
                    resolution: str = "refund", **body: Any) -> dict[str, Any]:  # fmt: skip
    opened = await desk.open_return(client, {"order_id": order["id"], "resolution": resolution,
                                             "lines": _lines(order, *quantities), **body})  # fmt: skip
    assert opened.status_code == 201, opened.text
    rma = opened.json()
    await desk.post(client, f"/v1/returns/{rma['id']}/approve")
    receipt = await desk.post(client, f"/v1/returns/{rma['id']}/receive", {
        "location_id": rma["location_id"],
        "lines": [{"line_id": x["line_id"], "quantity": x["quantity"], "condition": "resellable"} for x in rma["lines"]],
    })  # fmt: skip
    assert receipt.json()["status"] == "received", receipt.text
    return dict(receipt.json())


async def test_refunds_never_exceed_what_was_captured(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    desk = await ReturnsDesk.open(admin)
    product = await desk.shop.product(admin, 10, unit_price=1000)
    order = await desk.shipped(client, [(product["sku"], 2)])
    rma = await _received(client, desk, order, 1)
    too_much = await desk.post(client, f"/v1/returns/{rma['id']}/complete", {"refund_amount": 2001})
    assert (too_much.status_code, too_much.json()["code"]) == (409, "refund_exceeds_captured")
    assert too_much.json()["refundable"] == 2000
    assert (await desk.get(client, f"/v1/returns/{rma['id']}")).json()["status"] == "received"
    assert (await _order(client, desk, order["id"]))["payment_amounts"][
        "refunded"
    ] == 0  # nothing recorded
    assert (
        await desk.post(client, f"/v1/returns/{rma['id']}/complete", {"refund_amount": 2000})
    ).status_code == 200
    twice = await desk.post(client, f"/v1/returns/{rma['id']}/complete")
    assert (twice.status_code, twice.json()["code"]) == (409, "invalid_transition")


async def test_concurrent_completes_of_two_returns_refund_at_most_what_was_captured(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    desk = await ReturnsDesk.open(admin)
    product = await desk.shop.product(admin, 10, unit_price=1000)
    order = await desk.shipped(client, [(product["sku"], 2)])  # 2,000 captured
    one = await _received(client, desk, order, 1)
    two = await _received(client, desk, order, 1)
    answers = await asyncio.gather(*(
        desk.post(client, f"/v1/returns/{rma['id']}/complete", {"refund_amount": 1500}) for rma in (one, two)
    ))  # fmt: skip
    assert sorted(r.status_code for r in answers) == [200, 409]
    assert [r.json()["code"] for r in answers if r.status_code == 409] == [
        "refund_exceeds_captured"
    ]
    after = await _order(client, desk, order["id"])
    assert after["payment_amounts"]["refunded"] == 1500
    assert sorted([(await desk.get(client, f"/v1/returns/{r['id']}")).json()["status"] for r in (one, two)]) == [
        "completed", "received",
    ]  # fmt: skip


async def test_exchanges_place_an_order_when_there_is_stock(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    desk = await ReturnsDesk.open(admin, app=app)
    small = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt S")
    large = await desk.shop.product(admin, 0, unit_price=2000, name="Shirt L")
    order = await desk.shipped(client, [(small["sku"], 1)])
    rma = await _received(client, desk, order, 1, resolution="exchange",
                          exchange_lines=[{"sku": large["sku"], "quantity": 1}])  # fmt: skip

    short = await desk.post(client, f"/v1/returns/{rma['id']}/complete")
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_stock")
    assert (await desk.get(client, f"/v1/returns/{rma['id']}")).json()["status"] == "received"
    assert (await inventory(admin, large["sku"]))["reserved"] == 0  # nothing reserved

    await stock(admin, large["sku"], desk.shop.locations[0]["id"], 3)
    done = await desk.post(client, f"/v1/returns/{rma['id']}/complete")
    assert done.status_code == 200, done.text
    exchange_id = done.json()["exchange_order_id"]
    exchange = await _order(client, desk, exchange_id)
    assert exchange["exchange_for_return_id"] == rma["id"]
    assert (exchange["customer_id"], exchange["channel_id"]) == (
        order["customer_id"],
        order["channel_id"],
    )
    assert exchange["shipping_address"] == order["shipping_address"]
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in exchange["lines"]] == [
        (large["sku"], 1, 2000)
    ]
    assert (exchange["status"], exchange["payment_status"], exchange["totals"]["total"]) == (
        "confirmed",
        "paid",
        2000,
    )
    assert exchange["payments"][0]["kind"] == "capture"
    assert (await inventory(admin, large["sku"]))["reserved"] == 1
    original = await _order(client, desk, order["id"])
    assert (original["payment_amounts"]["refunded"], original["return_status"]) == (0, "returned")
    await assert_stock_consistent(app)


async def test_an_exchange_is_credited_only_money_paid_and_not_had_back(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """An accountant's find: an order never paid (on invoice), or refunded in full, still
    paid its exchange's order with a credit of the returned units' price — money that was
    never there, which the exchange's own return then refunded "to the original payment
    method". The credit is at most what was captured on the original order, less what was
    refunded and what earlier exchanges were credited."""
    desk = await ReturnsDesk.open(admin, app=app)
    shirt = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt S")
    other = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt L")
    order = await desk.shipped(client, [(shirt["sku"], 2)])
    captured = order["payment_amounts"]["captured"]
    refunded = await admin.post(
        f"/v1/orders/{order['id']}/payments",
        json={"kind": "refund", "amount": captured - 1000, "reference": "goodwill"},
    )
    assert refunded.status_code == 200, refunded.text

    async def exchange() -> dict[str, Any]:
        fresh = await _order(client, desk, order["id"])
        rma = await _received(client, desk, fresh, 1, resolution="exchange",
                              exchange_lines=[{"sku": other["sku"], "quantity": 1}])  # fmt: skip
        done = await desk.post(client, f"/v1/returns/{rma['id']}/complete")
        assert done.status_code == 200, done.text
        return await _order(client, desk, done.json()["exchange_order_id"])

    first = await exchange()  # 1000 paid and not had back: that much credit, 1000 to pay
    assert first["payment_amounts"]["captured"] == 1000
    assert first["status"] == "pending"  # waits for the rest, as any order with a balance
    second = await exchange()  # nothing left: no credit at all
    assert second["payments"] == []
    assert (second["status"], second["payment_status"]) == ("pending", "unpaid")
    # The 1000 paid the first exchange: it is not refunded on the original as well.
    again = await admin.post(
        f"/v1/orders/{order['id']}/payments",
        json={"kind": "refund", "amount": 1, "reference": "twice"},
    )
    assert (again.status_code, again.json()["code"]) == (409, "refund_exceeds_captured")
    assert (again.json()["refundable"], again.json()["credited_to_exchanges"]) == (0, 1000)
    await assert_stock_consistent(app)


async def test_an_exchange_refuses_a_refund_rather_than_ignoring_it(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """`refund_amount` / `refund_shipping` on an exchange's /complete were silently dropped:
    the new order was placed and nothing refunded, though the caller asked for a refund."""
    desk = await ReturnsDesk.open(admin)
    small = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt S")
    large = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt L")
    order = await desk.shipped(client, [(small["sku"], 1)], shipping_price=490)
    rma = await _received(client, desk, order, 1, resolution="exchange",
                          exchange_lines=[{"sku": large["sku"], "quantity": 1}])  # fmt: skip
    for body, field in (({"refund_amount": 2000}, "refund_amount"),
                        ({"refund_shipping": True}, "refund_shipping")):  # fmt: skip
        refused = await desk.post(client, f"/v1/returns/{rma['id']}/complete", body)
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "refund_not_allowed"
        assert problem["errors"][0]["loc"] == ["body", field]
        assert (await desk.get(client, f"/v1/returns/{rma['id']}")).json()["status"] == "received"
    assert (await _order(client, desk, order["id"]))["payment_amounts"]["refunded"] == 0
    assert (await inventory(admin, large["sku"]))["reserved"] == 0  # no exchange placed
    done = await desk.post(client, f"/v1/returns/{rma['id']}/complete", {"refund_shipping": False})
    assert done.status_code == 200, done.text
    assert done.json()["exchange_order_id"] is not None


async def test_a_return_partly_received_is_neither_rejected_nor_cancelled(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    desk = await ReturnsDesk.open(admin)
    product = await desk.shop.product(admin, 10)
    order = await desk.shipped(client, [(product["sku"], 3)])
    rma = (
        await desk.open_return(
            client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 3)}
        )
    ).json()
    early = await desk.post(client, f"/v1/returns/{rma['id']}/receive", {
        "location_id": rma["location_id"], "lines": [{"line_id": rma["lines"][0]["line_id"], "quantity": 1, "condition": "resellable"}],
    })  # fmt: skip
    assert (early.status_code, early.json()["code"]) == (409, "invalid_transition")  # approve first
    await desk.post(client, f"/v1/returns/{rma['id']}/approve")
    line = rma["lines"][0]["line_id"]
    receipt = {
        "location_id": rma["location_id"],
        "lines": [{"line_id": line, "quantity": 1, "condition": "resellable"}],
    }
    await desk.post(client, f"/v1/returns/{rma['id']}/receive", receipt)
    for command in ("reject", "cancel"):
        refused = await desk.post(client, f"/v1/returns/{rma['id']}/{command}")
        assert (refused.status_code, refused.json()["code"]) == (409, "return_partly_received")
    too_many = await desk.post(
        client,
        f"/v1/returns/{rma['id']}/receive",
        {**receipt, "lines": [{**receipt["lines"][0], "quantity": 3}]},
    )
    assert (too_many.status_code, too_many.json()["code"]) == (409, "exceeds_outstanding")
    rejected = await desk.open_return(
        client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 0)}
    )
    assert rejected.status_code == 422  # no line at all


async def test_another_channels_returns_are_404(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    mine = await ReturnsDesk.open(admin)
    theirs = await ReturnsDesk.open(admin)
    product = await theirs.shop.product(admin, 5)
    order = await theirs.shipped(client, [(product["sku"], 1)])
    opened = await mine.open_return(
        client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 1)}
    )
    assert opened.status_code == 404  # another channel's order
    rma = (
        await theirs.open_return(
            client, {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 1)}
        )
    ).json()
    for method, path, body in [
        ("GET", f"/v1/returns/{rma['id']}", None), ("GET", f"/v1/returns/{rma['id']}/slip", None),
        ("POST", f"/v1/returns/{rma['id']}/approve", None), ("POST", f"/v1/returns/{rma['id']}/reject", None),
        ("POST", f"/v1/returns/{rma['id']}/cancel", None), ("POST", f"/v1/returns/{rma['id']}/complete", None),
        ("POST", f"/v1/returns/{rma['id']}/receive",
         {"location_id": "x", "lines": [{"line_id": "x", "quantity": 1, "condition": "damaged"}]}),
    ]:  # fmt: skip
        response = await client.request(method, path, json=body, headers=mine.fulfiller)
        assert response.status_code == 404, (method, path, response.text)
    assert (await mine.get(client, "/v1/returns", params={"order_id": order["id"]})).json()[
        "data"
    ] == []
    listed = (
        await theirs.get(client, "/v1/returns", params={"number": rma["number"].lower()})
    ).json()["data"]
    assert [r["id"] for r in listed] == [rma["id"]]
    no_scope = await client.post(f"/v1/returns/{rma['id']}/approve", headers=theirs.shop.headers)
    assert (no_scope.status_code, no_scope.json()["code"]) == (403, "missing_scope")


async def test_a_channel_key_returns_stock_only_where_its_channel_sells_from(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A channel-bound key moves stock nowhere its channel does not sell from: a return sent
    to, or received at, another channel's location answers as a made-up location does."""
    desk = await ReturnsDesk.open(admin, app=app)
    elsewhere = await ReturnsDesk.open(admin)
    theirs = elsewhere.shop.locations[0]["id"]
    product = await desk.shop.product(admin, 5)
    await stock(admin, product["sku"], theirs, 3)
    order = await desk.shipped(client, [(product["sku"], 1)])
    body = {"order_id": order["id"], "resolution": "refund", "lines": _lines(order, 1)}

    def answer(response: httpx.Response, location_id: str) -> tuple[int, str, str]:
        problem = response.json()
        shown = orjson.dumps([problem["detail"], problem["errors"]]).decode()
        return response.status_code, problem["code"], shown.replace(location_id, "<id>")

    to_theirs = await desk.open_return(client, body | {"location_id": theirs})
    made_up = await desk.open_return(client, body | {"location_id": "loc_made_up"})
    assert answer(to_theirs, theirs) == answer(made_up, "loc_made_up"), made_up.text
    assert to_theirs.status_code == 422, to_theirs.text
    assert to_theirs.json()["code"] == "unknown_location"

    rma = (await desk.open_return(client, body)).json()  # to where it shipped from
    assert rma["location_id"] == desk.shop.locations[0]["id"]
    await desk.post(client, f"/v1/returns/{rma['id']}/approve")
    receipt = {"lines": [{"line_id": rma["lines"][0]["line_id"], "quantity": 1,
                          "condition": "resellable"}]}  # fmt: skip
    at_theirs = await desk.post(client, f"/v1/returns/{rma['id']}/receive",
                                receipt | {"location_id": theirs})  # fmt: skip
    at_made_up = await desk.post(client, f"/v1/returns/{rma['id']}/receive",
                                 receipt | {"location_id": "loc_made_up"})  # fmt: skip
    assert answer(at_theirs, theirs) == answer(at_made_up, "loc_made_up"), at_made_up.text
    assert at_theirs.status_code == 422
    assert at_theirs.json()["code"] == "unknown_location"
    levels = {lv["location_id"]: lv for lv in (await inventory(admin, product["sku"]))["levels"]}
    assert levels[theirs]["on_hand"] == 3  # untouched

    received = await desk.post(client, f"/v1/returns/{rma['id']}/receive",
                               receipt | {"location_id": rma["location_id"]})  # fmt: skip
    assert received.json()["status"] == "received", received.text


async def test_an_exchange_that_cannot_be_sent_is_completed_as_a_refund(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found by an outside-in tester: an exchange for a product that never comes back in
    stock waited in `received` for good — not rejectable, not cancellable once units are
    back, and no way to refund instead. `/complete {resolution: refund}` is that way."""
    desk = await ReturnsDesk.open(admin, app=app)
    small = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt S")
    gone = await desk.shop.product(admin, 0, unit_price=2000, name="Shirt L, discontinued")
    order = await desk.shipped(client, [(small["sku"], 2)], shipping_price=490)
    rma = await _received(client, desk, order, 2, resolution="exchange",
                          exchange_lines=[{"sku": gone["sku"], "quantity": 2}])  # fmt: skip
    short = await desk.post(client, f"/v1/returns/{rma['id']}/complete")
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_stock")

    done = await desk.post(client, f"/v1/returns/{rma['id']}/complete",
                           {"resolution": "refund", "refund_shipping": True})  # fmt: skip
    assert done.status_code == 200, done.text
    settled = done.json()
    assert (settled["status"], settled["resolution"], settled["exchange_lines"]) == (
        "completed", "refund", [],
    )  # fmt: skip
    assert (settled["refund_amount"], settled["exchange_order_id"]) == (2 * 2000 + 490, None)
    after = await _order(client, desk, order["id"])
    assert after["payment_amounts"]["refunded"] == 2 * 2000 + 490
    assert after["payment_status"] == "refunded"
    assert (await inventory(admin, gone["sku"]))["reserved"] == 0
    await assert_stock_consistent(app)

    # A refund return cannot turn into an exchange: it names nothing to send.
    refund = await _received(client, desk, await desk.shipped(client, [(small["sku"], 1)]), 1)
    refused = await desk.post(client, f"/v1/returns/{refund['id']}/complete",
                              {"resolution": "exchange"})  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (422, "exchange_not_allowed")
    assert (await desk.get(client, f"/v1/returns/{refund['id']}")).json()["status"] == "received"


async def test_a_return_slip_needs_an_address_to_send_to(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found by an outside-in tester: for a location without an address the slip said
    "Send the parcel to: Outlet" and nothing more. It is 409 until the location has one."""
    desk = await ReturnsDesk.open(admin)
    product = await desk.shop.product(admin, 5)
    order = await desk.shipped(client, [(product["sku"], 1)])
    rma = await _received(client, desk, order, 1)
    location = f"/v1/locations/{rma['location_id']}"
    assert (await admin.patch(location, json={"address": None})).status_code == 200
    refused = await desk.get(client, f"/v1/returns/{rma['id']}/slip")
    assert (refused.status_code, refused.json()["code"]) == (409, "return_address_missing")
    assert refused.json()["location_id"] == rma["location_id"]
    assert (await admin.patch(location, json={"address": FROM_ADDRESS})).status_code == 200
    slip = await desk.get(client, f"/v1/returns/{rma['id']}/slip")
    assert FROM_ADDRESS["line1"] in pdf_text(slip.content)[0]


async def test_an_exchange_for_a_product_in_another_currency_is_refused_when_opened(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found by an outside-in accountant: an exchange for a product priced in another
    currency than the order was accepted when opened, and only /complete — the parcel back
    on the shelf — refused it, 422 `currency_mismatch` pointing at `body.lines[0].unit_price`,
    a field /complete does not have. It is refused when opened, naming the exchange line;
    a product whose currency changed after is a 409 at /complete, with what to do."""
    desk = await ReturnsDesk.open(admin)
    shirt = await desk.shop.product(admin, 5, unit_price=2000, currency="EUR")
    dollars = await desk.shop.product(admin, 5, unit_price=2200, currency="USD")
    order = await desk.shipped(client, [(shirt["sku"], 2)])
    refused = await desk.open_return(client, {
        "order_id": order["id"], "resolution": "exchange", "lines": _lines(order, 1),
        "exchange_lines": [{"sku": shirt["sku"], "quantity": 1}, {"sku": dollars["sku"], "quantity": 1}],
    })  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (422, "currency_mismatch"), refused.text
    assert [e["loc"] for e in refused.json()["errors"]] == [["body", "exchange_lines", 1, "sku"]]
    assert (await _order(client, desk, order["id"]))["return_status"] == "none"  # nothing opened

    rma = await _received(client, desk, order, 1, resolution="exchange",
                          exchange_lines=[{"sku": shirt["sku"], "quantity": 1}])  # fmt: skip
    changed = await admin.patch(f"/v1/products/{shirt['sku']}", json={"currency": "USD"})
    assert changed.status_code == 200, changed.text
    late = await desk.post(client, f"/v1/returns/{rma['id']}/complete")
    assert (late.status_code, late.json()["code"]) == (409, "currency_mismatch"), late.text
    assert "resolution" in late.json()["detail"]
    assert "errors" not in late.json()
    assert (await desk.get(client, f"/v1/returns/{rma['id']}")).json()["status"] == "received"
    done = await desk.post(client, f"/v1/returns/{rma['id']}/complete", {"resolution": "refund"})
    assert (done.status_code, done.json()["refund_amount"]) == (200, 2000), done.text


async def test_a_payment_naming_the_return_on_the_exchange_is_no_credit(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """A regression review's find: the credits an order's exchanges were paid with were
    every capture on the exchange's order referenced 'return RMA-…' — so the balance of a
    dearer exchange, paid and recorded naming its return (as a merchant would), counted
    as credit too: the original order's refund limit fell by it (a refund return of the
    other unit was refused) and so did the next exchange's credit. Only the credit the
    exchange's order was placed with is spent."""
    desk = await ReturnsDesk.open(admin, app=app)
    shirt = await desk.shop.product(admin, 5, unit_price=2000, name="Shirt")
    jacket = await desk.shop.product(admin, 5, unit_price=5000, name="Jacket")
    order = await desk.shipped(client, [(shirt["sku"], 2)])
    assert order["payment_amounts"]["captured"] == 4000
    rma = await _received(client, desk, order, 1, resolution="exchange",
                          exchange_lines=[{"sku": jacket["sku"], "quantity": 1}])  # fmt: skip
    done = await desk.post(client, f"/v1/returns/{rma['id']}/complete")
    assert done.status_code == 200, done.text
    exchange_id = done.json()["exchange_order_id"]
    assert (await _order(client, desk, exchange_id))["payment_amounts"]["captured"] == 2000
    balance = await admin.post(
        f"/v1/orders/{exchange_id}/payments",
        json={"kind": "capture", "amount": 3000, "reference": f"return {rma['number']}"},
    )
    assert balance.status_code == 200, balance.text
    # The other shirt comes back for a refund: 2000 of the 4000 paid is still the customer's.
    fresh = await _order(client, desk, order["id"])
    other = await _received(client, desk, fresh, 1)
    refunded = await desk.post(client, f"/v1/returns/{other['id']}/complete")
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["refund_amount"] == 2000
    again = await admin.post(
        f"/v1/orders/{order['id']}/payments",
        json={"kind": "refund", "amount": 1, "reference": "twice"},
    )
    assert (again.status_code, again.json()["code"]) == (409, "refund_exceeds_captured")
    assert (again.json()["refundable"], again.json()["credited_to_exchanges"]) == (0, 2000)
