"""Tables API: `/api/v1/tables` (the tenant's Iceberg tables: history, time travel, undo, maintenance)."""

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from ingest.auth import requires_manage, requires_read
from ingest.core.schemas import PartitionFieldSchema
from ingest.db.models import TableOperation
from ingest.iceberg import SnapshotEntry, TableInfo
from ingest.openapi import errors
from ingest.tables.schemas import (
    RollbackRequest,
    RollbackResponse,
    SnapshotSchema,
    TableColumnSchema,
    TableDetail,
    TableHealth,
    TableOperationSchema,
    TableRows,
    TableSummary,
    UndoneLoadSchema,
)
from ingest.tables.service import MAX_ROWS, TableService, last_updated, split_job
from ingest.tenancy import tenant_dependencies

SnapshotIdParam = Annotated[
    str | None,
    QueryParameter(
        name="snapshotId",
        required=False,
        pattern=r"^-?[0-9]{1,19}$",
        description="Read this snapshot (time travel)",
    ),
]
# the Iceberg name rule (ingest.iceberg.catalog), stated in the OpenAPI document
Name = Annotated[str, Parameter(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
AsOfParam = Annotated[
    str | None,
    QueryParameter(
        name="asOf",
        required=False,
        format="date-time",
        description="Read the snapshot current at this ISO 8601 time (time travel)",
    ),
]


def to_summary(info: TableInfo) -> TableSummary:
    return TableSummary(
        namespace=info.ref.schema,
        name=info.ref.name,
        row_count=info.row_count,
        last_updated=last_updated(info),
    )


def to_snapshot(s: SnapshotEntry) -> SnapshotSchema:
    job_id, import_id, sync_id = split_job(s.job_id)
    return SnapshotSchema(
        snapshot_id=str(s.snapshot_id),
        committed_at=dt.datetime.fromtimestamp(s.timestamp_ms / 1000, tz=dt.UTC),
        operation=s.operation,
        job_id=job_id,
        import_id=import_id,
        sync_id=sync_id,
        added_records=s.added_records,
        total_records=s.total_records,
        deleted_records=s.deleted_records,
        parent_snapshot_id=str(s.parent_id) if s.parent_id is not None else None,
        current=s.current,
        in_history=s.in_history,
        maintenance=s.maintenance,
    )


def to_operation(op: TableOperation) -> TableOperationSchema:
    return TableOperationSchema(
        id=str(op.id),
        namespace=op.namespace,
        name=op.table_name,
        kind=op.kind,
        trigger=op.trigger,
        status=op.status,
        created_at=op.created_at,
        started_at=op.started_at,
        completed_at=op.completed_at,
        details=op.details,
        message=op.message,
    )


class TableController(Controller):
    path = "/api/v1/tables"
    tags = ["tables"]
    dependencies = tenant_dependencies(TableService)

    @get("/", operation_id="list_tables", summary="List tables", guards=[requires_read])
    async def list_tables(self, service: TableService) -> list[TableSummary]:
        """The tenant's Iceberg tables with their row counts and last commit time."""
        return [to_summary(info) for info in await service.list_all()]

    @get(
        "/{namespace:str}/{table:str}",
        operation_id="get_table",
        summary="Get a table",
        guards=[requires_read],
    )
    async def get_table(
        self,
        namespace: Name,
        table: Name,
        service: TableService,
        snapshot_id: SnapshotIdParam = None,
        as_of: AsOfParam = None,
    ) -> TableDetail:
        """A table's columns (as of a snapshot or time, if asked), partition spec and snapshot history."""
        info = await service.describe(namespace, table)
        history = await service.history(namespace, table)
        columns, read_id = await service.columns(namespace, table, snapshot_id, as_of)
        current = next((s.snapshot_id for s in history if s.current), None)
        spec = await service.partition_spec(namespace, table)
        return TableDetail(
            namespace=info.ref.schema,
            name=info.ref.name,
            row_count=info.row_count,
            last_updated=last_updated(info),
            columns=[TableColumnSchema(c.name, c.type, c.nullable) for c in columns],
            snapshots=[to_snapshot(s) for s in history],
            current_snapshot_id=str(current) if current is not None else None,
            read_snapshot_id=str(read_id) if read_id is not None else None,
            partition_spec=[PartitionFieldSchema(column=c, transform=t) for c, t in spec],
        )

    @get(
        "/{namespace:str}/{table:str}/rows",
        operation_id="get_table_rows",
        summary="First rows of a table",
        guards=[requires_read],
    )
    async def get_table_rows(
        self,
        namespace: Name,
        table: Name,
        service: TableService,
        limit: Annotated[
            int, QueryParameter(name="limit", ge=1, le=MAX_ROWS, description="Rows (1-1000)")
        ] = 100,
        snapshot_id: SnapshotIdParam = None,
        as_of: AsOfParam = None,
    ) -> TableRows:
        """The first rows of the table's current snapshot, or of an earlier one (`snapshotId` or `asOf`)."""
        result = await service.rows(namespace, table, limit, snapshot_id, as_of)
        return TableRows(
            namespace=namespace,
            name=table,
            columns=result.columns,
            rows=result.rows,
            snapshot_id=str(result.snapshot_id) if result.snapshot_id is not None else None,
        )

    @post(
        "/{namespace:str}/{table:str}/rollback",
        operation_id="rollback_table",
        summary="Undo loads (rollback)",
        guards=[requires_manage],
        responses=errors(
            409,
            notes={
                409: "Later loads depend on the snapshot (force to undo them too), the load was already"
                " undone, or a load is writing the table"
            },
        ),
        status_code=HTTP_200_OK,
    )
    async def rollback_table(
        self, namespace: Name, table: Name, data: RollbackRequest, service: TableService
    ) -> RollbackResponse:
        """Undo loads: an earlier snapshot becomes current in one commit; 409 if later loads depend on it."""
        result = await service.rollback(
            namespace,
            table,
            snapshot_id=data.snapshot_id,
            to_before_import=data.to_before_import,
            to_before_sync=data.to_before_sync,
            force=data.force,
        )
        undone = []
        for load in result.plan.undone:
            _, import_id, sync_id = split_job(load.job_id)
            undone.append(
                UndoneLoadSchema(
                    job_id=load.job_id,
                    import_id=import_id,
                    sync_id=sync_id,
                    snapshot_ids=[str(i) for i in load.snapshot_ids],
                )
            )
        return RollbackResponse(
            namespace=namespace,
            name=table,
            operation_id=str(result.operation.id),
            previous_snapshot_id=str(result.previous_snapshot_id) if result.previous_snapshot_id else None,
            current_snapshot_id=str(result.current_snapshot_id) if result.current_snapshot_id else None,
            undone=undone,
            row_count=result.row_count,
            connection_states_rewound=[str(c) for c in result.states_rewound],
        )

    @post(
        "/{namespace:str}/{table:str}/maintenance",
        operation_id="maintain_table",
        summary="Run maintenance now",
        guards=[requires_manage],
        responses=errors(409, notes={409: "A maintenance run is already queued"}),
        status_code=HTTP_202_ACCEPTED,
    )
    async def maintain_table(
        self, namespace: Name, table: Name, service: TableService
    ) -> TableOperationSchema:
        """Queue compaction, snapshot expiry and orphan removal now; 409 when a run is already queued."""
        return to_operation(await service.request_maintenance(namespace, table))

    @get(
        "/{namespace:str}/{table:str}/operations",
        operation_id="list_table_operations",
        summary="Rollbacks and maintenance runs",
        guards=[requires_read],
    )
    async def list_table_operations(
        self, namespace: Name, table: Name, service: TableService
    ) -> list[TableOperationSchema]:
        """The table's last 50 rollbacks and maintenance runs, newest first, with what each did."""
        return [to_operation(op) for op in await service.operations(namespace, table)]

    @get(
        "/{namespace:str}/{table:str}/health",
        operation_id="get_table_health",
        summary="Table file health",
        guards=[requires_read],
    )
    async def get_table_health(self, namespace: Name, table: Name, service: TableService) -> TableHealth:
        """Data files, average file size, snapshots, and the last maintenance run and what it did."""
        health, last = await service.health(namespace, table)
        return TableHealth(
            namespace=namespace,
            name=table,
            data_files=health.data_files,
            data_bytes=health.data_bytes,
            average_file_bytes=health.data_bytes // health.data_files if health.data_files else 0,
            small_files=health.small_files,
            delete_files=health.delete_files,
            records=health.records,
            snapshots=health.snapshots,
            partitions=health.partitions,
            maintenance_enabled=service.settings.maintenance_enabled,
            last_maintenance=to_operation(last) if last is not None else None,
        )


def route_handlers() -> list[Any]:
    return [TableController]
