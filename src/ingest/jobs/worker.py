"""Running a procrastinate worker with our settings (in `ingest serve` and `ingest worker`)."""

import procrastinate

from ingest.core.logging import get_logger
from ingest.core.settings import Settings
from ingest.jobs.builtin import recover_stalled_jobs

log = get_logger("ingest.jobs")

QUEUES = ["default", "imports", "syncs", "housekeeping", "webhooks"]


async def run_worker(
    app: procrastinate.App, settings: Settings, *, install_signal_handlers: bool = False
) -> None:
    """Recover jobs left by dead workers, then work until cancelled."""
    heartbeat = max(1.0, settings.job_stall_seconds / 4)
    try:
        retried, failed = await recover_stalled_jobs(app, settings.job_stall_seconds)
        if retried or failed:
            log.info("jobs.recovered", retried=retried, failed=failed)
    except Exception:
        log.warning("jobs.recover.failed", exc_info=True)
    log.info("jobs.worker.started", concurrency=settings.worker_concurrency)
    await app.run_worker_async(
        queues=QUEUES,
        concurrency=settings.worker_concurrency,
        install_signal_handlers=install_signal_handlers,
        update_heartbeat_interval=heartbeat,
        stalled_worker_timeout=settings.job_stall_seconds,
        shutdown_graceful_timeout=30,
        wait=True,
    )
