"""Syncs on the airbyte engine only: the durable job polls the remote job (not GET), cancel, 409, drift."""

import asyncio
import time
import uuid

import pytest

from tests.conftest import assert_error_body, headers_for
from tests.platform_helpers import airbyte_ui, row

pytestmark = pytest.mark.engines("airbyte")

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


async def setup_connection(client, headers, **fields) -> dict:
    source = await client.post(
        "/api/v1/sources",
        json={
            "name": f"shop-{uuid.uuid4().hex[:6]}",
            "connectorType": "faker",
            "connectionConfig": {"count": 5},
        },
        headers=headers,
    )
    assert source.status_code == 201, source.text
    body = {"sourceId": source.json()["id"], "name": f"c-{uuid.uuid4().hex[:6]}", **fields}
    connection = await client.post("/api/v1/connections", json=body, headers=headers)
    assert connection.status_code == 201, connection.text
    return dict(connection.json())


async def trigger(client, headers, connection_id: str) -> dict:
    response = await client.post(f"/api/v1/syncs/connections/{connection_id}/trigger", headers=headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


async def wait_for(client, headers, sync_id: str, check, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = (await client.get(f"/api/v1/syncs/{sync_id}", headers=headers)).json()
        if check(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"sync never got there: {body}")


def ended(body: dict) -> bool:
    return body["status"] in TERMINAL


async def job_of(database_url: str, sync_id: str, timeout: float = 20.0) -> str:
    """The Airbyte job id our durable job stored on the sync, once it started the remote job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await row(
            database_url, "SELECT external_job_id FROM syncs WHERE id = :id", id=uuid.UUID(sync_id)
        )
        if job:
            return str(job)
        await asyncio.sleep(0.1)
    raise AssertionError("the sync job never started an Airbyte job")


async def connection_remote_id(database_url: str, connection_id: str) -> str:
    value = await row(
        database_url, "SELECT external_id FROM connections WHERE id = :id", id=uuid.UUID(connection_id)
    )
    return str(value)


async def test_a_sync_runs_as_an_airbyte_job(live_client, tenant, fake_airbyte, database_url):
    headers = headers_for(tenant)
    fake_airbyte.job_rows = 1234
    connection = await setup_connection(live_client, headers)
    sync = await trigger(live_client, headers, connection["id"])
    done = await wait_for(live_client, headers, sync["id"], ended)
    assert done["status"] == "SUCCEEDED", done
    assert (done["recordsSynced"], done["bytesSynced"]) == (1234, 1234 * 120)
    assert done["startedAt"] and done["completedAt"] and done["durationMs"] >= 0
    job = await job_of(database_url, sync["id"])
    assert fake_airbyte.job_status(job) == "succeeded"
    remote_id = await connection_remote_id(database_url, connection["id"])
    assert [j["connectionId"] for j in fake_airbyte.jobs.values()] == [remote_id]
    got = (await live_client.get(f"/api/v1/connections/{connection['id']}", headers=headers)).json()
    assert got["status"] == "ACTIVE" and got["lastSyncAt"]


async def test_gets_do_not_call_airbyte(live_client, tenant, fake_airbyte, database_url):
    headers = headers_for(tenant)
    fake_airbyte.job_running_seconds = 60
    connection = await setup_connection(live_client, headers)
    sync = await trigger(live_client, headers, connection["id"])
    job = await job_of(database_url, sync["id"])
    fake_airbyte.fail_next(1000, 503, path="/jobs")  # Airbyte's jobs API is down: our reads do not care
    for _ in range(5):
        assert (await live_client.get(f"/api/v1/syncs/{sync['id']}", headers=headers)).status_code == 200
        assert (await live_client.get("/api/v1/syncs", headers=headers)).status_code == 200
    fake_airbyte.clear_faults()
    fake_airbyte.finish_job(job)
    assert (await wait_for(live_client, headers, sync["id"], ended))["status"] == "SUCCEEDED"


async def test_failed_airbyte_job_fails_the_sync(live_client, tenant, fake_airbyte):
    headers = headers_for(tenant)
    fake_airbyte.job_result = "failed"
    connection = await setup_connection(live_client, headers)
    sync = await trigger(live_client, headers, connection["id"])
    done = await wait_for(live_client, headers, sync["id"], ended)
    assert done["status"] == "FAILED"
    assert done["errorMessage"] == "Something went wrong in the connector."
    got = (await live_client.get(f"/api/v1/connections/{connection['id']}", headers=headers)).json()
    assert got["status"] == "ERROR"


async def test_cancel_cancels_the_airbyte_job(live_client, tenant, fake_airbyte, database_url):
    headers = headers_for(tenant)
    fake_airbyte.job_running_seconds = 60
    connection = await setup_connection(live_client, headers)
    sync = await trigger(live_client, headers, connection["id"])
    job = await job_of(database_url, sync["id"])
    await wait_for(live_client, headers, sync["id"], lambda b: b["status"] == "RUNNING")
    assert (await live_client.post(f"/api/v1/syncs/{sync['id']}/cancel", headers=headers)).status_code == 204
    done = await wait_for(live_client, headers, sync["id"], ended)
    assert done["status"] == "CANCELLED"
    assert fake_airbyte.job_status(job) == "cancelled"
    assert_error_body(await live_client.post(f"/api/v1/syncs/{sync['id']}/cancel", headers=headers), 409)


async def test_second_trigger_is_409_then_runs_again(live_client, tenant, fake_airbyte, database_url):
    headers = headers_for(tenant)
    fake_airbyte.job_running_seconds = 60
    connection = await setup_connection(live_client, headers)
    sync = await trigger(live_client, headers, connection["id"])
    job = await job_of(database_url, sync["id"])
    response = await live_client.post(
        f"/api/v1/syncs/connections/{connection['id']}/trigger", headers=headers
    )
    assert_error_body(response, 409, "already")
    fake_airbyte.finish_job(job)
    assert (await wait_for(live_client, headers, sync["id"], ended))["status"] == "SUCCEEDED"
    fake_airbyte.job_running_seconds = 0.2
    again = await trigger(live_client, headers, connection["id"])
    assert (await wait_for(live_client, headers, again["id"], ended))["status"] == "SUCCEEDED"
    assert await job_of(database_url, again["id"]) != job


async def test_a_job_airbyte_already_runs_is_attached_to(
    live_client, tenant, fake_airbyte, database_url, app_settings
):
    """Airbyte answers 409 (its own schedule or its UI started a job): our sync follows that job."""
    headers = headers_for(tenant)
    fake_airbyte.job_running_seconds = 60
    connection = await setup_connection(live_client, headers)
    remote_id = await connection_remote_id(database_url, connection["id"])
    async with airbyte_ui(app_settings) as ui:
        theirs = await ui.start_sync(str(tenant), remote_id)
    sync = await trigger(live_client, headers, connection["id"])
    assert await job_of(database_url, sync["id"]) == theirs.id
    assert len(fake_airbyte.jobs) == 1  # no second job was started
    fake_airbyte.finish_job(theirs.id)
    assert (await wait_for(live_client, headers, sync["id"], ended))["status"] == "SUCCEEDED"


async def test_a_connection_deleted_in_airbyte_is_recreated_by_the_sync(
    live_client, tenant, fake_airbyte, database_url, app_settings
):
    headers = headers_for(tenant)
    connection = await setup_connection(live_client, headers)
    lost = await connection_remote_id(database_url, connection["id"])
    source_lost = await row(
        database_url, "SELECT external_id FROM sources WHERE id = :id", id=uuid.UUID(connection["sourceId"])
    )
    async with airbyte_ui(app_settings) as ui:
        await ui.delete_source(str(tenant), str(source_lost))  # takes its connections with it, as in Airbyte
    sync = await trigger(live_client, headers, connection["id"])
    done = await wait_for(live_client, headers, sync["id"], ended)
    assert done["status"] == "SUCCEEDED", done
    now = await connection_remote_id(database_url, connection["id"])
    assert now != lost and [c["connectionId"] for c in fake_airbyte.live("connections")] == [now]


async def test_brief_airbyte_trouble_while_polling_is_retried(
    live_client, tenant, fake_airbyte, database_url
):
    headers = headers_for(tenant)
    fake_airbyte.job_running_seconds = 1.0
    connection = await setup_connection(live_client, headers)
    sync = await trigger(live_client, headers, connection["id"])
    await job_of(database_url, sync["id"])
    fake_airbyte.fail_next(2, 503, path=r"/jobs/\d+$", method="GET")
    fake_airbyte.rate_limit_next(1, retry_after=0.1, path=r"/jobs/\d+$", method="GET")
    assert (await wait_for(live_client, headers, sync["id"], ended))["status"] == "SUCCEEDED"


async def test_the_scheduler_leaves_cron_to_airbyte(live_client, tenant, fake_airbyte, database_url):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from ingest.connections.jobs import fire_due_schedules
    from ingest.db.session import create_engine, session_factory
    from ingest.jobs.runtime import Runtime

    headers = headers_for(tenant)
    connection = await setup_connection(live_client, headers, syncSchedule="*/5 * * * *")
    remote = {c["connectionId"]: c for c in fake_airbyte.live("connections")}
    remote_id = await connection_remote_id(database_url, connection["id"])
    assert remote[remote_id]["schedule"] == {"scheduleType": "cron", "cronExpression": "0 */5 * * * ?"}
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE connections SET next_run_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(minutes=1), "id": uuid.UUID(connection["id"])},
        )
    runtime = Runtime(
        settings=app_settings_of(live_client),
        session_maker=session_factory(engine),
        database_url=database_url,
    )
    try:
        assert await fire_due_schedules(runtime) == 0
    finally:
        await runtime.aclose()
        await engine.dispose()
    page = (await live_client.get(f"/api/v1/syncs?connectionId={connection['id']}", headers=headers)).json()
    assert page["totalElements"] == 0


def app_settings_of(client):
    return client.app.state.settings


async def test_runs_airbyte_started_on_its_schedule_join_the_history(
    live_client, tenant, fake_airbyte, database_url, app_settings
):
    from ingest.connections.jobs import mirror_remote_runs
    from ingest.db.session import create_engine, session_factory
    from ingest.jobs.runtime import Runtime

    headers = headers_for(tenant)
    fake_airbyte.job_running_seconds = 60
    connection = await setup_connection(live_client, headers, syncSchedule="0 * * * *")
    remote_id = await connection_remote_id(database_url, connection["id"])
    async with airbyte_ui(app_settings) as airbyte_scheduler:  # Airbyte's cron fires, not us
        theirs = await airbyte_scheduler.start_sync(str(tenant), remote_id)
    engine = create_engine(database_url)
    runtime = Runtime(
        settings=app_settings_of(live_client),
        session_maker=session_factory(engine),
        database_url=database_url,
    )
    try:
        assert await mirror_remote_runs(runtime) == 1
        assert await mirror_remote_runs(runtime) == 0  # once only
    finally:
        await runtime.aclose()
        await engine.dispose()
    page = (await live_client.get(f"/api/v1/syncs?connectionId={connection['id']}", headers=headers)).json()
    assert page["totalElements"] == 1
    mirrored = page["content"][0]
    assert mirrored["trigger"] == "SCHEDULED"
    assert mirrored["status"] in {"PENDING", "RUNNING"}
    assert await job_of(database_url, mirrored["id"]) == theirs.id
    fake_airbyte.finish_job(theirs.id)  # the durable job follows it to its end
    assert (await wait_for(live_client, headers, mirrored["id"], ended))["status"] == "SUCCEEDED"
