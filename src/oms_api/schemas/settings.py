from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from oms_api.schemas.common import CountryCode, PublicModel, RequestModel

RuleName = Literal[
    "order_total_above_limit",
    "first_order_above_limit",
    "many_orders_from_email",
    "many_orders_to_address",
    "billing_shipping_country_mismatch",
]


class RiskSettingsBody(RequestModel):
    """The whole document; omitted fields take their defaults."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "hold_threshold": 70,
                    "max_order_total": 500000,
                    "blocked_countries": ["KP"],
                    "first_order_max_total": 100000,
                    "address_velocity_max_orders": 3,
                    "weights": {"many_orders_to_address": 50},
                }
            ]
        }
    )

    hold_threshold: int = Field(
        default=70, ge=1, le=100, description="Score at or above which an order is held."
    )
    max_order_total: int = Field(
        default=1_000_000, ge=0, le=100_000_000_000, description="Minor units."
    )
    blocked_countries: list[CountryCode] = Field(default_factory=list, max_length=250)
    velocity_max_orders: int = Field(
        default=5, ge=1, le=10_000, description="Orders per email within the window."
    )
    velocity_window_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    address_velocity_max_orders: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="Orders to one shipping address (whatever the email) within its window, "
        "this one included.",
    )
    address_velocity_window_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    first_order_max_total: int = Field(
        default=250_000,
        ge=0,
        le=100_000_000_000,
        description="Minor units: a customer's first order (no earlier order) above it.",
    )
    weights: dict[RuleName, Annotated[int, Field(ge=0, le=100)]] = Field(
        default_factory=dict,
        description="Score per rule (0-100); unnamed rules keep their default.",
    )


class RiskSettingsPublic(PublicModel):
    hold_threshold: int
    max_order_total: int
    blocked_countries: list[str]
    velocity_max_orders: int
    velocity_window_seconds: int
    address_velocity_max_orders: int
    address_velocity_window_seconds: int
    first_order_max_total: int
    weights: dict[str, int]


class ReturnSettingsBody(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"window_days": 30}]})

    window_days: int = Field(
        default=30, ge=0, le=3650, description="Days after delivery (or shipment) to return."
    )


class ReturnSettingsPublic(PublicModel):
    window_days: int


class FulfillmentSettingsBody(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"auto_allocate": True}]})

    auto_allocate: bool = Field(
        default=False,
        description="Create an order's shipments when it is confirmed, as `/allocate` would.",
    )


class FulfillmentSettingsPublic(PublicModel):
    auto_allocate: bool
