"""Syncs with the real airbyte-source-faker into real Iceberg tables, through the API and a real worker.

Embedded engine only: these assert what our own worker writes to Iceberg and the connector's state. The
same API behaviours on the airbyte engine (trigger, status, cancel, 409, failure, schedule) are in
test_platform.py; history and tenancy (test_history.py) run on both.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ingest.iceberg.warehouse import Warehouse
from tests.conftest import assert_error_body, headers_for

pytestmark = pytest.mark.engines("embedded")

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def faker(count: int, **extra) -> dict:
    return {"count": count, "seed": 42, "parallelism": 1, "always_updated": False, **extra}


async def setup_connection(client, headers, count=30, **fields) -> dict:
    source = await client.post(
        "/api/v1/sources",
        json={
            "name": f"shop-{uuid.uuid4().hex[:6]}",
            "connectorType": "faker",
            "connectionConfig": faker(count),
        },
        headers=headers,
    )
    assert source.status_code == 201, source.text
    body = {"sourceId": source.json()["id"], "name": f"c-{uuid.uuid4().hex[:6]}", **fields}
    connection = await client.post("/api/v1/connections", json=body, headers=headers)
    assert connection.status_code == 201, connection.text
    return connection.json()


async def trigger(client, headers, connection_id: str) -> dict:
    response = await client.post(f"/api/v1/syncs/connections/{connection_id}/trigger", headers=headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] in {"PENDING", "RUNNING"}
    return body


async def wait_for(client, headers, sync_id: str, statuses=TERMINAL, timeout=180.0) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = (await client.get(f"/api/v1/syncs/{sync_id}", headers=headers)).json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.3)
    raise AssertionError(f"sync stayed {body.get('status')}: {body}; queue: {queue_snapshot()}")


DATABASE_URL: list[str] = []


@pytest.fixture(autouse=True)
def _remember_database(database_url):
    DATABASE_URL[:] = [database_url]


def queue_snapshot() -> list[tuple]:
    """The job queue's rows, to explain a sync that never ran."""
    import psycopg

    from ingest.db.session import libpq_url

    with psycopg.connect(libpq_url(DATABASE_URL[0])) as conn:
        jobs = conn.execute(
            "SELECT id, task_name, status, lock, worker_id, attempts FROM procrastinate_jobs "
            "WHERE task_name = 'ingest:syncs.run' OR status <> 'succeeded' ORDER BY id"
        ).fetchall()
        workers = conn.execute("SELECT id, last_heartbeat FROM procrastinate_workers").fetchall()
    return [*jobs, ("workers", *workers)]


async def run_sync(client, headers, connection_id: str) -> dict:
    sync = await trigger(client, headers, connection_id)
    return await wait_for(client, headers, sync["id"])


@pytest.fixture
def warehouse(settings, database_url):
    return Warehouse.from_settings(settings, database_url)


async def test_full_refresh_twice_keeps_one_copy(live_client, tenant, warehouse):
    headers = headers_for(tenant)
    connection = await setup_connection(live_client, headers, count=30)
    first = await run_sync(live_client, headers, connection["id"])
    assert first["status"] == "SUCCEEDED", first
    tables = {t: warehouse.read_all(tenant, None, t).height for t in ("users", "products", "purchases")}
    assert first["recordsSynced"] == sum(tables.values())
    assert first["bytesSynced"] > 0
    assert first["durationMs"] >= 0 and first["startedAt"] and first["completedAt"]
    users = warehouse.read_all(tenant, None, "users")
    assert users.height == 30
    assert sorted(users["id"].to_list()) == list(range(1, 31))
    second = await run_sync(live_client, headers, connection["id"])
    assert second["status"] == "SUCCEEDED"
    assert warehouse.read_all(tenant, None, "users").height == 30  # replaced, not appended
    info = warehouse.describe(tenant, None, "users")
    assert {s.summary.get("ingest.job-id") for s in info.snapshots} >= {
        f"sync-{first['id']}",
        f"sync-{second['id']}",
    }
    got = (await live_client.get(f"/api/v1/connections/{connection['id']}", headers=headers)).json()
    assert got["status"] == "ACTIVE" and got["lastSyncAt"]


async def test_incremental_adds_only_new_records_and_saves_state(
    live_client, tenant, warehouse, database_url
):
    headers = headers_for(tenant)
    connection = await setup_connection(
        live_client, headers, count=20, syncMode="INCREMENTAL", selectedStreams=["users"]
    )
    first = await run_sync(live_client, headers, connection["id"])
    assert first["status"] == "SUCCEEDED", first
    assert warehouse.read_all(tenant, None, "users").height == 20
    from sqlalchemy.ext.asyncio import create_async_engine

    from ingest.db.session import sqlalchemy_url

    engine = create_async_engine(sqlalchemy_url(database_url))
    async with engine.connect() as conn:
        state = (
            await conn.execute(
                text("SELECT state FROM connections WHERE id = :id"), {"id": uuid.UUID(connection["id"])}
            )
        ).scalar_one()
    await engine.dispose()
    assert state, "the connector's state is saved after the commit"

    # the second run starts from the saved state: faker has nothing new, so nothing is added
    second = await run_sync(live_client, headers, connection["id"])
    assert second["status"] == "SUCCEEDED", second
    assert second["recordsSynced"] == 0
    assert warehouse.read_all(tenant, None, "users").height == 20

    # records that changed upstream come again and replace their old version (upsert on the primary key `id`)
    source_id = connection["sourceId"]
    grown = faker(35, always_updated=True)
    put = await live_client.put(
        f"/api/v1/sources/{source_id}", json={"connectionConfig": grown}, headers=headers
    )
    assert put.status_code == 200, put.text
    before = warehouse.read_all(tenant, None, "users")
    third = await run_sync(live_client, headers, connection["id"])
    assert third["status"] == "SUCCEEDED", third
    users = warehouse.read_all(tenant, None, "users")
    assert users.height == 35
    assert users["id"].n_unique() == 35
    old = before.filter(before["id"] == 1)["updated_at"][0]
    assert users.filter(users["id"] == 1)["updated_at"][0] >= old


async def test_selected_streams_only(live_client, tenant, warehouse):
    headers = headers_for(tenant)
    connection = await setup_connection(live_client, headers, count=10, selectedStreams=["products"])
    result = await run_sync(live_client, headers, connection["id"])
    assert result["status"] == "SUCCEEDED", result
    assert [t.name for t in warehouse.list_tables(tenant)] == ["products"]


async def test_cancel_mid_run_commits_nothing(live_client, tenant, warehouse):
    headers = headers_for(tenant)
    connection = await setup_connection(live_client, headers, count=2_000_000, selectedStreams=["users"])
    sync = await trigger(live_client, headers, connection["id"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until records are flowing
        body = (await live_client.get(f"/api/v1/syncs/{sync['id']}", headers=headers)).json()
        if body["status"] == "RUNNING" and (body["recordsSynced"] or 0) > 0:
            break
        await asyncio.sleep(0.3)
    else:
        raise AssertionError("the sync never started reading")
    response = await live_client.post(f"/api/v1/syncs/{sync['id']}/cancel", headers=headers)
    assert response.status_code == 204
    ended = await wait_for(live_client, headers, sync["id"], timeout=60)
    assert ended["status"] == "CANCELLED"
    assert warehouse.list_tables(tenant) == []  # nothing of the run reached Iceberg
    assert_error_body(await live_client.post(f"/api/v1/syncs/{sync['id']}/cancel", headers=headers), 409)


async def test_second_trigger_while_running_is_409(live_client, tenant):
    headers = headers_for(tenant)
    connection = await setup_connection(live_client, headers, count=300_000, selectedStreams=["users"])
    sync = await trigger(live_client, headers, connection["id"])
    response = await live_client.post(
        f"/api/v1/syncs/connections/{connection['id']}/trigger", headers=headers
    )
    assert_error_body(response, 409, "already")
    # deleting the connection cancels its running sync first
    assert (
        await live_client.delete(f"/api/v1/connections/{connection['id']}", headers=headers)
    ).status_code == 204
    assert_error_body(await live_client.get(f"/api/v1/syncs/{sync['id']}", headers=headers), 404)


async def test_failing_connector_ends_failed_with_message(live_client, tenant, database_url):
    headers = headers_for(tenant)
    connection = await setup_connection(live_client, headers, count=10, selectedStreams=["users"])
    from sqlalchemy.ext.asyncio import create_async_engine

    from ingest.db.session import sqlalchemy_url

    engine = create_async_engine(sqlalchemy_url(database_url))
    async with engine.begin() as conn:
        # a stored config the connector rejects at read time (as after a connector upgrade changed its spec)
        await conn.execute(
            text("UPDATE sources SET config = jsonb_set(config, '{count}', '\"lots\"') WHERE id = :id"),
            {"id": uuid.UUID(connection["sourceId"])},
        )
    await engine.dispose()
    result = await run_sync(live_client, headers, connection["id"])
    assert result["status"] == "FAILED", result
    assert result["errorMessage"]
    assert "Config validation error" in result["errorMessage"]
    assert (await live_client.get(f"/api/v1/connections/{connection['id']}", headers=headers)).json()[
        "status"
    ] == "ERROR"


async def test_scheduled_run_fires_exactly_once(live_client, tenant, settings, database_url):
    from ingest.connections.jobs import fire_due_schedules
    from ingest.db.session import create_engine, session_factory
    from ingest.jobs.runtime import Runtime

    headers = headers_for(tenant)
    connection = await setup_connection(
        live_client, headers, count=5, syncSchedule="*/5 * * * *", selectedStreams=["products"]
    )
    engines = [create_engine(database_url) for _ in range(3)]
    runtimes = [
        Runtime(settings=settings, session_maker=session_factory(e), database_url=database_url)
        for e in engines
    ]
    async with engines[0].begin() as conn:
        await conn.execute(
            text("UPDATE connections SET next_run_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(minutes=1), "id": uuid.UUID(connection["id"])},
        )
    # three schedulers (as in three service processes) race for the same due run
    await asyncio.gather(*(fire_due_schedules(r) for r in runtimes))
    await asyncio.gather(*(fire_due_schedules(r) for r in runtimes))
    for engine in engines:
        await engine.dispose()
    page = (await live_client.get(f"/api/v1/syncs?connectionId={connection['id']}", headers=headers)).json()
    assert page["totalElements"] == 1
    assert page["content"][0]["trigger"] == "SCHEDULED"
    ended = await wait_for(live_client, headers, page["content"][0]["id"])
    assert ended["status"] == "SUCCEEDED"
    after = (await live_client.get(f"/api/v1/connections/{connection['id']}", headers=headers)).json()
    assert after["nextRunAt"] > datetime.now(UTC).isoformat()[:16]
