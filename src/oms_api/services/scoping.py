"""Channel isolation as the default: every query of channel-owned rows goes through here.

A key bound to a channel sees only rows of that channel; anything else is reported as
absent (404), never as forbidden, so ids of other channels' rows leak nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from oms_api.domain.access import Principal
from oms_api.errors import NotFound

S = TypeVar("S", bound=Select[Any])


def scope_to_channel(
    stmt: S, principal: Principal, channel_column: InstrumentedAttribute[Any]
) -> S:
    """`stmt` restricted to the caller's channel when the caller's key is bound to one."""
    if principal.channel_id is None:
        return stmt
    return stmt.where(channel_column == principal.channel_id)


def ensure_visible(
    principal: Principal, row_channel_id: str | None, *, what: str, ident: str
) -> None:
    """404 when a channel-bound caller asks for a row of another channel."""
    if principal.channel_id is not None and row_channel_id != principal.channel_id:
        raise NotFound(f"No {what} with id {ident}.")
