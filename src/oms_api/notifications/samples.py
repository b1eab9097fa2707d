"""A sample of what each kind's template is rendered with: a channel's template is tried on
it when saved (a template that fails here is refused with 422), and the docs' screenshots
are rendered from it (`oms-api notifications preview`)."""

from __future__ import annotations

from typing import Any

from oms_api.domain.notifications import Kind

_ADDRESS = {"name": "Ada Lovelace", "company": None, "line1": "12 St James's Square",
            "line2": None, "city": "London", "region": None, "postal_code": "SW1Y 4JH",
            "country": "GB", "phone": None}  # fmt: skip
_LINES = [
    {"id": "lin_1", "sku": "MUG-BLUE", "product_id": "prd_1", "name": "Enamel mug, blue",
     "quantity": 2, "unit_price": 1250, "total": 2500, "quantity_reserved": 0,
     "quantity_backordered": 0, "quantity_shipped": 2, "quantity_cancelled": 0,
     "quantity_returned": 1},
    {"id": "lin_2", "sku": "TEA-EARL-100", "product_id": "prd_2",
     "name": "Earl Grey tea, loose leaf, 100 g", "quantity": 1, "unit_price": 899,
     "total": 899, "quantity_reserved": 0, "quantity_backordered": 0, "quantity_shipped": 1,
     "quantity_cancelled": 0, "quantity_returned": 0},
]  # fmt: skip


def sample_context(kind: Kind, channel_name: str = "Example Store") -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": "ord_sample", "number": 1042, "channel": "web", "channel_id": "chn_sample",
        "external_id": "W-1042", "customer_id": "cus_sample", "email": "ada@example.com",
        "status": "confirmed", "payment_status": "paid", "payment_method": "card",
        "return_status": "none", "currency": "EUR", "lines": _LINES, "allocations": [],
        "totals": {"subtotal": 3399, "shipping": 495, "total": 3894},
        "payment_amounts": {"authorized": 3894, "captured": 3894, "refunded": 0, "voided": 0},
        "payments": [], "risk": {"score": 0, "reasons": []},
        "shipping_address": _ADDRESS, "billing_address": _ADDRESS, "note": None,
        "metadata": {}, "hold_reason": None, "cancel_reason": None,
        "exchange_for_return_id": None, "created_at": "2026-12-01T09:30:00+00:00",
        "updated_at": "2026-12-01T09:30:00+00:00", "confirmed_at": "2026-12-01T09:30:00+00:00",
        "shipped_at": None, "delivered_at": None, "cancelled_at": None, "expires_at": None,
        "version": 3,
    }  # fmt: skip
    shipment = {
        "id": "shp_sample", "order_id": "ord_sample", "order_number": 1042,
        "channel_id": "chn_sample", "location_id": "loc_sample", "status": "shipped",
        "lines": [{"line_id": x["id"], "sku": x["sku"], "name": x["name"],
                   "quantity": x["quantity"]} for x in _LINES],
        "carrier": "UPS", "service": "Standard", "tracking_number": "1Z999AA10123456784",
        "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
        "weight_grams": 900, "latest_tracking": None, "pickup_id": None, "cancel_reason": None,
        "created_at": "2026-12-01T10:00:00+00:00", "shipped_at": "2026-12-01T16:00:00+00:00",
        "delivered_at": "2026-12-03T11:20:00+00:00", "version": 4,
    }  # fmt: skip
    rma = {
        "id": "ret_sample", "number": "RMA-7K2Q-9D", "order_id": "ord_sample",
        "order_number": 1042, "channel_id": "chn_sample", "status": "approved",
        "resolution": "refund",
        "lines": [{"line_id": "lin_1", "sku": "MUG-BLUE", "name": "Enamel mug, blue",
                   "quantity": 1, "unit_price": 1250, "reason": "damaged", "note": None,
                   "quantity_received": 0, "quantity_restocked": 0, "quantity_damaged": 0}],
        "exchange_lines": [], "location_id": "loc_sample", "refund_amount": 1250,
        "refund_shipping": False, "exchange_order_id": None, "version": 2,
    }  # fmt: skip
    context: dict[str, Any] = {
        "channel": {"id": "chn_sample", "code": "web", "name": channel_name},
        "customer": {"id": "cus_sample", "name": "Ada Lovelace", "email": "ada@example.com"},
        "order": order,
    }
    if kind in (Kind.SHIPMENT_SHIPPED, Kind.SHIPMENT_DELIVERED):
        context["shipment"] = shipment
    if kind in (Kind.RETURN_APPROVED, Kind.RETURN_COMPLETED):
        context["rma"] = rma
        context["return_address"] = {"name": "Returns, Example Store warehouse",
                                     "line1": "Unit 4, Riverside Park", "city": "Leeds",
                                     "postal_code": "LS11 5QN", "country": "GB"}  # fmt: skip
        context["exchange_order"] = None
    if kind is Kind.ORDER_CANCELLED:
        order["status"], order["cancel_reason"] = "cancelled", "out of stock"
    return context
