"""Rate limits: token buckets per tenant and per API key, shared by every API process, on both stores."""

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import READ, assert_error_body, build_app, headers_for

REDIS_URL = "redis://127.0.0.1:6379/15"
HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "X-RateLimit-Limit")


@pytest.fixture(params=["postgres", "redis"])
def limited_settings(request, settings):
    """Small, slow buckets so a test runs past them before they refill: reads burst 4 at 0.5/s."""
    return dataclasses.replace(
        settings,
        rate_limit_read_rate=0.5,
        rate_limit_read_burst=4,
        rate_limit_rate=0.2,
        rate_limit_burst=3,
        rate_limit_heavy_rate=0.2,
        rate_limit_heavy_burst=2,
        redis_url=REDIS_URL if request.param == "redis" else None,
    )


@pytest.fixture
async def processes(limited_settings, database_url) -> AsyncIterator[list[AsyncTestClient]]:
    """Two app instances, each with its own database engine and bucket-store pool: two API processes."""
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = build_app(limited_settings, database_url, run_worker_in_process=False)
            clients.append(
                await stack.enter_async_context(AsyncTestClient(app=app, raise_server_exceptions=False))
            )
        yield clients


async def test_burst_then_429_then_recovery(processes):
    client = processes[0]
    headers = headers_for(uuid.uuid4())
    remaining = []
    for _ in range(4):
        response = await client.get("/api/v1/me", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Limit"] == "4"
        assert response.headers["X-RateLimit-Limit"] == "4"
        assert int(response.headers["X-RateLimit-Reset"]) > 1_000_000_000  # epoch seconds
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining[0] == 3 and remaining[-1] == 0, remaining
    refused = await client.get("/api/v1/me", headers=headers)
    assert_error_body(refused, 429, "rate limit")
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) >= 1
    assert int(refused.headers["RateLimit-Reset"]) >= 1
    await asyncio.sleep(int(refused.headers["Retry-After"]))
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    # the other tenants were never touched
    assert (await client.get("/api/v1/me", headers=headers_for(uuid.uuid4()))).status_code == 200


async def test_two_processes_share_one_limit(processes):
    headers = headers_for(uuid.uuid4())
    statuses = [(await processes[i % 2].get("/api/v1/me", headers=headers)).status_code for i in range(6)]
    assert statuses.count(200) == 4 and statuses.count(429) == 2, statuses
    assert statuses[-2:] == [429, 429]


async def test_health_ready_and_schema_are_never_limited(processes):
    client = processes[0]
    headers = headers_for(uuid.uuid4())
    for _ in range(5):
        await client.get("/api/v1/me", headers=headers)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 429
    for _ in range(10):
        for path in ("/health", "/ready"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers


async def test_errors_carry_the_headers_and_use_the_tenants_bucket(processes):
    client = processes[0]
    headers = headers_for(uuid.uuid4())
    missing = await client.get(f"/api/v1/sources/{uuid.uuid4()}", headers=headers)
    assert_error_body(missing, 404)
    assert missing.headers["RateLimit-Remaining"] == "3"


async def test_uploads_and_triggers_have_their_own_smaller_bucket(processes):
    client = processes[0]
    headers = headers_for(uuid.uuid4())
    trigger = f"/api/v1/syncs/connections/{uuid.uuid4()}/trigger"
    first = await client.post(trigger, headers=headers)
    assert first.status_code == 404 and first.headers["RateLimit-Limit"] == "2"
    assert (await client.post(trigger, headers=headers)).status_code == 404
    assert_error_body(await client.post(trigger, headers=headers), 429)
    assert_error_body(await client.post("/api/v1/files/upload", headers=headers), 429)
    # reads and other changes draw from their own buckets
    assert (await client.get("/api/v1/me", headers=headers)).headers["RateLimit-Limit"] == "4"
    changed = await client.delete(f"/api/v1/sources/{uuid.uuid4()}", headers=headers)
    assert changed.status_code == 404 and changed.headers["RateLimit-Limit"] == "3"


async def test_an_api_key_has_its_own_share_of_the_tenants_bucket(processes):
    client = processes[0]
    tenant = uuid.uuid4()
    created = await client.post(
        "/api/v1/api-keys", json={"name": "bot", "permissions": [READ]}, headers=headers_for(tenant)
    )
    assert created.status_code == 201, created.text
    key = {"X-API-KEY": created.json()["key"]}
    # the key's own read bucket is half the tenant's (burst 2): it runs out while the tenant still has tokens
    first = await client.get("/api/v1/me", headers=key)
    assert first.status_code == 200 and first.headers["RateLimit-Limit"] == "2"
    assert (await client.get("/api/v1/me", headers=key)).status_code == 200
    assert_error_body(await client.get("/api/v1/me", headers=key), 429)
    # the tenant's people still have the tokens the key could not take
    assert (await processes[1].get("/api/v1/me", headers=headers_for(tenant))).status_code == 200
