from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from oms_api.schemas.common import Id, PublicModel, RequestModel, ShortText, Sku

AdjustmentReason = Literal["received", "cycle_count", "damaged", "lost", "correction"]


class InventoryLevelPublic(PublicModel):
    sku: str
    product_id: str
    location_id: str
    on_hand: int
    reserved: int
    available: int = Field(description="on_hand - reserved")
    updated_at: datetime


class InventoryLevelBrief(PublicModel):
    location_id: str
    on_hand: int
    reserved: int
    available: int


class InventorySummary(PublicModel):
    sku: str
    product_id: str
    on_hand: int
    reserved: int
    available: int
    levels: list[InventoryLevelBrief]


class AdjustmentCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"sku": "TSHIRT-M-RED", "location_id": "loc_01J…", "delta": 50, "reason": "received",
                 "note": "PO 4471"},
                {"sku": "TSHIRT-M-RED", "location_id": "loc_01J…", "delta": -2, "reason": "cycle_count",
                 "expected_on_hand": 48},
            ]
        }
    )  # fmt: skip

    sku: Sku
    location_id: Id
    delta: int = Field(ge=-1_000_000_000, le=1_000_000_000, description="Change of on_hand; not 0.")
    reason: AdjustmentReason
    note: ShortText | None = None
    expected_on_hand: int | None = Field(
        default=None,
        ge=0,
        le=2_000_000_000,
        description="Apply only if on_hand is still this (409 `stale_count` otherwise).",
    )


class MovementPublic(PublicModel):
    id: str
    sku: str
    product_id: str
    location_id: str
    on_hand_delta: int
    reserved_delta: int
    reason: str
    cause_type: Literal["adjustment", "order", "shipment", "return", "replenishment"]
    cause_id: str | None
    note: str | None
    created_at: datetime


class AdjustmentResult(PublicModel):
    movement: MovementPublic
    level: InventoryLevelPublic
