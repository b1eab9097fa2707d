"""The channel fence: the one way a channel-owned row is read.

Channel-owned tables: `orders`, `shipments`, `returns`, `events`, `webhook_endpoints` (and
their deliveries, through them) and `customer_profiles`. A key bound to a channel sees only
rows of its channel; anything else is reported as absent (404), never as forbidden, so ids
of other channels' rows leak nothing — as paths, as filters or as cursors.

The fence takes the caller's channel id: None means no fence (a key not bound to a channel,
or the service itself re-reading a row it has already fenced). It has two forms, one rule:

- ORM: `scope_to_channel(stmt, caller, Model.channel_id)`; for a statement compiled once
  per shape and run with values bound later, `scope_to_bound_channel`, binding the
  caller's `fence_values`;
- SQL (asyncpg `$n`, or SQLAlchemy `:name`): `fence_sql("o.channel_id", 2)` is the predicate,
  and the caller's channel id is bound as that parameter;
- SQL fenced to a channel the query resolves itself (placement's read finds the channel by
  the caller's id or by a code): `fence_to_resolved_sql` joins a channel-owned row to it,
  and `fence_found_sql` keeps, for a fenced caller, only rows that join found.

What belongs to no channel because it gathers every channel's rows (carrier pickups) is
hidden from every channel-bound key: `hidden_from_channels` (ORM) and `ensure_unfenced`.

What goes through it: every entry into channel-owned rows — a row the caller names (in
the path, a filter, a cursor or a body) and every list. Rows reached from a row the fence
let through (an order's lines, shipments and events; the documents of a fenced page of
ids; a locked re-read) are read by that row's id, and re-reads pass None. No other code
writes a channel predicate (tests/test_channel_fence.py checks the sources, and calls every
operation with an id in its path with another channel's id).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, TypeVar

from sqlalchemy import Select, String, bindparam, false
from sqlalchemy.orm import InstrumentedAttribute

from oms_api.domain.access import Principal
from oms_api.errors import NotFound

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")

_COLUMN = re.compile(r"^([a-z_][a-z0-9_]*\.)?channel_id$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_COLUMN_ANY = re.compile(r"^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$")
_PARAM = re.compile(r"^\$[0-9]+$")


def channel_of(caller: Principal | str | None) -> str | None:
    """The channel a caller is fenced to (None: not fenced)."""
    return caller.channel_id if isinstance(caller, Principal) else caller


def scope_to_channel(
    stmt: S, caller: Principal | str | None, channel_column: InstrumentedAttribute[Any]
) -> S:
    """`stmt` restricted to the caller's channel when the caller is fenced to one."""
    channel_id = channel_of(caller)
    if channel_id is None:
        return stmt
    return stmt.where(channel_column == channel_id)


# The parameter a statement compiled once binds the caller's channel to (`fence_values`).
FENCE_PARAM = "fence_channel_id"


def fence_values(caller: Principal | str | None) -> dict[str, str]:
    """What a statement fenced by `scope_to_bound_channel` binds: the caller's channel, for
    a caller fenced to one; nothing for one who is not."""
    channel_id = channel_of(caller)
    return {} if channel_id is None else {FENCE_PARAM: channel_id}


def scope_to_bound_channel(
    stmt: S, bound: Collection[str], channel_column: InstrumentedAttribute[Any]
) -> S:
    """`scope_to_channel` for a statement compiled once per shape of its filters and run
    with values bound later (`pagination.page_statement`): restricted to the channel bound
    as `FENCE_PARAM` when `bound`, the names the statement will bind, holds it (the
    caller's `fence_values`). Each shape has its own plan: a fenced list reads its
    channel's index."""
    if FENCE_PARAM not in bound:
        return stmt
    return stmt.where(channel_column == bindparam(FENCE_PARAM, type_=String))


def fence_sql(column: str, param: int | str) -> str:
    """The fence as a SQL predicate: `column` (a `channel_id` column, e.g. `o.channel_id`)
    is the channel bound as parameter `param` — `$param` for asyncpg, `:param` for
    SQLAlchemy's `text()` — or that parameter is NULL (not fenced). Bind `channel_of(caller)`.
    """
    if not _COLUMN.match(column):
        raise ValueError(f"not a channel_id column: {column!r}")
    if isinstance(param, int):
        return f"(${param}::text IS NULL OR {column} = ${param})"
    if not _NAME.match(param):
        raise ValueError(f"not a parameter name: {param!r}")
    return f"(CAST(:{param} AS text) IS NULL OR {column} = :{param})"


# A summary row's `channel_id` when the row adds up every channel (models/reports.py).
EVERY_CHANNEL = ""


def summary_fence_sql(column: str, channel: int, code: int) -> str:
    """SQL: the rows of a report summary a caller reads. A caller not fenced (`$channel`
    NULL) naming no channel (`$code` NULL) reads the rows adding up every channel
    (`column` is EVERY_CHANNEL); any other reads the channels' own rows, fenced to its
    channel — never the rows that add up every channel."""
    if not _COLUMN.match(column):
        raise ValueError(f"not a channel_id column: {column!r}")
    return (
        f"(CASE WHEN ${channel}::text IS NULL AND ${code}::text IS NULL "
        f"THEN {column} = '{EVERY_CHANNEL}' "
        f"ELSE {column} <> '{EVERY_CHANNEL}' AND {fence_sql(column, channel)} END)"
    )


def sells_from_sql(channel: str, location: str) -> str:
    """SQL: the channel `channel` (a `channel_id` column, or `$n`) sells from `location` (a
    location id column or `$n`) — the one "sells from" rule: a channel with no location
    list sells from all. Stock arriving at a location fills the backorders of the orders
    whose channel sells from it; a fenced caller's locations are those (`fence_location_sql`)."""
    for value, pattern in ((channel, _COLUMN), (location, _COLUMN_ANY)):
        if not (pattern.match(value) or _PARAM.match(value)):
            raise ValueError(f"not a column or a parameter: {value!r}")
    return (
        f"EXISTS (SELECT 1 FROM channels fc WHERE fc.id = {channel} "
        f"AND (cardinality(fc.location_ids) = 0 OR {location} = ANY(fc.location_ids)))"
    )


def fence_location_sql(location: str, param: int) -> str:
    """SQL: `location` (a location id column) is one a fenced caller's channel sells from —
    its channel bound as `$param`, NULL for a caller not fenced, who may use every location.
    To a fenced caller, any other location is absent, exactly as one that does not exist
    (SPEC §3)."""
    return f"(${param}::text IS NULL OR {sells_from_sql(f'${param}', location)})"


def fence_to_resolved_sql(column: str, channel_cte: str) -> str:
    """The fence to a channel the query resolves itself: `column` (a `channel_id` column) is
    the `id` of the one-row CTE `channel_cte` (e.g. `ch`), which the query filled from the
    caller's channel — or, for a caller not fenced, from the channel it named. Meant for an
    outer join's condition; pair it with `fence_found_sql` for a fenced caller."""
    if not _COLUMN.match(column):
        raise ValueError(f"not a channel_id column: {column!r}")
    if not _NAME.match(channel_cte):
        raise ValueError(f"not a CTE name: {channel_cte!r}")
    return f"{column} = (SELECT id FROM {channel_cte})"


def fence_found_sql(joined: str, param: int) -> str:
    """For a fenced caller (its channel bound as `$param`), only rows whose outer join
    through `fence_to_resolved_sql` found a row (`joined`, a column of the joined table,
    is not NULL); every row for a caller not fenced (`$param` NULL)."""
    if not _COLUMN_ANY.match(joined):
        raise ValueError(f"not a column: {joined!r}")
    return f"(${param}::text IS NULL OR {joined} IS NOT NULL)"


def hidden_from_channels(stmt: S, caller: Principal | str | None) -> S:
    """`stmt` answering no row to a caller fenced to a channel: for what belongs to no
    channel because it gathers the rows of every channel (carrier pickups)."""
    return stmt if channel_of(caller) is None else stmt.where(false())


def ensure_unfenced(caller: Principal | str | None, *, what: str, ident: str) -> None:
    """404 to a caller fenced to a channel, for what `hidden_from_channels` hides."""
    if channel_of(caller) is not None:
        raise NotFound(f"No {what} with id {ident}.")


def ensure_visible(
    caller: Principal | str | None, row_channel_id: str | None, *, what: str, ident: str
) -> None:
    """404 when a fenced caller asks for a row of another channel."""
    channel_id = channel_of(caller)
    if channel_id is not None and row_channel_id != channel_id:
        raise NotFound(f"No {what} with id {ident}.")
