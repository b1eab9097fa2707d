"""Customer notifications: each channel's settings, every email, and the notifier's place in
the outbox (docs/notifications.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, created_at_column, optional_time_column, updated_at_column
from oms_api.models.events import XID8


class ChannelNotificationSettings(Base):
    """How one channel's customers are told (a channel without a row: the defaults)."""

    __tablename__ = "channel_notification_settings"
    __table_args__ = (
        CheckConstraint("follow_up_days BETWEEN 1 AND 365", name="follow_up_days_range"),
    )

    channel_id: Mapped[str] = mapped_column(
        Text, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    from_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_email: Mapped[str | None] = mapped_column(Text, nullable=True)
    reply_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    kinds: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    follow_up_days: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("7"))
    templates: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Notification(Base):
    """One email to a customer, rendered when it was derived from its event; sent by the
    notifier (`pending` → `sent` | `failed` | `skipped`). `next_attempt_at` is when it is
    due: now for most, `follow_up_days` after delivery for a follow-up."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name="status_known"),
        # Derived once per event and kind, whichever notifier derives it.
        UniqueConstraint("event_id", "kind"),
        Index(
            "ix_notifications_next_attempt_at_pending",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_notifications_order_id_id", "order_id", "id"),
        Index("ix_notifications_channel_id_id", "channel_id", "id"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    channel_id: Mapped[str] = mapped_column(Text, ForeignKey("channels.id"), nullable=False)
    order_id: Mapped[str] = mapped_column(Text, ForeignKey("orders.id"), nullable=False)
    customer_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    event_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    resend_of: Mapped[str | None] = mapped_column(Text, nullable=True)
    shipment_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    return_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    to_email: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_address: Mapped[str] = mapped_column(Text, nullable=False)
    reply_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    text_body: Mapped[str] = mapped_column(Text, nullable=False)
    html_body: Mapped[str] = mapped_column(Text, nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    status: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    sent_at: Mapped[datetime | None] = optional_time_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class NotificationCursor(Base):
    """How far through the outbox (`events`, in commit order: txid, position) the
    notifier has derived notifications; advanced in the transaction that writes them."""

    __tablename__ = "notification_cursor"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    txid: Mapped[str] = mapped_column(XID8, nullable=False)
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = updated_at_column()
