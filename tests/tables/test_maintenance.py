"""Maintenance on real Iceberg tables: compaction, snapshot expiry, orphan removal, and the table lock."""

import asyncio
import dataclasses
import os
import time
import uuid
from pathlib import Path

import polars as pl

from ingest.db.models import TableOperation
from ingest.db.session import create_engine, session_factory
from ingest.jobs.locks import hold_table
from ingest.jobs.runtime import Runtime
from ingest.tables.service import run_maintenance, schedule_maintenance
from tests.conftest import READ, assert_error_body, headers_for

BASE = "/api/v1/tables/ops/events"


def append_small(warehouse, tenant, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        frame = pl.DataFrame(
            {"id": [i * 2, i * 2 + 1], "label": [f"a{i}", f"b{i}"], "amount": [i * 1.5, -i * 0.5]}
        )
        warehouse.write_frame(tenant, "ops", "events", frame.lazy(), job_id=f"import-{uuid.uuid4()}")


def loaded(warehouse, tenant):
    return warehouse.catalog.load_table(warehouse.ref(tenant, "ops", "events").identifier)


def all_rows(table, snapshot_id: int | None = None) -> list[tuple]:
    arrow = table.scan(snapshot_id=snapshot_id).to_arrow() if snapshot_id else table.scan().to_arrow()
    return sorted(pl.from_arrow(arrow).rows())


async def wait_operation(
    client, headers, operation_id: str, statuses: set[str], timeout: float = 120
) -> dict:
    deadline = time.monotonic() + timeout
    found: dict = {}
    while time.monotonic() < deadline:
        ops = (await client.get(f"{BASE}/operations", headers=headers)).json()
        found = next((op for op in ops if op["id"] == operation_id), {})
        if found.get("status") in statuses:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"operation stayed {found.get('status')}: {found}")


async def test_maintenance_after_50_small_appends(live_client, warehouse):
    tenant = uuid.uuid4()
    headers, reader = headers_for(tenant), headers_for(tenant, READ)
    append_small(warehouse, tenant, 50)
    table = loaded(warehouse, tenant)
    before_rows = all_rows(table)
    snapshots = [s.snapshot_id for s in table.snapshots()]
    assert len(before_rows) == 100 and len(snapshots) == 50
    assert len(list(table.scan().plan_files())) == 50
    health = (await live_client.get(f"{BASE}/health", headers=reader)).json()
    assert (health["dataFiles"], health["snapshots"], health["smallFiles"]) == (50, 50, 50)
    assert health["lastMaintenance"] is None and health["averageFileBytes"] > 0

    # files nothing references: an old one goes, a fresh one (a commit may be on its way) stays
    data_dir = Path(table.location().removeprefix("file://")) / "data"
    old_orphan, fresh_orphan = data_dir / "orphan-old.parquet", data_dir / "orphan-fresh.parquet"
    old_orphan.write_bytes(b"PAR1 not referenced")
    fresh_orphan.write_bytes(b"PAR1 not referenced")
    two_hours_ago = time.time() - 7200
    os.utime(old_orphan, (two_hours_ago, two_hours_ago))

    queued = await live_client.post(f"{BASE}/maintenance", headers=headers)
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "PENDING" and queued.json()["kind"] == "MAINTENANCE"
    done = await wait_operation(live_client, reader, queued.json()["id"], {"SUCCEEDED", "FAILED", "SKIPPED"})
    assert done["status"] == "SUCCEEDED", done
    details = done["details"]

    after = loaded(warehouse, tenant)
    assert all_rows(after) == before_rows  # every row and value unchanged
    files_after = list(after.scan().plan_files())
    assert len(files_after) == 1 == details["data_files_after"]
    assert details["files_compacted"] == 50 and details["data_files_before"] == 50
    assert details["records"] == 100
    compaction = after.current_snapshot()
    assert compaction.summary["ingest.maintenance"] == "compaction"
    assert compaction.summary["added-records"] == compaction.summary["deleted-records"] == "100"
    # keep 5 newest (4 loads and the compaction) + the snapshot before the oldest kept load
    remaining = [s.snapshot_id for s in after.snapshots()]
    assert len(remaining) == details["snapshots_after"] == 6 and details["snapshots_expired"] == 45
    target = int(details["kept_for_rollback"][0])
    assert target == snapshots[45] and target in remaining
    assert not old_orphan.exists() and fresh_orphan.exists()
    assert details["orphan_files_removed"] >= 1

    health = (await live_client.get(f"{BASE}/health", headers=reader)).json()
    assert (health["dataFiles"], health["snapshots"], health["smallFiles"]) == (1, 6, 1)
    assert health["records"] == 100 and health["lastMaintenance"]["id"] == done["id"]
    assert health["maintenanceEnabled"] is False  # the test settings turn the periodic runs off

    # the kept rollback target still works: back to the 46th append (its files were kept for it)
    undo = await live_client.post(
        f"{BASE}/rollback", json={"snapshotId": str(target), "force": True}, headers=headers
    )
    assert undo.status_code == 200, undo.text
    assert all_rows(loaded(warehouse, tenant)) == [r for r in before_rows if r[0] < 92]
    # expired snapshots are gone for time travel: 404, not a wrong answer
    gone = await live_client.get(f"{BASE}/rows", params={"snapshotId": str(snapshots[0])}, headers=reader)
    assert_error_body(gone, 404, "expired")


async def test_maintenance_never_runs_during_a_load(live_client, warehouse, app_settings, database_url):
    tenant = uuid.uuid4()
    headers, reader = headers_for(tenant), headers_for(tenant, READ)
    append_small(warehouse, tenant, 3)
    snapshots_before = len(loaded(warehouse, tenant).snapshots())
    engine = create_engine(database_url, pool_size=2)
    sessions = session_factory(engine)
    try:
        # a load holds the table's lock (imports and syncs take it around their commit)
        async with hold_table(sessions, tenant, "ops", "events"):
            queued = await live_client.post(f"{BASE}/maintenance", headers=headers)
            assert queued.status_code == 202, queued.text
            running = await wait_operation(live_client, reader, queued.json()["id"], {"RUNNING"})
            await asyncio.sleep(2.0)
            ops = (await live_client.get(f"{BASE}/operations", headers=reader)).json()
            assert ops[0]["id"] == running["id"] and ops[0]["status"] == "RUNNING"  # waiting for the lock
            assert len(loaded(warehouse, tenant).snapshots()) == snapshots_before  # nothing compacted
        done = await wait_operation(live_client, reader, queued.json()["id"], {"SUCCEEDED", "FAILED"})
        assert done["status"] == "SUCCEEDED" and done["details"]["files_compacted"] == 3

        # with a short wait, a run that finds the table busy ends SKIPPED and changes nothing
        impatient = Runtime(
            settings=dataclasses.replace(app_settings, maintenance_lock_wait_seconds=0.5),
            session_maker=sessions,
            database_url=database_url,
        )
        async with sessions() as session, session.begin():
            operation = TableOperation(
                tenant_id=tenant,
                namespace="ops",
                table_name="events",
                kind="MAINTENANCE",
                trigger="MANUAL",
                status="PENDING",
            )
            session.add(operation)
        append_small(warehouse, tenant, 2, start=10)
        before = [s.snapshot_id for s in loaded(warehouse, tenant).snapshots()]
        async with hold_table(sessions, tenant, "ops", "events"):
            assert await run_maintenance(impatient, tenant, operation.id) == "SKIPPED"
        assert [s.snapshot_id for s in loaded(warehouse, tenant).snapshots()] == before
        ops = (await live_client.get(f"{BASE}/operations", headers=reader)).json()
        skipped = next(op for op in ops if op["id"] == str(operation.id))
        assert skipped["status"] == "SKIPPED" and "load held the table" in skipped["message"]

        # the periodic task queues a run for a table whose last run is older than the interval
        scheduler = Runtime(
            settings=dataclasses.replace(
                app_settings, maintenance_enabled=True, maintenance_interval_hours=0.0
            ),
            session_maker=sessions,
            database_url=database_url,
        )
        assert await schedule_maintenance(scheduler, tenant_id=tenant) == 1
        ops = (await live_client.get(f"{BASE}/operations", headers=reader)).json()
        assert ops[0]["trigger"] == "SCHEDULED"
        lazy = dataclasses.replace(scheduler.settings, maintenance_interval_hours=24.0)
        assert (
            await schedule_maintenance(dataclasses.replace(scheduler, settings=lazy), tenant_id=tenant) == 0
        )
    finally:
        await engine.dispose()
