from __future__ import annotations

from datetime import datetime

from sqlalchemy import ARRAY, Boolean, CheckConstraint, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, created_at_column, updated_at_column


class Channel(Base):
    """A sales channel: a web store, a marketplace, a POS, a phone desk."""

    __tablename__ = "channels"
    __table_args__ = (CheckConstraint("version > 0", name="version_positive"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    location_ids: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
