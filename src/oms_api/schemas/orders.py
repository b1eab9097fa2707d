from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from oms_api.domain.orders import OrderStatus
from oms_api.domain.payments import PaymentKind, PaymentStatus
from oms_api.schemas.common import (
    Address,
    AddressPublic,
    Code,
    Currency,
    Email,
    Id,
    Metadata,
    Money,
    PublicModel,
    RequestModel,
    ShortText,
    Sku,
    matching,
)
from oms_api.schemas.customers import PersonName, Phone

MAX_LINES = 500
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Reference = Annotated[str, StringConstraints(max_length=200)]
Method = Annotated[
    str, matching(r"^[a-z0-9_]{1,40}$", "lower-case letters, digits and '_', 1 to 40 characters")
]


class CustomerInline(RequestModel):
    email: Email
    name: PersonName | None = None
    phone: Phone | None = None


class OrderLineCreate(RequestModel):
    sku: Sku
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Money | None = Field(default=None, description="Defaults to the product's price.")


class PaymentAtPlacement(RequestModel):
    method: Method = Field(
        examples=["card"], description="`invoice` and `cash_on_delivery` need no payment first."
    )
    status: Literal["pending", "authorized", "paid"] = "pending"
    amount: Money | None = Field(default=None, description="Defaults to the order total.")
    reference: Reference | None = None


class OrderCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channel": "web",
                    "external_id": "WEB-10042",
                    "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
                    "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Sq", "city": "London",
                                         "postal_code": "SW1Y 4JH", "country": "GB"},
                    "currency": "EUR",
                    "lines": [{"sku": "TSHIRT-M-RED", "quantity": 2}],
                    "shipping_price": 490,
                    "payment": {"method": "card", "status": "authorized", "reference": "pi_3Nx…"},
                }
            ]
        }
    )  # fmt: skip

    channel: Code | None = Field(
        default=None, description="Channel code; implied by a channel-bound key."
    )
    external_id: ExternalId | None = Field(
        default=None, description="The channel's own reference; unique per channel."
    )
    customer_id: Id | None = None
    customer: CustomerInline | None = Field(default=None, description="Found or created by email.")
    shipping_address: Address | None = None
    billing_address: Address | None = None
    currency: Currency | None = Field(
        default=None, description="Defaults to the products' currency."
    )
    lines: list[OrderLineCreate] = Field(min_length=1, max_length=MAX_LINES)
    shipping_price: Money = 0
    payment: PaymentAtPlacement | None = None
    note: ShortText | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_customer(self) -> OrderCreate:
        if (self.customer_id is None) == (self.customer is None):
            raise ValueError("give exactly one of customer_id and customer")
        return self


class OrderLinePublic(PublicModel):
    """Every unit of a line is in one place: `quantity = quantity_reserved +
    quantity_backordered + quantity_shipped + quantity_cancelled`, always."""

    id: str
    sku: str
    product_id: str
    name: str
    quantity: int
    unit_price: int
    total: int
    quantity_reserved: int = Field(description="Held at a location (see `allocations`).")
    quantity_backordered: int = Field(description="Accepted with no stock: reserved nowhere yet.")
    quantity_shipped: int
    quantity_cancelled: int
    quantity_returned: int = Field(description="Shipped units that came back.")


class AllocationPublic(PublicModel):
    line_id: str
    sku: str
    location_id: str
    quantity: int = Field(description="Units of this line reserved there.")


class Totals(PublicModel):
    subtotal: int
    shipping: int
    total: int


class PaymentAmounts(PublicModel):
    authorized: int = Field(
        description="Everything authorized, sales included (a capture with no authorization "
        "open authorizes what it captures): `authorized - captured - voided` is what is "
        "authorized and open."
    )
    captured: int
    refunded: int
    voided: int


class PaymentPublic(PublicModel):
    id: str
    kind: PaymentKind
    amount: int
    reference: str | None
    created_at: datetime


class Risk(PublicModel):
    score: int
    reasons: list[str]


class OrderPublic(PublicModel):
    id: str = Field(examples=["ord_01JD3Y4X8Z6W2V5T7R9Q1P3N5M"])
    number: int = Field(description="Human order number, unique and ascending.", examples=[1042])
    channel: str
    channel_id: str
    external_id: str | None
    customer_id: str
    email: str
    status: OrderStatus
    payment_status: PaymentStatus
    payment_method: str | None
    return_status: Literal["none", "requested", "partially_returned", "returned"] = Field(
        description="`requested`: a return is on its way; `returned`: every shipped unit "
        "came back. Returns never change `status`."
    )
    currency: str
    lines: list[OrderLinePublic]
    allocations: list[AllocationPublic] = Field(
        description="Where each line's reserved units are held, per line and location."
    )
    totals: Totals
    payment_amounts: PaymentAmounts
    payments: list[PaymentPublic]
    risk: Risk
    shipping_address: AddressPublic | None
    billing_address: AddressPublic | None
    note: str | None
    metadata: dict[str, Any]
    hold_reason: str | None
    cancel_reason: str | None
    exchange_for_return_id: str | None = Field(
        description="For an order placed by an exchange: the return it replaces."
    )
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    shipped_at: datetime | None = Field(description="When every unit not cancelled had shipped.")
    delivered_at: datetime | None = Field(
        description="When every shipment was delivered: its last shipment's `delivered_at`."
    )
    cancelled_at: datetime | None
    expires_at: datetime | None = Field(
        description="When this unpaid `pending` order is cancelled if no payment arrives; "
        "`null` while it cannot expire (another state, or a payment in force)."
    )
    version: int


class ReasonBody(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "customer asked by phone"}]}
    )

    reason: ShortText | None = None


PaymentKindName = Literal["authorization", "capture", "refund", "void"]


class PaymentCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"kind": "capture", "amount": 4488, "reference": "ch_3Nx…"}]
        }
    )

    kind: PaymentKindName
    amount: int = Field(ge=1, le=100_000_000_000)
    reference: Reference | None = None


class OrderEventPublic(PublicModel):
    id: str
    type: str
    sequence: int | None
    created_at: datetime
    data: dict[str, Any]
