"""Engine, transactions and the request's unit of work.

A request gets one `AsyncSession` in one transaction: committed when the endpoint returns,
rolled back when it raises. Services never commit. No web framework here: the request's
dependency on it is `api.deps.SessionDep`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.util import greenlet_spawn

from oms_api.settings import Settings

if TYPE_CHECKING:
    from oms_api.replica import ReadReplica


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


def create_engine(
    settings: Settings,
    url: str,
    *,
    connect_timeout: float | None = None,
    command_timeout: float | None = None,
    **overrides: Any,
) -> AsyncEngine:
    """The pool of connections to `url`; `connect_timeout` (seconds) instead of asyncpg's 60;
    `command_timeout`: seconds after which asyncpg gives up waiting for any statement's
    answer (none by default)."""
    # TimeZone UTC: times PostgreSQL renders as text (its JSON functions) come in UTC, so a
    # time near year 9999 is not written as year 10000 of some zone east of it.
    server_settings = {"application_name": "oms-api", "TimeZone": "UTC"}
    if settings.statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
    # A transaction of ours left open and idle (a bug, a stuck await) ends after this, so it
    # cannot hold the event feed's and the notifier's horizon back for longer.
    if settings.idle_in_transaction_timeout_ms:
        server_settings["idle_in_transaction_session_timeout"] = str(
            settings.idle_in_transaction_timeout_ms
        )
    options: dict[str, Any] = {
        "json_serializer": lambda value: orjson.dumps(value).decode(),
        "json_deserializer": orjson.loads,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_pre_ping": False,
        "connect_args": {"server_settings": server_settings},
    }
    if connect_timeout is not None:
        options["connect_args"]["timeout"] = connect_timeout
    if command_timeout is not None:
        options["connect_args"]["command_timeout"] = command_timeout
    options.update(overrides)
    return create_async_engine(async_url(url), **options)


def causes(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it wraps (SQLAlchemy keeps the driver's as `orig`/`__cause__`);
    not `__context__`: an error raised while handling another is not caused by it."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 10:
            continue
        seen.append(current)
        pending += [current.__cause__, getattr(current, "orig", None)]
    return seen


def unreachable(exc: BaseException) -> str | None:
    """Why the database could not be reached, or dropped the connection, if that is what
    `exc` (or what it wraps) says — the server down, restarting or refusing — in one line;
    None for anything else."""
    for error in causes(exc):
        if isinstance(
            error,
            OSError
            | asyncpg.CannotConnectNowError
            | asyncpg.TooManyConnectionsError
            | asyncpg.AdminShutdownError
            | asyncpg.ConnectionDoesNotExistError,
        ):
            return " ".join(str(error).split()) or type(error).__name__
    return None


class PassFailures:
    """How a background loop (housekeeping, the notifier, the dispatcher) logs its passes'
    failures: a database that cannot be reached once per outage, in one line — it is the
    server's state, and a traceback every pass while it restarts buries everything else —
    and anything else with its traceback, every time."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what
        self._down = False

    def failed(self) -> None:
        """Call in the `except` block of a failed pass."""
        exc = sys.exc_info()[1]
        reason = unreachable(exc) if exc is not None else None
        if reason is None:
            self._log.exception("%s failed; will retry", self._what)
        elif not self._down:
            self._down = True
            self._log.warning(
                "%s: cannot reach the database (%s); retrying until it answers",
                self._what, reason,
            )  # fmt: skip

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            self._log.info("%s: the database answers again", self._what)


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
    """The connection pool, and the ways to hold one of its connections: in a transaction
    (asyncpg alone, or an ORM session), or for a lone statement. A transaction is ours: BEGIN, then COMMIT when the block ends
    or ROLLBACK when it raises; a connection interrupted mid-transaction is never reused.

    With a `replica` (OMS_READ_DATABASE_URL), `read_session` reads from it while it is
    healthy and close enough (`replica.ReadReplica`)."""

    def __init__(self, engine: AsyncEngine, *, replica: ReadReplica | None = None) -> None:
        self.engine = engine
        self.replica = replica

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
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled asyncpg connection in no transaction: each statement commits alone — one
        round trip for a lone read (authenticating the caller of a read on the replica)."""
        pooled = await self.engine.raw_connection()
        conn: asyncpg.Connection = pooled.driver_connection
        try:
            yield conn
        finally:
            if conn.is_closed() or conn.is_in_transaction():  # interrupted: never reuse it
                await greenlet_spawn(pooled.invalidate)
            await greenlet_spawn(pooled.close)

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """An ORM session in our transaction; `driver_connection(session)` gives the same
        connection as asyncpg, in the same transaction."""
        return engine_session(self.engine)

    @asynccontextmanager
    async def read_session(self, *, primary: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in a READ ONLY transaction for a read that may lag the primary (a
        list, a report, the event feed): on the replica while it serves reads (then
        `on_replica(session)`), else — or with `primary` — on the primary. A failure of the
        replica, or an answer it gives that the primary might not (a not-found, an unknown
        reference), raises `replica.ReadOnPrimary`: the caller reads again with
        `primary=True`."""
        if self.replica is not None and not primary:
            async with self.replica.session() as session:
                if session is not None:
                    yield session
                    return
        async with engine_session(self.engine, begin=READ_ONLY_BEGIN) as session:
            yield session

    async def dispose(self) -> None:
        if self.replica is not None:
            await self.replica.dispose()
        await self.engine.dispose()


READ_ONLY_BEGIN = "BEGIN READ ONLY"


@asynccontextmanager
async def engine_session(
    engine: AsyncEngine, *, begin: str = "BEGIN"
) -> AsyncIterator[AsyncSession]:
    """An ORM session on one of `engine`'s connections, in a transaction opened with `begin`.
    SQLAlchemy runs the connection in its autocommit mode, so it never sends BEGIN or COMMIT
    itself."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        conn: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
        session = AsyncSession(bind=connection, expire_on_commit=False, autoflush=False)
        try:
            async with _begun(conn, begin):
                yield session
                await session.flush()
        finally:
            await session.close()
            if conn.is_closed() or conn.is_in_transaction():
                await connection.invalidate()


def on_replica(session: AsyncSession) -> bool:
    """Whether `session` reads from the replica (`Database.read_session`)."""
    return bool(session.info.get(ON_REPLICA))


ON_REPLICA = "oms_on_replica"
