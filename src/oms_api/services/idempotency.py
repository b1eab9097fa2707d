"""`Idempotency-Key` for every creating POST, kept in PostgreSQL.

Within the request's own transaction:
1. take a transaction-scoped advisory lock on (caller, key) without waiting — if another
   transaction holds it, that request is still in flight: 409;
2. look for a stored outcome: same request → replay it; different request → 422;
3. otherwise run the request, and store its response in the same transaction as its
   effect. The record exists exactly when the effect was committed.

The lock works across any number of server processes. Only successful (2xx) outcomes are
stored: a request that failed changed nothing and may be retried with the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.errors import Conflict, Unprocessable
from oms_api.models import IdempotencyRecord

RETENTION = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds (principal, key) until its transaction ends; its outcome is
    recorded under it."""

    principal: str
    key: str
    request_hash: bytes


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(b"\0".join((method.encode(), path.encode(), body))).digest()


def _in_flight() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency_key_in_flight",
        headers={"Retry-After": "1"},
    )


# The lock, then the lookup with a snapshot taken after it (migration 0005 says why).
CLAIM_SQL = "SELECT got, request_hash, response_status, response_body FROM oms_idempotency_claim($1, $2, $3)"


async def claim(
    conn: asyncpg.Connection, *, principal: str, key: str, request_hash: bytes
) -> StoredResponse | None:
    """Lock (principal, key) for this transaction; the stored response if there is one.
    One round trip; a request that holds the lock sees every record committed before."""
    row = await conn.fetchrow(
        CLAIM_SQL,
        lock_key(principal, key),
        principal,
        key,
    )
    if row is None:  # the function always answers one row
        raise RuntimeError("oms_idempotency_claim answered no row")
    return read_claim(row, request_hash)


def lock_key(principal: str, key: str) -> str:
    """What the advisory lock is taken on; `access.AUTHENTICATE_AND_CLAIM_SQL` builds the
    same string in SQL. Keys are printable: no newline."""
    return f"{principal}\n{key}"


def read_claim(row: Mapping[str, Any], request_hash: bytes) -> StoredResponse | None:
    """The outcome of `oms_idempotency_claim` for this request: None to go ahead, or the
    stored response to replay; 409 while another request holds the key, 422 if the key
    was used for a different request."""
    if not row["got"]:
        raise _in_flight()
    if row["request_hash"] is None:
        return None
    if row["request_hash"] != request_hash:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
        )
    return StoredResponse(row["response_status"], bytes(row["response_body"]))


async def record(
    session: AsyncSession,
    *,
    principal: str,
    key: str,
    request_hash: bytes,
    response: StoredResponse,
) -> None:
    """Store the response; replaces only an expired record of the same key."""
    values = {
        "principal": principal,
        "key": key,
        "request_hash": request_hash,
        "response_status": response.status,
        "response_body": response.body,
        "expires_at": func.now() + RETENTION,
    }
    inserting = insert(IdempotencyRecord).values(values)
    stmt = inserting.on_conflict_do_update(
        index_elements=[IdempotencyRecord.principal, IdempotencyRecord.key],
        set_={k: inserting.excluded[k] for k in values if k not in ("principal", "key")},
        where=IdempotencyRecord.expires_at <= func.now(),
    ).returning(IdempotencyRecord.key)
    if (await session.execute(stmt)).first() is None:
        # Another transaction stored this key between our claim and now: roll ours back.
        raise _in_flight()


async def purge_expired(session: AsyncSession, *, batch: int = 5000) -> int:
    result = await session.execute(
        text(
            "DELETE FROM idempotency_records WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM idempotency_records WHERE expires_at <= now() LIMIT :n))"
        ),
        {"n": batch},
    )
    return int(getattr(result, "rowcount", 0) or 0)
