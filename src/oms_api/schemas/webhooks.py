from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from oms_api.domain.events import ALL as EVENT_TYPES
from oms_api.schemas.common import Id, PublicModel, RequestModel, ShortText

EventFilter = Literal[("*", *EVENT_TYPES)]  # type: ignore[valid-type]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2000)]


class WebhookEndpointCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"url": "https://hooks.example.com/oms", "events": ["order.created", "order.cancelled"]},
                         {"url": "https://hooks.example.com/all", "events": ["*"]}]
        }
    )  # fmt: skip

    url: Url = Field(description="https, to a public address.")
    events: list[EventFilter] = Field(min_length=1, max_length=len(EVENT_TYPES) + 1)
    channel_id: Id | None = Field(
        default=None, description="Only this channel's events (implied by a channel key)."
    )
    description: ShortText | None = None


class WebhookEndpointPublic(PublicModel):
    id: str
    url: str
    description: str | None
    events: list[str]
    channel_id: str | None
    status: Literal["enabled", "disabled", "deleted"]
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    created_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointPublic):
    secret: str | None = Field(
        description="`whsec_…`: verify signatures with it. Shown at creation and rotation only "
        "(null in an Idempotent-Replayed response)."
    )


class WebhookAttemptPublic(PublicModel):
    id: str
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_snippet: str | None


class WebhookDeliveryPublic(PublicModel):
    id: str
    endpoint_id: str
    event_id: str
    status: Literal["pending", "succeeded", "failed", "dropped"]
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: int | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryDetail(WebhookDeliveryPublic):
    attempt_log: list[WebhookAttemptPublic]


class EventPublic(PublicModel):
    id: str
    type: str
    order_id: str | None
    channel_id: str | None
    sequence: int | None
    created_at: datetime
    data: dict[str, Any]


class EventFeed(PublicModel):
    data: list[EventPublic]
    next_cursor: str | None = Field(
        description="Pass as `after` to continue: the last event returned, or your `after` when "
        "nothing new has committed (null only when the feed is empty)."
    )
