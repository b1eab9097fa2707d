from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from oms_api.domain.access import Scope
from oms_api.schemas.common import Id, Name, PublicModel, RequestModel

ScopeName = Literal[
    "admin", "orders:read", "orders:write", "inventory:read", "inventory:write",
    "fulfillment:write", "returns:write", "webhooks:write", "reports:read",
]  # fmt: skip
if set(ScopeName.__args__) != {s.value for s in Scope}:  # type: ignore[attr-defined]
    raise RuntimeError("ScopeName must list exactly the Scope values")


class ApiKeyCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "web store", "scopes": ["orders:read", "orders:write"], "channel_id": None}
            ]
        }
    )

    name: Name = Field(examples=["web store backend"])
    scopes: list[ScopeName] = Field(
        min_length=1, max_length=len(Scope), examples=[["orders:write"]]
    )
    channel_id: Id | None = Field(
        default=None, description="Bind the key to one channel: it sees only that channel's data."
    )


class ApiKeyPublic(PublicModel):
    id: str = Field(examples=["key_01JD3Y4X8Z6W2V5T7R9Q1P3N5M"])
    name: str
    prefix: str = Field(
        description="The key's first characters, to recognise it.", examples=["oms_3kT9aQ2x"]
    )
    scopes: list[Scope]
    channel_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    secret: str | None = Field(
        description="The key itself. Shown once, never again: store it now. Null in a replay "
        "of the creating request (Idempotent-Replayed), since secrets are never stored."
    )
