"""Wire structs shared by every domain: the error body and the page envelope."""

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class CamelStruct(msgspec.Struct, rename="camel"):
    """Base for wire structs: snake_case in Python, camelCase on the wire (as the contract shows)."""


class PartitionFieldSchema(CamelStruct):
    """One partition field: `transform` is identity, year, month, day, hour, bucket[N] or truncate[W]."""

    column: str
    transform: str


class ErrorResponse(msgspec.Struct):
    """The seed's error body, used for every error the API answers."""

    timestamp: str
    status: int
    error: str
    message: str
    path: str


class Page(CamelStruct, Generic[T]):
    """The seed's page envelope (zero-based `number`)."""

    content: list[T]
    total_elements: int
    total_pages: int
    number: int
    size: int


class HealthResponse(msgspec.Struct):
    status: str
