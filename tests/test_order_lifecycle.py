"""Commands, payments, risk, expiry, reads and channel isolation of orders."""

from __future__ import annotations

import asyncio
import secrets

import httpx
from fastapi import FastAPI

from oms_api.main import create_app, housekeeping_pass
from oms_api.services.orders import expire_pending_orders
from tests.checks import assert_stock_consistent
from tests.factories import Shop, inventory, order_body, place, unique


async def _order(
    client: httpx.AsyncClient, shop: Shop, sku: str, qty: int = 1, **fields: object
) -> dict:
    response = await place(client, order_body(None, [(sku, qty)], **fields), headers=shop.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _timeline(client: httpx.AsyncClient, shop: Shop, order_id: str) -> list[str]:
    events = (await client.get(f"/v1/orders/{order_id}/events", headers=shop.headers)).json()[
        "data"
    ]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    return [e["type"] for e in events]


async def test_payment_confirms_and_refunds_never_exceed_captures(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=1000)
    order = await _order(client, shop, product["sku"], 2)
    url = f"/v1/orders/{order['id']}/payments"

    authorized = await client.post(
        url, json={"kind": "authorization", "amount": 2000}, headers=shop.headers
    )
    assert authorized.status_code == 200
    assert authorized.json()["status"] == "confirmed"
    assert authorized.json()["payment_status"] == "authorized"
    assert authorized.json()["confirmed_at"] is not None

    over = await client.post(url, json={"kind": "capture", "amount": 2001}, headers=shop.headers)
    assert over.status_code == 409
    assert over.json()["code"] == "capture_exceeds_authorized"
    captured = await client.post(
        url, json={"kind": "capture", "amount": 2000, "reference": "ch_1"}, headers=shop.headers
    )
    assert captured.json()["payment_status"] == "paid"

    part = await client.post(url, json={"kind": "refund", "amount": 500}, headers=shop.headers)
    assert part.json()["payment_status"] == "partially_refunded"
    too_much = await client.post(url, json={"kind": "refund", "amount": 1501}, headers=shop.headers)
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "refund_exceeds_captured"
    assert too_much.json()["refundable"] == 1500
    rest = await client.post(url, json={"kind": "refund", "amount": 1500}, headers=shop.headers)
    final = rest.json()
    assert final["payment_status"] == "refunded"
    assert final["payment_amounts"] == {
        "authorized": 2000,
        "captured": 2000,
        "refunded": 2000,
        "voided": 0,
    }
    assert [p["kind"] for p in final["payments"]] == [
        "authorization",
        "capture",
        "refund",
        "refund",
    ]
    assert await _timeline(client, shop, order["id"]) == [
        "order.created", "payment.recorded", "order.confirmed",
        "payment.recorded", "payment.recorded", "payment.recorded",
    ]  # fmt: skip


async def test_concurrent_refunds_never_exceed_the_capture(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=1000)
    order = await _order(
        client, shop, product["sku"], 1, payment={"method": "card", "status": "paid"}
    )
    url = f"/v1/orders/{order['id']}/payments"
    responses = await asyncio.gather(
        *(
            client.post(url, json={"kind": "refund", "amount": 300}, headers=shop.headers)
            for _ in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 3 + [409] * 7
    final = (await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)).json()
    assert final["payment_amounts"]["refunded"] == 900


async def test_a_retried_capture_with_the_same_key_charges_once(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=1000)
    order = await _order(client, shop, product["sku"], 1)
    url = f"/v1/orders/{order['id']}/payments"
    headers = shop.headers | {"Idempotency-Key": secrets.token_hex(8)}
    body = {"kind": "capture", "amount": 1000}
    first = await client.post(url, json=body, headers=headers)
    again = await client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    current = (await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)).json()
    assert current["payment_amounts"]["captured"] == 1000
    assert len(current["payments"]) == 1


async def test_paid_or_invoice_orders_are_confirmed_at_placement(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10, unit_price=1000)
    paid = await _order(
        client, shop, product["sku"], payment={"method": "card", "status": "paid", "reference": "x"}
    )
    assert (paid["status"], paid["payment_status"]) == ("confirmed", "paid")
    assert paid["payments"][0]["amount"] == 1000
    assert await _timeline(client, shop, paid["id"]) == [
        "order.created",
        "payment.recorded",
        "order.confirmed",
    ]
    invoice = await _order(client, shop, product["sku"], payment={"method": "invoice"})
    assert (invoice["status"], invoice["payment_status"]) == ("confirmed", "unpaid")
    partly = await _order(
        client,
        shop,
        product["sku"],
        payment={"method": "card", "status": "authorized", "amount": 400},
    )
    assert (partly["status"], partly["payment_status"]) == ("pending", "authorized")


async def test_hold_release_cancel_and_invalid_transitions(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    order = await _order(client, shop, product["sku"], 2)
    base = f"/v1/orders/{order['id']}"

    held = await client.post(base + "/hold", json={"reason": "address check"}, headers=shop.headers)
    assert held.status_code == 200
    assert held.json()["status"] == "on_hold"
    assert held.json()["hold_reason"] == "address check"
    again = await client.post(base + "/hold", headers=shop.headers)
    assert again.status_code == 409
    problem = again.json()
    assert problem["code"] == "invalid_transition"
    assert problem["current_state"] == "on_hold"
    assert problem["allowed_commands"] == ["release", "cancel"]

    released = await client.post(base + "/release", headers=shop.headers)
    assert released.json()["status"] == "pending"  # unpaid: back to pending
    assert released.json()["hold_reason"] is None

    cancelled = await client.post(
        base + "/cancel", json={"reason": "customer asked"}, headers=shop.headers
    )
    doc = cancelled.json()
    assert doc["status"] == "cancelled"
    assert doc["cancel_reason"] == "customer asked"
    assert doc["allocations"] == []
    level = await inventory(admin, product["sku"])
    assert (level["reserved"], level["available"]) == (0, 5)
    assert (await client.post(base + "/release", headers=shop.headers)).status_code == 409
    assert (await client.post(base + "/cancel", headers=shop.headers)).status_code == 409
    assert await _timeline(client, shop, order["id"]) == [
        "order.created", "order.on_hold", "order.released", "order.cancelled",
    ]  # fmt: skip
    payment = await client.post(
        base + "/payments", json={"kind": "capture", "amount": 1}, headers=shop.headers
    )
    assert payment.json()["code"] == "order_cancelled"


async def test_release_of_a_paid_order_confirms_it(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    order = await _order(client, shop, product["sku"], payment={"method": "card", "status": "paid"})
    base = f"/v1/orders/{order['id']}"
    assert (await client.post(base + "/hold", headers=shop.headers)).json()["status"] == "on_hold"
    released = (await client.post(base + "/release", headers=shop.headers)).json()
    assert released["status"] == "confirmed"
    assert await _timeline(client, shop, order["id"]) == [
        "order.created", "payment.recorded", "order.confirmed", "order.on_hold",
        "order.released", "order.confirmed",
    ]  # fmt: skip


async def test_concurrent_cancels_release_stock_once(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 4)
    order = await _order(client, shop, product["sku"], 3)
    responses = await asyncio.gather(
        *(client.post(f"/v1/orders/{order['id']}/cancel", headers=shop.headers) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 7
    level = await inventory(admin, product["sku"])
    assert (level["on_hand"], level["reserved"]) == (4, 0)


async def test_risk_rules_hold_orders(admin: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    before = (await admin.get("/v1/settings/risk")).json()
    try:
        put = await admin.put(
            "/v1/settings/risk", json={"blocked_countries": ["KP"], "max_order_total": 5000}
        )
        assert put.status_code == 200
        assert put.json()["blocked_countries"] == ["KP"]
        shop = await Shop.open(admin)
        product = await shop.product(admin, 50, unit_price=1000)
        address = {"line1": "1 Main St", "city": "Pyongyang", "country": "KP"}
        blocked = await _order(
            client, shop, product["sku"], shipping_address=address, payment={"method": "invoice"}
        )
        assert blocked["status"] == "on_hold"
        assert blocked["risk"]["reasons"] == ["shipping_country_blocked"]
        assert blocked["hold_reason"].startswith("risk:")
        big = await _order(
            client, shop, product["sku"], 6,
            shipping_address=address | {"country": "DE"}, billing_address=address | {"country": "FR"},
        )  # fmt: skip
        assert big["status"] == "on_hold"
        assert set(big["risk"]["reasons"]) == {
            "order_total_above_limit",
            "billing_shipping_country_mismatch",
        }
        small = await _order(client, shop, product["sku"], 1)
        assert small["status"] == "pending"
        assert small["risk"] == {"score": 0, "reasons": []}
        assert (await admin.put("/v1/settings/risk", json={"hold_threshold": 0})).status_code == 422
    finally:
        await admin.put("/v1/settings/risk", json=before)


async def test_many_orders_from_one_email_within_the_window_are_held(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    before = (await admin.get("/v1/settings/risk")).json()
    try:
        settings = {"velocity_max_orders": 3, "weights": {"many_orders_from_email": 70}}
        assert (await admin.put("/v1/settings/risk", json=settings)).status_code == 200
        shop = await Shop.open(admin)
        product = await shop.product(admin, 50)
        email, other = f"{unique('busy')}@example.com", f"{unique('calm')}@example.com"
        statuses = [
            (await _order(client, shop, product["sku"], customer={"email": email}))["status"]
            for _ in range(5)
        ]
        assert statuses == ["pending"] * 3 + ["on_hold"] * 2  # the 4th and 5th exceed 3
        calm = await _order(client, shop, product["sku"], customer={"email": other.upper()})
        assert calm["risk"]["reasons"] == []
    finally:
        await admin.put("/v1/settings/risk", json=before)


async def test_unpaid_pending_orders_expire_and_release_stock(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    stale = await _order(client, shop, product["sku"], 2)
    fresh = await _order(client, shop, product["sku"], 1)
    paid = await _order(
        client, shop, product["sku"], 1, payment={"method": "card", "status": "authorized"}
    )
    async with app.state.database.transaction() as conn:
        await conn.execute(
            "UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = ANY($1)",
            [stale["id"], paid["id"]],
        )
    async with app.state.database.transaction() as conn:
        expired = await expire_pending_orders(conn)
    assert expired >= 1
    got = (await client.get(f"/v1/orders/{stale['id']}", headers=shop.headers)).json()
    assert got["status"] == "cancelled"
    assert got["cancel_reason"].startswith("expired")
    assert (await client.get(f"/v1/orders/{fresh['id']}", headers=shop.headers)).json()[
        "status"
    ] == "pending"
    assert (await client.get(f"/v1/orders/{paid['id']}", headers=shop.headers)).json()[
        "status"
    ] == "confirmed"
    assert (await inventory(admin, product["sku"]))["reserved"] == 2


async def test_expiry_locks_stock_as_a_placement_does_never_deadlocking_one(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # Found by a concurrency tester: housekeeping expired its whole batch in one transaction,
    # locking each order's stock levels in turn — the first order's (product B), then the
    # next one's (product A) — while a placement of A and B locks A, then B: each waited for
    # the other, PostgreSQL aborted one, and the placement answered 500.
    shop = await Shop.open(admin)
    location = shop.locations[0]["id"]
    first_product = await shop.product(admin, 5)  # ids ascend: the placement locks it first
    second_product = await shop.product(admin, 5)
    expires_first = await _order(client, shop, second_product["sku"])
    expires_next = await _order(client, shop, first_product["sku"])
    async with app.state.database.transaction() as conn:
        await conn.execute(
            "UPDATE orders SET expires_at = now() - interval '2 seconds' WHERE id = $1",
            expires_first["id"],
        )
        await conn.execute(
            "UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1",
            expires_next["id"],
        )
    lock_level = """SELECT 1 FROM inventory_levels il JOIN products p ON p.id = il.product_id
                    WHERE p.sku = $1 AND il.location_id = $2 FOR UPDATE OF il"""

    async def blocked_on_a_level() -> bool:
        async with app.state.database.connection() as conn:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = 'inventory_levels'::regclass"
                )
                or await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database() AND query LIKE '%inventory_levels%'"
                )
            )

    async with app.state.database.transaction() as placing:  # a placement's read, in two steps
        await placing.execute(lock_level, first_product["sku"], location)
        housekeeping = asyncio.create_task(housekeeping_pass(app.state.database))
        for _ in range(100):  # until expiry waits for the level this holds
            if await blocked_on_a_level() or housekeeping.done():
                break
            await asyncio.sleep(0.05)
        await placing.execute(lock_level, second_product["sku"], location)
    await housekeeping
    for order in (expires_first, expires_next):
        got = (await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)).json()
        assert got["status"] == "cancelled"
    await assert_stock_consistent(app)


async def test_a_pending_order_whose_authorization_was_voided_expires(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=1000)
    before = await inventory(admin, product["sku"])
    voided = await _order(client, shop, product["sku"], 2)
    held = await _order(client, shop, product["sku"], 1)
    url = "/v1/orders/{}/payments"
    for order in (voided, held):  # less than the total: both stay pending
        response = await client.post(
            url.format(order["id"]),
            json={"kind": "authorization", "amount": 500},
            headers=shop.headers,
        )
        assert response.json()["status"] == "pending", response.text
    void = await client.post(
        url.format(voided["id"]), json={"kind": "void", "amount": 500}, headers=shop.headers
    )
    assert void.json()["payment_status"] == "voided", void.text
    async with app.state.database.transaction() as conn:
        await conn.execute(
            "UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = ANY($1)",
            [voided["id"], held["id"]],
        )
    async with app.state.database.transaction() as conn:
        assert await expire_pending_orders(conn) >= 1
    got = (await client.get(f"/v1/orders/{voided['id']}", headers=shop.headers)).json()
    assert got["status"] == "cancelled"
    assert got["cancel_reason"].startswith("expired")
    assert all(line["quantity_reserved"] == 0 for line in got["lines"])
    assert (await _timeline(client, shop, voided["id"]))[-1] == "order.cancelled"
    still = (await client.get(f"/v1/orders/{held['id']}", headers=shop.headers)).json()
    assert still["status"] == "pending"  # its authorization is in force
    after = await inventory(admin, product["sku"])
    assert after["reserved"] == before["reserved"] + 1
    assert after["available"] == before["available"] - 1


async def test_an_orders_timeline_pages_oldest_first(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=1000)
    order = await _order(client, shop, product["sku"], 1)
    url = f"/v1/orders/{order['id']}/events"
    await client.post(f"/v1/orders/{order['id']}/hold", json={"reason": "x"}, headers=shop.headers)
    await client.post(f"/v1/orders/{order['id']}/cancel", headers=shop.headers)
    whole = (await client.get(url, headers=shop.headers)).json()
    assert whole["next_cursor"] is None
    pages, cursor = [], None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        response = await client.get(url, params=params, headers=shop.headers)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]) == 1
        pages += response.json()["data"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == whole["data"]
    assert [e["sequence"] for e in pages] == [1, 2, 3]
    assert [e["type"] for e in pages] == ["order.created", "order.on_hold", "order.cancelled"]
    for bad in (
        "nope",
        "WyIxIl0",
        "Wzk5OTk5OTk5OTk5XQ",
        "W3RydWVd",
    ):  # ["1"], [999999999999], [true]
        response = await client.get(url, params={"cursor": bad}, headers=shop.headers)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["code"] == "invalid_cursor"


async def test_listing_filters_and_pages(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 50)
    email = f"{unique('list')}@example.com"
    orders = [
        await _order(
            client, shop, product["sku"], customer={"email": email}, external_id=unique("ext")
        )
        for _ in range(3)
    ]
    await client.post(f"/v1/orders/{orders[0]['id']}/cancel", headers=shop.headers)
    h = shop.headers

    async def ids(**params: object) -> list[str]:
        response = await client.get("/v1/orders", params=params, headers=h)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["data"]]

    newest_first = [o["id"] for o in reversed(orders)]
    assert await ids(q=email) == newest_first
    assert await ids(q=email.upper()) == newest_first
    assert await ids(q=str(orders[1]["number"])) == [orders[1]["id"]]
    assert await ids(external_id=orders[2]["external_id"]) == [orders[2]["id"]]
    assert await ids(status="cancelled", customer_id=orders[0]["customer_id"]) == [orders[0]["id"]]
    assert await ids(channel=shop.channel["code"], limit=200) == (await ids(limit=200))
    assert (
        await ids(created_after=orders[1]["created_at"], customer_id=orders[0]["customer_id"])
        == newest_first[:2]
    )
    assert await ids(
        created_before=orders[1]["created_at"], customer_id=orders[0]["customer_id"]
    ) == [orders[0]["id"]]
    page1 = (await client.get("/v1/orders", params={"q": email, "limit": 2}, headers=h)).json()
    page2 = (
        await client.get(
            "/v1/orders", params={"q": email, "limit": 2, "cursor": page1["next_cursor"]}, headers=h
        )
    ).json()
    assert [o["id"] for o in page1["data"] + page2["data"]] == newest_first
    assert page2["next_cursor"] is None
    assert (await client.get("/v1/orders", params={"status": "lost"}, headers=h)).status_code == 422


async def test_a_channel_never_sees_another_channels_orders(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    mine = await Shop.open(admin)
    theirs = await Shop.open(admin)
    product = await mine.product(admin, 10)
    other_product = await theirs.product(admin, 10)
    my_order = await _order(client, mine, product["sku"])
    their_order = await _order(client, theirs, other_product["sku"])

    listed = (await client.get("/v1/orders", params={"limit": 200}, headers=mine.headers)).json()[
        "data"
    ]
    assert {o["channel_id"] for o in listed} == {mine.channel["id"]}
    assert my_order["id"] in {o["id"] for o in listed}
    for method, path, body in [
        ("GET", "", None), ("GET", "/events", None), ("POST", "/cancel", None),
        ("POST", "/hold", None), ("POST", "/release", None),
        ("POST", "/payments", {"kind": "capture", "amount": 1}),
    ]:  # fmt: skip
        response = await client.request(
            method, f"/v1/orders/{their_order['id']}{path}", json=body, headers=mine.headers
        )
        assert response.status_code == 404, (method, path, response.text)
    customer = await client.get(f"/v1/customers/{their_order['customer_id']}", headers=mine.headers)
    assert customer.status_code == 404
    history = await client.get(
        f"/v1/customers/{their_order['customer_id']}/orders", headers=mine.headers
    )
    assert history.status_code == 404
    still = (await client.get(f"/v1/orders/{their_order['id']}", headers=theirs.headers)).json()
    assert still["status"] == "pending"


async def test_the_housekeeping_job_expires_orders_by_itself(
    database_url: str, admin: httpx.AsyncClient
) -> None:
    from tests.conftest import make_settings

    app = create_app(make_settings(database_url, pending_order_ttl=1, maintenance_interval=0.2))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        shop = await Shop.open(admin)
        product = await shop.product(admin, 3)
        order = await _order(c, shop, product["sku"], 2)
        assert order["status"] == "pending"
        for _ in range(50):
            await asyncio.sleep(0.1)
            current = (await c.get(f"/v1/orders/{order['id']}", headers=shop.headers)).json()
            if current["status"] == "cancelled":
                break
        assert current["status"] == "cancelled"
        assert (await inventory(admin, product["sku"]))["reserved"] == 0


async def test_expires_at_is_set_only_while_the_order_can_expire(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found following the README: a delivered (and a paid, held) order still showed an
    `expires_at` a day after placement, a time at which nothing will happen to it. It is
    the time an unpaid `pending` order expires; `null` while none can."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5, unit_price=1000)
    order = await _order(client, shop, product["sku"], 1)
    assert order["status"] == "pending"
    assert order["expires_at"] is not None
    url = f"/v1/orders/{order['id']}/payments"

    async def pay(kind: str, amount: int) -> dict:
        response = await client.post(
            url, json={"kind": kind, "amount": amount}, headers=shop.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    part = await pay("authorization", 400)  # in force: it cannot expire, still pending
    assert (part["status"], part["expires_at"]) == ("pending", None)
    voided = await pay("void", 400)  # nothing in force: it expires as placed
    assert (voided["status"], voided["expires_at"]) == ("pending", order["expires_at"])
    confirmed = await pay("capture", 1000)
    assert (confirmed["status"], confirmed["expires_at"]) == ("confirmed", None)
    read = await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)
    assert read.json()["expires_at"] is None
    held = await _order(client, shop, product["sku"], 1, payment={"method": "invoice"})
    assert held["status"] == "confirmed"
    assert held["expires_at"] is None
