"""Migrations that reshape data carry existing rows over: each test fills a database at the
revision before one, upgrades through it, and checks what became of every row — then
downgrades and checks again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from oms_api import migrations_runner
from tests.conftest import create_database, drop_database


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    url = await create_database(server_url)
    try:
        yield url
    finally:
        await drop_database(url)


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
