"""Settings editable at run time: one JSON document per key (`risk`, `returns`,
`fulfillment`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.returns import ReturnSettings
from oms_api.domain.risk import RiskSettings
from oms_api.domain.shipments import FulfillmentSettings
from oms_api.models import AppSetting

RISK, RETURNS, FULFILLMENT = "risk", "returns", "fulfillment"


async def _read(session: AsyncSession, key: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = await session.scalar(
        select(AppSetting.value).where(AppSetting.key == key)
    )
    return value


async def _write(session: AsyncSession, key: str, value: dict[str, Any]) -> None:
    stmt = insert(AppSetting).values(key=key, value=value)
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


async def get_risk_settings(session: AsyncSession) -> RiskSettings:
    return RiskSettings.from_json(await _read(session, RISK))


async def put_risk_settings(session: AsyncSession, value: dict[str, Any]) -> RiskSettings:
    settings = RiskSettings.from_json(value)
    await _write(session, RISK, settings.to_json())
    return settings


async def get_return_settings(session: AsyncSession) -> ReturnSettings:
    return ReturnSettings.from_json(await _read(session, RETURNS))


async def put_return_settings(session: AsyncSession, value: dict[str, Any]) -> ReturnSettings:
    settings = ReturnSettings.from_json(value)
    await _write(session, RETURNS, settings.to_json())
    return settings


async def get_fulfillment_settings(session: AsyncSession) -> FulfillmentSettings:
    return FulfillmentSettings.from_json(await _read(session, FULFILLMENT))


async def put_fulfillment_settings(
    session: AsyncSession, value: dict[str, Any]
) -> FulfillmentSettings:
    settings = FulfillmentSettings.from_json(value)
    await _write(session, FULFILLMENT, settings.to_json())
    return settings
