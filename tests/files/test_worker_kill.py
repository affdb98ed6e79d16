"""A worker killed in the middle of an import: the table is unchanged, the job runs again to an end."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl
from litestar.testing import AsyncTestClient

from ingest.db.session import create_engine, session_factory
from ingest.files.service import FileService
from ingest.jobs.runtime import Runtime
from tests.conftest import build_app, headers_for
from tests.files.helpers import configure, start_import, wait_for

BIG_ROWS = 4_000_000


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)


def write_csv(path: Path, rows: int) -> None:
    i = pl.col("i")
    pl.DataFrame({"i": pl.int_range(0, rows, eager=True)}).select(
        id=i,
        amount=(i % 10_000) / 4,  # quarters print exactly; i / 100 prints float noise (0.35000000000000003)
        flag=i % 3 == 0,
        note=pl.format("row {} of a file big enough to kill its worker while it is importing", i),
    ).write_csv(path)


async def store(settings, database_url, tenant: uuid.UUID, path: Path) -> str:
    """Upload through the service (the test client would hold a big body in memory)."""
    engine = create_engine(database_url)
    try:
        runtime = Runtime(settings=settings, session_maker=session_factory(engine), database_url=database_url)

        async def chunks():
            with path.open("rb") as f:
                while chunk := f.read(8 * 1024**2):
                    yield chunk

        async with runtime.session_maker() as session:
            file = await FileService(session, tenant, runtime).upload(path.name, chunks())
            await session.commit()
            return str(file.id)
    finally:
        await engine.dispose()


async def table_rows(client, headers) -> int:
    response = await client.get("/api/v1/tables/default/events", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["rowCount"])


async def test_killed_worker_mid_import_leaves_the_table_unchanged_and_the_job_ends(
    settings, database_url, env_for_subprocess, tmp_path
):
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    write_csv(small, 10)
    write_csv(big, BIG_ROWS)
    app = build_app(settings, database_url, run_worker_in_process=False)
    async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=60) as client:
        first = start_worker(env_for_subprocess)
        second = None
        try:
            small_id = await store(settings, database_url, tenant, small)
            await configure(client, headers, small_id, targetTableName="events")
            await start_import(client, headers, small_id)
            assert (await wait_for(client, headers, small_id, timeout=120))["status"] == "COMPLETED"
            assert await table_rows(client, headers) == 10

            big_id = await store(settings, database_url, tenant, big)
            preview = await client.get(f"/api/v1/files/{big_id}/preview", headers=headers)
            assert preview.json()["totalRows"] == BIG_ROWS
            await configure(client, headers, big_id, targetTableName="events")
            await start_import(client, headers, big_id)
            # kill shortly after the job started: it is inside the streaming write (seconds long)
            deadline = time.monotonic() + 120
            while True:
                file = (await client.get(f"/api/v1/files/{big_id}", headers=headers)).json()
                assert file["status"] == "IMPORTING", file
                if file["startedAt"] is not None:
                    break
                assert time.monotonic() < deadline, "no worker started the import"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            stop(first, signal.SIGKILL)

            await asyncio.sleep(1)
            assert await table_rows(client, headers) == 10  # nothing of the killed import is visible
            assert (await client.get(f"/api/v1/files/{big_id}/status", headers=headers)).json()["status"] == (
                "IMPORTING"
            )

            second = start_worker(env_for_subprocess)
            seen = []  # progress while the second worker imports (best effort: it may be quick)
            deadline = time.monotonic() + 240
            while (final := (await client.get(f"/api/v1/files/{big_id}/status", headers=headers)).json())[
                "status"
            ] == "IMPORTING":
                if final["recordsImported"]:
                    seen.append((final["recordsImported"], final["percentage"]))
                assert time.monotonic() < deadline, final
                await asyncio.sleep(0.1)
            assert all(0 < rows < BIG_ROWS and 0 < pct < 100 for rows, pct in seen), seen
            assert final["status"] == "COMPLETED", final
            assert final["recordsImported"] == BIG_ROWS
            assert await table_rows(client, headers) == 10 + BIG_ROWS
            detail = (await client.get("/api/v1/tables/default/events", headers=headers)).json()
            assert [s["importId"] for s in detail["snapshots"]] == [small_id, big_id]  # appended exactly once
            file = (await client.get(f"/api/v1/files/{big_id}", headers=headers)).json()
            assert file["attempts"] == 2
        finally:
            stop(first, signal.SIGKILL)
            if second is not None:
                stop(second, signal.SIGTERM)
