"""Reports as the API answers them (JSON; the same rows as CSV with `Accept: text/csv`)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

PERIOD_FROM = Field(
    serialization_alias="from",
    description="The period's first day (UTC), inclusive.",
    examples=["2026-11-01"],
)
PERIOD_TO = Field(description="The period's last day (UTC), inclusive.", examples=["2026-11-30"])
GENERATED_AT = Field(description="When the figures were read.")


class SalesRow(BaseModel):
    day: date | None = Field(default=None, description="With `group_by=day`: the UTC day.")
    channel: str | None = Field(default=None, description="With `group_by=channel`: its code.")
    sku: str | None = Field(default=None, description="With `group_by=sku`.")
    currency: str = Field(examples=["EUR"])
    orders: int = Field(description="Orders placed (not cancelled); by SKU, those holding it.")
    units: int = Field(description="Units ordered on their lines.")
    revenue: int = Field(
        description="Minor units: the orders' totals; by SKU, its lines' quantity x unit price."
    )


class SalesReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-11-01", "to": "2026-11-30",
                    "generated_at": "2026-12-01T09:00:00.000000Z", "group_by": "channel",
                    "rows": [{"channel": "web", "currency": "EUR", "orders": 412,
                              "units": 815, "revenue": 2051840}],
                }
            ]
        }
    )  # fmt: skip

    from_: date = PERIOD_FROM
    to: date = PERIOD_TO
    generated_at: datetime = GENERATED_AT
    group_by: str = Field(examples=["day"])
    rows: list[SalesRow]


class FulfilmentFigures(BaseModel):
    orders_placed: int = Field(description="Orders placed in the period (not cancelled).")
    orders_shipped: int = Field(description="Of them, those with a shipment shipped.")
    orders_delivered: int = Field(description="Of them, those delivered in full.")
    hours_to_ship_median: float | None = Field(
        description="Placement → first shipment shipped, in hours; null if none shipped."
    )
    hours_to_ship_p90: float | None
    hours_to_deliver_median: float | None = Field(
        description="Placement → delivered (every shipment), in hours; null if none."
    )
    hours_to_deliver_p90: float | None


class FulfilmentRow(FulfilmentFigures):
    location_id: str
    location_code: str


class FulfilmentReport(FulfilmentFigures):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-11-01", "to": "2026-11-30",
                    "generated_at": "2026-12-01T09:00:00.000000Z",
                    "orders_placed": 412, "orders_shipped": 400, "orders_delivered": 380,
                    "hours_to_ship_median": 14.5, "hours_to_ship_p90": 40.25,
                    "hours_to_deliver_median": 75.0, "hours_to_deliver_p90": 130.5,
                    "rows": [{"location_id": "loc_01J…", "location_code": "berlin",
                              "orders_placed": 412, "orders_shipped": 400,
                              "orders_delivered": 380, "hours_to_ship_median": 14.5,
                              "hours_to_ship_p90": 40.25, "hours_to_deliver_median": 75.0,
                              "hours_to_deliver_p90": 130.5}],
                }
            ]
        }
    )  # fmt: skip

    from_: date = PERIOD_FROM
    to: date = PERIOD_TO
    generated_at: datetime = GENERATED_AT
    rows: list[FulfilmentRow] = Field(description="The same figures per shipping location.")


class ReturnReasons(BaseModel):
    damaged: int
    wrong_item: int
    not_as_described: int
    no_longer_needed: int
    size_or_fit: int
    other: int


class ReturnsRow(BaseModel):
    sku: str
    units_sold: int = Field(description="Units on the lines of the period's orders.")
    units_returned: int = Field(
        description="Of those, units on returns that were not rejected or cancelled."
    )
    return_rate: float = Field(description="units_returned ÷ units_sold, four decimals.")
    reasons: ReturnReasons = Field(description="Units returned per reason (CSV: reason_<name>).")


class ReturnsReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-11-01", "to": "2026-11-30",
                    "generated_at": "2026-12-01T09:00:00.000000Z",
                    "rows": [{"sku": "TSHIRT-M-RED", "units_sold": 120, "units_returned": 9,
                              "return_rate": 0.075,
                              "reasons": {"damaged": 1, "wrong_item": 0,
                                          "not_as_described": 2, "no_longer_needed": 1,
                                          "size_or_fit": 5, "other": 0}}],
                }
            ]
        }
    )  # fmt: skip

    from_: date = PERIOD_FROM
    to: date = PERIOD_TO
    generated_at: datetime = GENERATED_AT
    rows: list[ReturnsRow]


class InventoryRow(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    reorder_point: int
    low_stock: bool = Field(description="available ≤ reorder_point.")
    stock_value: int = Field(description="on_hand x the product's unit price, minor units.")
    currency: str = Field(description="The product's currency.")


class InventoryReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": None, "to": None, "generated_at": "2026-12-01T09:00:00.000000Z",
                    "rows": [{"sku": "TSHIRT-M-RED", "on_hand": 8, "reserved": 3,
                              "available": 5, "reorder_point": 10, "low_stock": True,
                              "stock_value": 15992, "currency": "EUR"}],
                }
            ]
        }
    )  # fmt: skip

    from_: date | None = Field(
        default=None, serialization_alias="from", description="Null: a snapshot, not a period."
    )
    to: date | None = Field(default=None, description="Null: a snapshot, not a period.")
    generated_at: datetime = GENERATED_AT
    rows: list[InventoryRow] = Field(description="Low-stock products first, then by SKU.")
