"""Tables API wire structs (names match openapi.yaml components)."""

from datetime import datetime
from typing import Any

from ingest.core.schemas import CamelStruct, PartitionFieldSchema


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
    """One commit; `jobId` is the import (`import-<fileId>`) or sync (`sync-<syncId>`) that made it.

    `inHistory` is false for a snapshot a rollback undid; `maintenance` names a maintenance commit
    (`compaction`); `deletedRecords` counts rows an overwrite or upsert replaced.
    """

    snapshot_id: str
    committed_at: datetime
    operation: str | None
    job_id: str | None
    import_id: str | None
    sync_id: str | None
    added_records: int | None
    total_records: int | None
    deleted_records: int | None = None
    parent_snapshot_id: str | None = None
    current: bool = False
    in_history: bool = True
    maintenance: str | None = None


class TableDetail(CamelStruct):
    namespace: str
    name: str
    row_count: int
    last_updated: datetime | None
    columns: list[TableColumnSchema]
    snapshots: list[SnapshotSchema]
    current_snapshot_id: str | None = None
    # the snapshot `columns` describe (differs from the current one with snapshotId / asOf)
    read_snapshot_id: str | None = None
    partition_spec: list[PartitionFieldSchema] = []


class TableRows(CamelStruct):
    namespace: str
    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    snapshot_id: str | None = None  # the snapshot read (the current one unless snapshotId / asOf)


class RollbackRequest(CamelStruct, forbid_unknown_fields=True):
    """Exactly one of `snapshotId`, `toBeforeImport` (a file id), `toBeforeSync` (a sync id)."""

    snapshot_id: str | None = None
    to_before_import: str | None = None
    to_before_sync: str | None = None
    force: bool = False  # also undo later loads that depend on the undone one


class UndoneLoadSchema(CamelStruct):
    job_id: str
    import_id: str | None
    sync_id: str | None
    snapshot_ids: list[str]


class RollbackResponse(CamelStruct):
    namespace: str
    name: str
    operation_id: str
    previous_snapshot_id: str | None
    current_snapshot_id: str | None  # null: the undone load made the table's first snapshot, now empty
    undone: list[UndoneLoadSchema]
    row_count: int
    connection_states_rewound: list[str]  # connection ids whose connector state went back with the data


class TableOperationSchema(CamelStruct):
    """A rollback or a maintenance run; `details` says what it did (files, snapshots, rows)."""

    id: str
    namespace: str
    name: str
    kind: str
    trigger: str
    status: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    details: dict[str, Any] | None
    message: str | None


class TableHealth(CamelStruct):
    namespace: str
    name: str
    data_files: int
    data_bytes: int
    average_file_bytes: int
    small_files: int  # below the compaction target (INGEST_MAINTENANCE_TARGET_FILE_BYTES)
    delete_files: int
    records: int
    snapshots: int
    partitions: int
    maintenance_enabled: bool
    last_maintenance: TableOperationSchema | None
