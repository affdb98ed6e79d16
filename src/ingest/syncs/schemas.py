"""Syncs API wire structs."""

from datetime import datetime

from ingest.core.schemas import CamelStruct


class SyncResponse(CamelStruct):
    id: str
    connection_id: str
    connection_name: str
    status: str
    records_synced: int | None
    bytes_synced: int | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    trigger: str
    error_message: str | None = None
    created_at: datetime | None = None
    rolled_back_at: datetime | None = None  # a table rollback undid (part of) what this sync wrote


class SyncPage(CamelStruct):
    """The seed's page envelope (zero-based `number`)."""

    content: list[SyncResponse]
    total_elements: int
    total_pages: int
    number: int
    size: int
