"""Authenticating requests and managing API keys."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.access import (
    Principal,
    Scope,
    check_key_grant,
    display_prefix,
    generate_key,
    hash_key,
    is_well_formed,
)
from oms_api.errors import NotFound, Unauthorized, Unprocessable
from oms_api.ids import new_id
from oms_api.models import ApiKey, Channel
from oms_api.services.pagination import Page, paginate

BOOTSTRAP_KEY_ID = "bootstrap"
AUTHENTICATE_SQL = (
    "SELECT id, scopes, channel_id FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL"
)
# A creating request's two first steps in one round trip: the key, then (as that key) the
# claim of its Idempotency-Key — the function takes the lock before it looks (migration 0005).
AUTHENTICATE_AND_CLAIM_SQL = """
SELECT k.id, k.scopes, k.channel_id, c.got, c.request_hash, c.response_status, c.response_body
FROM api_keys k
CROSS JOIN LATERAL oms_idempotency_claim(k.id || E'\\n' || $2, k.id, $2) c
WHERE k.secret_hash = $1 AND k.revoked_at IS NULL
"""


@functools.lru_cache(maxsize=64)
def scope_set(names: tuple[str, ...]) -> frozenset[Scope]:
    """A key's stored scopes as `Scope`s: made once per combination (keys share a few),
    not by an enum lookup per scope per request."""
    return frozenset(Scope(name) for name in names)


def _unauthorized(detail: str) -> Unauthorized:
    return Unauthorized(detail, headers={"WWW-Authenticate": 'Bearer realm="oms-api"'})


async def authenticate(
    conn: asyncpg.Connection,
    *,
    authorization: Sequence[str],
    bootstrap_key: str | None,
    claiming: str | None = None,
) -> tuple[Principal, asyncpg.Record | None]:
    """The caller behind `Authorization: Bearer <key>` (`authorization`: every value of the
    header the request sent; more than one is 401), looked up through `conn` (asyncpg, in
    the request's transaction: every request runs this).

    With `claiming` (an Idempotency-Key), the same round trip claims it for the caller and
    returns the claim's row (`idempotency.read_claim` reads it); None for the bootstrap key,
    which is not stored and claims separately.
    """
    if len(authorization) > 1:  # which one to trust? A proxy might have read the other
        raise _unauthorized("Send one `Authorization` header, not several.")
    if not authorization or not authorization[0]:
        raise _unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    scheme, _, token = authorization[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    if bootstrap_key and secrets.compare_digest(token.encode(), bootstrap_key.encode()):
        return Principal(BOOTSTRAP_KEY_ID, frozenset({Scope.ADMIN}), None), None
    if not is_well_formed(token):
        raise _unauthorized("The API key is not valid.")
    if claiming is None:
        row = await conn.fetchrow(AUTHENTICATE_SQL, hash_key(token))
    else:
        row = await conn.fetchrow(AUTHENTICATE_AND_CLAIM_SQL, hash_key(token), claiming)
    if row is None:
        raise _unauthorized("The API key is unknown or revoked.")
    principal = Principal(row["id"], scope_set(tuple(row["scopes"])), row["channel_id"])
    return principal, (row if claiming is not None else None)


async def create_key(
    session: AsyncSession, *, name: str, scopes: Sequence[Scope], channel_id: str | None
) -> tuple[ApiKey, str]:
    """A new key and its secret, which is never stored and cannot be shown again."""
    scope_set = frozenset(scopes)
    reason = check_key_grant(scope_set, channel_id)
    if reason:
        raise Unprocessable(reason, code="invalid_key_grant")
    if channel_id is not None and await session.get(Channel, channel_id) is None:
        raise Unprocessable(
            f"No channel with id {channel_id}.",
            code="unknown_channel",
            errors=[{"loc": ["body", "channel_id"], "msg": "unknown channel"}],
        )
    secret = generate_key()
    key = ApiKey(
        id=new_id("key"),
        name=name,
        prefix=display_prefix(secret),
        secret_hash=hash_key(secret),
        scopes=sorted(s.value for s in scope_set),
        channel_id=channel_id,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key, secret


async def list_keys(session: AsyncSession, *, limit: int, cursor: str | None) -> Page[ApiKey]:
    return await paginate(session, select(ApiKey), keys=[ApiKey.id], limit=limit, cursor=cursor)


async def get_key(session: AsyncSession, key_id: str) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.")
    return key


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKey:
    """Revoke at once; revoking a revoked key is a no-op that returns it."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    key = await session.get(ApiKey, key_id, populate_existing=True)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.")
    return key
