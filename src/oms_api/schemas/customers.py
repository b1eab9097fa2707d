from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from oms_api.schemas.common import Address, AddressPublic, Email, PublicModel, RequestModel

Phone = Annotated[str, StringConstraints(max_length=64)]
PersonName = Annotated[str, StringConstraints(max_length=200)]


class CustomerCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+44 20 7946 0000",
                 "addresses": [{"line1": "12 St James's Sq", "city": "London", "postal_code": "SW1Y 4JH",
                                "country": "GB"}]}
            ]
        }
    )  # fmt: skip

    email: Email
    name: PersonName | None = None
    phone: Phone | None = None
    addresses: list[Address] = Field(default_factory=list, max_length=20)


class CustomerUpdate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"accepts_follow_up": False}]})

    accepts_follow_up: bool = Field(
        description="False: no more follow-up emails (feedback requests) to this customer, "
        "from any channel. Order, shipping and return emails still go."
    )


class CustomerProfilePublic(PublicModel):
    """What one channel gave for this customer, through its customer creations and orders."""

    channel_id: str
    channel: str = Field(description="The channel's code.")
    email: str = Field(description="As this channel spelt it.")
    name: str | None
    phone: str | None
    addresses: list[AddressPublic] = Field(
        description="Given when the channel created the customer, then its orders' shipping and "
        "billing addresses, newest first; each once, at most 20."
    )
    version: int
    created_at: datetime = Field(description="When this channel first knew the customer.")
    updated_at: datetime


class CurrencyAmount(PublicModel):
    currency: str = Field(description="ISO 4217 code.")
    amount: int = Field(description="In the currency's minor unit (cents), like every amount.")


class CustomerPublic(PublicModel):
    """For a channel-bound key: the customer as its channel knows them (its own profile, and
    nothing any other channel recorded). For an admin key: the business's record — what the
    admin gave, else the latest any channel gave — with every channel's profile."""

    id: str
    email: str
    name: str | None
    phone: str | None
    addresses: list[AddressPublic]
    profiles: list[CustomerProfilePublic] = Field(
        description="Every channel's profile for an admin key; only its own for a channel key."
    )
    orders_count: int = Field(
        description="Orders not cancelled (a pending order counts until it is cancelled or "
        "expires). For a channel-bound key: its own channel's only, as every figure below."
    )
    lifetime_value: list[CurrencyAmount] = Field(
        description="Per currency, by currency code: the sum over the orders counted of "
        "`total` minus what was refunded; an exchange's order only what it costs beyond its "
        "exchange credit. No conversion between currencies; empty when none."
    )
    last_order_at: datetime | None = Field(
        description="When the newest order counted was placed; null when none."
    )
    returns_count: int = Field(description="Returns (RMAs) not cancelled or rejected.")
    accepts_follow_up: bool = Field(
        description="Whether follow-up emails (a feedback request after delivery) go to them; "
        "order, shipping and return emails always do."
    )
    version: int
    created_at: datetime
    updated_at: datetime
