"""Connections on the airbyte engine only: the remote copy (Quartz cron, namespace), drift, Airbyte failures."""

import pytest

from ingest.iceberg.catalog import tenant_namespace
from tests.conftest import assert_error_body
from tests.platform_helpers import airbyte_ui, external_id

pytestmark = pytest.mark.engines("airbyte")

FAKER = {"name": "shop", "connectorType": "faker", "connectionConfig": {"count": 20, "seed": 1}}


async def make_source(client, headers, name="shop") -> str:
    response = await client.post("/api/v1/sources", json={**FAKER, "name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def make_connection(client, headers, source_id, **fields) -> dict:
    body = {"sourceId": source_id, "name": "nightly", **fields}
    response = await client.post("/api/v1/connections", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def remote_connections(fake) -> dict[str, dict]:
    return {c["connectionId"]: c for c in fake.live("connections")}


async def test_create_update_delete_keep_the_remote_copy_in_step(
    client, headers, tenant, fake_airbyte, rollback_session_maker
):
    source_id = await make_source(client, headers)
    created = await make_connection(
        client,
        headers,
        source_id,
        syncSchedule="15 2 * * 1-5",
        selectedStreams=["users"],
        syncMode="INCREMENTAL",
    )
    remote_id = await external_id(rollback_session_maker, "connections", created["id"])
    remote = remote_connections(fake_airbyte)[remote_id]
    assert remote["sourceId"] == await external_id(rollback_session_maker, "sources", source_id)
    assert remote["schedule"] == {"scheduleType": "cron", "cronExpression": "0 15 2 ? * MON-FRI"}
    assert remote["namespaceDefinition"] == "custom_format"
    assert remote["namespaceFormat"] == tenant_namespace(tenant, None)[0]
    assert [(s["name"], s["syncMode"]) for s in remote["configurations"]["streams"]] == [
        ("users", "incremental_deduped_history")
    ]

    url = f"/api/v1/connections/{created['id']}"
    updated = await client.put(url, json={"sourceId": source_id, "name": "manual"}, headers=headers)
    assert updated.status_code == 200, updated.text
    remote = remote_connections(fake_airbyte)[remote_id]
    assert (remote["name"], remote["schedule"]["scheduleType"]) == ("manual", "manual")
    assert {s["name"] for s in remote["configurations"]["streams"]} == {"users", "products", "purchases"}

    # Airbyte cannot move a connection to another source: the copy is replaced
    other_source = await make_source(client, headers, "other")
    moved = await client.put(url, json={"sourceId": other_source, "name": "manual"}, headers=headers)
    assert moved.status_code == 200, moved.text
    new_remote_id = await external_id(rollback_session_maker, "connections", created["id"])
    assert list(remote_connections(fake_airbyte)) == [new_remote_id] != [remote_id]
    assert remote_connections(fake_airbyte)[new_remote_id]["sourceId"] == await external_id(
        rollback_session_maker, "sources", other_source
    )

    assert (await client.delete(url, headers=headers)).status_code == 204
    assert remote_connections(fake_airbyte) == {}


async def test_a_connection_deleted_in_airbyte_is_recreated_on_update(
    client, headers, tenant, fake_airbyte, rollback_session_maker, app_settings
):
    source_id = await make_source(client, headers)
    created = await make_connection(client, headers, source_id)
    lost = await external_id(rollback_session_maker, "connections", created["id"])
    async with airbyte_ui(app_settings) as ui:
        await ui.delete_connection(str(tenant), lost)
    body = {"sourceId": source_id, "name": "nightly", "syncSchedule": "0 0 * * *"}
    updated = await client.put(f"/api/v1/connections/{created['id']}", json=body, headers=headers)
    assert updated.status_code == 200, updated.text
    now = await external_id(rollback_session_maker, "connections", created["id"])
    assert now != lost
    assert remote_connections(fake_airbyte)[now]["schedule"]["cronExpression"] == "0 0 0 * * ?"


async def test_a_source_deleted_in_airbyte_is_recreated_for_a_new_connection(
    client, headers, tenant, fake_airbyte, rollback_session_maker, app_settings
):
    source_id = await make_source(client, headers)
    lost = await external_id(rollback_session_maker, "sources", source_id)
    async with airbyte_ui(app_settings) as ui:
        await ui.delete_source(str(tenant), lost)
    created = await make_connection(client, headers, source_id)
    source_now = await external_id(rollback_session_maker, "sources", source_id)
    assert source_now != lost
    remote = remote_connections(fake_airbyte)[
        await external_id(rollback_session_maker, "connections", created["id"])
    ]
    assert remote["sourceId"] == source_now


async def test_airbyte_down_on_create_answers_503_and_leaves_nothing(client, headers, fake_airbyte):
    source_id = await make_source(client, headers)
    await client.post(f"/api/v1/sources/{source_id}/discover", headers=headers)  # the catalog is ours now
    fake_airbyte.fail_next(100, 503, path=r"/connections$", method="POST")
    response = await client.post(
        "/api/v1/connections", json={"sourceId": source_id, "name": "c"}, headers=headers
    )
    assert_error_body(response, 503, "airbyte")
    fake_airbyte.clear_faults()
    assert (await client.get("/api/v1/connections", headers=headers)).json() == []
    assert remote_connections(fake_airbyte) == {}
    # the name is free again and the create works once Airbyte is back
    await make_connection(client, headers, source_id, name="c")


async def test_airbyte_down_on_delete_keeps_the_connection(client, headers, fake_airbyte):
    created = await make_connection(client, headers, await make_source(client, headers))
    fake_airbyte.fail_next(100, 503)
    assert_error_body(await client.delete(f"/api/v1/connections/{created['id']}", headers=headers), 503)
    fake_airbyte.clear_faults()
    assert (await client.get(f"/api/v1/connections/{created['id']}", headers=headers)).status_code == 200
    assert len(remote_connections(fake_airbyte)) == 1
