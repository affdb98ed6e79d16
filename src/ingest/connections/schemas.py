"""Connections API wire structs."""

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from ingest.core.schemas import CamelStruct, PartitionFieldSchema

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class StreamConfig(CamelStruct, forbid_unknown_fields=True):
    """One stream's choices; streams without an entry follow the connection's `syncMode`."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    sync_mode: str | None = None
    cursor_field: str | None = None  # a column name; INCREMENTAL needs one (or a source-defined cursor)
    primary_key: list[str] | None = None  # column names; INCREMENTAL upserts on it


class ConnectionRequest(CamelStruct, forbid_unknown_fields=True):
    """Create and update take the same body (PUT replaces every field)."""

    source_id: uuid.UUID
    name: Name
    destination_type: str | None = None
    sync_schedule: str | None = None
    selected_streams: list[str] | None = None
    sync_mode: str | None = None
    namespace: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    streams: list[StreamConfig] | None = None
    # stream -> partition fields its table is created with; a differing spec on an existing table is 409
    # unless evolvePartitionSpecs
    partition_specs: dict[str, list[PartitionFieldSchema]] | None = None
    evolve_partition_specs: bool = False


class ConnectionResponse(CamelStruct):
    id: str
    source_id: str
    source_name: str
    name: str
    destination_type: str
    sync_schedule: str | None
    sync_mode: str
    status: str
    last_sync_at: datetime | None
    created_at: datetime
    updated_at: datetime
    selected_streams: list[str] | None
    namespace: str | None
    next_run_at: datetime | None
    status_reason: str | None = None  # why it is PAUSED (by a user, or auto-disabled after failures)
    paused_at: datetime | None = None
    consecutive_failures: int = 0
    streams: list[StreamConfig] | None = None
    partition_specs: dict[str, list[PartitionFieldSchema]] | None = None
    evolve_partition_specs: bool = False


class SourceConnectionsResponse(CamelStruct):
    """A source-level pause or resume: every connection of the source, as it is now."""

    source_id: str
    connections: list[ConnectionResponse]
