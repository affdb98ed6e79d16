"""Tables API: `/api/v1/tables` (the tenant's Iceberg tables, their snapshots and first rows)."""

import datetime as dt
import uuid
from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ingest.auth import requires_read
from ingest.iceberg import TableInfo
from ingest.jobs.runtime import Runtime
from ingest.tables.schemas import SnapshotSchema, TableColumnSchema, TableDetail, TableRows, TableSummary
from ingest.tables.service import MAX_ROWS, TableService, job_of, last_updated
from ingest.tenancy import TENANT_DEPENDENCY


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def to_summary(info: TableInfo) -> TableSummary:
    return TableSummary(
        namespace=info.ref.schema,
        name=info.ref.name,
        row_count=info.row_count,
        last_updated=last_updated(info),
    )


def to_detail(info: TableInfo) -> TableDetail:
    snapshots = []
    for s in info.snapshots:
        job_id, import_id, sync_id = job_of(s.summary)
        snapshots.append(
            SnapshotSchema(
                snapshot_id=str(s.snapshot_id),
                committed_at=dt.datetime.fromtimestamp(s.timestamp_ms / 1000, tz=dt.UTC),
                operation=s.operation,
                job_id=job_id,
                import_id=import_id,
                sync_id=sync_id,
                added_records=_int(s.summary.get("added-records")),
                total_records=_int(s.summary.get("total-records")),
            )
        )
    return TableDetail(
        namespace=info.ref.schema,
        name=info.ref.name,
        row_count=info.row_count,
        last_updated=last_updated(info),
        columns=[TableColumnSchema(c.name, c.type, c.nullable) for c in info.columns],
        snapshots=snapshots,
    )


async def provide_table_service(tenant_id: NamedDependency[uuid.UUID], runtime: Runtime) -> TableService:
    return TableService(tenant_id, runtime)


class TableController(Controller):
    path = "/api/v1/tables"
    tags = ["tables"]
    guards = [requires_read]
    dependencies = {**TENANT_DEPENDENCY, "service": provide_table_service}

    @get("/", operation_id="list_tables", summary="List tables")
    async def list_tables(self, service: TableService) -> list[TableSummary]:
        """The tenant's Iceberg tables with their row counts and last commit time."""
        return [to_summary(info) for info in await service.list_all()]

    @get("/{namespace:str}/{table:str}", operation_id="get_table", summary="Get a table")
    async def get_table(self, namespace: str, table: str, service: TableService) -> TableDetail:
        """A table's columns and snapshot history, each snapshot with the import or sync that made it."""
        return to_detail(await service.describe(namespace, table))

    @get("/{namespace:str}/{table:str}/rows", operation_id="get_table_rows", summary="First rows of a table")
    async def get_table_rows(
        self,
        namespace: str,
        table: str,
        service: TableService,
        limit: Annotated[
            int, QueryParameter(name="limit", ge=1, le=MAX_ROWS, description="Rows (1-1000)")
        ] = 100,
    ) -> TableRows:
        """The first rows of the table's current snapshot, as JSON."""
        result = await service.rows(namespace, table, limit)
        return TableRows(namespace=namespace, name=table, columns=result.columns, rows=result.rows)


def route_handlers() -> list[Any]:
    return [TableController]
