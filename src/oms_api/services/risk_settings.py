"""The risk rules' settings, one JSON document editable at run time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.risk import RiskSettings
from oms_api.models import AppSetting

KEY = "risk"


async def get_risk_settings(session: AsyncSession) -> RiskSettings:
    value = await session.scalar(select(AppSetting.value).where(AppSetting.key == KEY))
    return RiskSettings.from_json(value)


async def put_risk_settings(session: AsyncSession, value: dict[str, Any]) -> RiskSettings:
    settings = RiskSettings.from_json(value)
    stored = settings.to_json()
    stmt = insert(AppSetting).values(key=KEY, value=stored)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[AppSetting.key],
            set_={
                "value": stmt.excluded.value,
                "version": AppSetting.version + 1,
                "updated_at": func.now(),
            },
        )
    )
    return settings
