from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, created_at_column, optional_time_column, updated_at_column

RETURN_NUMBER_SEQ = Sequence("return_number_seq", start=10001, metadata=Base.metadata)
RETURN_STATUSES = ("requested", "approved", "received", "completed", "rejected", "cancelled")
RETURN_REASONS = (
    "damaged", "wrong_item", "not_as_described", "no_longer_needed", "size_or_fit", "other",
)  # fmt: skip


class Return(Base):
    """An RMA: shipped units of one order coming back, to be refunded or exchanged."""

    __tablename__ = "returns"
    __table_args__ = (
        CheckConstraint(f"status IN {RETURN_STATUSES!r}", name="status"),
        CheckConstraint("resolution IN ('refund', 'exchange')", name="resolution"),
        CheckConstraint("refund_amount IS NULL OR refund_amount >= 0", name="refund_not_negative"),
        Index("ix_returns_order_id", "order_id"),
        Index("ix_returns_channel_id_id", "channel_id", "id"),
        Index("ix_returns_status_id", "status", "id"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    number: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    order_id: Mapped[str] = mapped_column(Text, ForeignKey("orders.id"), nullable=False)
    channel_id: Mapped[str] = mapped_column(
        Text, ForeignKey("channels.id"), nullable=False, comment="the order's"
    )
    status: Mapped[str] = mapped_column(Text, nullable=False)
    resolution: Mapped[str] = mapped_column(Text, nullable=False)
    exchange_lines: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    location_id: Mapped[str] = mapped_column(
        Text, ForeignKey("locations.id"), nullable=False, comment="where it is sent back to"
    )
    refund_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    refund_shipping: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    exchange_order_id: Mapped[str | None] = mapped_column(
        Text, ForeignKey("orders.id"), nullable=True
    )
    reject_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    approved_at: Mapped[datetime | None] = optional_time_column()
    received_at: Mapped[datetime | None] = optional_time_column()
    completed_at: Mapped[datetime | None] = optional_time_column()
    rejected_at: Mapped[datetime | None] = optional_time_column()
    cancelled_at: Mapped[datetime | None] = optional_time_column()


class ReturnLine(Base):
    """Units of one order line coming back; as they arrive, each is restocked or damaged."""

    __tablename__ = "return_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_restocked >= 0 AND quantity_damaged >= 0 "
            "AND quantity_restocked + quantity_damaged <= quantity",
            name="received_within_quantity",
        ),
        CheckConstraint(f"reason IN {RETURN_REASONS!r}", name="reason"),
        Index("ix_return_lines_line_id", "line_id"),
    )

    return_id: Mapped[str] = mapped_column(
        Text, ForeignKey("returns.id", ondelete="CASCADE"), primary_key=True
    )
    line_id: Mapped[str] = mapped_column(Text, ForeignKey("order_lines.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    quantity_restocked: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    quantity_damaged: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
