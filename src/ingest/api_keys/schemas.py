"""API keys wire structs (names match openapi.yaml components)."""

from datetime import datetime
from typing import Annotated

import msgspec

from ingest.core.schemas import CamelStruct


class CreateApiKeyRequest(CamelStruct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    # a subset of the caller's own permissions
    permissions: Annotated[list[str], msgspec.Meta(min_length=1, max_length=10)]
    expires_at: datetime | None = None


class ApiKeyResponse(CamelStruct):
    id: str
    name: str
    prefix: str
    permissions: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class CreatedApiKeyResponse(CamelStruct):
    """The key itself is answered here once; only a keyed hash of it is stored."""

    id: str
    name: str
    prefix: str
    permissions: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    key: str
