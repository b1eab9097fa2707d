from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, created_at_column, optional_time_column, updated_at_column

SHIPMENT_STATUSES = ("pending", "picking", "packed", "shipped", "delivered", "cancelled")
TRACKING_STATUSES = (
    "in_transit", "out_for_delivery", "delivery_attempted", "exception", "delivered",
)  # fmt: skip


class Shipment(Base):
    """Units of an order going out from one location in one parcel."""

    __tablename__ = "shipments"
    __table_args__ = (
        CheckConstraint(f"status IN {SHIPMENT_STATUSES!r}", name="status"),
        CheckConstraint("weight_grams >= 0", name="weight_not_negative"),
        Index("ix_shipments_order_id", "order_id"),
        Index("ix_shipments_channel_id_id", "channel_id", "id"),
        Index("ix_shipments_status_id", "status", "id"),
        Index("ix_shipments_location_id_status", "location_id", "status"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    order_id: Mapped[str] = mapped_column(Text, ForeignKey("orders.id"), nullable=False)
    channel_id: Mapped[str] = mapped_column(
        Text, ForeignKey("channels.id"), nullable=False, comment="the order's"
    )
    location_id: Mapped[str] = mapped_column(Text, ForeignKey("locations.id"), nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    carrier: Mapped[str | None] = mapped_column(Text, nullable=True)
    carrier_key: Mapped[str | None] = mapped_column(
        Text, nullable=True, comment="the carrier, normalised"
    )
    service: Mapped[str | None] = mapped_column(Text, nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    tracking_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    weight_grams: Mapped[int] = mapped_column(Integer, nullable=False)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    picking_at: Mapped[datetime | None] = optional_time_column()
    packed_at: Mapped[datetime | None] = optional_time_column()
    shipped_at: Mapped[datetime | None] = optional_time_column()
    delivered_at: Mapped[datetime | None] = optional_time_column()
    cancelled_at: Mapped[datetime | None] = optional_time_column()


class ShipmentLine(Base):
    __tablename__ = "shipment_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_shipment_lines_line_id", "line_id"),
    )

    shipment_id: Mapped[str] = mapped_column(
        Text, ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True
    )
    line_id: Mapped[str] = mapped_column(Text, ForeignKey("order_lines.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)


class TrackingEvent(Base):
    """A carrier's update on a shipment; the same status at the same time is kept once."""

    __tablename__ = "tracking_events"
    __table_args__ = (
        CheckConstraint(f"status IN {TRACKING_STATUSES!r}", name="status"),
        UniqueConstraint(
            "shipment_id",
            "status",
            "occurred_at",
            name="uq_tracking_events_shipment_id_status_occurred_at",
        ),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    shipment_id: Mapped[str] = mapped_column(
        Text, ForeignKey("shipments.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    location: Mapped[str | None] = mapped_column(Text, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class Pickup(Base):
    """A carrier's end-of-day collection of shipped parcels from one location."""

    __tablename__ = "pickups"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'collected', 'cancelled')", name="status"),
        Index("ix_pickups_location_id_id", "location_id", "id"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    location_id: Mapped[str] = mapped_column(Text, ForeignKey("locations.id"), nullable=False)
    carrier: Mapped[str] = mapped_column(Text, nullable=False)
    carrier_key: Mapped[str] = mapped_column(Text, nullable=False)
    ready_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    collected_at: Mapped[datetime | None] = optional_time_column()
    cancelled_at: Mapped[datetime | None] = optional_time_column()


class PickupShipment(Base):
    """A parcel on a pickup; `active` until the pickup is cancelled. A parcel is on at most
    one active pickup (a unique partial index)."""

    __tablename__ = "pickup_shipments"
    __table_args__ = (
        Index(
            "ix_pickup_shipments_shipment_id_active",
            "shipment_id",
            unique=True,
            postgresql_where=text("active"),
        ),
    )

    pickup_id: Mapped[str] = mapped_column(
        Text, ForeignKey("pickups.id", ondelete="CASCADE"), primary_key=True
    )
    shipment_id: Mapped[str] = mapped_column(Text, ForeignKey("shipments.id"), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
