from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from oms_api.schemas.common import Email, PublicModel, RequestModel, matching

NotificationKind = Literal[
    "order_confirmed", "shipment_shipped", "shipment_delivered", "order_cancelled",
    "return_approved", "return_completed", "follow_up",
]  # fmt: skip
NotificationStatus = Literal["pending", "sent", "failed", "skipped"]
TemplateSource = Annotated[str, StringConstraints(max_length=100_000)]
DEFAULT_KINDS: list[NotificationKind] = [
    "order_confirmed", "shipment_shipped", "shipment_delivered", "order_cancelled",
    "return_approved", "return_completed",
]  # fmt: skip
# A display name goes into a header: no control characters (a CR/LF would break the header,
# and every email of the channel with it — refused when saved, not found in the inbox).
SenderName = Annotated[
    str,
    matching(
        r"^[^\x00-\x1f\x7f]+$",
        "text without control characters (no line breaks)",
        min_length=1,
        max_length=200,
    ),
]


class Sender(RequestModel):
    name: SenderName | None = None
    email: Email


class SenderPublic(PublicModel):
    name: str | None
    email: str


class TemplateOverride(RequestModel):
    """Jinja2 sources (sandboxed) replacing the shipped template's parts; a part left out
    keeps the shipped one. Rendered with `order` (the order document), `customer` (`name`,
    `email`), `channel` (`name`, `code`) and, by kind, `shipment`, or `rma` with
    `return_address` and `exchange_order`; filters `money(currency)` and `date`."""

    subject: TemplateSource | None = None
    text: TemplateSource | None = None
    html: TemplateSource | None = None


class NotificationSettingsUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"enabled": True, "from": {"name": "Example Store", "email": "orders@example.com"},
                 "reply_to": "help@example.com",
                 "kinds": ["order_confirmed", "shipment_shipped", "follow_up"],
                 "follow_up_days": 10,
                 "templates": {"order_confirmed": {
                     "subject": "Order #{{ order.number }}: thank you, {{ customer.name }}!"}}}
            ]
        }
    )  # fmt: skip

    enabled: bool = Field(
        default=True,
        description="False: this channel tells its customers itself (by its webhooks).",
    )
    sender: Sender | None = Field(
        default=None, alias="from",
        description="The sender; unset: the channel's name at OMS_SMTP_FROM's address.",
    )  # fmt: skip
    reply_to: Email | None = None
    kinds: list[NotificationKind] = Field(
        default_factory=lambda: list(DEFAULT_KINDS),
        max_length=7,
        description="The kinds sent; `follow_up` is off unless listed.",
    )  # fmt: skip
    follow_up_days: int = Field(default=7, ge=1, le=365, description="Days after delivery.")
    templates: dict[NotificationKind, TemplateOverride] = Field(default_factory=dict)


class NotificationSettingsPublic(PublicModel):
    model_config = ConfigDict(populate_by_name=True)

    channel_id: str
    enabled: bool
    sender: SenderPublic | None = Field(alias="from")
    reply_to: str | None
    kinds: list[NotificationKind]
    follow_up_days: int
    templates: dict[str, dict[str, str]]
    version: int = Field(description="0 until the channel sets its own (the defaults).")
    updated_at: datetime | None


class NotificationPublic(PublicModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(examples=["ntf_01JEQ8Z0M7C3Y1V6T4R2P9N5K8"])
    order_id: str
    channel_id: str
    customer_id: str | None
    kind: NotificationKind
    status: NotificationStatus = Field(
        description="`pending` (to send, at `due_at`), `sent`, `failed` (see `last_error`), "
        "`skipped` (no OMS_SMTP_URL, no email, or the customer takes no follow-ups)."
    )
    to: str | None
    sender: str = Field(alias="from")
    reply_to: str | None
    subject: str
    headers: dict[str, Any]
    attempts: int
    last_error: str | None
    event_id: str | None = Field(description="The event it follows from (null for a resend).")
    resend_of: str | None
    shipment_id: str | None
    return_id: str | None
    due_at: datetime | None = Field(description="When a pending one is (next) sent.")
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    text: str | None = Field(
        default=None, description="The rendered text body (on reads of one notification)."
    )
    html: str | None = Field(
        default=None, description="The rendered HTML body (on reads of one notification)."
    )
