from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, created_at_column


class AppSetting(Base):
    """Runtime-editable settings (e.g. `risk`), one JSON document per key."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    updated_at: Mapped[datetime] = created_at_column()
