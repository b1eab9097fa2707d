"""Webhook endpoints and their deliveries. Channel-bound callers see only their own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.db import driver_connection
from oms_api.domain.access import Principal
from oms_api.errors import Conflict, NotFound, Unprocessable
from oms_api.ids import new_id
from oms_api.models import Channel, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from oms_api.services.pagination import Page, paginate
from oms_api.services.scoping import scope_to_channel
from oms_api.webhooks.deliveries import bring_later_forward, drop_pending
from oms_api.webhooks.signing import new_secret
from oms_api.webhooks.targets import UnsafeTarget, check_registration

ROTATION_OVERLAP = timedelta(hours=24)


def _invalid_url(reason: str) -> Unprocessable:
    return Unprocessable(
        f"This URL cannot receive webhooks: {reason}.",
        code="invalid_webhook_url",
        errors=[{"loc": ["body", "url"], "msg": reason}],
    )


async def create_endpoint(
    session: AsyncSession,
    *,
    principal: Principal,
    url: str,
    events: list[str],
    channel_id: str | None,
    description: str | None,
    allow_private: bool,
    most: int,
) -> WebhookEndpoint:
    """A new endpoint; at most `most` per channel (and as many shop-wide), so that one
    channel cannot multiply every event's deliveries — the rows stored, the dispatcher's
    work — for everyone (409 `webhook_endpoint_limit`)."""
    if principal.channel_id is not None:
        if channel_id not in (None, principal.channel_id):
            raise Unprocessable("A channel-bound key registers endpoints for its own channel only.",
                                code="channel_mismatch")  # fmt: skip
        channel_id = principal.channel_id
    elif channel_id is not None and await session.get(Channel, channel_id) is None:
        raise Unprocessable(f"No channel with id {channel_id}.", code="unknown_channel")
    try:
        await check_registration(url, allow_private=allow_private)
    except UnsafeTarget as exc:
        raise _invalid_url(str(exc)) from None
    # Counted under a lock on the channel's endpoints (a transaction-scoped advisory lock:
    # concurrent registrations for one channel count one after the other).
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('webhook_endpoints:' || :c, 0))"),
        {"c": channel_id or ""},
    )
    registered = await session.scalar(
        select(func.count()).select_from(WebhookEndpoint).where(
            WebhookEndpoint.status != "deleted",
            WebhookEndpoint.channel_id.is_(None) if channel_id is None
            else WebhookEndpoint.channel_id == channel_id,
        )
    )  # fmt: skip
    if registered is not None and registered >= most:
        raise Conflict(
            f"{'This channel has' if channel_id else 'The shop has'} {registered} webhook "
            f"endpoints, the most there may be (OMS_WEBHOOK_ENDPOINTS_PER_CHANNEL): delete "
            "one first, or subscribe an existing one to more events.",
            code="webhook_endpoint_limit", limit=most,
        )  # fmt: skip
    endpoint = WebhookEndpoint(
        id=new_id("we"), url=url, events=sorted(set(events)), channel_id=channel_id,
        description=description, secret=new_secret(),
    )  # fmt: skip
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


def _endpoints(principal: Principal) -> Any:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.status != "deleted")
    return scope_to_channel(stmt, principal, WebhookEndpoint.channel_id)


async def get_endpoint(
    session: AsyncSession, *, principal: Principal, endpoint_id: str
) -> WebhookEndpoint:
    endpoint: WebhookEndpoint | None = await session.scalar(
        _endpoints(principal).where(WebhookEndpoint.id == endpoint_id)
    )
    if endpoint is None:
        raise NotFound(f"No webhook endpoint with id {endpoint_id}.")
    return endpoint


async def list_endpoints(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> Page[WebhookEndpoint]:
    return await paginate(
        session, _endpoints(principal), keys=[WebhookEndpoint.id], limit=limit, cursor=cursor
    )


async def delete_endpoint(
    session: AsyncSession, *, principal: Principal, endpoint_id: str
) -> WebhookEndpoint:
    """Stops all delivery to it: its pending deliveries are `dropped` (no longer queued,
    counted or sent); its delivery history stays readable by id.

    The fence first (404 unless the principal's and not deleted), then a conditional
    UPDATE: of two deletes at once, the second finds no row still undeleted and answers
    404, as it would have a moment later."""
    endpoint = await get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    deleted: WebhookEndpoint | None = await session.scalar(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.status != "deleted")
        .values(status="deleted")
        .returning(WebhookEndpoint)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if deleted is None:
        raise NotFound(f"No webhook endpoint with id {endpoint_id}.")
    await drop_pending(await driver_connection(session), endpoint.id)
    return deleted


async def rotate_secret(
    session: AsyncSession, *, principal: Principal, endpoint_id: str
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing alongside it for 24 hours."""
    endpoint = await get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id)
        .values(
            previous_secret=WebhookEndpoint.secret,
            previous_secret_expires_at=func.now() + ROTATION_OVERLAP,
            secret=new_secret(),
        )
    )
    await session.refresh(endpoint)
    return endpoint


def _deliveries(principal: Principal) -> Any:
    stmt = select(WebhookDelivery).join(
        WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id
    )
    return scope_to_channel(stmt, principal, WebhookEndpoint.channel_id)


async def list_deliveries(
    session: AsyncSession, *, principal: Principal, endpoint_id: str | None, status: str | None,
    limit: int, cursor: str | None,
) -> Page[WebhookDelivery]:  # fmt: skip
    stmt = _deliveries(principal)
    if endpoint_id is not None:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return await paginate(session, stmt, keys=[WebhookDelivery.id], limit=limit, cursor=cursor)


async def get_delivery(
    session: AsyncSession, *, principal: Principal, delivery_id: str
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    delivery: WebhookDelivery | None = await session.scalar(
        _deliveries(principal).where(WebhookDelivery.id == delivery_id)
    )
    if delivery is None:
        raise NotFound(f"No webhook delivery with id {delivery_id}.")
    attempts = (
        await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
    ).all()
    return delivery, list(attempts)


async def retry_delivery(
    session: AsyncSession, *, principal: Principal, delivery_id: str
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    """Due again now, whatever its state (a delivered event may be sent again), unless its
    endpoint was deleted or disabled (409 `webhook_endpoint_not_enabled`: it would stay
    pending for ever). Its order's later deliveries to the endpoint wait for it again, and
    those that waited for its retry schedule are due as soon as it is delivered."""
    delivery, _ = await get_delivery(session, principal=principal, delivery_id=delivery_id)
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or endpoint.status != "enabled":
        raise Conflict(
            f"The delivery's endpoint is {endpoint.status if endpoint else 'gone'}: "
            "nothing can be sent to it.",
            code="webhook_endpoint_not_enabled",
        )
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id)
        .values(status="pending", next_attempt_at=func.now())
    )
    await bring_later_forward(
        await driver_connection(session), delivery.endpoint_id, delivery.event_id
    )
    await session.refresh(delivery)
    return await get_delivery(session, principal=principal, delivery_id=delivery_id)


async def queue_stats(session: AsyncSession) -> tuple[int, float]:
    """(pending deliveries, age in seconds of the oldest)."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(
                    func.extract("epoch", func.now() - func.min(WebhookDelivery.created_at)), 0
                ),
            ).where(WebhookDelivery.status == "pending")
        )
    ).one()
    return int(row[0]), float(row[1])
