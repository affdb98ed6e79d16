"""Tables: the tenant's Iceberg tables as the API shows them (read only; catalog calls run in threads)."""

import asyncio
import datetime as dt
import decimal
import math
import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl

from ingest.core.errors import InvalidRequestError
from ingest.iceberg import JOB_ID_PROPERTY, TableInfo, Warehouse
from ingest.jobs.runtime import Runtime

MAX_ROWS = 1000


@dataclass(frozen=True)
class TableRowsResult:
    columns: list[str]
    rows: list[dict[str, Any]]


def job_of(summary: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(job id, import id, sync id) from a snapshot summary's `ingest.job-id`."""
    job_id = summary.get(JOB_ID_PROPERTY)
    if job_id is None:
        return None, None, None
    if job_id.startswith("import-"):
        return job_id, job_id.removeprefix("import-"), None
    if job_id.startswith("sync-"):
        return job_id, None, job_id.removeprefix("sync-")
    return job_id, None, None


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


class TableService:
    def __init__(self, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.tenant_id = tenant_id
        self.warehouse: Warehouse = runtime.warehouse

    async def list_all(self) -> list[TableInfo]:
        def load() -> list[TableInfo]:
            refs = self.warehouse.list_tables(self.tenant_id)
            return [self.warehouse.describe(self.tenant_id, r.schema, r.name) for r in refs]

        return await asyncio.to_thread(load)

    async def describe(self, namespace: str, table: str) -> TableInfo:
        return await asyncio.to_thread(self.warehouse.describe, self.tenant_id, namespace, table)

    async def rows(self, namespace: str, table: str, limit: int) -> TableRowsResult:
        if not 1 <= limit <= MAX_ROWS:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_ROWS}")
        arrow = await asyncio.to_thread(self.warehouse.head, self.tenant_id, namespace, table, limit)
        frame: Any = pl.from_arrow(arrow)
        assert isinstance(frame, pl.DataFrame)
        return TableRowsResult(
            columns=frame.columns,
            rows=[{k: json_value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)],
        )
