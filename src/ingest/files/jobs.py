"""The durable `files.import` job: ids in, the import run of `ingest.files.service` inside."""

import uuid
from typing import Any

import procrastinate

from ingest.files.service import IMPORT_QUEUE, IMPORT_TASK, mark_abandoned, run_import
from ingest.jobs.queue import on_abandoned, tasks, traced
from ingest.jobs.runtime import get_runtime


# Input errors end the import FAILED inside `run_import`; what escapes it (the database unreachable while
# recording the outcome) is retried, and a retry finds an earlier commit by the import id.
@tasks.task(
    name=IMPORT_TASK,
    queue=IMPORT_QUEUE,
    pass_context=True,
    retry=procrastinate.RetryStrategy(max_attempts=3, wait=5),
)
@traced(IMPORT_TASK)
async def import_file(context: procrastinate.JobContext, tenant_id: str, file_id: str) -> None:
    """Import one configured file; a retry after a dead worker finds an earlier commit by the import id."""
    await run_import(get_runtime(), uuid.UUID(tenant_id), uuid.UUID(file_id))


@on_abandoned(IMPORT_TASK)
async def import_abandoned(args: dict[str, Any], message: str) -> None:
    await mark_abandoned(get_runtime(), uuid.UUID(args["tenant_id"]), uuid.UUID(args["file_id"]), message)
