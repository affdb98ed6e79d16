"""The durable sync job."""

import uuid
from typing import Any

from ingest.jobs.queue import on_abandoned, tasks, traced
from ingest.jobs.runtime import get_runtime
from ingest.syncs.service import SyncRunner, abandon_sync


@tasks.task(name="syncs.run", queue="syncs")
@traced("syncs.run")
async def run_sync(sync_id: str, tenant_id: str) -> None:
    await SyncRunner(get_runtime(), uuid.UUID(tenant_id), uuid.UUID(sync_id)).run()


@on_abandoned("syncs.run")
async def sync_abandoned(args: dict[str, Any], message: str) -> None:
    await abandon_sync(uuid.UUID(args["tenant_id"]), uuid.UUID(args["sync_id"]), get_runtime(), message)
