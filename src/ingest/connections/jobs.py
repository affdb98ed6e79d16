"""The scheduler: a periodic job that triggers the syncs whose cron schedule is due."""

from datetime import UTC, datetime

from ingest.connections.repository import due_connections
from ingest.connections.service import next_run
from ingest.core.logging import get_logger
from ingest.jobs.queue import tasks
from ingest.jobs.runtime import Runtime, get_runtime

log = get_logger("ingest.scheduler")


async def fire_due_schedules(runtime: Runtime, now: datetime | None = None) -> int:
    """Trigger every due connection once; returns how many syncs were started.

    Safe with many schedulers on one database: due rows are claimed with FOR UPDATE SKIP LOCKED and their
    `next_run_at` is moved past `now` in the same transaction, so each scheduled run happens exactly once.
    A connection whose previous sync is still running skips that run (and says so in the log).
    """
    from ingest.connections.repository import ConnectionRepository
    from ingest.syncs.service import SyncService

    if getattr(runtime.engine, "runs_syncs_remotely", False):
        return 0  # Airbyte runs the schedule itself (the cron is sent to it in Quartz form)
    now = now or datetime.now(UTC)
    fired = 0
    async with runtime.session_maker() as session, session.begin():
        for connection in await due_connections(session, now):
            if connection.sync_schedule is None:
                continue
            connection.next_run_at = next_run(connection.sync_schedule, now)
            if (
                await ConnectionRepository(session, connection.tenant_id).active_sync(connection.id)
                is not None
            ):
                log.info("scheduler.skipped_running", connection_id=str(connection.id))
                continue
            await SyncService(session, connection.tenant_id, runtime).create_pending(connection, "SCHEDULED")
            fired += 1
    if fired:
        log.info("scheduler.fired", syncs=fired)
    return fired


@tasks.periodic(cron="* * * * *", periodic_id="schedule-syncs")
@tasks.task(name="connections.schedule", queue="housekeeping")
async def schedule_syncs(timestamp: int) -> None:
    runtime = get_runtime()
    if runtime.settings.scheduler_enabled:
        await fire_due_schedules(runtime)
