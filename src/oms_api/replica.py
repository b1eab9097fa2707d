"""The streaming replica that lists, reports and the event feed read from.

With `OMS_READ_DATABASE_URL` set, `ReadReplica` checks the replica every
`OMS_READ_CHECK_INTERVAL` seconds: is it reachable, is it a standby, how far behind the
primary is it. Reads go to it while it is `ok`; while it is `down` or `lagging` (more than
`OMS_READ_MAX_LAG_SECONDS` behind) they go to the primary, and come back by themselves
once a check finds it healthy again. Each change of state is logged once, not per request.

A read that fails on the replica — the connection lost, the server shutting down, a query
cancelled by a conflict with recovery — is read again on the primary (`ReadOnPrimary`),
and so is one the replica answers with a not-found or an unknown reference: the replica
may not have the resource yet, the primary decides. Everything here is read-only, so
reading again is always safe.

The lag is time, not bytes: each check notes the primary's WAL position, and the replica's
lag is how long ago the primary was at the position the replica has replayed (bounded by
the age of its last replayed commit, which is precise while writes stream in). A replica
that has replayed everything the primary had written at the check lags 0 s, however long
ago its last commit was; one that stopped receiving lags more and more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum

import asyncpg
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from oms_api.db import ON_REPLICA, READ_ONLY_BEGIN, causes, create_engine, engine_session
from oms_api.errors import NotFound, Unprocessable
from oms_api.settings import Settings

log = logging.getLogger("oms_api.replica")

# Seconds to wait for a connection to the replica: a request that finds it unreachable
# reads on the primary after at most this long (asyncpg's own default is 60).
CONNECT_TIMEOUT = 3.0
# Seconds past the statement timeout after which a statement sent to the replica is given
# up as lost (a replica cut off by the network sends no answer, not even the timeout's):
# the read is then done on the primary.
LOST_ANSWER_GRACE = 5.0

REPLICA_LAG = Gauge(
    "oms_read_replica_lag_seconds",
    "How far the read replica is behind the primary, at the last check (NaN: unreachable).",
    multiprocess_mode="mostrecent",
)
REPLICA_SERVING = Gauge(
    "oms_read_replica_serving",
    "1 while lists, reports and the event feed read from the replica; 0 while the primary "
    "answers them because the replica is down or lagging.",
    multiprocess_mode="mostrecent",
)
READ_FALLBACKS = Counter(
    "oms_read_fallbacks_total",
    "Reads answered by the primary although a read replica is configured, by reason: the "
    "replica was down or lagging, failed under the read (failed), cancelled it for a "
    "conflict with recovery (conflict), or did not know what it was asked about (stale).",
    ["reason"],
)

PRIMARY_POSITION_SQL = """
SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS written,
       (SELECT system_identifier FROM pg_control_system()) AS system
"""
REPLICA_POSITION_SQL = """
SELECT pg_is_in_recovery() AS standby,
       pg_last_wal_replay_lsn() - '0/0'::pg_lsn AS replayed,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) AS since_commit,
       (SELECT version_num FROM alembic_version) AS revision,
       (SELECT system_identifier FROM pg_control_system()) AS system
"""


class ReplicaState(StrEnum):
    OK = "ok"
    LAGGING = "lagging"
    DOWN = "down"


class ReadOnPrimary(Exception):
    """The read must be done again on the primary (its `reason`: failed, conflict, stale)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PrimaryFailed(Exception):
    """The primary failed during a read on the replica (authenticating its caller): the
    replica is not to blame. The primary's error is its `__cause__`."""


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    state: ReplicaState
    lag_seconds: float | None
    detail: str


class ReadReplica:
    """The replica's engine, its state at the last check, and the sessions reads use."""

    def __init__(
        self, engine: AsyncEngine, primary: AsyncEngine, *, revision: str, max_lag: float,
        check_interval: float,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.primary = primary
        self.revision = revision
        self.max_lag = max_lag
        self.check_interval = check_interval
        self.state: ReplicaState | None = None  # None: not checked yet, reads on the primary
        self.lag: float | None = None
        self.detail = "not checked yet"
        self._primary_system: int | None = None  # the primary cluster's system identifier
        # (monotonic time, the primary's WAL position then), oldest first.
        self._positions: deque[tuple[float, int]] = deque(maxlen=10_000)

    @classmethod
    def from_settings(
        cls, settings: Settings, primary: AsyncEngine, *, revision: str
    ) -> ReadReplica | None:
        """The replica of OMS_READ_DATABASE_URL, if set, for code whose schema is at
        `revision` (the migration head): a replica that has not replayed it serves no read."""
        if not settings.read_database_url:
            return None
        timeout = settings.statement_timeout_ms / 1000
        engine = create_engine(
            settings, settings.read_database_url, connect_timeout=CONNECT_TIMEOUT,
            command_timeout=timeout + LOST_ANSWER_GRACE if timeout else None,
            pool_size=settings.read_db_pool_size or settings.db_pool_size,
        )  # fmt: skip
        return cls(
            engine, primary, revision=revision, max_lag=settings.read_max_lag_seconds,
            check_interval=settings.read_check_interval,
        )  # fmt: skip

    @property
    def status(self) -> ReplicaStatus:
        return ReplicaStatus(self.state or ReplicaState.DOWN, self.lag, self.detail)

    # --- the reads ------------------------------------------------------------------------

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession | None]:
        """A session on the replica, in a READ ONLY transaction; None when the read belongs
        on the primary (the replica is down or lagging, or cannot be reached now). An
        exception from the block that the primary may answer otherwise becomes
        `ReadOnPrimary`."""
        if self.state is not ReplicaState.OK:
            READ_FALLBACKS.labels((self.state or ReplicaState.DOWN).value).inc()
            yield None
            return
        opened = engine_session(self.engine, begin=READ_ONLY_BEGIN)
        try:
            session = await opened.__aenter__()
        except Exception as exc:
            if not replica_failure(exc):
                raise
            await self.failed(exc)
            READ_FALLBACKS.labels("failed").inc()
            yield None
            return
        session.info[ON_REPLICA] = True
        try:
            yield session
        except Exception as exc:
            with suppress(Exception):  # the read is done again, or its error stands
                await opened.__aexit__(type(exc), exc, exc.__traceback__)
            reason = read_again_reason(exc)
            if reason is None:
                raise
            if reason == "failed":
                await self.failed(exc)
            READ_FALLBACKS.labels(reason).inc()
            raise ReadOnPrimary(reason) from exc
        except BaseException as exc:  # cancelled: give the connection back, re-raise
            with suppress(Exception):
                await opened.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        try:
            await opened.__aexit__(None, None, None)
        except Exception as exc:  # the read is complete: ending its transaction cannot spoil it
            if not replica_failure(exc):
                raise
            await self.failed(exc)

    async def failed(self, exc: BaseException) -> None:
        """A read found the replica unusable: down until a check finds it healthy."""
        await self._set(ReplicaState.DOWN, None, _describe(exc))

    # --- the checks -----------------------------------------------------------------------

    async def run(self) -> None:
        """Check every `check_interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check()
            except Exception:
                log.exception("read replica check failed; will retry")

    async def check(self) -> None:
        """Reach the replica, see that it is a standby of the primary's cluster at this code's
        schema, measure its lag; set the state."""
        with suppress(Exception):  # the primary's trouble is /readyz's, not the replica's
            async with self.primary.connect() as conn:
                primary = (await conn.exec_driver_sql(PRIMARY_POSITION_SQL)).one()
                self._positions.append((time.monotonic(), int(primary.written)))
                self._primary_system = int(primary.system)
        try:
            async with self.engine.connect() as conn:
                row = (await conn.exec_driver_sql(REPLICA_POSITION_SQL)).one()
        except Exception as exc:
            await self._set(ReplicaState.DOWN, None, _describe(exc))
            return
        if not row.standby:
            await self._set(
                ReplicaState.DOWN, None,
                "not a standby (pg_is_in_recovery() is false): its data may not follow the "
                "primary's",
            )  # fmt: skip
            return
        if self._primary_system is not None and int(row.system) != self._primary_system:
            await self._set(
                ReplicaState.DOWN, None,
                f"a standby of another cluster (system identifier {row.system}, the "
                f"primary's {self._primary_system})",
            )  # fmt: skip
            return
        since_commit = None if row.since_commit is None else float(row.since_commit)
        lag = self._lag(int(row.replayed), since_commit, time.monotonic())
        if row.revision != self.revision:
            await self._set(
                ReplicaState.LAGGING, lag,
                f"its schema is at {row.revision}, this code's at {self.revision}: a "
                "migration not replayed yet",
            )  # fmt: skip
        elif lag > self.max_lag:
            await self._set(
                ReplicaState.LAGGING, lag,
                f"{lag:.1f} s behind the primary (more than OMS_READ_MAX_LAG_SECONDS, "
                f"{self.max_lag:g} s)",
            )  # fmt: skip
        else:
            await self._set(ReplicaState.OK, lag, f"{lag:.1f} s behind the primary")

    def _lag(self, replayed: int, since_commit: float | None, now: float) -> float:
        """Seconds since the primary was at `replayed`, by the positions noted: 0 when the
        replica has everything of the last one; else at most the time since the newest one
        it has, and at most `since_commit` (its last replayed commit's age: whatever it
        misses came after that); behind all of them, at least the oldest one's age."""
        positions = self._positions
        if not positions or positions[-1][1] <= replayed:
            while len(positions) > 1:
                positions.popleft()
            return 0.0
        reached = next((t for t, p in reversed(positions) if p <= replayed), None)
        if reached is None:
            return max(now - positions[0][0], since_commit or 0.0)
        while positions[0][0] < reached:
            positions.popleft()
        bound = now - reached
        return max(0.0, min(bound, since_commit)) if since_commit is not None else bound

    async def _set(self, state: ReplicaState, lag: float | None, detail: str) -> None:
        previous = self.state
        self.state, self.lag, self.detail = state, lag, detail
        REPLICA_LAG.set(float("nan") if lag is None else lag)
        REPLICA_SERVING.set(1 if state is ReplicaState.OK else 0)
        if state is previous:
            return
        if state is ReplicaState.OK:
            log.info(
                "read replica ok (%s): lists, reports and the event feed read from it", detail,
                extra={"replica_state": state.value, "replica_lag_seconds": lag},
            )  # fmt: skip
        else:
            log.warning(
                "read replica %s (%s): lists, reports and the event feed read from the primary",
                state.value, detail,
                extra={"replica_state": state.value, "replica_lag_seconds": lag},
            )  # fmt: skip
        if state is ReplicaState.DOWN:
            # Its pooled connections are likely dead: start afresh when it is back.
            with suppress(Exception):
                await self.engine.dispose()

    async def dispose(self) -> None:
        await self.engine.dispose()


def read_again_reason(exc: BaseException) -> str | None:
    """Why a read that raised `exc` on the replica is read again on the primary; None when
    the primary would answer the same."""
    if isinstance(exc, PrimaryFailed):
        return None
    if replica_failure(exc):
        return "failed"
    if any(isinstance(cause, asyncpg.SerializationError) for cause in causes(exc)):
        return "conflict"  # "canceling statement due to conflict with recovery"
    if isinstance(exc, NotFound | Unprocessable):
        return "stale"
    return None


def replica_failure(exc: BaseException) -> bool:
    """Whether `exc` says the replica could not answer (unreachable, lost, shutting down,
    full): not a statement timeout, which the primary would hit as well."""
    return any(
        isinstance(
            cause,
            OSError
            | TimeoutError
            | asyncpg.PostgresConnectionError
            | asyncpg.InterfaceError
            | asyncpg.CannotConnectNowError
            | asyncpg.AdminShutdownError
            | asyncpg.CrashShutdownError
            | asyncpg.TooManyConnectionsError,
        )
        for cause in causes(exc)
    )


def _describe(exc: BaseException) -> str:
    cause = next(
        (c for c in reversed(causes(exc)) if not c.__class__.__module__.startswith("sqlalchemy")),
        exc,
    )
    return f"{type(cause).__name__}: {cause}".strip().removesuffix(":")
