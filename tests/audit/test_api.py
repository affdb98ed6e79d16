"""The audit trail: one event per successful change, with who, tenant, action, target and request id."""

import uuid
from datetime import UTC, datetime, timedelta

from tests.conftest import JWT_SECRET, READ, assert_error_body, headers_for, make_token

FAKER = {
    "name": "shop",
    "connectorType": "faker",
    "connectionConfig": {"count": 5, "seed": 1, "parallelism": 1},
}
SECRET_CONFIG = {"url": "https://example.com/data.csv", "format": "csv", "dataset_name": "d"}


def as_user(tenant: uuid.UUID, subject: str, request_id: str) -> dict[str, str]:
    token = make_token([tenant], secret=JWT_SECRET, sub=subject)
    return {"Authorization": f"Bearer {token}", "X-Tenant-Id": str(tenant), "X-Request-Id": request_id}


async def events(client, headers, query: str = "") -> list[dict]:
    response = await client.get(f"/api/v1/audit-events?size=200{query}", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["content"])


async def test_every_change_is_recorded_once_with_actor_target_and_request_id(client, tenant, tmp_path):
    n = iter(range(100))

    def h() -> dict[str, str]:
        return as_user(tenant, "alice@example.com", f"req-{next(n)}")

    source = await client.post("/api/v1/sources", json=FAKER, headers=h())
    assert source.status_code == 201, source.text
    assert source.headers["x-request-id"] == "req-0"  # answered back
    source_id = source.json()["id"]
    s = f"/api/v1/sources/{source_id}"
    assert (await client.put(s, json={"description": "nightly shop"}, headers=h())).status_code == 200
    assert (await client.post(f"{s}/test", headers=h())).status_code == 200
    assert (await client.post(f"{s}/discover", headers=h())).status_code == 200
    connection = await client.post(
        "/api/v1/connections",
        json={"sourceId": source_id, "name": "c", "selectedStreams": ["products"]},
        headers=h(),
    )
    assert connection.status_code == 201, connection.text
    connection_id = connection.json()["id"]
    c = f"/api/v1/connections/{connection_id}"
    body = {"sourceId": source_id, "name": "c2", "selectedStreams": ["products"]}
    assert (await client.put(c, json=body, headers=h())).status_code == 200
    assert (await client.post(f"{c}/pause", headers=h())).status_code == 200
    assert (await client.post(f"{c}/resume", headers=h())).status_code == 200
    sync = await client.post(f"/api/v1/syncs/connections/{connection_id}/trigger", headers=h())
    assert sync.status_code == 202
    assert (await client.post(f"/api/v1/syncs/{sync.json()['id']}/cancel", headers=h())).status_code == 204
    assert (await client.post(f"{s}/pause", headers=h())).status_code == 200
    assert (await client.post(f"{s}/resume", headers=h())).status_code == 200
    assert (await client.post(f"{s}/sync", headers=h())).status_code == 202
    sample = tmp_path / "orders.csv"
    sample.write_text("id,name\n1,a\n2,b\n")
    upload = await client.post(
        "/api/v1/files/upload", files={"file": ("orders.csv", sample.read_bytes())}, headers=h()
    )
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["id"]
    f = f"/api/v1/files/{file_id}"
    assert (
        await client.put(f"{f}/schema", json={"targetTableName": "orders"}, headers=h())
    ).status_code == 200
    assert (await client.post(f"{f}/import", headers=h())).status_code == 202
    # failed changes and reads leave no event
    assert (
        await client.post("/api/v1/sources", json={**FAKER, "connectorType": "nope"}, headers=h())
    ).status_code == 400
    assert (await client.get(s, headers=h())).status_code == 200
    assert (await client.delete(s, headers=h())).status_code == 409  # it still has a connection
    assert (await client.delete(c, headers=h())).status_code == 204
    assert (await client.delete(s, headers=h())).status_code == 204

    got = await events(client, headers_for(tenant))
    got.reverse()  # oldest first
    sync_id = sync.json()["id"]
    assert [(e["action"], e["targetType"], e["targetId"], e["requestId"]) for e in got] == [
        ("source.create", "source", source_id, "req-0"),
        ("source.update", "source", source_id, "req-1"),
        ("source.test", "source", source_id, "req-2"),
        ("source.discover", "source", source_id, "req-3"),
        ("connection.create", "connection", connection_id, "req-4"),
        ("connection.update", "connection", connection_id, "req-5"),
        ("connection.pause", "connection", connection_id, "req-6"),
        ("connection.resume", "connection", connection_id, "req-7"),
        ("sync.trigger", "connection", connection_id, "req-8"),
        ("sync.cancel", "sync", sync_id, "req-9"),
        ("source.pause", "source", source_id, "req-10"),
        ("source.resume", "source", source_id, "req-11"),
        ("source.sync", "source", source_id, "req-12"),
        ("file.upload", "file", file_id, "req-13"),
        ("file_schema.update", "file", file_id, "req-14"),
        ("file.import", "file", file_id, "req-15"),
        ("connection.delete", "connection", connection_id, "req-19"),
        ("source.delete", "source", source_id, "req-20"),
    ]
    assert {(e["actor"], e["tenantId"]) for e in got} == {("alice@example.com", str(tenant))}
    # never a config value: the event has names and ids only
    assert "example" not in str([e for e in got if e["action"].startswith("source")]).replace(
        "alice@example.com", ""
    )


async def test_filters_and_pages(client, headers, tenant):
    ids = []
    for name in ("a", "b", "c"):
        created = await client.post("/api/v1/sources", json={**FAKER, "name": name}, headers=headers)
        ids.append(created.json()["id"])
    await client.put(f"/api/v1/sources/{ids[0]}", json={"description": "x"}, headers=headers)
    assert [e["action"] for e in await events(client, headers, "&action=source.update")] == ["source.update"]
    assert {e["action"] for e in await events(client, headers, f"&targetId={ids[0]}")} == {
        "source.create",
        "source.update",
    }
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert await events(client, headers, f"&since={future}") == []
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert len(await events(client, headers, f"&since={past}")) == 4
    page = (await client.get("/api/v1/audit-events?page=1&size=3", headers=headers)).json()
    assert (page["totalElements"], page["totalPages"], page["number"], page["size"]) == (4, 2, 1, 3)
    assert [e["action"] for e in page["content"]] == ["source.create"]  # newest first: the oldest is last
    assert_error_body(await client.get("/api/v1/audit-events?size=500", headers=headers), 400)
    assert_error_body(await client.get("/api/v1/audit-events?since=yesterday", headers=headers), 400)
    # a bare number is not an ISO 8601 time (it was read as a Unix time)
    assert_error_body(await client.get("/api/v1/audit-events?since=0.5", headers=headers), 400)


async def test_other_tenants_see_nothing_and_reading_needs_token_and_tenant(client, headers, tenant):
    await client.post("/api/v1/sources", json=FAKER, headers=headers)
    assert len(await events(client, headers)) == 1
    assert await events(client, headers_for(uuid.uuid4())) == []
    assert await events(client, headers_for(tenant, READ)) != []  # read permission is enough
    assert_error_body(await client.get("/api/v1/audit-events"), 401)
    assert_error_body(
        await client.get("/api/v1/audit-events", headers={"Authorization": headers["Authorization"]}), 400
    )
    assert_error_body(
        await client.get("/api/v1/audit-events", headers=headers_for(tenant, "other:perm")), 403
    )
