from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from oms_api.schemas.common import (
    Address,
    AddressPublic,
    Code,
    Currency,
    Money,
    Name,
    PublicModel,
    RequestModel,
    Sku,
)

Count = Annotated[int, Field(ge=0, le=1_000_000_000)]


class LocationCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "berlin-wh",
                    "name": "Berlin warehouse",
                    "kind": "warehouse",
                    "priority": 10,
                }
            ]
        }
    )

    code: Code
    name: Name
    kind: Literal["warehouse", "store"] = "warehouse"
    priority: int = Field(
        default=100, ge=0, le=1_000_000, description="Allocation order: lower is used first."
    )
    address: Address | None = Field(
        default=None, description="The ship-from address on labels; returns are received here."
    )


class LocationUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"address": {"name": "Oms Shop GmbH", "line1": "Lagerstr. 5",
                                      "city": "Berlin", "postal_code": "10115", "country": "DE"}}]
        }
    )  # fmt: skip

    name: Name | None = None
    kind: Literal["warehouse", "store"] | None = None
    priority: int | None = Field(default=None, ge=0, le=1_000_000)
    address: Address | None = None


class LocationPublic(PublicModel):
    id: str
    code: str
    name: str
    kind: Literal["warehouse", "store"]
    priority: int
    address: AddressPublic | None = Field(description="The ship-from address on labels.")
    version: int
    created_at: datetime


class ProductCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"sku": "TSHIRT-M-RED", "name": "T-shirt, red, M", "unit_price": 1999, "currency": "EUR",
                 "weight_grams": 180, "reorder_point": 10, "reorder_quantity": 50}
            ]
        }
    )  # fmt: skip

    sku: Sku
    name: Name
    unit_price: Money
    currency: Currency
    active: bool = True
    weight_grams: Count = 0
    reorder_point: Count = Field(default=0, description="Replenish when available falls to this.")
    reorder_quantity: Count = 0
    allow_backorder: bool = False


class ProductUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"unit_price": 2499, "active": True}]}
    )

    name: Name | None = None
    unit_price: Money | None = None
    currency: Currency | None = None
    active: bool | None = None
    weight_grams: Count | None = None
    reorder_point: Count | None = None
    reorder_quantity: Count | None = None
    allow_backorder: bool | None = None


class ProductPublic(PublicModel):
    id: str
    sku: str
    name: str
    unit_price: int
    currency: str
    active: bool
    weight_grams: int
    reorder_point: int
    reorder_quantity: int
    allow_backorder: bool
    version: int
    created_at: datetime
    updated_at: datetime
