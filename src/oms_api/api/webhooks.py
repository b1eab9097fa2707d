"""Webhook endpoints and deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from oms_api.api.deps import (
    IdempotentCreate,
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    idempotent_create,
    read_require,
    require,
)
from oms_api.api.problems import problem_responses
from oms_api.domain.access import Principal, Scope
from oms_api.models import WebhookAttempt, WebhookDelivery
from oms_api.schemas.common import ListResponse
from oms_api.schemas.webhooks import (
    WebhookAttemptPublic,
    WebhookDeliveryDetail,
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointPublic,
    WebhookEndpointWithSecret,
)
from oms_api.services import webhooks as service

endpoints = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"], route_class=ReadRoute)
deliveries = APIRouter(prefix="/v1/webhook-deliveries", tags=["webhooks"], route_class=ReadRoute)
WebhookAdmin = Annotated[Principal, require(Scope.WEBHOOKS_WRITE)]
WebhookReader = Annotated[Principal, read_require(Scope.WEBHOOKS_WRITE)]
EndpointId = Annotated[str, Path(max_length=64)]
DeliveryId = Annotated[str, Path(max_length=64)]


@endpoints.post(
    "", status_code=201, response_model=WebhookEndpointWithSecret, summary="Register a webhook endpoint",
    responses=problem_responses(401, 403, 409, 413, 422),
)  # fmt: skip
async def create_webhook_endpoint(
    request: Request,
    body: WebhookEndpointCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.WEBHOOKS_WRITE)],
) -> Response:
    """`events`: types, or `["*"]` for all. Only https URLs to public addresses are
    accepted (422 `invalid_webhook_url`); a channel key's endpoint gets only its channel's
    events. The response's `secret` signs every delivery (Standard Webhooks). A channel
    has at most `OMS_WEBHOOK_ENDPOINTS_PER_CHANNEL` (16) endpoints, and the shop as many
    shop-wide ones (409 `webhook_endpoint_limit`)."""

    async def create() -> WebhookEndpointWithSecret:
        endpoint = await service.create_endpoint(
            session, principal=idem.principal, url=body.url, events=list(body.events),
            channel_id=body.channel_id, description=body.description,
            allow_private=request.app.state.settings.webhook_allow_private_urls,
            most=request.app.state.settings.webhook_endpoints_per_channel,
        )  # fmt: skip
        return WebhookEndpointWithSecret.model_validate(endpoint)

    return await idem.run(body, create, stored_view=lambda e: e.model_copy(update={"secret": None}))


@endpoints.get(
    "", response_model=ListResponse[WebhookEndpointPublic], summary="List webhook endpoints",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_webhook_endpoints(
    session: ReadSessionDep, principal: WebhookReader, page: PageDep
) -> ListResponse[WebhookEndpointPublic]:
    result = await service.list_endpoints(
        session, principal=principal, limit=page.limit, cursor=page.cursor
    )
    return ListResponse.of(WebhookEndpointPublic, result)


@endpoints.get(
    "/{endpoint_id}", response_model=WebhookEndpointPublic, summary="Get a webhook endpoint",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_webhook_endpoint(
    endpoint_id: EndpointId, session: SessionDep, principal: WebhookAdmin
) -> WebhookEndpointPublic:
    return WebhookEndpointPublic.model_validate(
        await service.get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    )


@endpoints.delete(
    "/{endpoint_id}", response_model=WebhookEndpointPublic, summary="Delete a webhook endpoint",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def delete_webhook_endpoint(
    endpoint_id: EndpointId, session: SessionDep, principal: WebhookAdmin
) -> WebhookEndpointPublic:
    """No more deliveries to it, at once; pending ones are dropped."""
    return WebhookEndpointPublic.model_validate(
        await service.delete_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    )


@endpoints.post(
    "/{endpoint_id}/rotate-secret", response_model=WebhookEndpointWithSecret, summary="Rotate the signing secret",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def rotate_webhook_secret(
    endpoint_id: EndpointId, session: SessionDep, principal: WebhookAdmin
) -> WebhookEndpointWithSecret:
    """A new secret, returned once. For 24 hours deliveries carry signatures by both the
    old and the new secret, so receivers can switch without missing a delivery."""
    return WebhookEndpointWithSecret.model_validate(
        await service.rotate_secret(session, principal=principal, endpoint_id=endpoint_id)
    )


def _detail(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> WebhookDeliveryDetail:
    base = WebhookDeliveryPublic.model_validate(delivery).model_dump()
    return WebhookDeliveryDetail(
        **base, attempt_log=[WebhookAttemptPublic.model_validate(a) for a in attempts]
    )


@deliveries.get(
    "", response_model=ListResponse[WebhookDeliveryPublic], summary="List webhook deliveries",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_webhook_deliveries(
    session: ReadSessionDep,
    principal: WebhookReader,
    page: PageDep,
    endpoint_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["pending", "succeeded", "failed", "dropped"] | None = None,
) -> ListResponse[WebhookDeliveryPublic]:
    """Newest first: attempts, last status code, latency and error of each."""
    result = await service.list_deliveries(
        session, principal=principal, endpoint_id=endpoint_id, status=status,
        limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return ListResponse.of(WebhookDeliveryPublic, result)


@deliveries.get(
    "/{delivery_id}", response_model=WebhookDeliveryDetail, summary="Get a delivery and its attempts",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_webhook_delivery(
    delivery_id: DeliveryId, session: SessionDep, principal: WebhookAdmin
) -> WebhookDeliveryDetail:
    return _detail(
        *await service.get_delivery(session, principal=principal, delivery_id=delivery_id)
    )


@deliveries.post(
    "/{delivery_id}/retry", response_model=WebhookDeliveryDetail, summary="Send a delivery again now",
    responses=problem_responses(401, 403, 404, 409, 422),
)  # fmt: skip
async def retry_webhook_delivery(
    delivery_id: DeliveryId, session: SessionDep, principal: WebhookAdmin
) -> WebhookDeliveryDetail:
    return _detail(
        *await service.retry_delivery(session, principal=principal, delivery_id=delivery_id)
    )
