"""`Warehouse`: the tenant-scoped face of the catalog that services call (blocking: run it in a thread)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import polars as pl
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.table import Table

from ingest.core.errors import NotFoundError
from ingest.core.settings import Settings
from ingest.iceberg.catalog import TableRef, load_catalog, table_ref, tenant_of
from ingest.iceberg.writer import (
    Progress,
    Source,
    WriteMode,
    WriteResult,
    _added,
    job_snapshots,
    write_batches,
    write_frame,
)


@dataclass(frozen=True)
class TableColumn:
    name: str
    type: str  # the Iceberg type: long, string, decimal(38, 2), timestamp, ...
    nullable: bool


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

    def table_exists(self, tenant_id: UUID, schema: str | None, table: str) -> bool:
        return bool(self.catalog.table_exists(self.ref(tenant_id, schema, table).identifier))

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
    ) -> WriteResult:
        """See `ingest.iceberg.writer.write_frame`."""
        ref = self.ref(tenant_id, schema, table)
        return write_frame(
            self.catalog,
            ref.identifier,
            source,
            job_id=job_id,
            mode=mode,
            column_mappings=column_mappings,
            progress=progress,
            explain=explain,
        )

    def write_batches(
        self,
        tenant_id: UUID,
        schema: str | None,
        table: str,
        batches: pa.RecordBatchReader,
        *,
        job_id: str,
        mode: WriteMode = WriteMode.APPEND,
        primary_key: list[str] | None = None,
        progress: Progress | None = None,
    ) -> WriteResult:
        """See `ingest.iceberg.writer.write_batches`."""
        ref = self.ref(tenant_id, schema, table)
        return write_batches(
            self.catalog,
            ref.identifier,
            batches,
            job_id=job_id,
            mode=mode,
            primary_key=primary_key,
            progress=progress,
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
