"""Event types (SPEC §4 Webhooks)."""

from __future__ import annotations

ORDER_CREATED = "order.created"
ORDER_CONFIRMED = "order.confirmed"
ORDER_ON_HOLD = "order.on_hold"
ORDER_RELEASED = "order.released"
ORDER_CANCELLED = "order.cancelled"
ORDER_PARTIALLY_SHIPPED = "order.partially_shipped"
ORDER_SHIPPED = "order.shipped"
ORDER_DELIVERED = "order.delivered"
ORDER_BACKORDER_FILLED = "order.backorder_filled"
PAYMENT_RECORDED = "payment.recorded"

SHIPMENT_CREATED = "shipment.created"
SHIPMENT_PICKING = "shipment.picking"
SHIPMENT_PACKED = "shipment.packed"
SHIPMENT_SHIPPED = "shipment.shipped"
SHIPMENT_DELIVERED = "shipment.delivered"
SHIPMENT_CANCELLED = "shipment.cancelled"
SHIPMENT_TRACKING_UPDATED = "shipment.tracking_updated"
PICKUP_SCHEDULED = "pickup.scheduled"
PICKUP_COLLECTED = "pickup.collected"
PICKUP_CANCELLED = "pickup.cancelled"

RETURN_REQUESTED = "return.requested"
RETURN_APPROVED = "return.approved"
RETURN_REJECTED = "return.rejected"
RETURN_CANCELLED = "return.cancelled"
RETURN_RECEIVED = "return.received"
RETURN_COMPLETED = "return.completed"

INVENTORY_LOW_STOCK = "inventory.low_stock"
INVENTORY_OUT_OF_STOCK = "inventory.out_of_stock"
REPLENISHMENT_RECEIVED = "replenishment.received"
REPLENISHMENT_CANCELLED = "replenishment.cancelled"

WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"

# Every type an endpoint may subscribe to.
ALL = (
    ORDER_CREATED, ORDER_CONFIRMED, ORDER_ON_HOLD, ORDER_RELEASED, ORDER_CANCELLED,
    ORDER_PARTIALLY_SHIPPED, ORDER_SHIPPED, ORDER_DELIVERED, ORDER_BACKORDER_FILLED,
    PAYMENT_RECORDED,
    SHIPMENT_CREATED, SHIPMENT_PICKING, SHIPMENT_PACKED, SHIPMENT_SHIPPED, SHIPMENT_DELIVERED,
    SHIPMENT_CANCELLED, SHIPMENT_TRACKING_UPDATED, PICKUP_SCHEDULED, PICKUP_COLLECTED,
    PICKUP_CANCELLED,
    RETURN_REQUESTED, RETURN_APPROVED, RETURN_REJECTED, RETURN_CANCELLED, RETURN_RECEIVED,
    RETURN_COMPLETED, INVENTORY_LOW_STOCK, INVENTORY_OUT_OF_STOCK,
    REPLENISHMENT_RECEIVED, REPLENISHMENT_CANCELLED, WEBHOOK_ENDPOINT_DISABLED,
)  # fmt: skip
