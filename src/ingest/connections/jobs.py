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
        await mirror_remote_runs(runtime)


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


async def mirror_remote_runs(runtime: Runtime) -> int:
    """On the airbyte engine Airbyte runs the cron schedule: its jobs become syncs in our history.

    Every scheduled connection's latest Airbyte jobs are compared with the job ids our syncs carry; an
    unknown one becomes a SCHEDULED sync, and one still running gets a durable job that follows it to
    its end (as a triggered sync does). A job our own trigger started but has not recorded yet collides
    with that trigger's active sync (one active sync per connection) and is skipped.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from ingest.core.errors import AppError
    from ingest.db.models import Connection, Sync
    from ingest.engines.base import TERMINAL_REMOTE_STATUSES
    from ingest.syncs.service import enqueue_run

    engine = runtime.engine
    if not getattr(engine, "runs_syncs_remotely", False):
        return 0
    async with runtime.session_maker() as session:
        query = select(Connection).where(
            Connection.sync_schedule.is_not(None), Connection.external_id.is_not(None)
        )
        connections = list((await session.execute(query)).scalars())
    mirrored = 0
    for connection in connections:
        assert connection.external_id is not None
        try:
            jobs = await engine.list_jobs(connection.external_id)
        except AppError as exc:
            log.warning("scheduler.mirror_failed", connection_id=str(connection.id), error=exc.message)
            continue
        async with runtime.session_maker() as session, session.begin():
            known = set(
                await session.scalars(
                    select(Sync.external_job_id).where(
                        Sync.connection_id == connection.id, Sync.external_job_id.is_not(None)
                    )
                )
            )
            for job in reversed(jobs):  # oldest first
                if job.id in known:
                    continue
                terminal = job.status in TERMINAL_REMOTE_STATUSES
                started, ended = _when(job.started_at), _when(job.ended_at) if terminal else None
                sync = Sync(
                    tenant_id=connection.tenant_id,
                    connection_id=connection.id,
                    status=job.status.value,
                    trigger="SCHEDULED",
                    external_job_id=job.id,
                    records_synced=job.records,
                    bytes_synced=job.bytes,
                    started_at=started,
                    completed_at=ended,
                    duration_ms=int((ended - started).total_seconds() * 1000) if started and ended else None,
                    error_message=job.error,
                    created_at=started or datetime.now(UTC),
                )
                try:
                    async with session.begin_nested():
                        session.add(sync)
                        await session.flush()
                except IntegrityError:
                    continue  # our own active sync already follows this connection's job
                if not terminal:
                    await enqueue_run(session, sync)
                mirrored += 1
    if mirrored:
        log.info("scheduler.mirrored", syncs=mirrored)
    return mirrored
