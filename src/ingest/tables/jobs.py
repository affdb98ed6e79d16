"""The durable maintenance job, and the periodic task that queues it for tables that are due."""

import uuid

from ingest.jobs.queue import tasks
from ingest.jobs.runtime import get_runtime
from ingest.tables.service import MAINTENANCE_TASK, run_maintenance, schedule_maintenance


@tasks.task(name=MAINTENANCE_TASK, queue="housekeeping")
async def maintain_table(tenant_id: str, operation_id: str) -> None:
    """One table's maintenance run; the job's lock is the table's, so it queues behind its imports."""
    await run_maintenance(get_runtime(), uuid.UUID(tenant_id), uuid.UUID(operation_id))


# every 10 minutes: each table is maintained when its last run is older than INGEST_MAINTENANCE_INTERVAL_HOURS
@tasks.periodic(cron="*/10 * * * *", periodic_id="maintain-tables")
@tasks.task(name="tables.schedule_maintenance", queue="housekeeping")
async def schedule_table_maintenance(timestamp: int) -> None:
    await schedule_maintenance(get_runtime())
