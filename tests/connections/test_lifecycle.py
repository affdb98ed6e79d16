"""Pause, resume, source-level pause/resume/sync and auto-disable, on both engines where Airbyte is involved.

The scheduler is ticked by calling `fire_due_schedules(runtime, now=...)` with a chosen `now` (what the
periodic job does every minute), on the test's rolled-back transaction: minutes pass in microseconds.
"""

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks.webhooks import Webhook as Verifier

from ingest.connections.jobs import fire_due_schedules
from ingest.db.session import sqlalchemy_url
from ingest.jobs.runtime import Runtime
from tests.conftest import READ, assert_error_body, build_app, headers_for
from tests.platform_helpers import external_id, row
from tests.webhooks.receiver import receiver

FAKER = {"connectorType": "faker", "connectionConfig": {"count": 5, "seed": 1, "parallelism": 1}}


async def make_source(client, headers, name="shop") -> str:
    response = await client.post("/api/v1/sources", json={**FAKER, "name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def make_connection(client, headers, source_id, name="every-minute", **fields) -> dict:
    body = {"sourceId": source_id, "name": name, "selectedStreams": ["products"], **fields}
    response = await client.post("/api/v1/connections", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def syncs_of(client, headers, connection_id: str) -> list[dict]:
    page = await client.get(f"/api/v1/syncs?connectionId={connection_id}&size=200", headers=headers)
    assert page.status_code == 200, page.text
    return list(page.json()["content"])


@pytest.fixture
async def runtime(app_settings, rollback_session_maker, database_url) -> AsyncIterator[Runtime]:
    """A runtime on the test's rolled-back transaction (the scheduler and sync runs see the API's rows)."""
    runtime = Runtime(settings=app_settings, session_maker=rollback_session_maker, database_url=database_url)
    yield runtime
    await runtime.aclose()


def remote_status(fake, remote_id: str) -> str:
    return str({c["connectionId"]: c for c in fake.live("connections")}[remote_id]["status"])


@pytest.mark.engines("embedded")
async def test_pause_stops_the_scheduler_and_resume_restarts_it_from_now(client, headers, runtime):
    connection = await make_connection(
        client, headers, await make_source(client, headers), syncSchedule="* * * * *"
    )
    url = f"/api/v1/connections/{connection['id']}"
    assert connection["nextRunAt"]
    now = datetime.now(UTC)
    await fire_due_schedules(runtime, now + timedelta(minutes=1))
    assert len(await syncs_of(client, headers, connection["id"])) == 1  # the schedule runs
    ended = await client.post(
        f"/api/v1/syncs/{(await syncs_of(client, headers, connection['id']))[0]['id']}/cancel",
        headers=headers,
    )
    assert ended.status_code == 204

    paused = await client.post(f"{url}/pause", headers=headers)
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert (body["status"], body["nextRunAt"], body["statusReason"]) == ("PAUSED", None, "Paused")
    assert body["pausedAt"]
    for minutes in (2, 3, 10, 60 * 24):  # a day of ticks: not one scheduled run while paused
        await fire_due_schedules(runtime, now + timedelta(minutes=minutes))
    assert len(await syncs_of(client, headers, connection["id"])) == 1
    # an update while paused keeps it paused and unscheduled
    put = await client.put(
        url,
        json={"sourceId": connection["sourceId"], "name": "renamed", "syncSchedule": "*/2 * * * *"},
        headers=headers,
    )
    assert (put.json()["status"], put.json()["nextRunAt"]) == ("PAUSED", None)
    await fire_due_schedules(runtime, now + timedelta(days=2))
    assert len(await syncs_of(client, headers, connection["id"])) == 1

    resumed = await client.post(f"{url}/resume", headers=headers)
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert body["status"] == "PENDING" and body["statusReason"] is None and body["pausedAt"] is None
    next_run = datetime.fromisoformat(body["nextRunAt"].replace("Z", "+00:00"))
    resumed_at = datetime.now(UTC)
    assert resumed_at < next_run <= resumed_at + timedelta(minutes=2)  # from now: missed runs not replayed
    await fire_due_schedules(runtime, next_run + timedelta(seconds=1))
    runs = await syncs_of(client, headers, connection["id"])
    assert (len(runs) == 2 and runs[0]["trigger"] == "SCHEDULED") or runs[1]["trigger"] == "SCHEDULED"


async def test_trigger_on_a_paused_connection_is_409(
    client, headers, engine_name, fake_airbyte, rollback_session_maker
):
    connection = await make_connection(
        client, headers, await make_source(client, headers), syncSchedule="0 * * * *"
    )
    url = f"/api/v1/connections/{connection['id']}"
    assert (await client.post(f"{url}/pause", headers=headers)).status_code == 200
    # pausing twice is harmless
    again = await client.post(f"{url}/pause", headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "PAUSED"
    trigger = f"/api/v1/syncs/connections/{connection['id']}/trigger"
    assert_error_body(await client.post(trigger, headers=headers), 409, "paused")
    assert (await client.get(url, headers=headers)).json()["status"] == "PAUSED"
    if engine_name == "airbyte":
        remote_id = await external_id(rollback_session_maker, "connections", connection["id"])
        assert remote_status(fake_airbyte, remote_id) == "inactive"
        # an update of a paused connection keeps Airbyte's copy inactive
        put = await client.put(
            url,
            json={"sourceId": connection["sourceId"], "name": "renamed", "syncSchedule": "0 3 * * *"},
            headers=headers,
        )
        assert put.status_code == 200, put.text
        assert remote_status(fake_airbyte, remote_id) == "inactive"
    assert (await client.post(f"{url}/resume", headers=headers)).status_code == 200
    if engine_name == "airbyte":
        assert remote_status(fake_airbyte, remote_id) == "active"
    started = await client.post(trigger, headers=headers)
    assert started.status_code == 202, started.text


async def test_source_pause_resume_and_sync(
    client, headers, engine_name, fake_airbyte, rollback_session_maker
):
    source_id = await make_source(client, headers)
    other_source = await make_source(client, headers, name="other")
    first = await make_connection(client, headers, source_id, name="first", syncSchedule="0 * * * *")
    second = await make_connection(client, headers, source_id, name="second")
    untouched = await make_connection(client, headers, other_source, name="untouched")

    paused = await client.post(f"/api/v1/sources/{source_id}/pause", headers=headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["sourceId"] == source_id
    assert {c["name"]: c["status"] for c in paused.json()["connections"]} == {
        "first": "PAUSED",
        "second": "PAUSED",
    }
    assert (await client.get(f"/api/v1/connections/{untouched['id']}", headers=headers)).json()[
        "status"
    ] == "PENDING"
    if engine_name == "airbyte":
        for connection in (first, second):
            remote_id = await external_id(rollback_session_maker, "connections", connection["id"])
            assert remote_status(fake_airbyte, remote_id) == "inactive"

    sync = await client.post(f"/api/v1/sources/{source_id}/sync", headers=headers)
    assert sync.status_code == 202, sync.text
    assert sync.json()["started"] == []
    assert {(s["connectionName"], s["reason"]) for s in sync.json()["skipped"]} == {
        ("first", "PAUSED"),
        ("second", "PAUSED"),
    }

    resumed = await client.post(f"/api/v1/sources/{source_id}/resume", headers=headers)
    assert resumed.status_code == 200, resumed.text
    by_name = {c["name"]: c for c in resumed.json()["connections"]}
    assert by_name["first"]["status"] == "PENDING" and by_name["first"]["nextRunAt"]
    assert by_name["second"]["nextRunAt"] is None
    if engine_name == "airbyte":
        remote_id = await external_id(rollback_session_maker, "connections", first["id"])
        assert remote_status(fake_airbyte, remote_id) == "active"

    # one of them is already running: it is reported, not failed, and the other one starts
    busy = await client.post(f"/api/v1/syncs/connections/{first['id']}/trigger", headers=headers)
    assert busy.status_code == 202
    sync = await client.post(f"/api/v1/sources/{source_id}/sync", headers=headers)
    assert sync.status_code == 202, sync.text
    body = sync.json()
    assert [(s["connectionName"], s["status"], s["trigger"]) for s in body["started"]] == [
        ("second", "PENDING", "MANUAL")
    ]
    assert body["skipped"] == [
        {
            "connectionId": first["id"],
            "connectionName": "first",
            "reason": "ALREADY_RUNNING",
            "syncId": busy.json()["id"],
        }
    ]
    assert await syncs_of(client, headers, untouched["id"]) == []


async def test_auto_disable_after_consecutive_failures(
    app_settings, database_url, tenant, engine_name, fake_airbyte
):
    """With INGEST_DISABLE_AFTER_FAILURES=3, the third failed sync in a row pauses the connection.

    Real runs through the in-process worker. The failure: on airbyte the Airbyte job fails; on embedded
    the connection's stream has vanished from the source's stored catalog (the run fails before the
    connector starts, which keeps this test fast; the connector-failure path is in tests/syncs).
    """
    settings = dataclasses.replace(
        app_settings,
        disable_after_failures=3,
        failure_warning_after=2,
        webhook_allow_private=True,
        webhook_allow_http=True,
    )
    headers = headers_for(tenant)
    app = build_app(settings, database_url, run_worker_in_process=True)
    with receiver() as hook:
        async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=60) as client:
            webhook = await client.post(
                "/api/v1/webhooks",
                json={
                    "url": hook.url,
                    "events": ["sync.failed", "connection.failure_warning", "connection.paused"],
                },
                headers=headers,
            )
            assert webhook.status_code == 201, webhook.text
            await check_auto_disable(client, headers, engine_name, fake_airbyte, database_url)
            got = await asyncio.to_thread(hook.wait_for, 5, 60)  # delivered by the app's worker
    # the events of the change, in the order they happened (one webhook's deliveries go out in order)
    verifier = Verifier(webhook.json()["secret"])
    events = [verifier.verify(r.body, r.headers) for r in got]
    assert [e["type"] for e in events] == [
        "sync.failed",
        "sync.failed",
        "connection.failure_warning",
        "sync.failed",
        "connection.paused",
    ]
    assert events[2]["data"]["consecutiveFailures"] == 2
    assert (events[4]["data"]["automatic"], events[4]["data"]["status"]) == (True, "PAUSED")


async def check_auto_disable(client, headers, engine_name, fake_airbyte, database_url) -> None:
    """The three failed runs, the 409 after, the audit event, and a resume that resets the count."""
    connection = await make_connection(client, headers, await make_source(client, headers))
    url = f"/api/v1/connections/{connection['id']}"
    if engine_name == "airbyte":
        fake_airbyte.job_result = "failed"
    else:
        await execute(
            database_url,
            "UPDATE sources SET catalog = (SELECT jsonb_agg(s) FROM jsonb_array_elements(catalog) s "
            "WHERE s->>'name' <> 'products') WHERE id = :id",
            id=uuid.UUID(connection["sourceId"]),
        )

    async def failed_run() -> dict:
        sync = await client.post(f"/api/v1/syncs/connections/{connection['id']}/trigger", headers=headers)
        assert sync.status_code == 202, sync.text
        ended = await wait_ended(client, headers, sync.json()["id"])
        assert ended["status"] == "FAILED", ended
        return dict((await client.get(url, headers=headers)).json())

    assert (await failed_run())["consecutiveFailures"] == 1
    after_two = await failed_run()
    assert (after_two["status"], after_two["consecutiveFailures"]) == ("ERROR", 2)
    disabled = await failed_run()
    assert disabled["status"] == "PAUSED"
    assert disabled["statusReason"].startswith("Disabled after 3 consecutive failed syncs")
    assert_error_body(
        await client.post(f"/api/v1/syncs/connections/{connection['id']}/trigger", headers=headers),
        409,
        "paused",
    )
    if engine_name == "airbyte":
        remote_id = await row(
            database_url,
            "SELECT external_id FROM connections WHERE id = :id",
            id=uuid.UUID(connection["id"]),
        )
        assert remote_status(fake_airbyte, remote_id) == "inactive"
    audit = (await client.get("/api/v1/audit-events?action=connection.disable", headers=headers)).json()
    assert [(e["actor"], e["targetId"]) for e in audit["content"]] == [("system", connection["id"])]
    # resume starts the count again
    resumed = (await client.post(f"{url}/resume", headers=headers)).json()
    assert (resumed["status"], resumed["consecutiveFailures"]) == ("ERROR", 0)


async def wait_ended(client, headers, sync_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = (await client.get(f"/api/v1/syncs/{sync_id}", headers=headers)).json()
        if body["status"] in {"SUCCEEDED", "FAILED", "CANCELLED"}:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"sync never ended: {body}")


async def execute(database_url: str, sql: str, **params) -> None:
    engine = create_async_engine(sqlalchemy_url(database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params)
    finally:
        await engine.dispose()


@pytest.mark.engines("embedded")  # tenancy is checked before any engine call
async def test_other_tenants_ids_are_404(client, headers):
    source_id = await make_source(client, headers)
    connection = await make_connection(client, headers, source_id)
    other = headers_for(uuid.uuid4())
    for path in (
        f"/api/v1/connections/{connection['id']}/pause",
        f"/api/v1/connections/{connection['id']}/resume",
        f"/api/v1/sources/{source_id}/pause",
        f"/api/v1/sources/{source_id}/resume",
        f"/api/v1/sources/{source_id}/sync",
    ):
        assert_error_body(await client.post(path, headers=other), 404)
    assert (await client.get(f"/api/v1/connections/{connection['id']}", headers=headers)).json()[
        "status"
    ] == "PENDING"
    assert await syncs_of(client, headers, connection["id"]) == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/connections/{id}/pause",
        "/api/v1/connections/{id}/resume",
        "/api/v1/sources/{id}/pause",
        "/api/v1/sources/{id}/resume",
        "/api/v1/sources/{id}/sync",
    ],
)
@pytest.mark.engines("embedded")
async def test_lifecycle_routes_need_token_permission_and_tenant(client, tenant, path):
    url = path.format(id=uuid.uuid4())
    assert_error_body(await client.post(url), 401)
    assert_error_body(await client.post(url, headers=headers_for(tenant, READ)), 403)
    no_tenant = {"Authorization": headers_for(tenant)["Authorization"]}
    assert_error_body(await client.post(url, headers=no_tenant), 400)
