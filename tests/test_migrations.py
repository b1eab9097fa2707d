"""The migrations are the schema: up, down to nothing, up again, and equal to the models;
the database functions they install equal their source files (src/oms_api/sql/)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from oms_api import migrations_runner
from oms_api.db import async_url
from oms_api.models import Base
from oms_api.sql import function_sources
from tests.conftest import create_database, drop_database
from tests.db_functions import TRIGGERS, function_drift


async def _diff_and_tables(url: str) -> tuple[list[Any], set[str]]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:

            def inspect_sync(sync_conn: Any) -> tuple[list[Any], set[str]]:
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata), set(
                    inspect(sync_conn).get_table_names()
                )

            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def _function_drift(
    url: str, sources: dict[str, str], triggers: dict[str, tuple[str, str, str]] = TRIGGERS
) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return await function_drift(conn, sources, triggers)
    finally:
        await conn.close()


def test_there_is_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(migrations_runner.alembic_config("postgresql://x/y"))
    assert len(script.get_heads()) == 1


# What alembic's comparison does not see: the tables kept with room on each page for HOT
# updates (migration 0018; the models' docstrings say why).
STORAGE_PARAMETERS = {
    "inventory_levels": ["fillfactor=25"],
    "stock_totals": ["fillfactor=25"],
}


async def _storage_parameters(url: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT relname, reloptions FROM pg_class
               WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace
                 AND reloptions IS NOT NULL"""
        )
        return {r["relname"]: list(r["reloptions"]) for r in rows}
    finally:
        await conn.close()


@pytest.mark.filterwarnings("ignore:Did not recognize type 'xid8'")  # reflected as NullType
async def test_upgrade_downgrade_upgrade_matches_models(server_url: str) -> None:
    url = await create_database(server_url)
    try:
        await asyncio.to_thread(migrations_runner.upgrade, url)
        diff, tables = await _diff_and_tables(url)
        assert diff == []
        assert set(Base.metadata.tables) <= tables
        assert await _function_drift(url, function_sources()) == []

        await asyncio.to_thread(migrations_runner.downgrade, url, "base")
        diff, tables = await _diff_and_tables(url)
        assert tables <= {"alembic_version"}
        assert await _function_drift(url, {}, {}) == []  # no function, no trigger left

        await asyncio.to_thread(migrations_runner.upgrade, url)
        diff, tables = await _diff_and_tables(url)
        assert diff == []
        assert set(Base.metadata.tables) <= tables
        assert await _function_drift(url, function_sources()) == []
        assert await _storage_parameters(url) == STORAGE_PARAMETERS
    finally:
        await drop_database(url)
