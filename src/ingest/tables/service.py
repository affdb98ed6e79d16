"""Tables: the tenant's Iceberg tables, their history, undo (rollback), time travel and maintenance.

Catalog calls block, so they run in threads. A rollback or a maintenance run holds the table's lock
(`ingest.jobs.locks`), the one every import and sync holds around its commit: neither ever runs while a
load writes the same table.
"""

import asyncio
import datetime as dt
import decimal
import math
import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.connections.service import table_name
from ingest.core.errors import AppError, ConflictError, InvalidRequestError, NotFoundError
from ingest.core.logging import get_logger
from ingest.core.settings import Settings
from ingest.db.models import TableOperation
from ingest.iceberg import (
    DEFAULT_SCHEMA,
    JOB_ID_PROPERTY,
    FileHealth,
    MaintenancePolicy,
    RollbackPlan,
    SnapshotEntry,
    TableColumn,
    TableInfo,
    Warehouse,
)
from ingest.jobs.locks import TableBusyError, hold_table, table_lock
from ingest.jobs.queue import defer
from ingest.jobs.runtime import Runtime
from ingest.tables.repository import TableRepository

log = get_logger("ingest.tables")

MAX_ROWS = 1000
ROLLBACK_LOCK_WAIT_SECONDS = 10.0
MAINTENANCE_TASK = "tables.maintain"


class OperationKind:
    ROLLBACK = "ROLLBACK"
    MAINTENANCE = "MAINTENANCE"


class OperationStatus:
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"


class LaterLoadDependsError(ConflictError):
    """A rollback would also undo loads committed after the one asked for (pass `force` to allow it)."""


@dataclass(frozen=True)
class TableRowsResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    snapshot_id: int | None


@dataclass(frozen=True)
class RollbackResult:
    operation: TableOperation
    previous_snapshot_id: int | None
    current_snapshot_id: int | None
    plan: RollbackPlan
    row_count: int
    states_rewound: list[uuid.UUID]


def job_of(summary: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(job id, import id, sync id) from a snapshot summary's `ingest.job-id`."""
    return split_job(summary.get(JOB_ID_PROPERTY))


def split_job(job_id: str | None) -> tuple[str | None, str | None, str | None]:
    if job_id is None:
        return None, None, None
    if job_id.startswith("import-"):
        return job_id, job_id.removeprefix("import-"), None
    if job_id.startswith("sync-"):
        return job_id, None, job_id.removeprefix("sync-")
    return job_id, None, None


def describe_job(job_id: str) -> str:
    _, import_id, sync_id = split_job(job_id)
    return f"import {import_id}" if import_id else f"sync {sync_id}" if sync_id else f"job {job_id}"


def last_updated(info: TableInfo) -> dt.datetime | None:
    if not info.snapshots:
        return None
    return dt.datetime.fromtimestamp(max(s.timestamp_ms for s in info.snapshots) / 1000, tz=dt.UTC)


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact: a float would round
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def parse_snapshot_id(value: str | None, field: str = "snapshotId") -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequestError(f"{field} must be a snapshot id (an integer)") from None


def parse_as_of(value: str | None) -> dt.datetime | None:
    if value is None:  # `asOf=` (empty) is not a time: 400 below, as the documented date-time format says
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError("asOf must be an ISO 8601 timestamp (2026-12-02T05:00:00Z)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequestError(f"{field} must be a UUID") from None


def maintenance_policy(settings: Settings) -> MaintenancePolicy:
    return MaintenancePolicy(
        retention=dt.timedelta(hours=settings.maintenance_snapshot_retention_hours),
        keep_last=settings.maintenance_keep_snapshots,
        orphan_min_age=dt.timedelta(hours=settings.maintenance_orphan_min_age_hours),
        target_file_bytes=settings.maintenance_target_file_bytes,
    )


def rewind_state(state: Any, previous: Any, streams_of_table: set[str]) -> Any:
    """The connection's state with the table's streams put back to `previous` (None: read them again).

    Per-stream state (Airbyte STREAM messages) is rewound for the table's streams only; a GLOBAL or
    LEGACY state cannot be split, so it goes back whole.
    """

    def stream_name(message: Any) -> str | None:
        if isinstance(message, dict) and message.get("type") == "STREAM":
            descriptor = (message.get("stream") or {}).get("stream_descriptor") or {}
            name = descriptor.get("name")
            return name if isinstance(name, str) else None
        return None

    if not isinstance(state, list) or any(stream_name(m) is None for m in state):
        return previous
    kept = [m for m in state if stream_name(m) not in streams_of_table]
    earlier = [m for m in previous or [] if stream_name(m) in streams_of_table]
    return kept + earlier or None


class TableService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.runtime = runtime
        self.settings: Settings = runtime.settings
        self.warehouse: Warehouse = runtime.warehouse
        self.repository = TableRepository(session, tenant_id)

    # -- reading ---------------------------------------------------------------------------------------

    async def list_all(self) -> list[TableInfo]:
        def load() -> list[TableInfo]:
            refs = self.warehouse.list_tables(self.tenant_id)
            return [self.warehouse.describe(self.tenant_id, r.schema, r.name) for r in refs]

        return await asyncio.to_thread(load)

    async def describe(self, namespace: str, table: str) -> TableInfo:
        return await asyncio.to_thread(self.warehouse.describe, self.tenant_id, namespace, table)

    async def history(self, namespace: str, table: str) -> list[SnapshotEntry]:
        return await asyncio.to_thread(self.warehouse.history, self.tenant_id, namespace, table)

    async def columns(
        self, namespace: str, table: str, snapshot_id: str | None, as_of: str | None
    ) -> tuple[list[TableColumn], int | None]:
        sid, when = parse_snapshot_id(snapshot_id), parse_as_of(as_of)
        return await asyncio.to_thread(
            lambda: self.warehouse.columns_at(self.tenant_id, namespace, table, snapshot_id=sid, as_of=when)
        )

    async def partition_spec(self, namespace: str, table: str) -> list[tuple[str, str]]:
        return await asyncio.to_thread(self.warehouse.partition_fields, self.tenant_id, namespace, table)

    async def rows(
        self,
        namespace: str,
        table: str,
        limit: int,
        snapshot_id: str | None = None,
        as_of: str | None = None,
    ) -> TableRowsResult:
        if not 1 <= limit <= MAX_ROWS:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_ROWS}")
        sid, when = parse_snapshot_id(snapshot_id), parse_as_of(as_of)
        arrow, read_id = await asyncio.to_thread(
            lambda: self.warehouse.read_at(
                self.tenant_id, namespace, table, limit=limit, snapshot_id=sid, as_of=when
            )
        )
        frame: Any = pl.from_arrow(arrow)
        assert isinstance(frame, pl.DataFrame)
        return TableRowsResult(
            columns=frame.columns,
            rows=[{k: json_value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)],
            snapshot_id=read_id,
        )

    # -- undo ------------------------------------------------------------------------------------------

    async def rollback(
        self,
        namespace: str,
        table: str,
        *,
        snapshot_id: str | None,
        to_before_import: str | None,
        to_before_sync: str | None,
        force: bool,
    ) -> RollbackResult:
        """Make an earlier snapshot current again; marks the undone imports/syncs and rewinds sync state.

        The database changes are flushed first and the catalog commit is the last step, so a failed
        commit rolls the request's transaction back with it.
        """
        given = [v for v in (snapshot_id, to_before_import, to_before_sync) if v]
        if len(given) != 1:
            raise InvalidRequestError("Give exactly one of snapshotId, toBeforeImport, toBeforeSync")
        await asyncio.to_thread(self.warehouse.describe, self.tenant_id, namespace, table)  # 404 first
        before_job: tuple[str, str] | None = None
        asked_job: str | None = None
        if to_before_import:
            file_id = _uuid(to_before_import, "toBeforeImport")
            file = await self.repository.file(file_id)
            if file is None:
                raise NotFoundError(f"Import {file_id} not found")
            if (file.target_schema or DEFAULT_SCHEMA, file.target_table_name) != (namespace, table):
                raise InvalidRequestError(
                    f"Import {file_id} wrote {file.target_schema or DEFAULT_SCHEMA}.{file.target_table_name},"
                    f" not {namespace}.{table}"
                )
            asked_job = f"import-{file_id}"
            before_job = (asked_job, f"Import {file_id}")
        elif to_before_sync:
            sync_id = _uuid(to_before_sync, "toBeforeSync")
            if await self.repository.sync(sync_id) is None:
                raise NotFoundError(f"Sync {sync_id} not found")
            asked_job = f"sync-{sync_id}"
            before_job = (asked_job, f"Sync {sync_id}")
        target = parse_snapshot_id(snapshot_id)

        try:
            async with hold_table(
                self.runtime.session_maker,
                self.tenant_id,
                namespace,
                table,
                wait_seconds=ROLLBACK_LOCK_WAIT_SECONDS,
            ):
                return await self._rollback_locked(namespace, table, target, before_job, asked_job, force)
        except TableBusyError:
            raise ConflictError(
                f"Table {namespace}.{table} is being written by a load or maintenance; try again"
            ) from None

    async def _rollback_locked(
        self,
        namespace: str,
        table: str,
        target: int | None,
        before_job: tuple[str, str] | None,
        asked_job: str | None,
        force: bool,
    ) -> RollbackResult:
        plan, current = await asyncio.to_thread(
            lambda: self.warehouse.plan_rollback(
                self.tenant_id, namespace, table, snapshot_id=target, before_job=before_job
            )
        )
        undone = plan.undone
        first = asked_job or (undone[0].job_id if undone else None)
        dependents = [load.job_id for load in undone if load.job_id != first]
        if dependents and not force:
            names = ", ".join(describe_job(j) for j in dependents)
            raise LaterLoadDependsError(
                f"Later loads depend on what this rollback removes: {names}; undo them too with force=true"
            )
        now = dt.datetime.now(dt.UTC)
        file_ids: list[uuid.UUID] = []
        sync_ids: list[uuid.UUID] = []
        for load in undone:
            _, import_id, sync_id = split_job(load.job_id)
            if import_id:
                file_ids.append(uuid.UUID(import_id))
            elif sync_id:
                sync_ids.append(uuid.UUID(sync_id))
        await self.repository.mark_rolled_back(file_ids, sync_ids, now)
        rewound = await self._rewind_states(namespace, table, sync_ids)
        operation = await self.repository.add(
            TableOperation(
                tenant_id=self.tenant_id,
                namespace=namespace,
                table_name=table,
                kind=OperationKind.ROLLBACK,
                trigger="MANUAL",
                status=OperationStatus.SUCCEEDED,
                started_at=now,
                completed_at=now,
                details={
                    "previousSnapshotId": str(current) if current is not None else None,
                    "targetSnapshotId": str(plan.target_id) if plan.target_id is not None else None,
                    "undone": [load.job_id for load in undone],
                    "forced": bool(force and dependents),
                    "connectionStatesRewound": [str(c) for c in rewound],
                },
            )
        )
        await self.session.flush()
        await asyncio.to_thread(
            self.warehouse.rollback, self.tenant_id, namespace, table, plan.target_id, current
        )
        info = await asyncio.to_thread(self.warehouse.describe, self.tenant_id, namespace, table)
        log.info(
            "tables.rolled_back",
            tenant=str(self.tenant_id),
            table=f"{namespace}.{table}",
            target=plan.target_id,
            undone=[load.job_id for load in undone],
        )
        return RollbackResult(operation, current, plan.target_id, plan, info.row_count, rewound)

    async def _rewind_states(self, namespace: str, table: str, sync_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        """Put each undone sync's connection state back to what it was before the earliest undone sync."""
        by_connection: dict[uuid.UUID, list[Any]] = {}
        for sync, connection in await self.repository.syncs_with_connection(sync_ids):
            by_connection.setdefault(connection.id, [connection]).append(sync)
        rewound = []
        excluded = set(sync_ids)
        for connection, *syncs in by_connection.values():
            if (connection.namespace or DEFAULT_SCHEMA) != namespace or connection.state is None:
                continue
            earliest = min(s.started_at or s.created_at for s in syncs)
            previous = await self.repository.state_before(connection.id, earliest, excluded)
            streams = _streams_of_table(connection.state, table)
            connection.state = rewind_state(connection.state, previous, streams)
            rewound.append(connection.id)
        return rewound

    # -- maintenance -----------------------------------------------------------------------------------

    async def request_maintenance(
        self, namespace: str, table: str, trigger: str = "MANUAL"
    ) -> TableOperation:
        """A PENDING maintenance run and its job (queued behind the table's imports); 409 if one is queued."""
        await asyncio.to_thread(self.warehouse.describe, self.tenant_id, namespace, table)  # 404 first
        operation = TableOperation(
            id=uuid.uuid4(),
            tenant_id=self.tenant_id,
            namespace=namespace,
            table_name=table,
            kind=OperationKind.MAINTENANCE,
            trigger=trigger,
            status=OperationStatus.PENDING,
        )
        lock = table_lock(self.tenant_id, namespace, table)
        try:
            async with self.session.begin_nested():
                await self.repository.add(operation)
                await defer(
                    self.session,
                    MAINTENANCE_TASK,
                    queue="housekeeping",
                    lock=lock,
                    queueing_lock=f"maintain:{lock}",
                    tenant_id=str(self.tenant_id),
                    operation_id=str(operation.id),
                )
        except IntegrityError:
            raise ConflictError(f"Maintenance of {namespace}.{table} is already queued") from None
        log.info("tables.maintenance.queued", tenant=str(self.tenant_id), table=f"{namespace}.{table}")
        return operation

    async def operations(self, namespace: str, table: str) -> list[TableOperation]:
        await asyncio.to_thread(self.warehouse.describe, self.tenant_id, namespace, table)
        return await self.repository.operations(namespace, table)

    async def health(self, namespace: str, table: str) -> tuple[FileHealth, TableOperation | None]:
        health = await asyncio.to_thread(
            self.warehouse.health,
            self.tenant_id,
            namespace,
            table,
            self.settings.maintenance_target_file_bytes,
        )
        last = await self.repository.operations(namespace, table, OperationKind.MAINTENANCE, limit=20)
        finished = [op for op in last if op.status not in (OperationStatus.PENDING, OperationStatus.RUNNING)]
        return health, (finished[0] if finished else (last[0] if last else None))


def _streams_of_table(state: Any, table: str) -> set[str]:
    names = set()
    for message in state if isinstance(state, list) else []:
        if isinstance(message, dict) and message.get("type") == "STREAM":
            name = ((message.get("stream") or {}).get("stream_descriptor") or {}).get("name")
            if isinstance(name, str) and table_name(name) == table:
                names.add(name)
    return names


async def run_maintenance(runtime: Runtime, tenant_id: uuid.UUID, operation_id: uuid.UUID) -> str | None:
    """The maintenance job: wait for the table's lock, compact, expire, remove orphans; returns the status."""
    async with runtime.session_maker() as session, session.begin():
        operation = await TableRepository(session, tenant_id).operation(operation_id, for_update=True)
        if operation is None or operation.status != OperationStatus.PENDING:
            return None
        operation.status = OperationStatus.RUNNING
        operation.started_at = dt.datetime.now(dt.UTC)
        namespace, table = operation.namespace, operation.table_name
    settings: Settings = runtime.settings
    warehouse: Warehouse = runtime.warehouse
    status, details, message = OperationStatus.SUCCEEDED, None, None
    try:
        async with hold_table(
            runtime.session_maker,
            tenant_id,
            namespace,
            table,
            wait_seconds=settings.maintenance_lock_wait_seconds,
        ):
            result = await asyncio.to_thread(
                warehouse.maintain, tenant_id, namespace, table, maintenance_policy(settings)
            )
        details = result.as_dict()
    except TableBusyError:
        status = OperationStatus.SKIPPED
        waited = settings.maintenance_lock_wait_seconds
        message = f"A load held the table for over {waited:g} s; the next run will try again"
    except AppError as exc:
        status, message = OperationStatus.FAILED, exc.message
    except Exception:
        log.error("tables.maintenance.crashed", table=f"{namespace}.{table}", exc_info=True)
        status, message = (
            OperationStatus.FAILED,
            "Maintenance failed with an internal error; see the service logs",
        )
    async with runtime.session_maker() as session, session.begin():
        operation = await TableRepository(session, tenant_id).operation(operation_id, for_update=True)
        if operation is not None:
            operation.status = status
            operation.completed_at = dt.datetime.now(dt.UTC)
            operation.details = details
            operation.message = message
    log.info(
        "tables.maintenance.ended",
        tenant=str(tenant_id),
        table=f"{namespace}.{table}",
        status=status,
        **(details or {}),
    )
    return status


async def schedule_maintenance(
    runtime: Runtime, now: dt.datetime | None = None, tenant_id: uuid.UUID | None = None
) -> int:
    """Queue maintenance for each table (of one tenant if given) whose last run is older than the interval."""
    settings: Settings = runtime.settings
    if not settings.maintenance_enabled:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    warehouse: Warehouse = runtime.warehouse
    tables = await asyncio.to_thread(warehouse.all_tables)
    due_before = now - dt.timedelta(hours=settings.maintenance_interval_hours)
    queued = 0
    for owner, namespace, table in tables:
        if tenant_id is not None and owner != tenant_id:
            continue
        async with runtime.session_maker() as session, session.begin():
            last = await TableRepository(session, owner).operations(
                namespace, table, OperationKind.MAINTENANCE, limit=1
            )
            if last and last[0].created_at > due_before:
                continue
            try:
                await TableService(session, owner, runtime).request_maintenance(namespace, table, "SCHEDULED")
            except (ConflictError, NotFoundError):
                continue
            queued += 1
    if queued:
        log.info("tables.maintenance.scheduled", tables=queued)
    return queued
