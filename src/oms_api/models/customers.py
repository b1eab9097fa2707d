from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Computed, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, created_at_column, updated_at_column


class Customer(Base):
    """The business's one record of a buyer, whichever channels they buy through; `email`
    is unique regardless of case. `name`, `phone` and `addresses` here are what the admin
    gave; what each channel gave lives in that channel's `CustomerProfile`."""

    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_created_at_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    email_normalized: Mapped[str] = mapped_column(
        Text, Computed("lower(email)", persisted=True), unique=True
    )
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone: Mapped[str | None] = mapped_column(Text, nullable=True)
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    # Follow-up emails (a feedback request after delivery); transactional ones always go.
    accepts_follow_up: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("true")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class CustomerProfile(Base):
    """A customer as one channel knows them: what that channel gave, through its customer
    creations and its orders. A channel-bound key reads only its own channel's profile, so
    nothing another channel recorded can reach it. Every order's (customer, channel) has one."""

    __tablename__ = "customer_profiles"
    __table_args__ = (
        Index(
            "ix_customer_profiles_channel_id_created_at_customer_id",
            "channel_id",
            "created_at",
            "customer_id",
        ),
    )

    customer_id: Mapped[str] = mapped_column(
        Text, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[str] = mapped_column(Text, ForeignKey("channels.id"), primary_key=True)
    email: Mapped[str] = mapped_column(Text, nullable=False, comment="as this channel spelt it")
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone: Mapped[str | None] = mapped_column(Text, nullable=True)
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
