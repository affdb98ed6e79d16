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


class SkippedConnection(CamelStruct):
    connection_id: str
    connection_name: str
    reason: str  # PAUSED or ALREADY_RUNNING
    sync_id: str | None = None  # the sync already pending or running


class SourceSyncResponse(CamelStruct):
    """A source-level sync: the syncs it started, and the connections it left alone (and why)."""

    source_id: str
    started: list[SyncResponse]
    skipped: list[SkippedConnection]
