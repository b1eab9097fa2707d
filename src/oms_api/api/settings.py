from __future__ import annotations

from fastapi import APIRouter

from oms_api.api.deps import AdminPrincipal, SessionDep, UnboundAdmin, shared_write_responses
from oms_api.api.problems import problem_responses
from oms_api.api.routing import Route
from oms_api.schemas.settings import (
    FulfillmentSettingsBody,
    FulfillmentSettingsPublic,
    ReturnSettingsBody,
    ReturnSettingsPublic,
    RiskSettingsBody,
    RiskSettingsPublic,
)
from oms_api.services import app_settings as service

router = APIRouter(prefix="/v1/settings", tags=["settings"], route_class=Route)


@router.get(
    "/risk", response_model=RiskSettingsPublic, summary="Get the risk rules' settings",
    responses=problem_responses(401, 403),
)  # fmt: skip
async def get_risk_settings(session: SessionDep, _admin: AdminPrincipal) -> RiskSettingsPublic:
    return RiskSettingsPublic.model_validate((await service.get_risk_settings(session)).to_json())


@router.put(
    "/risk", response_model=RiskSettingsPublic, summary="Replace the risk rules' settings",
    responses=shared_write_responses(401, 403, 413, 422),
)  # fmt: skip
async def put_risk_settings(
    body: RiskSettingsBody, session: SessionDep, _admin: UnboundAdmin
) -> RiskSettingsPublic:
    """Rules run at placement: order total above `max_order_total`; a customer's first
    order (no earlier order) above `first_order_max_total`; more than
    `velocity_max_orders` orders from one email within `velocity_window_seconds`; more
    than `address_velocity_max_orders` orders to one shipping address (the place, however
    spelt, whatever the email) within `address_velocity_window_seconds`; billing and
    shipping countries differ; shipping country in `blocked_countries`. Each adds its
    weight to the score; at `hold_threshold` or above the order goes `on_hold`. A blocked
    country alone always holds. Applies to orders placed from now on."""
    settings = await service.put_risk_settings(session, body.model_dump())
    return RiskSettingsPublic.model_validate(settings.to_json())


@router.get(
    "/returns", response_model=ReturnSettingsPublic, summary="Get the return settings",
    responses=problem_responses(401, 403),
)  # fmt: skip
async def get_return_settings(session: SessionDep, _admin: AdminPrincipal) -> ReturnSettingsPublic:
    return ReturnSettingsPublic.model_validate(
        (await service.get_return_settings(session)).to_json()
    )


@router.put(
    "/returns", response_model=ReturnSettingsPublic, summary="Replace the return settings",
    responses=shared_write_responses(401, 403, 413, 422),
)  # fmt: skip
async def put_return_settings(
    body: ReturnSettingsBody, session: SessionDep, _admin: UnboundAdmin
) -> ReturnSettingsPublic:
    """`window_days`: how long after a line's delivery (or, if it was never delivered, its
    shipment) it may be returned; a return asked later is 409 `return_window_closed`."""
    settings = await service.put_return_settings(session, body.model_dump())
    return ReturnSettingsPublic.model_validate(settings.to_json())


@router.get(
    "/fulfillment", response_model=FulfillmentSettingsPublic,
    summary="Get the fulfilment settings", responses=problem_responses(401, 403),
)  # fmt: skip
async def get_fulfillment_settings(
    session: SessionDep, _admin: AdminPrincipal
) -> FulfillmentSettingsPublic:
    return FulfillmentSettingsPublic.model_validate(
        (await service.get_fulfillment_settings(session)).to_json()
    )


@router.put(
    "/fulfillment", response_model=FulfillmentSettingsPublic,
    summary="Replace the fulfilment settings", responses=shared_write_responses(401, 403, 413, 422),
)  # fmt: skip
async def put_fulfillment_settings(
    body: FulfillmentSettingsBody, session: SessionDep, _admin: UnboundAdmin
) -> FulfillmentSettingsPublic:
    """`auto_allocate`: when on, an order's shipments are created as
    `POST /v1/orders/{id}/allocate` would, in the transaction that confirms it (placement,
    a payment, a release from hold) — and, for a confirmed order, in the one that fills its
    backorders. Applies to confirmations from now on."""
    settings = await service.put_fulfillment_settings(session, body.model_dump())
    return FulfillmentSettingsPublic.model_validate(settings.to_json())
