from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from oms_api import paper
from oms_api.domain.pickups import PickupStatus
from oms_api.domain.shipments import ShipmentStatus, TrackingStatus
from oms_api.schemas.common import (
    Id,
    PublicModel,
    RequestModel,
    ShortText,
    Timestamp,
    matching,
)

Carrier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    Field(description="Free text; well-known carriers (UPS, FedEx, DHL Express, …) get a "
          "`tracking_url`.", examples=["UPS"]),
]  # fmt: skip
Service = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def _scannable_on_a_label(number: str) -> str:
    if not paper.label_barcode_scans(number):
        raise ValueError(
            "too long to print as a barcode that scans on a 4 by 6 in label at 203 dpi: at "
            "most 29 characters of letters and digits mixed (58 digits alone, 55 if their "
            "count is odd)"
        )
    return number


TrackingNumber = Annotated[
    str,
    matching(r"^[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?$", "printable ASCII (it is printed "
             "as Code 128), 1 to 64 characters, no space at either end"),
    AfterValidator(_scannable_on_a_label),
    Field(description="Printable ASCII, 1 to 64 characters, and short enough that its Code 128 "
          "scans on the 4 by 6 in label at 203 dpi: at most 29 characters of letters and "
          "digits mixed, 58 digits alone (digits in pairs take half the room; an odd count, "
          "55 at most).",
          examples=["1Z999AA10123456784"]),
]  # fmt: skip
Grams = Annotated[int, Field(ge=0, le=1_000_000_000)]


class ShipmentLineCreate(RequestModel):
    line_id: Id
    quantity: int = Field(ge=1, le=1_000_000)


class ShipmentCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"location_id": "loc_01J…", "lines": [{"line_id": "line_01J…", "quantity": 2}]}
            ]
        }
    )

    location_id: Id = Field(description="Where the parcel leaves from.")
    lines: list[ShipmentLineCreate] = Field(min_length=1, max_length=500)


class ParcelBody(RequestModel):
    """What is known of the parcel; at `/pack` all optional (give them there to print the
    label before handing over), at `/ship` a carrier and tracking number are needed unless
    `/pack` gave them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"carrier": "UPS", "service": "Ground",
                          "tracking_number": "1Z999AA10123456784", "weight_grams": 850}]
        }
    )  # fmt: skip

    carrier: Carrier | None = None
    service: Service | None = None
    tracking_number: TrackingNumber | None = None
    weight_grams: Grams | None = Field(
        default=None, description="Defaults to the products' weights times their quantities."
    )


TrackingStatusName = Literal[
    "in_transit", "out_for_delivery", "delivery_attempted", "exception", "delivered"
]


class TrackingCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "in_transit", "description": "Departed facility",
                          "location": "Leipzig, DE", "occurred_at": "2026-11-30T18:04:00Z"}]
        }
    )  # fmt: skip

    status: TrackingStatusName
    description: ShortText | None = None
    location: ShortText | None = None
    occurred_at: Timestamp


class TrackingPublic(PublicModel):
    status: TrackingStatus
    description: str | None
    location: str | None
    occurred_at: datetime


class ShipmentLinePublic(PublicModel):
    line_id: str
    sku: str
    name: str
    quantity: int


class ShipmentPublic(PublicModel):
    id: str = Field(examples=["shp_01JD3Y4X8Z6W2V5T7R9Q1P3N5M"])
    order_id: str
    order_number: int
    channel_id: str
    location_id: str = Field(description="Where it leaves from.")
    status: ShipmentStatus
    lines: list[ShipmentLinePublic]
    carrier: str | None
    service: str | None
    tracking_number: str | None
    tracking_url: str | None = Field(description="For well-known carriers; null for others.")
    weight_grams: int
    latest_tracking: TrackingPublic | None = Field(
        description="The newest carrier update by `occurred_at` that agrees with the "
        "shipment's state: once delivered, its newest `delivered` update (later updates stay "
        "in the history only)."
    )
    pickup_id: str | None = Field(description="The carrier pickup it is on, if any.")
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    picking_at: datetime | None
    packed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None = Field(
        description="When it was delivered: a carrier's `delivered` update's `occurred_at` "
        "(never after now nor before `shipped_at`), or the time of `/deliver`."
    )
    cancelled_at: datetime | None
    version: int


class ShipmentsCreated(PublicModel):
    data: list[ShipmentPublic] = Field(description="The shipments created.")


class ShipmentTracking(ShipmentPublic):
    tracking: list[TrackingPublic] = Field(description="Carrier updates, by `occurred_at`.")


class OrderTracking(PublicModel):
    order_id: str
    order_number: int
    status: str
    shipments: list[ShipmentTracking]


class PickListShipment(PublicModel):
    shipment_id: str
    order_number: int
    quantity: int


class PickListItem(PublicModel):
    sku: str
    name: str
    quantity: int
    shipments: list[PickListShipment]


class PickList(PublicModel):
    location_id: str
    location_name: str
    statuses: list[ShipmentStatus]
    generated_at: datetime
    items: list[PickListItem] = Field(description="By SKU.")


class PickupCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"carrier": "UPS", "ready_at": "2026-11-30T17:00:00Z"}]}
    )

    carrier: Carrier
    ready_at: Timestamp = Field(
        description="When the parcels are ready for the driver: now or later (more than 15 "
        "minutes before the server's clock is 422 `ready_at_in_past`)."
    )
    note: ShortText | None = None


class PickupParcel(PublicModel):
    shipment_id: str
    order_number: int
    tracking_number: str | None
    weight_grams: int


class PickupPublic(PublicModel):
    id: str
    location_id: str
    carrier: str
    ready_at: datetime
    note: str | None
    status: PickupStatus
    shipments: list[PickupParcel]
    parcel_count: int
    total_weight_grams: int
    created_at: datetime
    updated_at: datetime
    collected_at: datetime | None
    cancelled_at: datetime | None
    version: int
