"""Keyset (cursor) pagination over time-ordered ids, newest first.

The cursor is the last id of the page, opaque to clients. Paging by a key rather than an
offset means rows inserted while a client pages never shift, duplicate or hide others.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from oms_api.errors import Unprocessable

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith("v1:") or len(raw) < 4:
        raise Unprocessable(
            "The cursor is not one this API returned.",
            code="invalid_cursor",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        )
    return raw[3:]


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    id_column: InstrumentedAttribute[str],
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """Run `stmt` (selecting one entity) for one page, newest first."""
    if cursor is not None:
        stmt = stmt.where(id_column < decode_cursor(cursor))
    rows = list((await session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1))).all())
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, encode_cursor(getattr(rows[-1], id_column.key)))
    return Page(rows, None)
