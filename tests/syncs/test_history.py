"""Sync history paging, sorting and filtering; cross-tenant answers for every sync route."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import READ, assert_error_body, headers_for


async def seed_syncs(client, headers, session_maker, tenant, count: int) -> tuple[str, list[str]]:
    source = await client.post(
        "/api/v1/sources",
        json={"name": "s", "connectorType": "faker", "connectionConfig": {"count": 5}},
        headers=headers,
    )
    connection = await client.post(
        "/api/v1/connections", json={"sourceId": source.json()["id"], "name": "c"}, headers=headers
    )
    connection_id = connection.json()["id"]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    async with session_maker() as session:
        for i in range(count):
            sync_id = uuid.uuid4()
            ids.append(str(sync_id))
            await session.execute(
                text(
                    "INSERT INTO syncs (id, tenant_id, connection_id, status, trigger, records_synced, started_at, "
                    "completed_at, duration_ms, cancel_requested, attempts) VALUES (:id, :t, :c, 'SUCCEEDED', "
                    "'MANUAL', :r, :s, :e, 1000, false, 1)"
                ),
                {
                    "id": sync_id,
                    "t": tenant,
                    "c": uuid.UUID(connection_id),
                    "r": 100 * (count - i),
                    "s": base + timedelta(hours=i),
                    "e": base + timedelta(hours=i, seconds=1),
                },
            )
        await session.commit()
    return connection_id, ids


async def test_paging_and_sorting(client, headers, tenant, rollback_session_maker):
    connection_id, ids = await seed_syncs(client, headers, rollback_session_maker, tenant, 7)
    first = (await client.get("/api/v1/syncs?page=0&size=3", headers=headers)).json()
    assert (first["totalElements"], first["totalPages"], first["number"], first["size"]) == (7, 3, 0, 3)
    assert [s["id"] for s in first["content"]] == ids[::-1][:3]  # default: startedAt, newest first
    last = (await client.get("/api/v1/syncs?page=2&size=3", headers=headers)).json()
    assert [s["id"] for s in last["content"]] == [ids[0]]
    beyond = (await client.get("/api/v1/syncs?page=5&size=3", headers=headers)).json()
    assert beyond["content"] == [] and beyond["totalElements"] == 7

    ascending = (await client.get("/api/v1/syncs?sort=startedAt,asc&size=20", headers=headers)).json()
    assert [s["id"] for s in ascending["content"]] == ids
    by_records = (await client.get("/api/v1/syncs?sort=recordsSynced,asc", headers=headers)).json()
    records = [s["recordsSynced"] for s in by_records["content"]]
    assert records == sorted(records)

    filtered = (await client.get(f"/api/v1/syncs?connectionId={connection_id}", headers=headers)).json()
    assert filtered["totalElements"] == 7
    row = filtered["content"][0]
    assert set(row) >= {
        "id",
        "connectionId",
        "connectionName",
        "status",
        "recordsSynced",
        "bytesSynced",
        "startedAt",
        "completedAt",
        "durationMs",
    }
    assert row["connectionName"] == "c"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=nope,asc", "query field 'sort'"),
        ("sort=startedAt,sideways", "query field 'sort'"),
        ("size=0", "size"),
        ("size=1000", "size"),
        ("page=-1", "page"),
        ("connectionId=abc", "UUID"),
    ],
)
async def test_bad_paging_is_400(client, headers, query, message):
    assert_error_body(await client.get(f"/api/v1/syncs?{query}", headers=headers), 400, message)


async def test_other_tenant_sees_none_of_it(client, headers, tenant, rollback_session_maker):
    connection_id, ids = await seed_syncs(client, headers, rollback_session_maker, tenant, 2)
    other = headers_for(uuid.uuid4())
    assert_error_body(await client.get(f"/api/v1/syncs/{ids[0]}", headers=other), 404)
    assert_error_body(await client.post(f"/api/v1/syncs/{ids[0]}/cancel", headers=other), 404)
    assert_error_body(await client.get(f"/api/v1/syncs?connectionId={connection_id}", headers=other), 404)
    assert_error_body(
        await client.post(f"/api/v1/syncs/connections/{connection_id}/trigger", headers=other), 404
    )
    assert (await client.get("/api/v1/syncs", headers=other)).json()["totalElements"] == 0
    assert_error_body(await client.get(f"/api/v1/syncs?connectionId={uuid.uuid4()}", headers=headers), 404)


async def test_cancel_of_a_finished_sync_is_409(client, headers, tenant, rollback_session_maker):
    _, ids = await seed_syncs(client, headers, rollback_session_maker, tenant, 1)
    assert_error_body(await client.post(f"/api/v1/syncs/{ids[0]}/cancel", headers=headers), 409, "SUCCEEDED")


async def test_pending_sync_cancels_at_once(client, headers):
    source = await client.post(
        "/api/v1/sources",
        json={"name": "s", "connectorType": "faker", "connectionConfig": {"count": 5}},
        headers=headers,
    )
    connection = await client.post(
        "/api/v1/connections", json={"sourceId": source.json()["id"], "name": "c"}, headers=headers
    )
    trigger = await client.post(
        f"/api/v1/syncs/connections/{connection.json()['id']}/trigger", headers=headers
    )
    assert trigger.status_code == 202
    assert trigger.json()["status"] == "PENDING"  # no worker in this client: it stays queued
    assert (
        await client.post(f"/api/v1/syncs/{trigger.json()['id']}/cancel", headers=headers)
    ).status_code == 204
    assert (await client.get(f"/api/v1/syncs/{trigger.json()['id']}", headers=headers)).json()[
        "status"
    ] == "CANCELLED"
    # and the connection can be triggered again
    again = await client.post(f"/api/v1/syncs/connections/{connection.json()['id']}/trigger", headers=headers)
    assert again.status_code == 202


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/v1/syncs/connections/{id}/trigger"), ("post", "/api/v1/syncs/{id}/cancel")],
)
async def test_mutating_routes_need_token_permission_and_tenant(client, tenant, method, path):
    url = path.format(id=uuid.uuid4())
    assert_error_body(await getattr(client, method)(url), 401)
    assert_error_body(await getattr(client, method)(url, headers=headers_for(tenant, READ)), 403)
    no_tenant = {"Authorization": headers_for(tenant)["Authorization"]}
    assert_error_body(await getattr(client, method)(url, headers=no_tenant), 400)
