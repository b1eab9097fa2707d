from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from oms_api.schemas.common import Code, Id, Name, PublicModel, RequestModel


class ChannelCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code": "web", "name": "Web store", "location_ids": []}]}
    )

    code: Code
    name: Name = Field(examples=["Web store"])
    active: bool = True
    location_ids: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="Locations this channel may sell and ship from; empty means all.",
    )


class ChannelUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "EU web store", "active": True}]}
    )

    name: Name | None = None
    active: bool | None = None
    location_ids: list[Id] | None = Field(default=None, max_length=100)


class ChannelPublic(PublicModel):
    id: str = Field(examples=["ch_01JD3Y4X8Z6W2V5T7R9Q1P3N5M"])
    code: str
    name: str
    active: bool
    location_ids: list[str]
    version: int
    created_at: datetime
    updated_at: datetime
