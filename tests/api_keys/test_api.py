"""API keys: create, list, use, revoke, expire; the tenant binding; hash at rest (database and logs)."""

import logging
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text

from tests.conftest import MANAGE, READ, assert_error_body, headers_for

KEYS = "/api/v1/api-keys"


async def create_key(client, headers, permissions=(READ, MANAGE), **extra):
    response = await client.post(
        KEYS, json={"name": "ci", "permissions": list(permissions), **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_list_use_and_revoke(client, headers, tenant):
    created = await create_key(client, headers, permissions=[READ])
    assert created["key"].startswith(created["prefix"] + "_")
    assert created["permissions"] == [READ]
    assert created["expiresAt"] is None

    listed = (await client.get(KEYS, headers=headers)).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and listed[0]["prefix"] == created["prefix"]
    assert listed[0]["lastUsedAt"] is None

    # the key alone authenticates; X-Tenant-Id may be left out (the key's tenant applies)
    me = await client.get("/api/v1/me", headers={"X-API-KEY": created["key"]})
    assert me.status_code == 200, me.text
    assert me.json()["tenant"] == str(tenant)
    assert me.json()["permissions"] == [READ]
    sources = await client.get(
        "/api/v1/sources", headers={"X-API-KEY": created["key"], "X-Tenant-Id": str(tenant)}
    )
    assert sources.status_code == 200
    assert (await client.get(KEYS, headers=headers)).json()[0]["lastUsedAt"] is not None

    # read-only key: changing anything is 403
    assert_error_body(
        await client.post("/api/v1/sources", json={}, headers={"X-API-KEY": created["key"]}), 403, MANAGE
    )

    assert (await client.delete(f"{KEYS}/{created['id']}", headers=headers)).status_code == 204
    revoked = assert_error_body(await client.get("/api/v1/me", headers={"X-API-KEY": created["key"]}), 401)
    assert (await client.get(KEYS, headers=headers)).json() == []
    assert_error_body(await client.delete(f"{KEYS}/{created['id']}", headers=headers), 404)

    # revoked, expired and unknown keys answer the same body
    unknown = assert_error_body(
        await client.get("/api/v1/me", headers={"X-API-KEY": created["prefix"] + "_" + "x" * 43}), 401
    )
    assert revoked["message"] == unknown["message"]


async def test_expired_key_is_401(client, headers, rollback_session_maker):
    created = await create_key(
        client, headers, expiresAt=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    assert (await client.get("/api/v1/me", headers={"X-API-KEY": created["key"]})).status_code == 200
    async with rollback_session_maker() as session:
        await session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": created["id"]},
        )
        await session.commit()
    body = assert_error_body(await client.get("/api/v1/me", headers={"X-API-KEY": created["key"]}), 401)
    assert "expired" in body["message"]


async def test_expiry_must_be_in_the_future(client, headers):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await client.post(
        KEYS, json={"name": "x", "permissions": [READ], "expiresAt": past}, headers=headers
    )
    assert_error_body(response, 400, "future")


async def test_permissions_are_a_subset_of_the_callers(client, tenant):
    caller = headers_for(tenant, MANAGE)
    assert_error_body(
        await client.post(KEYS, json={"name": "x", "permissions": [READ]}, headers=caller), 403, READ
    )
    assert_error_body(
        await client.post(KEYS, json={"name": "x", "permissions": ["admin:everything"]}, headers=caller),
        400,
        "admin:everything",
    )


async def test_key_is_bound_to_its_tenant(client, headers, tenant):
    created = await create_key(client, headers)
    key = {"X-API-KEY": created["key"]}
    other = uuid.uuid4()
    assert_error_body(await client.get("/api/v1/sources", headers={**key, "X-Tenant-Id": str(other)}), 403)
    assert_error_body(await client.get("/api/v1/sources", headers={**key, "X-Tenant-Id": "nope"}), 400)
    own = await client.get("/api/v1/sources", headers={**key, "X-Tenant-Id": str(tenant)})
    assert own.status_code == 200


async def test_key_and_token_together_is_400(client, headers):
    created = await create_key(client, headers)
    assert_error_body(
        await client.get("/api/v1/me", headers={**headers, "X-API-KEY": created["key"]}), 400, "X-API-KEY"
    )


async def test_a_key_can_mint_keys_only_for_its_tenant(client, headers, tenant):
    parent = await create_key(client, headers)
    child = await create_key(client, {"X-API-KEY": parent["key"]}, permissions=[READ])
    assert child["createdBy"] == f"api-key:{parent['prefix']}"
    assert (await client.get("/api/v1/me", headers={"X-API-KEY": child["key"]})).json()["tenant"] == str(
        tenant
    )


async def test_other_tenants_key_is_404(client, headers):
    created = await create_key(client, headers)
    stranger = headers_for(uuid.uuid4())
    assert_error_body(await client.delete(f"{KEYS}/{created['id']}", headers=stranger), 404)
    assert (await client.get(KEYS, headers=stranger)).json() == []
    assert (await client.get("/api/v1/me", headers={"X-API-KEY": created["key"]})).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", KEYS), ("GET", KEYS), ("DELETE", f"{KEYS}/00000000-0000-4000-8000-000000000001")],
)
async def test_routes_need_token_permission_and_tenant(client, tenant, method, path):
    body = {"name": "x", "permissions": [READ]} if method == "POST" else None
    assert_error_body(await client.request(method, path, json=body), 401)
    read_only = headers_for(tenant, READ)
    assert_error_body(await client.request(method, path, json=body, headers=read_only), 403, MANAGE)
    no_tenant = {"Authorization": headers_for(tenant)["Authorization"]}
    assert_error_body(await client.request(method, path, json=body, headers=no_tenant), 400, "X-Tenant-Id")


async def dump_database(database_url: str) -> str:
    """Every row of every table in the database as text (pg_dump's data, without version coupling)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        tables = await (
            await conn.execute(
                "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        ).fetchall()
        assert len(tables) > 5
        parts = []
        for (table,) in tables:
            rows = await (await conn.execute(f"SELECT t::text FROM {table} t")).fetchall()
            parts += [row[0] for row in rows]
    return "\n".join(parts)


async def test_key_is_nowhere_in_the_database_or_the_logs(live_client, database_url, caplog):
    """Committed for real, then the whole database is dumped: only the keyed hash is there."""
    tenant = uuid.uuid4()
    caplog.set_level(logging.DEBUG)
    created = await create_key(live_client, headers_for(tenant))
    assert (await live_client.get("/api/v1/me", headers={"X-API-KEY": created["key"]})).status_code == 200
    secret = created["key"].split("_", 2)[2]

    dump = await dump_database(database_url)
    assert created["prefix"] in dump  # the dump holds the row
    assert secret not in dump and created["key"] not in dump
    logs = caplog.text
    assert created["prefix"] in logs  # api_keys.created names the key
    assert secret not in logs


async def test_audit_events_name_the_key(client, headers, tenant):
    """Changes made with a key (X-Tenant-Id left out) are audited with the key's prefix as the actor."""
    parent = await create_key(client, headers)
    child = await create_key(client, {"X-API-KEY": parent["key"]}, permissions=[READ])
    revoked = await client.delete(f"{KEYS}/{child['id']}", headers={"X-API-KEY": parent["key"]})
    assert revoked.status_code == 204
    events = (await client.get("/api/v1/audit-events", headers=headers)).json()["content"]
    by_key = {(e["action"], e["targetId"]) for e in events if e["actor"] == f"api-key:{parent['prefix']}"}
    assert by_key == {("api_key.create", child["id"]), ("api_key.revoke", child["id"])}, events
    assert all(e["tenantId"] == str(tenant) for e in events)
    assert not any(parent["key"] in str(e) or child["key"] in str(e) for e in events)
