"""Engine, transactions and the request's unit of work.

A request gets one `AsyncSession` in one transaction: committed when the endpoint returns,
rolled back when it raises. Services never commit. No web framework here: the request's
dependency on it is `api.deps.SessionDep`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
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
    # TimeZone UTC: times PostgreSQL renders as text (its JSON functions) come in UTC, so a
    # time near year 9999 is not written as year 10000 of some zone east of it.
    server_settings = {"application_name": "oms-api", "TimeZone": "UTC"}
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


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session` (from `Database.session`, whose transaction is
    already open), for hand-written SQL in the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


# One round trip opens the transaction and tells PostgreSQL to keep one generic plan per
# prepared statement: the hot path's statements are keyed lookups whose plan does not depend
# on the values, and re-planning them for every call (PostgreSQL's default when array
# parameters make the custom plans look cheaper) cost ~0.3 ms of its CPU per order.
HOT_PATH_BEGIN = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"


@asynccontextmanager
async def _begun(conn: asyncpg.Connection, begin: str) -> AsyncIterator[asyncpg.Connection]:
    """`conn` in a transaction we open: committed when the block ends, rolled back when it
    raises (a connection that could not roll back is discarded by the caller)."""
    await conn.execute(begin)
    try:
        yield conn
    except BaseException:
        with suppress(Exception):  # a broken connection is discarded by the caller
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


class Database:
    """The connection pool, and the two ways to hold one of its connections in a
    transaction. Either way the transaction is ours: BEGIN, then COMMIT when the block ends
    or ROLLBACK when it raises; a connection interrupted mid-transaction is never reused."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def transaction(self, *, begin: str = "BEGIN") -> AsyncIterator[asyncpg.Connection]:
        """Plain asyncpg: one pool checkout and nothing per statement — for the hot path
        (order placement), which needs neither the ORM nor a session."""
        pooled = await self.engine.raw_connection()
        conn: asyncpg.Connection = pooled.driver_connection
        try:
            async with _begun(conn, begin):
                yield conn
        finally:
            if conn.is_closed() or conn.is_in_transaction():  # interrupted: never reuse it
                await greenlet_spawn(pooled.invalidate)
            await greenlet_spawn(pooled.close)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session in our transaction; `driver_connection(session)` gives the same
        connection as asyncpg, in the same transaction. SQLAlchemy runs the connection in
        its autocommit mode, so it never sends BEGIN or COMMIT itself."""
        async with self.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            conn: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
            session = AsyncSession(bind=connection, expire_on_commit=False, autoflush=False)
            try:
                async with _begun(conn, "BEGIN"):
                    yield session
                    await session.flush()
            finally:
                await session.close()
                if conn.is_closed() or conn.is_in_transaction():
                    await connection.invalidate()

    async def dispose(self) -> None:
        await self.engine.dispose()
