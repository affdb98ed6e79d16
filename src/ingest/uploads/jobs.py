"""The periodic sweep that removes expired uploads and their bytes (tus expiration extension)."""

from ingest.jobs.queue import tasks
from ingest.jobs.runtime import get_runtime
from ingest.uploads.service import sweep_expired


@tasks.periodic(cron="*/10 * * * *", periodic_id="expire-uploads")
@tasks.task(name="uploads.expire", queue="housekeeping")
async def expire_uploads(timestamp: int) -> None:
    await sweep_expired(get_runtime())
