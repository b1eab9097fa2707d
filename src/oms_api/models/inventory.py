from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import (
    Base,
    created_at_column,
    optional_time_column,
    updated_at_column,
)


class InventoryLevel(Base):
    """Stock of one product at one location. `available = on_hand - reserved` is never
    negative: the database refuses it, whatever the code does.

    Stored with `fillfactor = 25` (migration 0018), as `StockTotal`: every placement
    updates the levels it reserves from, and the room left lets the update stay on its
    page (HOT), with no new index entry."""

    __tablename__ = "inventory_levels"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="available_not_negative"),
    )

    product_id: Mapped[str] = mapped_column(
        Text, ForeignKey("products.id", ondelete="RESTRICT"), primary_key=True
    )
    location_id: Mapped[str] = mapped_column(
        Text, ForeignKey("locations.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    on_hand: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    reserved: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    updated_at: Mapped[datetime] = updated_at_column()


class InventoryMovement(Base):
    """The ledger: one row for every change of `on_hand` or `reserved`. Summed per
    product and location it equals `inventory_levels`, always."""

    __tablename__ = "inventory_movements"
    __table_args__ = (
        CheckConstraint(
            "cause_type IN ('adjustment', 'order', 'shipment', 'return', 'replenishment')",
            name="cause_type",
        ),
        CheckConstraint("on_hand_delta <> 0 OR reserved_delta <> 0", name="changes_something"),
        # `GET /v1/inventory/movements?sku=`: one SKU's ledger, newest first (the list's
        # order is the id's). Every movement adds an entry to each index here, so there is
        # no other: by cause nothing is looked up, and `inventory verify` reads the whole
        # ledger (migration 0018 dropped the two that served no query).
        Index("ix_inventory_movements_sku_id", "sku", "id"),
        # A ledger row is a change of one level, which exists (and so its product and
        # location): one check per row, of a row the stock path has just locked and changed
        # (migration 0019; it checked the product and the location apart).
        ForeignKeyConstraint(
            ["product_id", "location_id"],
            ["inventory_levels.product_id", "inventory_levels.location_id"],
            name="fk_inventory_movements_product_id_inventory_levels",
        ),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    product_id: Mapped[str] = mapped_column(Text, nullable=False)
    sku: Mapped[str] = mapped_column(Text, nullable=False)
    location_id: Mapped[str] = mapped_column(Text, nullable=False)
    on_hand_delta: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reserved_delta: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    cause_type: Mapped[str] = mapped_column(Text, nullable=False)
    cause_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = created_at_column()


class StockTotal(Base):
    """A product's `available` summed over every location, kept by the one stock path
    (`oms_move_stock`) beside the levels: each change of a level changes it by as much, so
    it always equals their sum (`oms-api inventory verify` checks it). Its row is the one
    place where concurrent changes of a product at different locations meet, one at a
    time — which is how a fall through the reorder point is seen exactly once.

    Stored with `fillfactor = 25` (migration 0018): every placement updates its products'
    rows, and the room left on each page lets the update stay on the page (HOT), with no
    new index entry."""

    __tablename__ = "stock_totals"

    product_id: Mapped[str] = mapped_column(
        Text, ForeignKey("products.id", ondelete="RESTRICT"), primary_key=True
    )
    available: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # A fall to or below the reorder point was reported (request, `inventory.low_stock`)
    # and the total has not been above the point since: the next fall is no new crossing.
    low_stock_reported: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    # Whether the row's last change was such a crossing: `oms_move_stock` changes the row
    # with one UPDATE and learns from it (RETURNING sees only the new row) whether to open
    # a request. Meaningful only to the change that wrote it.
    last_change_crossed: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )


REPLENISHMENT_STATUSES = ("open", "received", "cancelled")


class Replenishment(Base):
    """A request to reorder a product, opened by the stock path when its total available
    falls to or below its reorder point (once per crossing), closed by a receipt (the
    stock comes in through the one stock path) or a cancellation."""

    __tablename__ = "replenishments"
    __table_args__ = (
        CheckConstraint(f"status IN {REPLENISHMENT_STATUSES!r}", name="status"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "(status = 'received') = (location_id IS NOT NULL AND quantity_received > 0)",
            name="received_somewhere",
        ),
        # GET /v1/replenishments?status= (newest first) and ?sku=
        Index("ix_replenishments_status_id", "status", "id"),
        Index("ix_replenishments_product_id_id", "product_id", "id"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    product_id: Mapped[str] = mapped_column(Text, ForeignKey("products.id"), nullable=False)
    sku: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    quantity: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="the product's reorder_quantity when it opened"
    )
    reorder_point: Mapped[int] = mapped_column(BigInteger, nullable=False)
    available_at_opening: Mapped[int] = mapped_column(BigInteger, nullable=False)
    location_id: Mapped[str | None] = mapped_column(
        Text, ForeignKey("locations.id"), nullable=True, comment="where it was received"
    )
    quantity_received: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    received_at: Mapped[datetime | None] = optional_time_column()
    cancelled_at: Mapped[datetime | None] = optional_time_column()


class BackorderCheck(Base):
    """A (product, location) where units a cancellation released may still be waited for:
    the release passed over a waiting order another request held. Housekeeping fills
    from what is still available there, and deletes the row (`services/backorders`)."""

    __tablename__ = "backorder_checks"

    product_id: Mapped[str] = mapped_column(
        Text, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    location_id: Mapped[str] = mapped_column(
        Text, ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = created_at_column()
