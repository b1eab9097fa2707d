"""Dependencies every router shares: who is calling, paging, If-Match, Idempotency-Key,
and the read session of lists, reports and the event feed (`ReadRoute`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import Depends, Header, Query, Request
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel, BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from oms_api.api.problems import ProblemDetail, problem_responses
from oms_api.api.routing import Route
from oms_api.db import Database, driver_connection, on_replica
from oms_api.domain.access import Principal, Scope
from oms_api.domain.rate_limit import TokenBuckets, retry_after_header
from oms_api.errors import Forbidden, Problem, TooManyRequests
from oms_api.replica import PrimaryFailed, ReadOnPrimary
from oms_api.services import access, idempotency
from oms_api.services.pagination import DEFAULT_LIMIT, MAX_LIMIT


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction (`db.Database.session`): committed when the endpoint
    returns, rolled back on any exception."""
    database: Database = request.app.state.database
    async with database.session() as session:
        yield session


# scope="function": the commit runs when the endpoint returns, before the response is sent,
# so a failed commit is answered as an error and never as a success.
SessionDep = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


# `async def`, as every dependency here that awaits nothing: FastAPI runs a plain `def` in
# its thread pool, a hand-off to a worker thread and back on every request.
async def read_session(request: Request) -> AsyncSession:
    """The read's session, opened by `ReadRoute`: on the replica while it serves reads, else
    on the primary; READ ONLY either way."""
    session: AsyncSession | None = getattr(request.state, "read_session", None)
    if session is None:
        raise RuntimeError("ReadSessionDep is for routes of a router with route_class=ReadRoute")
    return session


# Lists, reports and the event feed: what may lag the primary by the replica's lag. A single
# resource (a resource just written), commands and creates stay on the primary (SessionDep).
ReadSessionDep = Annotated[AsyncSession, Depends(read_session)]


class ReadRoute(Route):
    """A route whose endpoint asks for `ReadSessionDep` runs in a read session opened here
    (`Database.read_session`) and closed before the response is sent; when the replica
    fails under it, or answers with a not-found or an unknown reference
    (`replica.ReadOnPrimary`), the endpoint runs again on the primary, whose answer is the
    one given. Other routes of the router run as any route does."""

    def endpoint_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().endpoint_handler()
        if not _depends_on(self.dependant, read_session):
            return handler

        async def read_handler(request: Request) -> Response:
            database: Database = request.app.state.database
            try:
                async with database.read_session() as session:
                    request.state.read_session = session
                    return await handler(request)
            except ReadOnPrimary:
                async with database.read_session(primary=True) as session:
                    request.state.read_session = session
                    return await handler(request)

        return read_handler


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _null_as_empty(value: Any) -> Any:
    return {} if value is None else value


# In an optional command body's annotation, with `Body(default_factory=TheModel)`: no body,
# `{}` and `null` all mean the model's defaults. The document shows the body as the model
# alone, not `anyOf [model, null]`, so that generated clients may leave it out (a nullable
# body makes openapi-python-client send its `Unset` marker as JSON).
NULL_AS_EMPTY = BeforeValidator(_null_as_empty)


async def authorize(
    request: Request, conn: asyncpg.Connection, scope: Scope | None, *, unbound: bool = False
) -> Principal:
    """The caller, within its rate limit, holding `scope` (or `admin`) when one is given:
    else 401, 429 or 403. With `unbound`, a key bound to a channel is refused first (403
    `channel_bound_key`, whatever its scopes)."""
    principal, _ = await _admitted(request, conn, scope, claiming=None, unbound=unbound)
    return principal


async def authorize_creation(
    request: Request, conn: asyncpg.Connection, scope: Scope, key: str, body: BaseModel
) -> tuple[Principal, Response | idempotency.Claim]:
    """`authorize`, and the claim of Idempotency-Key `key` in the same round trip: the
    caller, and the stored response to replay or the claim to record the outcome under."""
    principal, row = await _admitted(request, conn, scope, claiming=key)
    if row is None:  # the bootstrap key: claimed on its own
        return principal, await claim_idempotency_key(request, conn, principal, key, body)
    request_hash = _request_hash(request, body)
    stored = idempotency.read_claim(row, request_hash)
    return principal, _replay_or_claim(stored, principal, key, request_hash)


async def _admitted(
    request: Request, conn: asyncpg.Connection, scope: Scope | None, *, claiming: str | None,
    unbound: bool = False,
) -> tuple[Principal, asyncpg.Record | None]:  # fmt: skip
    """The caller (and the claim's row, see `access.authenticate`); 429 past the key's rate
    limit; 403 `channel_bound_key` for a channel-bound key when `unbound`; 403 without
    `scope` (or `admin`)."""
    principal, row = await access.authenticate(
        conn,
        authorization=request.headers.getlist("authorization"),
        bootstrap_key=request.app.state.settings.admin_api_key,
        claiming=claiming,
    )
    limiter: TokenBuckets | None = request.app.state.rate_limiter
    if limiter is not None:
        wait = limiter.take(principal.key_id, time.monotonic())
        if wait:
            raise TooManyRequests(
                "This API key sent too many requests; retry after the time in Retry-After.",
                headers={"Retry-After": retry_after_header(wait)},
            )
    if unbound and principal.channel_id is not None:
        raise Forbidden(
            "What the channels share (locations, products, channels, keys, settings, carrier "
            "pickups) is changed only by a key not bound to a channel; replenishment requests, "
            "which speak of every location's stock, are also read only by one.",
            code="channel_bound_key",
        )
    if scope is not None and not principal.allows(scope):
        raise Forbidden(
            f"This operation needs an API key with the `{scope.value}` scope.",
            code="missing_scope",
            required_scope=scope.value,
        )
    return principal, row


async def current_principal(request: Request, session: SessionDep) -> Principal:
    return await authorize(request, await driver_connection(session), None)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(scope: Scope) -> Any:
    """A dependency: the caller, who must hold `scope` (or `admin`), else 403."""

    async def principal_with_scope(request: Request, session: SessionDep) -> Principal:
        return await authorize(request, await driver_connection(session), scope)

    return Depends(principal_with_scope)


def require_unbound(scope: Scope) -> Any:
    """A dependency for every change of what the channels share (locations, products,
    channels, keys, settings, carrier pickups): the caller, whose key must not be bound to
    a channel — else 403 `channel_bound_key`, whatever its scopes, before anything else is
    looked at — and must hold `scope` (or `admin`), else 403 `missing_scope`. Routes using
    it document their 403 with `SHARED_WRITE_403`."""

    async def unbound_principal(request: Request, session: SessionDep) -> Principal:
        return await authorize(request, await driver_connection(session), scope, unbound=True)

    return Depends(unbound_principal)


async def authorize_read(
    request: Request, session: AsyncSession, scope: Scope | None, *, unbound: bool = False
) -> Principal:
    """`authorize` for a read (`ReadSessionDep`): in the read's own transaction when it is
    on the primary; on the primary, one statement on a connection of its own, when it is on
    the replica — a key revoked a moment ago is refused at once, whatever the replica has
    replayed. A read done again on the primary keeps the caller it had."""
    known: Principal | None = getattr(request.state, "reader", None)
    if known is not None:
        return known
    if on_replica(session):
        database: Database = request.app.state.database
        try:
            async with database.connection() as conn:
                principal = await authorize(request, conn, scope, unbound=unbound)
        except Problem:
            raise
        except Exception as exc:
            raise PrimaryFailed("authenticating on the primary failed") from exc
    else:
        principal = await authorize(
            request, await driver_connection(session), scope, unbound=unbound
        )
    request.state.reader = principal
    return principal


def read_require(scope: Scope | None) -> Any:
    """`require(scope)` for a read (`ReadSessionDep`): see `authorize_read`; no scope: any
    valid key (as `CurrentPrincipal`)."""

    async def reader_with_scope(request: Request, session: ReadSessionDep) -> Principal:
        return await authorize_read(request, session, scope)

    return Depends(reader_with_scope)


def read_require_unbound(scope: Scope) -> Any:
    """`require_unbound(scope)` for a read (`ReadSessionDep`): see `authorize_read`."""

    async def unbound_reader(request: Request, session: ReadSessionDep) -> Principal:
        return await authorize_read(request, session, scope, unbound=True)

    return Depends(unbound_reader)


AdminPrincipal = Annotated[Principal, require(Scope.ADMIN)]
AdminReader = Annotated[Principal, read_require(Scope.ADMIN)]
CurrentReader = Annotated[Principal, read_require(None)]
UnboundAdmin = Annotated[Principal, require_unbound(Scope.ADMIN)]

SHARED_WRITE_403: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ProblemDetail,
        "description": "`channel_bound_key`: the API key is bound to a channel, and what the "
        "channels share is changed only by unbound keys (whatever the key's scopes); or "
        "`missing_scope`: the key lacks the scope this operation needs.",
    }
}


def shared_write_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`problem_responses(*statuses)` for an operation that changes what the channels share
    (its principal is `require_unbound`): the 403 names `channel_bound_key`."""
    return {**problem_responses(*statuses), **SHARED_WRITE_403}


@dataclass(frozen=True, slots=True)
class PageQuery:
    limit: int
    cursor: str | None


async def page_query(  # async: no thread hop (see `read_session`)
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageQuery:
    return PageQuery(limit, cursor)


PageDep = Annotated[PageQuery, Depends(page_query)]


def parse_if_match(value: str | None) -> int | None:
    """`If-Match: "3"` (or `W/"3"`, `3`; the header's pattern admits only these) → 3;
    absent or `*` → None."""
    if value is None or value == "*":
        return None
    return int(value.removeprefix("W/").strip('"'))


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=r'^(\*|(W/)?("[0-9]{1,9}"|[0-9]{1,9}))$',
        description="The `version` you last read (the ETag); the change applies only if it is current.",
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x20-\x7e]{1,255}$",
        description="Any unique string (a UUID): a retry with the same key and body replays the "
        "first response instead of creating again. Kept 24 hours.",
    ),
]


@dataclass(slots=True)
class IdempotentCreate:
    """Runs a creating operation at most once per (API key, Idempotency-Key)."""

    request: Request
    session: SessionDep
    principal: Principal
    key: str | None

    async def claim(self, body: BaseModel) -> Response | idempotency.Claim | None:
        """The stored response to replay; or the claim to record the outcome under;
        or None when no Idempotency-Key was sent."""
        if self.key is None:
            return None
        conn = await driver_connection(self.session)
        return await claim_idempotency_key(self.request, conn, self.principal, self.key, body)

    async def run(
        self,
        body: BaseModel,
        create: Callable[[], Awaitable[BaseModel | bytes]],
        *,
        status_code: int = 201,
        stored_view: Callable[[Any], BaseModel] | None = None,
        versioned: bool = False,
    ) -> Response:
        """`create()` once; replays its response for the same key and body. `create`
        returns a model, or a JSON document already serialised.

        `stored_view` gives what may be stored and replayed when the response holds a secret
        that must never be written down. `versioned`: the resource is edited with
        `If-Match`, so the answer — first or replayed — sends its `version` as `ETag`, as
        its GET does.
        """
        claim = await self.claim(body)
        if isinstance(claim, Response):
            return _with_version_etag(claim) if versioned else claim
        result = await create()
        payload = _serialise(result)
        response = Response(payload, status_code, media_type="application/json")
        if claim is not None:
            kept = _serialise(stored_view(result)) if stored_view is not None else payload
            await idempotency.record(
                self.session,
                principal=claim.principal,
                key=claim.key,
                request_hash=claim.request_hash,
                response=idempotency.StoredResponse(status_code, kept),
            )
        return _with_version_etag(response) if versioned else response


def _with_version_etag(response: Response) -> Response:
    """A created resource's answer (first or replayed) with its `version` as `ETag`; a
    replayed refusal has none."""
    if response.status_code < 300:
        response.headers["ETag"] = etag(orjson.loads(bytes(response.body))["version"])
    return response


async def claim_idempotency_key(
    request: Request, conn: asyncpg.Connection, principal: Principal, key: str, body: BaseModel
) -> Response | idempotency.Claim:
    """Claim `key` (its header pattern: 1-255 printable ASCII characters) for this request:
    the stored response to replay, or the claim to record the outcome under."""
    request_hash = _request_hash(request, body)
    stored = await idempotency.claim(
        conn, principal=principal.key_id, key=key, request_hash=request_hash
    )
    return _replay_or_claim(stored, principal, key, request_hash)


def _request_hash(request: Request, body: BaseModel) -> bytes:
    # The path as the server decoded it: `request.url.path` writes the same text for every
    # path a creating request can succeed on (ids have no `?`, `#`, `\\` or control
    # characters) and would build and parse the whole URL for it, on every placement.
    return idempotency.fingerprint(
        request.scope["method"], request.scope["path"], body.model_dump_json().encode()
    )


def _replay_or_claim(
    stored: idempotency.StoredResponse | None, principal: Principal, key: str, request_hash: bytes
) -> Response | idempotency.Claim:
    if stored is not None:
        return Response(
            stored.body,
            stored.status,
            {"Idempotent-Replayed": "true"},
            media_type="application/json",
        )
    return idempotency.Claim(principal.key_id, key, request_hash)


def _serialise(result: BaseModel | bytes) -> bytes:
    return result if isinstance(result, bytes) else result.model_dump_json().encode()


def idempotent_create(scope: Scope, *, unbound: bool = False) -> Any:
    """A dependency giving an `IdempotentCreate` for a caller holding `scope`; with
    `unbound`, for a key not bound to a channel (`require_unbound`)."""

    # A default, not Annotated[...]: string annotations cannot see the closure's `scope`.
    async def dependency(
        request: Request,
        session: SessionDep,
        idempotency_key: IdempotencyKeyHeader = None,
        principal: Principal = require_unbound(scope) if unbound else require(scope),
    ) -> IdempotentCreate:
        return IdempotentCreate(request, session, principal, idempotency_key)

    return Depends(dependency)
