"""Keyset (cursor) pagination: the one way every list in the API pages.

A page is read in the order of a key — one or more columns that together are unique,
usually the time-ordered id, newest first — and the cursor is the key of the last row
of the page, opaque to clients. Paging by a key rather than an offset means rows inserted
while a client pages never shift, duplicate or hide others.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
import orjson
from sqlalchemy import BigInteger, DateTime, Integer, Select, bindparam, literal_column, tuple_
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from oms_api.db import driver_connection
from oms_api.domain.times import as_utc
from oms_api.errors import Unprocessable

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def _invalid_cursor() -> Unprocessable:
    return Unprocessable(
        "The cursor is not one this API returned.",
        code="invalid_cursor",
        errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
    )


def list_tag(keys: Sequence[InstrumentedAttribute[Any]]) -> str:
    """The list a cursor belongs to: the table its key is read from (`orders`, `products`,
    `inventory_levels`…). Lists of one table page by the same key, so a cursor of one pages
    another from the same row; another table's is 422."""
    return str(keys[0].expression.table.name)


def encode_cursor(values: Sequence[Any], *, tag: str) -> str:
    """`[tag, [key values]]` as unpadded URL-safe base64: opaque to clients."""
    key = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(orjson.dumps([tag, key])).decode().rstrip("=")


def decode_cursor(
    cursor: str, keys: Sequence[InstrumentedAttribute[Any]], *, tag: str
) -> list[Any]:
    """The key values a cursor of the list `tag` holds, typed as the key's columns; 422 for
    anything else, another list's cursor included. A cursor of the first form, the key
    values alone (issued before cursors named their list), is still taken, as it always
    was: a client paging through a list across the upgrade carries on."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(data, list) and len(data) == 2 and isinstance(data[1], list):
            if data[0] != tag:
                raise ValueError
            values = data[1]
        else:  # the first form: key values never hold a list
            values = data
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError
        typed: list[Any] = []
        for key, value in zip(keys, values, strict=True):
            if _is_integer(key):
                # a number the column holds (else 422, never the driver's overflow)
                bound = 2**63 if isinstance(key.expression.type, BigInteger) else 2**31
                if type(value) is not int or not -bound <= value < bound:
                    raise ValueError
                typed.append(value)
                continue
            if not isinstance(value, str) or "\x00" in value:  # PostgreSQL text holds no NUL
                raise ValueError
            # a time the driver can send: with an offset, years 1-9999 in UTC (else 422)
            typed.append(as_utc(datetime.fromisoformat(value)) if _is_time(key) else value)
    except (binascii.Error, orjson.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise _invalid_cursor() from None
    return typed


def _is_integer(key: InstrumentedAttribute[Any]) -> bool:
    return isinstance(key.expression.type, Integer)


def _is_time(key: InstrumentedAttribute[Any]) -> bool:
    return isinstance(key.expression.type, DateTime)


def _selects_one_entity(stmt: Select[*tuple[Any, ...]]) -> bool:
    described = stmt.column_descriptions
    return len(described) == 1 and described[0]["expr"] is described[0]["entity"]


async def paginate(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]],
    *,
    keys: Sequence[InstrumentedAttribute[Any]],
    limit: int,
    cursor: str | None,
    descending: bool = True,
) -> Page[Any]:
    """One page of `stmt` in the order of `keys` (newest first by default). `stmt` selects
    one entity (the page holds entities) or columns including the keys (it holds rows)."""
    tag = list_tag(keys)
    if cursor is not None:
        values = decode_cursor(cursor, keys, tag=tag)
        left: Any = tuple_(*keys) if len(keys) > 1 else keys[0]
        right: Any = tuple_(*values) if len(keys) > 1 else values[0]
        stmt = stmt.where(left < right if descending else left > right)
    order = [k.desc() if descending else k.asc() for k in keys]
    result = await session.execute(stmt.order_by(*order).limit(limit + 1))
    rows: list[Any] = list(result.scalars() if _selects_one_entity(stmt) else result)
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, encode_cursor([getattr(rows[-1], k.key) for k in keys], tag=tag))


DocumentLoader = Callable[[asyncpg.Connection, list[str]], Awaitable[list[dict[str, Any]]]]


async def paginate_documents(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]],
    *,
    keys: Sequence[InstrumentedAttribute[Any]],
    limit: int,
    cursor: str | None,
    load: DocumentLoader,
) -> Page[dict[str, Any]]:
    """A page of ids (`stmt`'s first column, filtered and keyed as the caller likes), then
    their documents, read by `load` in one statement, in the page's order."""
    page = await paginate(session, stmt, keys=keys, limit=limit, cursor=cursor)
    conn = await driver_connection(session)
    return Page(await load(conn, [row[0] for row in page.items]), page.next_cursor)


# The driver's dialect: what `page_statement` compiles for (`$n` parameters).
_ASYNCPG = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
PAGE_IDS = "{page}"


@dataclass(frozen=True, slots=True)
class PageStatement:
    """A list's statement compiled once, for asyncpg: the documents of a page of ids in one
    round trip, with no SQLAlchemy between a request and the driver. `names`: the
    parameters in `$n` order (the caller's, and `cursor_<i>` when paging on); `tag`: the
    list its cursors name (`list_tag`)."""

    sql: str
    names: tuple[str, ...]
    keys: tuple[InstrumentedAttribute[Any], ...]
    limit: int
    tag: str


def page_statement(
    ids: Select[*tuple[Any, ...]],
    *,
    keys: Sequence[InstrumentedAttribute[Any]],
    documents: str,
    limit: int,
    after_cursor: bool,
) -> PageStatement:
    """`ids` (its first column the page's ids, filtered with named `bindparam`s), newest
    first by `keys`, `limit` of them and one more (is there a next page?) — past the
    cursor's key when `after_cursor` — inside `documents`, SQL that reads the documents of
    the ids at `{page}` in the same order. Build it once per shape of filters and page size
    and keep it; bind values with `fetch_page`.

    The page size is written into the SQL, not bound: with it, PostgreSQL's generic plan
    (which it keeps after five executions when it costs no more than planning anew) knows
    the page is small."""
    if after_cursor:
        params = [bindparam(f"cursor_{i}", type_=k.expression.type) for i, k in enumerate(keys)]
        left: Any = tuple_(*keys) if len(keys) > 1 else keys[0]
        right: Any = tuple_(*params) if len(keys) > 1 else params[0]
        ids = ids.where(left < right)
    page = ids.order_by(*(k.desc() for k in keys)).limit(literal_column(str(int(limit) + 1)))
    compiled = page.compile(dialect=_ASYNCPG)
    return PageStatement(
        documents.replace(PAGE_IDS, compiled.string),
        tuple(compiled.positiontup or ()),
        tuple(keys),
        limit,
        list_tag(keys),
    )


async def fetch_page(
    conn: asyncpg.Connection,
    statement: PageStatement,
    values: dict[str, Any],
    *,
    cursor: str | None,
    render: Callable[[asyncpg.Record], T],
) -> Page[T]:
    """One page of `statement` (`page_statement`, built with a cursor condition exactly
    when `cursor` is given), its parameters bound from `values`; each row rendered by
    `render`. The rows hold the keys under their attribute names (the next cursor)."""
    bound = dict(values)
    limit = statement.limit
    if cursor is not None:
        decoded = decode_cursor(cursor, statement.keys, tag=statement.tag)
        bound.update((f"cursor_{i}", value) for i, value in enumerate(decoded))
    rows = await conn.fetch(statement.sql, *[bound[name] for name in statement.names])
    if len(rows) <= limit:
        return Page([render(row) for row in rows], None)
    last = rows[limit - 1]
    return Page(
        [render(row) for row in rows[:limit]],
        encode_cursor([last[k.key] for k in statement.keys], tag=statement.tag),
    )
