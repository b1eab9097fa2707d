from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from oms_api.models.base import Base, created_at_column


class XID8(UserDefinedType[str]):
    """PostgreSQL's 64-bit transaction id type."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "XID8"


class Event(Base):
    """The transactional outbox, the orders' timelines and the event feed in one table.

    Every state change inserts its event in the same transaction as the change.
    `sequence` ascends per order (from `orders.event_sequence`).
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_order_id_sequence", "order_id", "sequence"),
        Index("ix_events_txid_position", "txid", "position"),
        Index("ix_events_channel_id_txid_position", "channel_id", "txid", "position"),
    )

    # The key is the public id (webhook deliveries name it). `position` orders the feed
    # through the (txid, position) indexes; no query looks one up alone, so it has no
    # index of its own (migration 0019: one index entry fewer per event).
    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False)
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    type: Mapped[str] = mapped_column(Text, nullable=False)
    order_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    channel_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    sequence: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # NULL: the same data as the order's nearest earlier event that has some — events
    # recorded together with one document store it once (`outbox.event_data_sql`). `json`,
    # not `jsonb`: kept as the text the service wrote (never parsed and printed again), so
    # an Idempotency-Key's replay of a placement is the first response byte for byte, and a
    # webhook's `data` keeps the document's order of keys (migration 0019).
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    # The writing transaction's id — or, for an order's event, its order's previous
    # event's if that is later (`oms_record_events`, migration 0023: an order's events
    # keep their sequence in commit order). The feed orders by (txid, position) and only
    # shows transactions older than every one still running, so a late commit is never
    # skipped (an event's txid is never below its writer's id).
    txid: Mapped[str] = mapped_column(
        XID8, nullable=False, server_default=text("pg_current_xact_id()")
    )
