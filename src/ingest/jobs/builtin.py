"""Queue housekeeping: stalled-job recovery, and a probe that checks workers run jobs."""

import asyncio

import procrastinate

from ingest.core.logging import get_logger
from ingest.jobs.queue import abandon_hooks, tasks
from ingest.jobs.runtime import get_runtime

log = get_logger("ingest.jobs")

MAX_ATTEMPTS = 3


async def recover_stalled_jobs(app: procrastinate.App, stall_seconds: float) -> tuple[int, int]:
    """Jobs whose worker stopped sending heartbeats: run again, or end FAILED after MAX_ATTEMPTS.

    Returns (retried, failed). Safe to run from several workers at once: procrastinate's own state
    transitions refuse to retry or finish a job that is no longer `doing`.
    """
    retried = failed = 0
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stall_seconds)
    for job in stalled:
        short_name = job.task_name.split(":", 1)[-1]
        try:
            if job.attempts + 1 < MAX_ATTEMPTS:
                await app.job_manager.retry_job(job)
                retried += 1
                log.warning("jobs.stalled.retried", job_id=job.id, task=short_name, attempts=job.attempts + 1)
                continue
            await app.job_manager.finish_job(job, status=procrastinate.jobs.Status.FAILED, delete_job=False)
        except Exception:
            log.warning("jobs.stalled.skipped", job_id=job.id, task=short_name, exc_info=True)
            continue
        failed += 1
        message = f"The worker running this job stopped {MAX_ATTEMPTS} times; giving up"
        log.error("jobs.stalled.failed", job_id=job.id, task=short_name)
        hook = abandon_hooks.get(short_name)
        if hook is not None:
            await hook(dict(job.task_kwargs), message)
    return retried, failed


@tasks.periodic(cron="* * * * * */5", periodic_id="recover-stalled")
@tasks.task(name="jobs.recover_stalled", queue="housekeeping", pass_context=True)
async def recover_stalled(context: procrastinate.JobContext, timestamp: int) -> None:
    runtime = get_runtime()
    await recover_stalled_jobs(context.app, runtime.settings.job_stall_seconds)


@tasks.task(name="jobs.probe", queue="default", pass_context=True)
async def probe(
    context: procrastinate.JobContext, seconds: float = 0.0, first_attempt_seconds: float = 0.0
) -> str:
    """Sleep and succeed: `ingest jobs probe` checks that a worker picks jobs up (and tests use it)."""
    attempts = context.job.attempts if context.job else 0
    await asyncio.sleep(first_attempt_seconds if attempts == 0 else seconds)
    return f"attempt {attempts + 1}"
