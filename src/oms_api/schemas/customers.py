from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from oms_api.schemas.common import Address, Email, PublicModel, RequestModel

Phone = Annotated[str, StringConstraints(max_length=64)]
PersonName = Annotated[str, StringConstraints(max_length=200)]


class CustomerCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+44 20 7946 0000",
                 "addresses": [{"line1": "12 St James's Sq", "city": "London", "postal_code": "SW1Y 4JH",
                                "country": "GB"}]}
            ]
        }
    )  # fmt: skip

    email: Email
    name: PersonName | None = None
    phone: Phone | None = None
    addresses: list[Address] = Field(default_factory=list, max_length=20)


class CustomerPublic(PublicModel):
    id: str
    email: str
    name: str | None
    phone: str | None
    addresses: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime
