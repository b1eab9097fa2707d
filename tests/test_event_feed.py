"""The event feed never skips an event, even one whose transaction commits late."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg
import httpx
import pytest

from oms_api.ids import new_id
from oms_api.main import create_app
from tests.conftest import LiveServer, free_port, make_settings, service_env, start_worker
from tests.factories import Shop, create_key, order_body, place
from tests.receiver import Receiver


async def _drain(
    client: httpx.AsyncClient, after: str | None, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    seen: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"after": after} if after else {})
        response = await client.get("/v1/events", params=params, headers=headers or {})
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(page["data"])
        if not page["data"]:
            return seen, after
        after = page["next_cursor"]


async def test_feed_pages_oldest_first_and_filters(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    _, start = await _drain(admin, None)
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    order = (
        await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    ).json()
    await client.post(f"/v1/orders/{order['id']}/cancel", headers=shop.headers)
    events, _ = await _drain(admin, start)
    mine = [e for e in events if e["order_id"] == order["id"]]
    assert [e["type"] for e in mine] == ["order.created", "order.cancelled"]
    assert mine[1]["data"]["status"] == "cancelled"
    only = (
        await admin.get(
            "/v1/events", params={"after": start, "type": "order.cancelled", "limit": 200}
        )
    ).json()["data"]
    assert order["id"] in {e["order_id"] for e in only}
    assert {e["type"] for e in only} == {"order.cancelled"}
    unknown = await admin.get("/v1/events", params={"type": "order.created,order.exploded"})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "validation_error")
    assert "order.exploded" in unknown.json()["detail"]
    assert {"order.created", "order.cancelled"} <= set(unknown.json()["event_types"])
    assert "order.cancelled" in unknown.json()["detail"]  # what it could have asked for
    assert (await admin.get("/v1/events", params={"after": "evt_nope"})).status_code == 422
    # A channel key sees its channel's events only (from its own start: another channel's
    # event id is no cursor for it, tests/test_channel_fence.py).
    other = await Shop.open(admin)
    reader = await create_key(admin, ["orders:read"], other.channel["id"])
    theirs, _ = await _drain(client, None, {"Authorization": f"Bearer {reader['secret']}"})
    assert order["id"] not in {e["order_id"] for e in theirs}


async def test_an_event_committing_late_is_not_skipped(
    database_url: str, admin: httpx.AsyncClient
) -> None:
    _, start = await _drain(admin, None)
    early, late = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        slow = early.transaction()
        await slow.start()
        slow_id = new_id("evt")  # inserted first (lower position), committed last
        await early.execute(
            "INSERT INTO events (id, type, data) VALUES ($1, 'order.created', '{}')", slow_id
        )
        fast_id = new_id("evt")
        await late.execute(
            "INSERT INTO events (id, type, data) VALUES ($1, 'order.created', '{}')", fast_id
        )

        seen, cursor = await _drain(admin, start)
        assert fast_id not in {e["id"] for e in seen}  # held back behind the open transaction
        await slow.commit()
        rest, _ = await _drain(admin, cursor)
        ids = [e["id"] for e in seen + rest]
        assert slow_id in ids
        assert fast_id in ids
        assert ids.index(slow_id) < ids.index(fast_id)
    finally:
        await early.close()
        await late.close()


async def test_an_orders_events_keep_their_sequence_in_the_feed_whatever_the_writers_ids(
    database_url: str, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """A transaction takes its id when it first writes or locks, which may be before an
    earlier holder of the order's lock took its own: a concurrency tester fired thirty
    holds and releases of one order at two servers, and the feed (commit order: txid,
    position) gave its `order.cancelled`, sequence 28, before its `order.on_hold` 19-25.
    Here an older transaction records the order's next event after a newer one (a hold
    through the API) has committed its own."""
    _, start = await _drain(admin, None)
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    placed = await place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    older = await asyncpg.connect(database_url)
    try:
        async with older.transaction():
            await older.fetchval("SELECT pg_current_xact_id()")  # its id, before the hold's
            held = await admin.post(f"/v1/orders/{order_id}/hold", json={"reason": "check"})
            assert held.status_code == 200, held.text
            await older.execute(
                "SELECT oms_record_events($1, $2::jsonb, '{}'::json)",
                order_id, f'[{{"id": "{new_id("evt")}", "type": "order.released"}}]',
            )  # fmt: skip
        seen, _ = await _drain(admin, start)
    finally:
        await older.close()
    sequences = [e["sequence"] for e in seen if e["order_id"] == order_id]
    assert sequences == sorted(sequences)
    assert sequences[-2:] == [sequences[-1] - 1, sequences[-1]]
    assert [e["type"] for e in seen if e["order_id"] == order_id][-2:] == [
        "order.on_hold", "order.released",
    ]  # fmt: skip


async def test_the_feed_under_concurrent_placements_never_skips(
    database_url: str, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    _, cursor = await _drain(admin, None)
    shop = await Shop.open(admin)
    product = await shop.product(admin, 500)
    polled: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def poll() -> None:
        nonlocal cursor
        while not done.is_set():
            page, cursor = await _drain(admin, cursor)
            polled.extend(page)
            await asyncio.sleep(0.01)

    poller = asyncio.create_task(poll())
    responses = await asyncio.gather(
        *(
            place(client, order_body(None, [(product["sku"], 1)]), headers=shop.headers)
            for _ in range(60)
        )
    )
    done.set()
    await poller
    final, _ = await _drain(admin, cursor)
    polled.extend(final)
    order_ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(order_ids) == 60
    conn = await asyncpg.connect(database_url)
    try:
        expected = {
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM events WHERE order_id = ANY($1)", list(order_ids)
            )
        }
    finally:
        await conn.close()
    got = [e["id"] for e in polled if e["order_id"] in order_ids]
    assert len(got) == len(set(got))  # no duplicates
    assert set(got) == expected  # and none skipped


async def test_no_event_is_lost_when_the_server_is_killed(
    database_url: str, admin: httpx.AsyncClient
) -> None:
    """Receiver down, orders placed, the server SIGKILLed; a new worker delivers all."""
    port = free_port()
    shop = await Shop.open(admin)
    product = await shop.product(admin, 100)
    endpoint = (
        await admin.post(
            "/v1/webhook-endpoints",
            json={
                "url": f"http://127.0.0.1:{port}/hook",
                "events": ["*"],
                "channel_id": shop.channel["id"],
            },
        )
    ).json()
    server = LiveServer(service_env(DATABASE_URL=database_url), "--no-migrate")
    server.wait_ready()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        orders = [
            (
                await http.post(
                    "/v1/orders", json=order_body(None, [(product["sku"], 1)]), headers=shop.headers
                )
            ).json()
            for _ in range(10)
        ]
    await asyncio.sleep(0.5)  # the dispatcher tries, and fails: nothing listens
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    receiver = Receiver().start(port=port)
    worker = start_worker(service_env(DATABASE_URL=database_url))  # the only dispatcher now
    try:
        expected = {o["id"] for o in orders}
        events = await receiver.wait_for(
            lambda ev: (
                expected <= {e["data"].get("id") for e in ev if e["type"] == "order.created"}
            ),
            seconds=60,
        )
        assert {e["data"]["id"] for e in events if e["type"] == "order.created"} >= expected
    finally:
        worker.terminate()
        worker.wait(30)
        receiver.stop()
    delivered = (
        await admin.get(
            "/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"], "limit": 200}
        )
    ).json()["data"]
    assert len(delivered) == 10


async def test_a_long_transaction_in_another_database_holds_nothing_back(
    server_url: str, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Transaction ids are the server's, but only this database's transactions can still
    commit events here: one open elsewhere (a report, a bulk load) does not delay the feed.
    One open here does (the feed never skips)."""
    _, cursor = await _drain(admin, None)
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    elsewhere = await asyncpg.connect(server_url)  # the server's `postgres` database
    try:
        async with elsewhere.transaction():
            await elsewhere.fetchval("SELECT pg_current_xact_id()")  # holds an xid, open
            placed = await place(client, order_body(None, [(product["sku"], 1)]),
                                 headers=shop.headers)  # fmt: skip
            assert placed.status_code == 201, placed.text
            seen, _ = await _drain(admin, cursor)
            assert placed.json()["id"] in {e["order_id"] for e in seen}
    finally:
        await elsewhere.close()


async def test_a_paid_placement_stores_its_document_once_and_every_reader_has_it(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, database_url: str
) -> None:
    """A paid order's three placement events carry one document: the database keeps it
    once (the later two store none), and the feed and the order's timeline give each
    event the whole document, as the response had it."""
    _, start = await _drain(admin, None)
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    body = order_body(None, [(product["sku"], 2)], payment={"method": "card", "status": "paid"})
    placed = await place(client, body, headers=shop.headers)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetch(
            "SELECT type, data IS NOT NULL AS kept FROM events WHERE order_id = $1 "
            "ORDER BY sequence",
            order["id"],
        )
    finally:
        await conn.close()
    assert [(r["type"], r["kept"]) for r in stored] == [
        ("order.created", True), ("payment.recorded", False), ("order.confirmed", False),
    ]  # fmt: skip
    events, _ = await _drain(admin, start)
    mine = [e for e in events if e["order_id"] == order["id"]]
    assert [e["type"] for e in mine] == ["order.created", "payment.recorded", "order.confirmed"]
    assert all(e["data"] == order for e in mine)
    timeline = (await client.get(f"/v1/orders/{order['id']}/events", headers=shop.headers)).json()
    assert [e["data"] for e in timeline["data"]] == [order, order, order]
    # A later event has its own document again.
    cancelled = await client.post(f"/v1/orders/{order['id']}/cancel", headers=shop.headers)
    assert cancelled.status_code == 200, cancelled.text
    timeline = (await client.get(f"/v1/orders/{order['id']}/events", headers=shop.headers)).json()
    assert timeline["data"][-1]["data"]["status"] == "cancelled"
    assert timeline["data"][1]["data"] == order


async def test_an_event_without_data_is_refused(database_url: str) -> None:
    """A stored NULL means "the data of the order's earlier event": the event path refuses
    an event that has no data of its own and none given for it, rather than store one."""
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.RaiseError, match="an event without data"):
            await conn.execute(
                """SELECT oms_record_events(NULL, '[{"id": "evt_nodata", "type": "inventory.low_stock"}]')"""
            )
        assert await conn.fetchval("SELECT count(*) FROM events WHERE id = 'evt_nodata'") == 0
    finally:
        await conn.close()


async def test_the_services_own_idle_transactions_end_so_they_cannot_hold_the_feed(
    database_url: str,
) -> None:
    """Any open transaction holds the feed back; one of the service's own left idle is
    ended by PostgreSQL after OMS_IDLE_IN_TRANSACTION_TIMEOUT_MS."""
    app = create_app(make_settings(database_url, idle_in_transaction_timeout_ms=300))
    async with app.router.lifespan_context(app):

        async def idle_in_a_transaction() -> None:
            async with app.state.database.transaction() as conn:
                setting = await conn.fetchval("SHOW idle_in_transaction_session_timeout")
                assert setting == "300ms"
                await conn.fetchval("SELECT pg_current_xact_id()")
                await asyncio.sleep(1)  # idle, in a transaction that holds the feed back
                await conn.fetchval("SELECT 1")

        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await idle_in_a_transaction()
