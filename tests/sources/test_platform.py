"""Sources on the airbyte engine only: the workspace, the remote copy, drift repair, Airbyte failures."""

import uuid

import pytest
from sqlalchemy import text

from tests.conftest import assert_error_body, build_app, headers_for
from tests.platform_helpers import airbyte_ui, external_id

pytestmark = pytest.mark.engines("airbyte")

FAKER = {"name": "sample", "connectorType": "faker", "connectionConfig": {"count": 50, "seed": 7}}


async def create(client, headers, body=FAKER) -> dict:
    response = await client.post("/api/v1/sources", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def live_sources(fake, tenant) -> list[dict]:
    workspaces = [w for w in fake.live("workspaces") if w["name"] == f"ingest-{tenant}"]
    assert len(workspaces) <= 1, workspaces
    return fake.live("sources", workspaces[0]["workspaceId"]) if workspaces else []


async def test_create_makes_the_remote_copy_and_saves_the_workspace(
    client, headers, tenant, fake_airbyte, rollback_session_maker, app_settings, database_url
):
    created = await create(client, headers)
    remote = live_sources(fake_airbyte, tenant)
    assert [s["sourceId"] for s in remote] == [
        await external_id(rollback_session_maker, "sources", created["id"])
    ]
    assert remote[0]["configuration"] == {"count": 50, "seed": 7}
    async with rollback_session_maker() as session:
        saved = (
            await session.execute(
                text("SELECT airbyte_workspace_id FROM tenants WHERE id = :t"), {"t": tenant}
            )
        ).scalar_one()
    assert saved == remote[0]["workspaceId"]

    # a restarted service (a new engine, empty caches) takes the workspace from our table, not a lookup
    from litestar.testing import AsyncTestClient

    app = build_app(
        app_settings, database_url, session_maker=rollback_session_maker, run_worker_in_process=False
    )
    fake_airbyte.requests.clear()
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as restarted:
        await create(restarted, headers, {**FAKER, "name": "second"})
    # one workspace listing: the shared `ingest-system` one (for the spec); the tenant's came from our table
    assert fake_airbyte.requests.count(("GET", "/api/public/v1/workspaces", 200)) == 1
    assert len(live_sources(fake_airbyte, tenant)) == 2


async def test_a_source_deleted_in_airbyte_is_recreated_by_test_discover_and_update(
    client, headers, tenant, fake_airbyte, rollback_session_maker, app_settings
):
    created = await create(client, headers)
    url = f"/api/v1/sources/{created['id']}"

    async def delete_remotely() -> str:
        remote_id = await external_id(rollback_session_maker, "sources", created["id"])
        async with airbyte_ui(app_settings) as ui:
            await ui.delete_source(str(tenant), remote_id)
        assert live_sources(fake_airbyte, tenant) == []
        return remote_id

    lost = await delete_remotely()
    tested = await client.post(f"{url}/test", headers=headers)
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "ACTIVE"
    now = await external_id(rollback_session_maker, "sources", created["id"])
    assert now != lost and [s["sourceId"] for s in live_sources(fake_airbyte, tenant)] == [now]

    await delete_remotely()
    discovered = await client.post(f"{url}/discover", headers=headers)
    assert discovered.status_code == 200, discovered.text
    assert {s["name"] for s in discovered.json()["streams"]} == {"users", "products", "purchases"}

    await delete_remotely()
    changed = {"count": 60, "seed": 7}
    updated = await client.put(url, json={"connectionConfig": changed}, headers=headers)
    assert updated.status_code == 200, updated.text
    [remote] = live_sources(fake_airbyte, tenant)
    assert remote["configuration"] == changed  # re-created with the new config


async def test_update_and_delete_reach_airbyte(client, headers, tenant, fake_airbyte):
    created = await create(client, headers)
    url = f"/api/v1/sources/{created['id']}"
    renamed = await client.put(
        url, json={"name": "renamed", "connectionConfig": {"count": 9}}, headers=headers
    )
    assert renamed.status_code == 200, renamed.text
    [remote] = live_sources(fake_airbyte, tenant)
    assert (remote["name"], remote["configuration"]) == ("renamed", {"count": 9})
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert live_sources(fake_airbyte, tenant) == []


async def test_deleting_a_source_already_gone_in_airbyte_works(
    client, headers, tenant, rollback_session_maker, app_settings
):
    created = await create(client, headers)
    async with airbyte_ui(app_settings) as ui:
        await ui.delete_source(
            str(tenant), await external_id(rollback_session_maker, "sources", created["id"])
        )
    assert (await client.delete(f"/api/v1/sources/{created['id']}", headers=headers)).status_code == 204


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"kind": "fail", "n": 100, "status": 503}, 503),  # unavailable after every retry
        ({"kind": "fail", "n": 100, "status": 500, "path": r"/public/v1/sources$", "method": "POST"}, 502),
        ({"kind": "hang", "path": "source_definition_specifications", "seconds": 3}, 504),
    ],
    ids=["unavailable", "failing", "slow"],
)
async def test_airbyte_trouble_answers_5xx_and_creates_nothing(
    client, headers, tenant, fake_airbyte, fault, status
):
    if fault["kind"] == "fail":
        fake_airbyte.fail_next(
            fault["n"], fault["status"], path=fault.get("path"), method=fault.get("method")
        )
    else:
        fake_airbyte.hang(fault["path"], seconds=fault["seconds"])
    response = await client.post("/api/v1/sources", json=FAKER, headers=headers)
    error = assert_error_body(response, status, "airbyte")
    assert "fake-secret" not in error["message"]
    fake_airbyte.clear_faults()
    assert (await client.get("/api/v1/sources", headers=headers)).json() == []
    assert live_sources(fake_airbyte, tenant) == []
    # and once Airbyte is back the same request works
    await create(client, headers)


async def test_check_while_airbyte_is_down_is_503_and_keeps_the_status(client, headers, fake_airbyte):
    created = await create(client, headers)
    fake_airbyte.fail_next(100, 503)
    assert_error_body(await client.post(f"/api/v1/sources/{created['id']}/test", headers=headers), 503)
    fake_airbyte.clear_faults()
    after = (await client.get(f"/api/v1/sources/{created['id']}", headers=headers)).json()
    assert (after["status"], after["lastTestedAt"]) == ("INACTIVE", None)


async def test_failing_remote_check_sets_error(client, headers):
    body = {
        "name": "pg",
        "connectorType": "postgres",
        "connectionConfig": {"host": "unreachable-db", "port": 5432, "database": "d", "username": "u"},
    }
    created = await create(client, headers, body)
    tested = (await client.post(f"/api/v1/sources/{created['id']}/test", headers=headers)).json()
    assert tested["status"] == "ERROR"
    assert "connect" in tested["statusMessage"].lower()


async def test_another_tenant_gets_its_own_workspace(client, headers, tenant, fake_airbyte):
    await create(client, headers)
    other = uuid.uuid4()
    await create(client, headers_for(other))
    names = sorted(w["name"] for w in fake_airbyte.live("workspaces") if w["name"] != "ingest-system")
    assert names == sorted([f"ingest-{tenant}", f"ingest-{other}"])
    assert len(live_sources(fake_airbyte, tenant)) == len(live_sources(fake_airbyte, other)) == 1
