"""Sources API wire structs (names match openapi.yaml components)."""

from datetime import datetime
from typing import Annotated, Any

import msgspec

from ingest.core.schemas import CamelStruct

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]


class CreateSourceRequest(CamelStruct, forbid_unknown_fields=True):
    name: Name
    connector_type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    connection_config: dict[str, Any]
    description: Description | None = None


class UpdateSourceRequest(CamelStruct, forbid_unknown_fields=True):
    """Fields left out keep their value; a secret sent as `********` keeps the stored secret."""

    name: Name | None = None
    description: Description | None = None
    connection_config: dict[str, Any] | None = None


class SourceResponse(CamelStruct):
    id: str
    name: str
    description: str | None
    connector_type: str
    status: str
    last_tested_at: datetime | None
    created_at: datetime
    updated_at: datetime
    status_message: str | None = None
    # secrets masked as "********"; left out of list responses
    connection_config: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class ColumnSchema(CamelStruct):
    name: str
    type: str
    nullable: bool
    sample_values: list[str]
    # an exact DECIMAL's precision and scale; left out otherwise
    precision: int | msgspec.UnsetType = msgspec.UNSET
    scale: int | msgspec.UnsetType = msgspec.UNSET
    # the source database's own type (database sources), e.g. `numeric(12,2)`, `timestamp with time zone`
    db_type: str | msgspec.UnsetType = msgspec.UNSET


class StreamSchema(CamelStruct):
    name: str
    columns: list[ColumnSchema]
    supported_sync_modes: list[str]
    primary_key: list[list[str]]
    cursor_field: list[str]
    # database sources: the columns a connection may pick as INCREMENTAL cursorField
    cursor_candidates: list[str] | msgspec.UnsetType = msgspec.UNSET


class DiscoverResponse(CamelStruct):
    streams: list[StreamSchema]


class ConnectorSpecResponse(CamelStruct):
    connector_type: str
    title: str
    engines: list[str]
    connection_specification: dict[str, Any]
