from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from oms_api.domain.returns import ReturnStatus
from oms_api.schemas.common import Id, Money, PublicModel, RequestModel, ShortText, Sku

ReasonName = Literal[
    "damaged", "wrong_item", "not_as_described", "no_longer_needed", "size_or_fit", "other"
]


class ReturnLineCreate(RequestModel):
    line_id: Id
    quantity: int = Field(ge=1, le=1_000_000)
    reason: ReasonName
    note: ShortText | None = None


class ExchangeLine(RequestModel):
    sku: Sku
    quantity: int = Field(ge=1, le=1_000_000)


class ReturnCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"order_id": "ord_01J…", "resolution": "refund",
                 "lines": [{"line_id": "line_01J…", "quantity": 1, "reason": "size_or_fit"}]},
                {"order_id": "ord_01J…", "resolution": "exchange",
                 "lines": [{"line_id": "line_01J…", "quantity": 1, "reason": "size_or_fit"}],
                 "exchange_lines": [{"sku": "TSHIRT-L-RED", "quantity": 1}]},
            ]
        }
    )  # fmt: skip

    order_id: Id
    lines: list[ReturnLineCreate] = Field(min_length=1, max_length=500)
    resolution: Literal["refund", "exchange"]
    exchange_lines: list[ExchangeLine] = Field(
        default_factory=list, max_length=500, description="What to send instead (exchanges)."
    )
    location_id: Id | None = Field(
        default=None, description="Where it is sent back to; by default where it shipped from."
    )


class ReceiveLine(RequestModel):
    line_id: Id
    quantity: int = Field(ge=1, le=1_000_000)
    condition: Literal["resellable", "damaged"]


class ReceiveBody(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"location_id": "loc_01J…", "lines": [
                {"line_id": "line_01J…", "quantity": 1, "condition": "resellable"}]}]
        }
    )  # fmt: skip

    location_id: Id = Field(
        description="Where the units arrived; resellable ones are stocked here."
    )
    lines: list[ReceiveLine] = Field(min_length=1, max_length=500)


class CompleteBody(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refund_shipping": True}]})

    refund_amount: Money | None = Field(
        default=None, description="Overrides the default (the returned lines' prices)."
    )
    refund_shipping: bool = Field(
        default=False, description="Add the order's shipping (once across its returns)."
    )
    resolution: Literal["refund", "exchange"] | None = Field(
        default=None,
        description="`refund` completes an exchange return as a refund instead, when what it "
        "asked for cannot be sent (discontinued, out of stock for good); its exchange lines "
        "are dropped. A refund return cannot become an exchange (422 `exchange_not_allowed`).",
    )


class ReturnLinePublic(PublicModel):
    line_id: str
    sku: str
    name: str
    quantity: int
    unit_price: int
    reason: ReasonName
    note: str | None
    quantity_received: int
    quantity_restocked: int
    quantity_damaged: int


class ExchangeLinePublic(PublicModel):
    sku: str
    quantity: int


class ReturnPublic(PublicModel):
    id: str = Field(examples=["ret_01JD3Y4X8Z6W2V5T7R9Q1P3N5M"])
    number: str = Field(description="The RMA number, to read out.", examples=["RMA-10001"])
    order_id: str
    order_number: int
    channel_id: str
    status: ReturnStatus
    resolution: Literal["refund", "exchange"]
    lines: list[ReturnLinePublic]
    exchange_lines: list[ExchangeLinePublic]
    location_id: str = Field(description="Where it is sent back to.")
    refund_amount: int | None = Field(description="Refunded at completion (refund returns).")
    refund_shipping: bool = Field(description="The refund included the order's shipping.")
    exchange_order_id: str | None = Field(description="The order an exchange placed.")
    reject_reason: str | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    received_at: datetime | None
    completed_at: datetime | None
    rejected_at: datetime | None
    cancelled_at: datetime | None
    version: int
