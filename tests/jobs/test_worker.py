"""A worker killed in the middle of a job: the job runs again on another worker, or ends FAILED."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import procrastinate
import pytest

from ingest.db.session import libpq_url
from ingest.jobs.builtin import MAX_ATTEMPTS, recover_stalled_jobs
from ingest.jobs.queue import NAMESPACE, create_job_app


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def wait_for_status(app: procrastinate.App, job_id: int, wanted: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = (await app.job_manager.get_job_status_async(job_id)).value
        if status in wanted:
            return status
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {status!r}, wanted {wanted}")


def stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)


async def test_killed_worker_job_is_run_again(database_url, env_for_subprocess):
    app = create_job_app(libpq_url(database_url))
    async with app.open_async():
        job_id = await app.configure_task(f"{NAMESPACE}:jobs.probe").defer_async(first_attempt_seconds=120)
        first = start_worker(env_for_subprocess)
        try:
            await wait_for_status(app, job_id, {"doing"}, timeout=60)
            stop(first, signal.SIGKILL)  # dies mid-job: no heartbeat, no cleanup
        finally:
            stop(first, signal.SIGKILL)
        second = start_worker(env_for_subprocess)
        try:
            # the second worker's recovery sees the dead worker's stale heartbeat and retries the job
            assert await wait_for_status(app, job_id, {"succeeded", "failed"}, timeout=90) == "succeeded"
        finally:
            stop(second, signal.SIGTERM)
        jobs = await app.job_manager.list_jobs_async(id=job_id)
        assert jobs[0].attempts >= 1


@pytest.mark.parametrize("attempts", [MAX_ATTEMPTS - 1])
async def test_job_whose_worker_keeps_dying_ends_failed(database_url, attempts):
    app = create_job_app(libpq_url(database_url))
    async with app.open_async():
        job_id = await app.configure_task(f"{NAMESPACE}:jobs.probe").defer_async(seconds=1)
        # simulate a job taken by a worker that vanished, already retried `attempts` times
        async with app.connector.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id"
            )
            await conn.execute(
                "UPDATE procrastinate_jobs SET status = 'doing', attempts = %s, "
                "worker_id = (SELECT max(id) FROM procrastinate_workers) WHERE id = %s",
                (attempts, job_id),
            )
        retried, failed = await recover_stalled_jobs(app, stall_seconds=5)
        assert (retried, failed) == (0, 1)
        assert (await app.job_manager.get_job_status_async(job_id)).value == "failed"
