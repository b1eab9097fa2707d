"""SQLAlchemy tables. Importing this package registers every table on `Base.metadata`."""

from oms_api.models.api_keys import ApiKey
from oms_api.models.base import Base
from oms_api.models.catalog import Location, Product
from oms_api.models.channels import Channel
from oms_api.models.customers import Customer, CustomerProfile
from oms_api.models.events import Event
from oms_api.models.idempotency import IdempotencyRecord
from oms_api.models.inventory import (
    BackorderCheck,
    InventoryLevel,
    InventoryMovement,
    Replenishment,
    StockTotal,
)
from oms_api.models.notifications import (
    ChannelNotificationSettings,
    Notification,
    NotificationCursor,
)
from oms_api.models.orders import Order, OrderLine, OrderReservation, Payment
from oms_api.models.reports import (
    ReportCursor,
    ReportDay,
    ReportLeadTimes,
    ReportMonth,
    ReportReturns,
    ReportSales,
    ReportSkuSales,
)
from oms_api.models.returns import Return, ReturnLine
from oms_api.models.settings import AppSetting
from oms_api.models.shipments import (
    Pickup,
    PickupShipment,
    Shipment,
    ShipmentLine,
    TrackingEvent,
)
from oms_api.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AppSetting",
    "BackorderCheck",
    "Base",
    "Channel",
    "ChannelNotificationSettings",
    "Customer",
    "CustomerProfile",
    "Event",
    "IdempotencyRecord",
    "InventoryLevel",
    "InventoryMovement",
    "Location",
    "Notification",
    "NotificationCursor",
    "Order",
    "OrderLine",
    "OrderReservation",
    "Payment",
    "Pickup",
    "PickupShipment",
    "Product",
    "Replenishment",
    "ReportCursor",
    "ReportDay",
    "ReportLeadTimes",
    "ReportMonth",
    "ReportReturns",
    "ReportSales",
    "ReportSkuSales",
    "Return",
    "ReturnLine",
    "Shipment",
    "ShipmentLine",
    "StockTotal",
    "TrackingEvent",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
