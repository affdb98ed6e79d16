"""Tables API wire structs (names match openapi.yaml components)."""

from datetime import datetime
from typing import Any

from ingest.core.schemas import CamelStruct


class TableSummary(CamelStruct):
    namespace: str
    name: str
    row_count: int
    last_updated: datetime | None


class TableColumnSchema(CamelStruct):
    name: str
    type: str
    nullable: bool


class SnapshotSchema(CamelStruct):
    """One commit; `jobId` is the import (`import-<fileId>`) or sync (`sync-<syncId>`) that made it."""

    snapshot_id: str
    committed_at: datetime
    operation: str | None
    job_id: str | None
    import_id: str | None
    sync_id: str | None
    added_records: int | None
    total_records: int | None


class TableDetail(CamelStruct):
    namespace: str
    name: str
    row_count: int
    last_updated: datetime | None
    columns: list[TableColumnSchema]
    snapshots: list[SnapshotSchema]


class TableRows(CamelStruct):
    namespace: str
    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
