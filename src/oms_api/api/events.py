"""The event feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from oms_api.api.deps import (
    ReadRoute,
    ReadSessionDep,
    read_require,
)
from oms_api.api.problems import problem_responses
from oms_api.db import driver_connection
from oms_api.domain.access import Principal, Scope
from oms_api.domain.events import ALL as EVENT_TYPES
from oms_api.errors import Unprocessable
from oms_api.jsonutil import dumps, iso
from oms_api.schemas.webhooks import EventFeed
from oms_api.services.event_feed import read_feed
from oms_api.services.pagination import MAX_LIMIT

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=ReadRoute)


@router.get(
    "", response_model=EventFeed, summary="Read the event feed",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_events(
    session: ReadSessionDep,
    principal: Annotated[Principal, read_require(Scope.ORDERS_READ)],
    after: Annotated[
        str | None, Query(max_length=64, description="An event id: return what follows it.")
    ] = None,
    type: Annotated[
        str | None, Query(max_length=2000, description="Event types, comma-separated.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> Response:
    """The same events webhooks carry, oldest first, for integrators that poll. Pages never
    skip an event, even one whose transaction commits late: keep passing `next_cursor` as
    `after`. A channel-bound key sees its channel's events."""
    after = after or None  # `after=` (empty) reads from the start
    types = [t.strip() for t in type.split(",") if t.strip()] if type else None
    unknown = sorted(set(types or ()) - set(EVENT_TYPES))
    if unknown:
        raise Unprocessable(
            f"Unknown event type: {', '.join(unknown)}. The types are: "
            f"{', '.join(sorted(EVENT_TYPES))}.",
            errors=[{"loc": ["query", "type"], "msg": "unknown event type"}],
            event_types=sorted(EVENT_TYPES),
        )
    rows = await read_feed(
        await driver_connection(session), after=after, channel_id=principal.channel_id,
        types=types, limit=limit,
    )  # fmt: skip
    for row in rows:
        row["created_at"] = iso(row["created_at"])
    next_cursor = rows[-1]["id"] if rows else after
    return Response(
        dumps({"data": rows, "next_cursor": next_cursor}), media_type="application/json"
    )
