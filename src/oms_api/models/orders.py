from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Sequence,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, created_at_column

ORDER_NUMBER_SEQ = Sequence("order_number_seq", start=1001, metadata=Base.metadata)

ORDER_STATUSES = (
    "pending", "on_hold", "confirmed", "partially_shipped", "shipped", "delivered", "cancelled",
)  # fmt: skip


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # One order per external id in a channel; an order without one has no entry
        # (migration 0018: placement's insert of such an order writes none).
        Index(
            "uq_orders_channel_id_external_id",
            "channel_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        # The order's customer is always one its channel knows (has a profile of).
        ForeignKeyConstraint(
            ["customer_id", "channel_id"],
            ["customer_profiles.customer_id", "customer_profiles.channel_id"],
            name="fk_orders_customer_id_customer_profiles",
        ),
        CheckConstraint(f"status IN {ORDER_STATUSES!r}", name="status"),
        CheckConstraint(
            "subtotal >= 0 AND shipping >= 0 AND total = subtotal + shipping", name="totals"
        ),
        CheckConstraint(
            "captured >= 0 AND refunded >= 0 AND refunded <= captured AND authorized >= 0",
            name="payments",
        ),
        CheckConstraint(
            "return_status IN ('none', 'requested', 'partially_returned', 'returned')",
            name="return_status",
        ),
        Index("ix_orders_channel_id_id", "channel_id", "id"),
        Index("ix_orders_customer_id_id", "customer_id", "id"),
        Index("ix_orders_status_id", "status", "id"),
        Index("ix_orders_email_normalized_id", "email_normalized", "id"),
        # placement's read, `recent_to_address` (services/placement.READ_SQL): the address
        # key's latest orders, newest first — the velocity-by-address risk rule
        Index(
            "ix_orders_shipping_address_key_id",
            "shipping_address_key",
            "id",
            postgresql_where=text("shipping_address_key IS NOT NULL"),
        ),
        # The reports' orders index (migration 0015): every period report in
        # services/reports.py (sales, fulfilment, returns) reads the orders placed on its
        # live days from it alone, and the summariser (services/report_summaries.py) the
        # orders of the days it derives — an index-only range scan per day over
        # `created_at` holding every column they read of an order. See
        # docs/performance.md, "Reports".
        Index(
            "ix_orders_created_at_report",
            "created_at",
            postgresql_include=["id", "channel_id", "status", "currency", "total", "delivered_at"],
        ),
        Index(
            "ix_orders_expires_at_pending",
            "expires_at",
            # services/orders.expire_pending_orders: every pending order may expire (whether
            # a payment is in force is checked on the few rows found)
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    channel_id: Mapped[str] = mapped_column(Text, ForeignKey("channels.id"), nullable=False)
    external_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    customer_id: Mapped[str] = mapped_column(Text, nullable=False)
    email_normalized: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    payment_status: Mapped[str] = mapped_column(Text, nullable=False)
    payment_method: Mapped[str | None] = mapped_column(Text, nullable=True)
    return_status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'none'"))
    exchange_for_return_id: Mapped[str | None] = mapped_column(
        Text, ForeignKey("returns.id", use_alter=True), nullable=True
    )
    currency: Mapped[str] = mapped_column(Text, nullable=False)
    subtotal: Mapped[int] = mapped_column(BigInteger, nullable=False)
    shipping: Mapped[int] = mapped_column(BigInteger, nullable=False)
    total: Mapped[int] = mapped_column(BigInteger, nullable=False)
    authorized: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    captured: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    refunded: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    voided: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    # the place the shipping address names (domain.risk.address_key); NULL without one,
    # and on orders placed before migration 0014
    shipping_address_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    risk_score: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    risk_reasons: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    hold_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    event_sequence: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OrderLine(Base):
    """One line of an order. Every unit is in exactly one of four places: reserved at a
    location, backordered (reserved nowhere yet), shipped, or cancelled."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint(
            "quantity_reserved >= 0 AND quantity_backordered >= 0 AND quantity_shipped >= 0 "
            "AND quantity_cancelled >= 0",
            name="quantities_not_negative",
        ),
        CheckConstraint(
            "quantity = quantity_reserved + quantity_backordered + quantity_shipped + "
            "quantity_cancelled",
            name="quantities_add_up",
        ),
        CheckConstraint(
            "quantity_returned >= 0 AND quantity_returned <= quantity_shipped",
            name="returned_within_shipped",
        ),
        UniqueConstraint("order_id", "position", name="uq_order_lines_order_id_position"),
        # services/backorders: the lines waiting for a product's stock (only backordered
        # lines have an entry, so placing an order with stock adds none)
        Index(
            "ix_order_lines_product_id_backordered",
            "product_id",
            postgresql_where=text("quantity_backordered > 0"),
        ),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    order_id: Mapped[str] = mapped_column(
        Text, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    product_id: Mapped[str] = mapped_column(Text, ForeignKey("products.id"), nullable=False)
    sku: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quantity_reserved: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    quantity_backordered: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    quantity_shipped: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    quantity_cancelled: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    quantity_returned: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )


class OrderReservation(Base):
    """Units of one line reserved at one location; `quantity_in_shipments` of them are in
    open shipments from there. A row exists only while it holds units. Per line they sum to
    the line's `quantity_reserved`; per (product, location), to the level's `reserved`."""

    __tablename__ = "order_reservations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_in_shipments >= 0 AND quantity_in_shipments <= quantity",
            name="in_shipments_within_quantity",
        ),
        # Units held at one level, which exists (and so its location): placement's read has
        # locked that level, so the check takes no lock of its own (migration 0019; it
        # checked the location, a lock logged per order).
        ForeignKeyConstraint(
            ["product_id", "location_id"],
            ["inventory_levels.product_id", "inventory_levels.location_id"],
            name="fk_order_reservations_product_id_inventory_levels",
        ),
    )

    line_id: Mapped[str] = mapped_column(
        Text, ForeignKey("order_lines.id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[str] = mapped_column(Text, primary_key=True)
    product_id: Mapped[str] = mapped_column(Text, nullable=False, comment="the line's")
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    quantity_in_shipments: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )


class Payment(Base):
    """One payment transaction recorded on an order."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("kind IN ('authorization', 'capture', 'refund', 'void')", name="kind"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payments_order_id", "order_id"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    order_id: Mapped[str] = mapped_column(
        Text, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = created_at_column()
