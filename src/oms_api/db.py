"""Engine, sessions and the request's unit of work.

A request gets one `AsyncSession` in one transaction: committed when the endpoint returns,
rolled back when it raises. Services never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from oms_api.settings import Settings


def async_url(url: str) -> str:
    """`postgresql://…` (or `postgres://`) as the `postgresql+asyncpg://…` SQLAlchemy wants.

    libpq's `sslmode` becomes asyncpg's `ssl`; other libpq-only options are dropped.
    """
    parts = urlsplit(url)
    scheme = "postgresql+asyncpg"
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "sslmode":
            query.append(("ssl", value))
        elif key in {"host", "port", "ssl", "prepared_statement_cache_size", "server_settings"}:
            query.append((key, value))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def libpq_url(url: str) -> str:
    """The same URL in the plain `postgresql://` form psql and asyncpg accept."""
    parts = urlsplit(async_url(url))
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def create_engine(settings: Settings, url: str, **overrides: Any) -> AsyncEngine:
    server_settings = {"application_name": "oms-api"}
    if settings.statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
    options: dict[str, Any] = {
        "json_serializer": lambda value: orjson.dumps(value).decode(),
        "json_deserializer": orjson.loads,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": False,
        "connect_args": {"server_settings": server_settings},
    }
    options.update(overrides)
    return create_async_engine(async_url(url), **options)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, inside the session's transaction.

    For the hot paths, which send hand-written SQL through asyncpg directly. SQLAlchemy
    sends BEGIN lazily with its first statement; if it has not yet, start it here so the
    raw statements are part of the request's transaction, not autocommitted.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapted = raw.dbapi_connection
    if getattr(adapted, "_transaction", True) is None:
        await adapted._start_transaction()  # type: ignore[union-attr]
    elif not raw.driver_connection.is_in_transaction():  # type: ignore[union-attr]
        await conn.exec_driver_sql("SELECT 1")
    return raw.driver_connection


# One round trip opens the transaction and tells PostgreSQL to keep one generic plan per
# prepared statement: the hot path's statements are keyed lookups whose plan does not depend
# on the values, and re-planning them for every call (PostgreSQL's default when array
# parameters make the custom plans look cheaper) cost ~0.3 ms of its CPU per order.
HOT_PATH_BEGIN = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"


@asynccontextmanager
async def driver_transaction(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A connection from the engine's pool as plain asyncpg, in a transaction: committed
    when the block ends, rolled back when it raises.

    For the hot path (order placement), which needs neither the ORM nor a session: one pool
    checkout and one asyncpg transaction, nothing per statement. The same pool as every
    session, so the process never holds more connections than `db_pool_size` + overflow.
    """
    pooled = await engine.raw_connection()
    conn: asyncpg.Connection = pooled.driver_connection
    try:
        await conn.execute(HOT_PATH_BEGIN)
        try:
            yield conn
        except BaseException:
            with suppress(Exception):  # a broken connection is discarded below
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
    finally:
        if conn.is_closed() or conn.is_in_transaction():  # interrupted: never reuse it
            await greenlet_spawn(pooled.invalidate)
        await greenlet_spawn(pooled.close)


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction: commit on return, roll back on any exception."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


# scope="function": the commit runs when the endpoint returns, before the response is sent,
# so a failed commit is answered as an error and never as a success.
SessionDep = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]
