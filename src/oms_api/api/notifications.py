"""Customer notifications: each channel's settings, and the emails themselves (read, resend)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from oms_api.api.deps import (
    CurrentPrincipal,
    IdempotentCreate,
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    UnboundAdmin,
    idempotent_create,
    read_require,
    require,
    shared_write_responses,
)
from oms_api.api.problems import problem_responses
from oms_api.db import driver_connection
from oms_api.domain.access import Principal, Scope
from oms_api.jsonutil import dumps
from oms_api.schemas.common import ListResponse, NoBody
from oms_api.schemas.notifications import (
    NotificationKind,
    NotificationPublic,
    NotificationSettingsPublic,
    NotificationSettingsUpdate,
    NotificationStatus,
)
from oms_api.services import notifications as service

router = APIRouter(tags=["notifications"], route_class=ReadRoute)
Reader = Annotated[Principal, require(Scope.ORDERS_READ)]
ListReader = Annotated[Principal, read_require(Scope.ORDERS_READ)]
ChannelId = Annotated[str, Path(max_length=64, description="The channel's id.")]
NotificationId = Annotated[str, Path(max_length=64, description="The notification's id.")]


def _settings_response(document: dict[str, object]) -> Response:
    model = NotificationSettingsPublic.model_validate(document)
    return Response(
        dumps(model.model_dump(mode="json", by_alias=True)), media_type="application/json"
    )


def _notification_json(document: dict[str, object]) -> bytes:
    model = NotificationPublic.model_validate(document)
    return dumps(model.model_dump(mode="json", by_alias=True))


@router.get(
    "/v1/channels/{channel_id}/notifications", response_model=NotificationSettingsPublic,
    summary="A channel's customer notification settings",
    responses=problem_responses(401, 404, 422),
)  # fmt: skip
async def get_channel_notifications(
    channel_id: ChannelId, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Whether the service emails this channel's customers, from whom, which kinds, when
    the follow-up goes, and the channel's template overrides. A channel that never set them
    gets the defaults (`version` 0). A channel key reads only its own channel's."""
    conn = await driver_connection(session)
    return _settings_response(
        await service.get_channel_settings(conn, principal=principal, channel_id=channel_id)
    )


@router.put(
    "/v1/channels/{channel_id}/notifications", response_model=NotificationSettingsPublic,
    summary="Set a channel's customer notification settings",
    responses=shared_write_responses(401, 403, 404, 413, 422),
)  # fmt: skip
async def put_channel_notifications(
    channel_id: ChannelId, body: NotificationSettingsUpdate, session: SessionDep,
    _admin: UnboundAdmin,
) -> Response:  # fmt: skip
    """Replaces them all (a field left out takes its default). Every template override is
    rendered with a sample order before it is saved, in Jinja2's sandbox: one that does not
    render, or reaches for what a template may not (`{{ ''.__class__ }}`, files), is 422
    `invalid_template` naming the kind and part. Admin only."""
    conn = await driver_connection(session)
    document = await service.put_channel_settings(
        conn, channel_id=channel_id, enabled=body.enabled,
        from_name=body.sender.name if body.sender else None,
        from_email=body.sender.email if body.sender else None,
        reply_to=body.reply_to, kinds=list(body.kinds), follow_up_days=body.follow_up_days,
        templates={k: t.model_dump(exclude_none=True) for k, t in body.templates.items()},
    )  # fmt: skip
    return _settings_response(document)


@router.get(
    "/v1/notifications", response_model=ListResponse[NotificationPublic],
    summary="List customer notifications", responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_notifications(
    session: ReadSessionDep, principal: ListReader, page: PageDep,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    status: NotificationStatus | None = None,
    kind: NotificationKind | None = None,
) -> Response:  # fmt: skip
    """Newest first, without their bodies (read one for its text). A channel key sees only
    its own channel's."""
    result = await service.list_notifications(
        session, principal=principal, order_id=order_id, status=status, kind=kind,
        limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    data = [
        NotificationPublic.model_validate(d).model_dump(mode="json", by_alias=True)
        for d in result.items
    ]
    return Response(
        dumps({"data": data, "next_cursor": result.next_cursor}), media_type="application/json"
    )


@router.get(
    "/v1/notifications/{notification_id}", response_model=NotificationPublic,
    summary="Get a notification, with what it says",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_notification(
    notification_id: NotificationId, session: SessionDep, principal: Reader
) -> Response:
    """With its rendered `text` and `html`: what the customer got (or, when `skipped`, what
    would have gone out)."""
    document = await service.get_notification(
        session, principal=principal, notification_id=notification_id
    )
    return Response(_notification_json(document), media_type="application/json")


@router.post(
    "/v1/notifications/{notification_id}/resend", status_code=201,
    response_model=NotificationPublic, summary="Send a notification again",
    responses=problem_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def resend_notification(
    notification_id: NotificationId, session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.ORDERS_WRITE)],
) -> Response:  # fmt: skip
    """A new notification with the same message, to the same address, sent as soon as the
    notifier gets to it: its own id and `Message-ID` (so a mail program keeps both), and
    `resend_of` naming the first. A notification still pending (not due yet, or waiting
    for a retry) is not resent: 409 `notification_pending`."""

    async def create() -> bytes:
        return _notification_json(
            await service.resend_notification(
                session, principal=idem.principal, notification_id=notification_id
            )
        )

    return await idem.run(NoBody(), create)
