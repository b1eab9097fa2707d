from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PublicModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ListResponse(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )

    @classmethod
    def of(cls, model: type[T], page: Any) -> ListResponse[T]:
        """A page of service results (`items`, `next_cursor`) as `model`s."""
        validate = model.model_validate  # type: ignore[attr-defined]
        return cls(data=[validate(x) for x in page.items], next_cursor=page.next_cursor)


Code = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$"),
    Field(
        description="Lower-case letters, digits, `-` and `_`; 1 to 64 characters.", examples=["web"]
    ),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


Sku = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"),
    Field(
        description="Letters, digits, `.`, `_`, `/`, `-`; 1 to 64 characters.",
        examples=["TSHIRT-M-RED"],
    ),
]
Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 code.", examples=["EUR"]),
]
Money = Annotated[int, Field(ge=0, le=100_000_000_000, description="Minor units (cents).")]
CountryCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    Field(description="ISO 3166-1 alpha-2.", examples=["DE"]),
]
ShortText = Annotated[str, StringConstraints(max_length=500)]
Email = Annotated[
    str,
    StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254),
    Field(examples=["ada@example.com"]),
]


class Address(RequestModel):
    name: ShortText | None = None
    company: ShortText | None = None
    line1: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    line2: ShortText | None = None
    city: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    region: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(max_length=32)] | None = None
    country: CountryCode
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
