"""Connections API: validation against the source's catalog, cron, modes, tenancy."""

import uuid

import pytest

from tests.conftest import READ, assert_error_body, headers_for

FAKER = {
    "name": "shop",
    "connectorType": "faker",
    "connectionConfig": {"count": 20, "seed": 1, "parallelism": 1},
}


async def make_source(client, headers, body=FAKER) -> str:
    response = await client.post("/api/v1/sources", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def make_connection(client, headers, source_id, **fields) -> dict:
    body = {"sourceId": source_id, "name": "nightly", **fields}
    response = await client.post("/api/v1/connections", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_get_list_update_delete(client, headers):
    source_id = await make_source(client, headers)
    created = await make_connection(
        client,
        headers,
        source_id,
        syncSchedule="0 0 * * *",
        selectedStreams=["users", "purchases"],
        syncMode="INCREMENTAL",
    )
    assert created["status"] == "PENDING"
    assert created["sourceName"] == "shop"
    assert created["destinationType"] == "iceberg"
    assert created["syncMode"] == "INCREMENTAL"
    assert created["syncSchedule"] == "0 0 * * *"
    assert created["lastSyncAt"] is None
    assert created["selectedStreams"] == ["users", "purchases"]
    assert created["nextRunAt"].endswith(("00:00:00Z", "00:00:00+00:00"))

    url = f"/api/v1/connections/{created['id']}"
    assert (await client.get(url, headers=headers)).json() == created
    assert [c["id"] for c in (await client.get("/api/v1/connections", headers=headers)).json()] == [
        created["id"]
    ]

    updated = await client.put(
        url, json={"sourceId": source_id, "name": "hourly", "syncSchedule": "15 * * * *"}, headers=headers
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["name"], body["syncMode"], body["selectedStreams"]) == ("hourly", "FULL_REFRESH", None)

    # the source cannot go while the connection uses it
    assert_error_body(await client.delete(f"/api/v1/sources/{source_id}", headers=headers), 409, "connection")
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert_error_body(await client.get(url, headers=headers), 404)
    assert (await client.delete(f"/api/v1/sources/{source_id}", headers=headers)).status_code == 204


async def test_defaults(client, headers):
    created = await make_connection(client, headers, await make_source(client, headers))
    assert (created["syncMode"], created["destinationType"], created["syncSchedule"]) == (
        "FULL_REFRESH",
        "iceberg",
        None,
    )
    assert created["nextRunAt"] is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"selectedStreams": ["users", "nope"]}, "nope"),
        ({"selectedStreams": []}, "at least one"),
        pytest.param({"syncMode": "CDC"}, "airbyte engine", marks=pytest.mark.engines("embedded")),
        ({"syncMode": "SOMETIMES"}, "syncMode"),
        ({"destinationType": "snowflake"}, "destinationType"),
        ({"syncSchedule": "0 0 * *"}, "5 fields"),
        ({"syncSchedule": "61 * * * *"}, "not a valid cron"),
        ({"syncSchedule": "0 0 * * * *"}, "5 fields"),
        ({"namespace": "bad-name"}, "namespace"),
        ({"sourceId": "not-a-uuid"}, "UUID"),
    ],
)
async def test_invalid_connections_are_400(client, headers, fields, message):
    source_id = await make_source(client, headers)
    body = {"sourceId": source_id, "name": "c", **fields}
    assert_error_body(await client.post("/api/v1/connections", json=body, headers=headers), 400, message)


async def test_unsupported_sync_mode_names_the_stream(client, headers, rollback_session_maker):
    from sqlalchemy import text

    source_id = await make_source(client, headers)
    await client.post(f"/api/v1/sources/{source_id}/discover", headers=headers)
    async with rollback_session_maker() as session:  # a catalog whose products stream is full refresh only
        await session.execute(
            text(
                "UPDATE sources SET catalog = (SELECT jsonb_agg(CASE WHEN s->>'name' = 'products' "
                "THEN jsonb_set(s, '{supported_sync_modes}', '[\"FULL_REFRESH\"]') ELSE s END) "
                "FROM jsonb_array_elements(catalog) s) WHERE id = :id"
            ),
            {"id": uuid.UUID(source_id)},
        )
        await session.commit()
    body = {"sourceId": source_id, "name": "c", "syncMode": "INCREMENTAL"}
    assert_error_body(await client.post("/api/v1/connections", json=body, headers=headers), 400, "products")


async def test_duplicate_name_is_409(client, headers):
    source_id = await make_source(client, headers)
    await make_connection(client, headers, source_id)
    body = {"sourceId": source_id, "name": "nightly"}
    assert_error_body(await client.post("/api/v1/connections", json=body, headers=headers), 409)


async def test_other_tenants_source_in_body_is_404(client, headers):
    source_id = await make_source(client, headers)
    other = headers_for(uuid.uuid4())
    body = {"sourceId": source_id, "name": "stolen"}
    assert_error_body(await client.post("/api/v1/connections", json=body, headers=other), 404)
    mine = await make_connection(client, headers, source_id)
    # and an update cannot point my connection at someone else's source either
    their_source = await make_source(client, other, {**FAKER, "name": "theirs"})
    response = await client.put(
        f"/api/v1/connections/{mine['id']}", json={"sourceId": their_source, "name": "x"}, headers=headers
    )
    assert_error_body(response, 404)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
async def test_other_tenants_connection_is_404(client, headers, method):
    source_id = await make_source(client, headers)
    created = await make_connection(client, headers, source_id)
    other = headers_for(uuid.uuid4())
    kwargs = {"json": {"sourceId": source_id, "name": "x"}} if method == "put" else {}
    response = await getattr(client, method)(f"/api/v1/connections/{created['id']}", headers=other, **kwargs)
    assert_error_body(response, 404)
    assert (await client.get(f"/api/v1/connections/{created['id']}", headers=headers)).json()[
        "name"
    ] == "nightly"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/connections"),
        ("put", "/api/v1/connections/{id}"),
        ("delete", "/api/v1/connections/{id}"),
    ],
)
async def test_mutating_routes_need_token_permission_and_tenant(client, tenant, method, path):
    url = path.format(id=uuid.uuid4())
    kwargs = {"json": {"sourceId": str(uuid.uuid4()), "name": "x"}} if method != "delete" else {}
    assert_error_body(await getattr(client, method)(url, **kwargs), 401)
    assert_error_body(await getattr(client, method)(url, headers=headers_for(tenant, READ), **kwargs), 403)
    no_tenant = {"Authorization": headers_for(tenant)["Authorization"]}
    assert_error_body(await getattr(client, method)(url, headers=no_tenant, **kwargs), 400)
