from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, created_at_column


class IdempotencyRecord(Base):
    """The stored outcome of a creating POST sent with an `Idempotency-Key`.

    Written in the same transaction as the thing it created, so the record exists exactly
    when the effect does.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (
        CheckConstraint(
            "num_nonnulls(response_body, response_event_id) = 1", name="response_stored_once"
        ),
    )

    principal: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    response_status: Mapped[int] = mapped_column(Integer, nullable=False)
    # The response: its body, or (a placement) the event whose data is that body — the
    # order's `order.created`, written in the same transaction — so the order document is
    # stored once. Exactly one of the two (CHECK `response_stored_once`).
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    response_event_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
