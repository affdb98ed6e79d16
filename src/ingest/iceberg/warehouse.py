"""`Warehouse`: the tenant-scoped face of the catalog that services call (blocking: run it in a thread)."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import polars as pl
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.table import Table

from ingest.core import observe
from ingest.core.errors import NotFoundError
from ingest.core.settings import Settings
from ingest.iceberg import care
from ingest.iceberg.care import FileHealth, RollbackPlan, SnapshotEntry
from ingest.iceberg.catalog import TableRef, load_catalog, table_ref, tenant_of
from ingest.iceberg.maintenance import MaintenancePolicy, MaintenanceResult, maintain
from ingest.iceberg.partitioning import PartitionField, differs, fields_of, reconcile
from ingest.iceberg.writer import (
    Progress,
    Source,
    WriteMode,
    WriteResult,
    _added,
    job_snapshots,
    table_columns,
    write_batches,
    write_frame,
)


@dataclass(frozen=True)
class TableColumn:
    name: str
    type: str  # the Iceberg type: long, string, decimal(38, 2), timestamp, ...
    nullable: bool


@dataclass(frozen=True)
class TableColumns:
    """An existing table's columns: polars types (what a write converts to), required ones, Iceberg types."""

    schema: pl.Schema
    required: set[str]
    iceberg_types: dict[str, str]


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: int
    timestamp_ms: int
    operation: str | None
    summary: dict[str, str]


@dataclass(frozen=True)
class TableInfo:
    ref: TableRef
    location: str
    columns: list[TableColumn]
    snapshots: list[SnapshotInfo]
    row_count: int  # from the current snapshot's summary (total-records); 0 before the first write


class Warehouse:
    """Every table operation takes the tenant id first; identifiers are built in `catalog.table_ref` only."""

    def __init__(self, catalog: Catalog, namespace_prefix: str = "tenant_") -> None:
        self.catalog = catalog
        self.prefix = namespace_prefix

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str | None = None) -> "Warehouse":
        return cls(load_catalog(settings, database_url), settings.default_namespace_prefix)

    def ref(self, tenant_id: UUID, schema: str | None, table: str) -> TableRef:
        return table_ref(tenant_id, schema, table, self.prefix)

    def list_tables(self, tenant_id: UUID) -> list[TableRef]:
        refs: list[TableRef] = []
        for namespace in self.catalog.list_namespaces():
            owner = tenant_of(namespace, self.prefix)
            if owner is None or owner[0] != tenant_id:
                continue
            try:
                identifiers = self.catalog.list_tables(namespace)
            except NoSuchNamespaceError:
                continue
            refs.extend(self.ref(tenant_id, owner[1], ident[-1]) for ident in identifiers)
        return sorted(refs, key=lambda r: (r.schema, r.name))

    def all_tables(self) -> list[tuple[UUID, str, str]]:
        """(tenant id, schema, table) of every tenant's table: what the maintenance scheduler walks."""
        found: list[tuple[UUID, str, str]] = []
        for namespace in self.catalog.list_namespaces():
            owner = tenant_of(namespace, self.prefix)
            if owner is None:
                continue
            try:
                identifiers = self.catalog.list_tables(namespace)
            except NoSuchNamespaceError:
                continue
            found.extend((owner[0], owner[1], ident[-1]) for ident in identifiers)
        return found

    def partition_fields(self, tenant_id: UUID, schema: str | None, table: str) -> list[tuple[str, str]]:
        """(column, transform) of the table's current partition spec; [] when unpartitioned."""
        loaded = self._load(self.ref(tenant_id, schema, table))
        return [(f.column, f.transform) for f in fields_of(loaded.spec(), loaded.schema())]

    def check_partition_spec(
        self,
        tenant_id: UUID,
        schema: str | None,
        table: str,
        fields: list[PartitionField] | None,
        *,
        evolve: bool,
    ) -> None:
        """409 when the table exists with another spec and `evolve` is not asked (nothing changes here)."""
        if fields is None or evolve or not self.table_exists(tenant_id, schema, table):
            return
        loaded = self._load(self.ref(tenant_id, schema, table))
        if differs(loaded, fields):
            reconcile(loaded, fields, evolve=False)  # raises the 409 naming the table's spec

    def table_exists(self, tenant_id: UUID, schema: str | None, table: str) -> bool:
        return bool(self.catalog.table_exists(self.ref(tenant_id, schema, table).identifier))

    def columns(self, tenant_id: UUID, schema: str | None, table: str) -> TableColumns | None:
        """The table's columns; None when it does not exist."""
        try:
            loaded = self.catalog.load_table(self.ref(tenant_id, schema, table).identifier)
        except (NoSuchTableError, NoSuchNamespaceError):
            return None
        polars_schema, required = table_columns(loaded)
        return TableColumns(
            polars_schema, required, {f.name: str(f.field_type) for f in loaded.schema().fields}
        )

    def write_frame(
        self,
        tenant_id: UUID,
        schema: str | None,
        table: str,
        source: Source,
        *,
        job_id: str,
        mode: WriteMode = WriteMode.APPEND,
        column_mappings: dict[str, str] | None = None,
        progress: Progress | None = None,
        explain: Callable[[BaseException], str] | None = None,
        partition_spec: list[PartitionField] | None = None,
        evolve_partition_spec: bool = False,
        before_commit: Callable[[], None] | None = None,
        row_group_size: int | None = None,
    ) -> WriteResult:
        """See `ingest.iceberg.writer.write_frame`."""
        ref = self.ref(tenant_id, schema, table)
        with observe.span("iceberg.commit", table=table, mode=str(mode.value), job_id=job_id):
            return write_frame(
                self.catalog,
                ref.identifier,
                source,
                job_id=job_id,
                mode=mode,
                column_mappings=column_mappings,
                progress=progress,
                explain=explain,
                partition_spec=partition_spec,
                evolve_partition_spec=evolve_partition_spec,
                before_commit=before_commit,
                row_group_size=row_group_size,
            )

    def write_batches(
        self,
        tenant_id: UUID,
        schema: str | None,
        table: str,
        batches: pa.RecordBatchReader | Source,
        *,
        job_id: str,
        mode: WriteMode = WriteMode.APPEND,
        primary_key: list[str] | None = None,
        progress: Progress | None = None,
        partition_spec: list[PartitionField] | None = None,
        evolve_partition_spec: bool = False,
        row_group_size: int | None = None,
    ) -> WriteResult:
        """See `ingest.iceberg.writer.write_batches`."""
        ref = self.ref(tenant_id, schema, table)
        with observe.span("iceberg.commit", table=table, mode=str(mode.value), job_id=job_id):
            return write_batches(
                self.catalog,
                ref.identifier,
                batches,
                job_id=job_id,
                mode=mode,
                primary_key=primary_key,
                progress=progress,
                partition_spec=partition_spec,
                evolve_partition_spec=evolve_partition_spec,
                row_group_size=row_group_size,
            )

    def job_rows(self, tenant_id: UUID, schema: str | None, table: str, job_id: str) -> int | None:
        """Rows a job committed (None when it committed nothing): how a retried job knows it is done."""
        loaded = self._load(self.ref(tenant_id, schema, table))
        snapshots = job_snapshots(loaded, job_id)
        if not snapshots:
            return None
        return sum(_added(s) for s in snapshots)

    def describe(self, tenant_id: UUID, schema: str | None, table: str) -> TableInfo:
        ref = self.ref(tenant_id, schema, table)
        loaded = self._load(ref)
        current = loaded.current_snapshot()
        summary = current.summary if current is not None and current.summary is not None else None
        return TableInfo(
            ref=ref,
            location=loaded.location(),
            columns=[TableColumn(f.name, str(f.field_type), not f.required) for f in loaded.schema().fields],
            snapshots=[
                SnapshotInfo(
                    snapshot_id=s.snapshot_id,
                    timestamp_ms=s.timestamp_ms,
                    operation=s.summary.operation.value if s.summary is not None else None,
                    summary=dict(s.summary.additional_properties) if s.summary is not None else {},
                )
                for s in loaded.snapshots()
            ],
            row_count=int(summary.get("total-records", 0)) if summary is not None else 0,
        )

    def head(self, tenant_id: UUID, schema: str | None, table: str, limit: int = 100) -> pa.Table:
        """The first `limit` rows of the current snapshot."""
        return self._load(self.ref(tenant_id, schema, table)).scan(limit=limit).to_arrow()

    def read_all(self, tenant_id: UUID, schema: str | None, table: str) -> pl.DataFrame:
        """Every row (for tests and small tables)."""
        result: Any = pl.from_arrow(self._load(self.ref(tenant_id, schema, table)).scan().to_arrow())
        return result  # type: ignore[no-any-return]

    def history(self, tenant_id: UUID, schema: str | None, table: str) -> list[SnapshotEntry]:
        """Every snapshot still kept, oldest first, with its job and whether a rollback undid it."""
        return care.history(self._load(self.ref(tenant_id, schema, table)))

    def plan_rollback(
        self,
        tenant_id: UUID,
        schema: str | None,
        table: str,
        *,
        snapshot_id: int | None = None,
        before_job: tuple[str, str] | None = None,
    ) -> tuple[RollbackPlan, int | None]:
        """(what the rollback undoes, the current snapshot id).

        `before_job` is (job id, what to call it in messages): the target is the snapshot before that load.
        """
        loaded = self._load(self.ref(tenant_id, schema, table))
        current = loaded.current_snapshot()
        current_id = current.snapshot_id if current is not None else None
        if before_job is not None:
            return care.plan_rollback(loaded, care.before_job(loaded, *before_job)), current_id
        assert snapshot_id is not None
        return care.plan_rollback(loaded, snapshot_id), current_id

    def rollback(
        self,
        tenant_id: UUID,
        schema: str | None,
        table: str,
        target_id: int | None,
        expected_current: int | None,
    ) -> None:
        """Make `target_id` current again in one catalog commit (the caller holds the table's lock)."""
        care.rollback(self._load(self.ref(tenant_id, schema, table)), target_id, expected_current)

    def read_at(
        self,
        tenant_id: UUID,
        schema: str | None,
        table: str,
        *,
        limit: int | None = None,
        snapshot_id: int | None = None,
        as_of: dt.datetime | None = None,
    ) -> tuple[pa.Table, int | None]:
        """(rows of the asked snapshot, its id): by id, as of a time, or the current one."""
        loaded = self._load(self.ref(tenant_id, schema, table))
        snapshot = care.resolve_snapshot(loaded, snapshot_id, as_of)
        return care.read_at(loaded, snapshot, limit), snapshot.snapshot_id if snapshot else None

    def columns_at(
        self,
        tenant_id: UUID,
        schema: str | None,
        table: str,
        *,
        snapshot_id: int | None = None,
        as_of: dt.datetime | None = None,
    ) -> tuple[list[TableColumn], int | None]:
        loaded = self._load(self.ref(tenant_id, schema, table))
        snapshot = care.resolve_snapshot(loaded, snapshot_id, as_of)
        columns = [TableColumn(n, t, nullable) for n, t, nullable in care.schema_at(loaded, snapshot)]
        return columns, snapshot.snapshot_id if snapshot else None

    def health(self, tenant_id: UUID, schema: str | None, table: str, small_below: int) -> FileHealth:
        return care.file_health(self._load(self.ref(tenant_id, schema, table)), small_below)

    def maintain(
        self, tenant_id: UUID, schema: str | None, table: str, policy: MaintenancePolicy
    ) -> MaintenanceResult:
        """Compact, expire, remove orphans (see `ingest.iceberg.maintenance`); the caller holds the lock."""
        return maintain(self._load(self.ref(tenant_id, schema, table)), policy)

    def drop_table(self, tenant_id: UUID, schema: str | None, table: str) -> None:
        ref = self.ref(tenant_id, schema, table)
        try:
            self.catalog.purge_table(ref.identifier)
        except NoSuchTableError:
            raise NotFoundError(f"Table {ref.schema}.{ref.name} not found") from None

    def _load(self, ref: TableRef) -> Table:
        try:
            return self.catalog.load_table(ref.identifier)
        except (NoSuchTableError, NoSuchNamespaceError):
            raise NotFoundError(f"Table {ref.schema}.{ref.name} not found") from None
