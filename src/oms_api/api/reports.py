"""Reports: sales, fulfilment lead times, returns, inventory — JSON, or CSV on request."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from oms_api.api.deps import (
    ReadRoute,
    ReadSessionDep,
    read_require,
)
from oms_api.api.negotiation import JSON, negotiate
from oms_api.api.orders import document_response
from oms_api.api.problems import problem_responses
from oms_api.db import driver_connection
from oms_api.domain import reports as rules
from oms_api.domain.access import Principal, Scope
from oms_api.domain.reports import SalesGrouping
from oms_api.schemas.common import Code, DateText
from oms_api.schemas.reports import FulfilmentReport, InventoryReport, ReturnsReport, SalesReport
from oms_api.services import reports as service

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=ReadRoute)
Reporter = Annotated[Principal, read_require(Scope.REPORTS_READ)]
From = Annotated[
    DateText | None,
    Query(
        alias="from",
        description="First day (UTC), inclusive; default 30 days before `to`.",
        examples=["2026-11-01"],
    ),
]
To = Annotated[
    DateText | None,
    Query(description="Last day (UTC), inclusive; default today.", examples=["2026-11-30"]),
]
ChannelFilter = Annotated[
    Code | None,
    Query(description="Only this channel's orders (its code).", examples=["web"]),
]
Accept = Annotated[str | None, Header(max_length=500)]
CSV = "text/csv"
ERRORS = problem_responses(401, 403, 406, 422)


def _csv_docs(example: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}, "example": example}},
            "description": "JSON, or with `Accept: text/csv` one header row and one line "
            "per row (UTF-8). An `Accept` that admits neither is 406 `not_acceptable`.",
        },
        **ERRORS,
    }


def _answer(report: dict[str, Any], columns: list[str], kind: str, name: str) -> Response:
    """The report as JSON, or its rows as CSV when the client's `Accept` prefers
    `text/csv` (`kind`: what `negotiation.negotiate` chose, before the report was made)."""
    if kind != JSON:
        period = f"-{report['from']}-{report['to']}" if report["from"] else ""
        return Response(
            rules.to_csv(rules.csv_columns(columns), report["rows"]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}{period}.csv"'},
        )
    return document_response(report)


def _period(first: date | None, last: date | None) -> rules.Period:
    return rules.period(first, last, today=datetime.now(UTC).date())


@router.get(
    "/sales", response_model=SalesReport, summary="Sales by day, channel or SKU",
    responses=_csv_docs("day,currency,orders,units,revenue\r\n2026-11-01,EUR,14,27,68450\r\n"),
)  # fmt: skip
async def sales_report(
    session: ReadSessionDep,
    principal: Reporter,
    from_: From = None,
    to: To = None,
    group_by: Annotated[
        SalesGrouping, Query(description="One row per UTC day, channel code or SKU.")
    ] = SalesGrouping.DAY,
    channel: ChannelFilter = None,
    accept: Accept = None,
) -> Response:
    """Orders placed in the period, cancelled ones left out: per group and currency, the
    orders, the units on their lines not cancelled and the revenue (the orders' totals; by
    SKU, the lines' units not cancelled x unit price). A channel-bound key gets its own channel's figures only."""
    kind = negotiate(accept, CSV)
    report = await service.sales(
        await driver_connection(session), period=_period(from_, to), group_by=group_by,
        channel_id=principal.channel_id, channel=channel,
    )  # fmt: skip
    return _answer(report, service.SALES_COLUMNS[group_by], kind, f"sales-by-{group_by}")


@router.get(
    "/fulfillment", response_model=FulfilmentReport, summary="Fulfilment lead times",
    responses=_csv_docs(
        "location_id,location_code,orders_placed,orders_shipped,orders_delivered,"
        "hours_to_ship_median,hours_to_ship_p90,hours_to_deliver_median,hours_to_deliver_p90"
        "\r\nloc_01J…,berlin,412,400,380,14.5,40.25,75.0,130.5\r\n"
    ),
)  # fmt: skip
async def fulfillment_report(
    session: ReadSessionDep,
    principal: Reporter,
    from_: From = None,
    to: To = None,
    channel: ChannelFilter = None,
    accept: Accept = None,
) -> Response:
    """Over the orders placed in the period (not cancelled): how many were placed, shipped
    (a shipment shipped) and delivered (every shipment delivered), and the median and 90th
    percentile of the hours from placement to the first shipment shipped and to delivery —
    in total, and in `rows` per shipping location (the orders with a shipment from it). The
    CSV holds the rows. A channel-bound key gets its own channel's figures only."""
    kind = negotiate(accept, CSV)
    report = await service.fulfilment(
        await driver_connection(session), period=_period(from_, to),
        channel_id=principal.channel_id, channel=channel,
    )  # fmt: skip
    return _answer(report, service.FULFILMENT_COLUMNS, kind, "fulfillment")


@router.get(
    "/returns", response_model=ReturnsReport, summary="Returns per SKU and reason",
    responses=_csv_docs(
        "sku,units_sold,units_returned,return_rate,reason_damaged,reason_wrong_item,"
        "reason_not_as_described,reason_no_longer_needed,reason_size_or_fit,reason_other"
        "\r\nTSHIRT-M-RED,120,9,0.075,1,0,2,1,5,0\r\n"
    ),
)  # fmt: skip
async def returns_report(
    session: ReadSessionDep,
    principal: Reporter,
    from_: From = None,
    to: To = None,
    channel: ChannelFilter = None,
    accept: Accept = None,
) -> Response:
    """Per SKU on the orders placed in the period (not cancelled): units sold (less any
    cancelled), units returned (on returns neither rejected nor cancelled), the return rate and the units per
    reason. A channel-bound key gets its own channel's figures only."""
    kind = negotiate(accept, CSV)
    report = await service.returns(
        await driver_connection(session), period=_period(from_, to),
        channel_id=principal.channel_id, channel=channel,
    )  # fmt: skip
    return _answer(report, service.RETURNS_COLUMNS, kind, "returns")


@router.get(
    "/inventory", response_model=InventoryReport, summary="Stock, low-stock flags and value",
    responses=_csv_docs(
        "sku,on_hand,reserved,available,reorder_point,low_stock,stock_value,currency\r\n"
        "TSHIRT-M-RED,8,3,5,10,true,15992,EUR\r\n"
    ),
)  # fmt: skip
async def inventory_report(
    session: ReadSessionDep, principal: Reporter, accept: Accept = None
) -> Response:
    """Every product with its stock summed over the locations the caller may see (a
    channel-bound key: those its channel sells from): on hand, reserved, available, the
    reorder point, `low_stock` (available ≤ reorder point) and the stock's value at the
    product's price. Low-stock products first, then by SKU."""
    kind = negotiate(accept, CSV)
    report = await service.inventory(
        await driver_connection(session), channel_id=principal.channel_id
    )
    return _answer(report, service.INVENTORY_COLUMNS, kind, "inventory")
