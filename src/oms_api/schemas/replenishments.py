from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from oms_api.domain.replenishments import ReplenishmentStatus
from oms_api.schemas.common import Id, PublicModel, RequestModel


class ReplenishmentReceive(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"location_id": "loc_01J…", "quantity": 50}]}
    )

    location_id: Id = Field(description="Where the stock came in.")
    quantity: int | None = Field(
        default=None, ge=1, le=1_000_000_000,
        description="Units received; the request's `quantity` when omitted.",
    )  # fmt: skip


class ReplenishmentPublic(PublicModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "rpl_01JDX4Q9ZC6W2T8M5N3K7R1P0A", "product_id": "prod_01JDX4…",
                    "sku": "TEE-BLK-M", "status": "open", "quantity": 50, "reorder_point": 10,
                    "available_at_opening": 10, "location_id": None, "quantity_received": None,
                    "cancel_reason": None, "created_at": "2026-12-02T09:30:00Z",
                    "updated_at": "2026-12-02T09:30:00Z", "received_at": None,
                    "cancelled_at": None, "version": 1,
                }
            ]
        }
    )  # fmt: skip

    id: str
    product_id: str
    sku: str
    status: ReplenishmentStatus
    quantity: int = Field(description="Units to reorder: the product's `reorder_quantity`.")
    reorder_point: int = Field(description="The product's reorder point when it opened.")
    available_at_opening: int = Field(
        description="The product's total available when it fell to the reorder point."
    )
    location_id: str | None = Field(description="Where it was received.")
    quantity_received: int | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    received_at: datetime | None
    cancelled_at: datetime | None
    version: int
