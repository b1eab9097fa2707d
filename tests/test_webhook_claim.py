"""The webhook dispatcher's claim (`webhooks.dispatcher.CLAIM_SQL`), asked directly on a
database of its own: which due deliveries a pass takes when slots are scarce."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from oms_api import migrations_runner
from oms_api.webhooks.dispatcher import CLAIM_SQL
from tests.conftest import create_database, drop_database


@pytest.fixture
async def conn(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    url = await create_database(server_url)
    try:
        await asyncio.to_thread(migrations_runner.upgrade, url)
        connection = await asyncpg.connect(url)
        try:
            yield connection
        finally:
            await connection.close()
    finally:
        await drop_database(url)


async def test_a_freed_slot_goes_to_the_endpoint_with_the_fewest_in_flight(
    conn: asyncpg.Connection,
) -> None:
    """Two endpoints that hang hold slots and have older backlogs; a healthy one has none in
    flight. One slot frees (a hanging request timed out): the healthy endpoint's delivery
    takes it, not the oldest of a hanging endpoint's backlog — else, as slots free one at a
    time, a healthy endpoint waits behind every hanging one's backlog."""
    for endpoint in ("whe_hang_a", "whe_hang_b", "whe_healthy"):
        await conn.execute(
            "INSERT INTO webhook_endpoints (id, url, events, secret) "
            "VALUES ($1, 'https://hooks.example.com/' || $1, '{*}', 'whsec_x')",
            endpoint,
        )
    for n in range(6):  # each event fans out to all three; backlogs oldest first
        await conn.execute(
            "INSERT INTO events (id, type, data) VALUES ($1, 'inventory.low_stock', '{}')",
            f"evt_claim_{n}",
        )
    await conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() - make_interval(mins => "
        "CASE endpoint_id WHEN 'whe_hang_a' THEN 30 WHEN 'whe_hang_b' THEN 20 ELSE 10 END)"
    )
    in_flight = {"whe_hang_a": 3, "whe_hang_b": 2}
    fast: list[str] = []  # none seen answering fast: each may hold 8 slots of the 32
    claimed = await conn.fetch(
        CLAIM_SQL, 1, 30.0, list(in_flight), list(in_flight.values()), 8, fast, 32
    )
    assert [row["endpoint_id"] for row in claimed] == ["whe_healthy"]
    # With slots for all, every endpoint below its cap gets its share, fewest in flight first.
    claimed = await conn.fetch(
        CLAIM_SQL, 3, 30.0, ["whe_hang_a", "whe_hang_b", "whe_healthy"], [3, 2, 1], 8, fast, 32
    )
    assert sorted(row["endpoint_id"] for row in claimed) == [
        "whe_hang_b",
        "whe_healthy",
        "whe_healthy",
    ]


async def test_a_healthy_endpoint_may_use_every_slot_a_slow_one_its_share(
    conn: asyncpg.Connection,
) -> None:
    """One busy endpoint and nobody else: capped at 8 per process it drained slower than a
    busy shop placed orders (the chaos run left 583 of 4,152 events undelivered after a
    minute). Fast (the dispatcher saw it answer within a second), it takes every free slot;
    otherwise no more than its share."""
    await conn.execute(
        "INSERT INTO webhook_endpoints (id, url, events, secret) "
        "VALUES ('whe_busy', 'https://hooks.example.com/busy', '{*}', 'whsec_x')"
    )
    for n in range(40):
        await conn.execute(
            "INSERT INTO events (id, type, data) VALUES ($1, 'inventory.low_stock', '{}')",
            f"evt_busy_{n:02}",
        )
    claimed = await conn.fetch(CLAIM_SQL, 30, 30.0, ["whe_busy"], [2], 8, ["whe_busy"], 32)
    assert len(claimed) == 30  # fast: 32 slots, 2 in flight
    await conn.execute("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 s'")
    claimed = await conn.fetch(CLAIM_SQL, 30, 30.0, ["whe_busy"], [2], 8, [], 32)
    assert len(claimed) == 6  # not known fast: 8, of which 2 are in flight
