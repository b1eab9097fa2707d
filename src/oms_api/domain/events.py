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
PAYMENT_RECORDED = "payment.recorded"
INVENTORY_LOW_STOCK = "inventory.low_stock"
INVENTORY_OUT_OF_STOCK = "inventory.out_of_stock"

ALL = (
    ORDER_CREATED, ORDER_CONFIRMED, ORDER_ON_HOLD, ORDER_RELEASED, ORDER_CANCELLED,
    ORDER_PARTIALLY_SHIPPED, ORDER_SHIPPED, ORDER_DELIVERED, PAYMENT_RECORDED,
    INVENTORY_LOW_STOCK, INVENTORY_OUT_OF_STOCK,
)  # fmt: skip
