"""Failure behaviour against the fake: expiring tokens, load shedding, outages, hangs and lost answers."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from ingest.core.errors import UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError
from ingest.engines.airbyte import AirbyteEngine
from ingest.engines.base import RemoteJobStatus
from tests.engines.airbyte.helpers import (
    FAKER,
    POSTGRES,
    POSTGRES_PASSWORD,
    connector,
    remote_connection,
    tenant,
)
from tests.fake_airbyte import FakeAirbyte
from tests.fake_airbyte.plugin import DESTINATION_CONFIG, airbyte_settings_for


@pytest.fixture
async def fast_engine(fake_airbyte: FakeAirbyte) -> AsyncIterator[AirbyteEngine]:
    """Short timeouts so a hang is detected quickly."""
    engine = AirbyteEngine(
        airbyte_settings_for(fake_airbyte, airbyte_timeout_seconds=0.3, airbyte_long_timeout_seconds=0.6)
    )
    yield engine
    await engine.close()


async def test_token_expiry_mid_run_refreshes_and_continues(
    engine: AirbyteEngine, fake_airbyte: FakeAirbyte
) -> None:
    fake_airbyte.token_ttl_seconds = 1
    tenant_id = tenant()
    first = await engine.create_source(tenant_id, "one", connector("faker"), FAKER)
    await asyncio.sleep(1.1)  # the token has expired
    second = await engine.create_source(tenant_id, "two", connector("faker"), FAKER)
    fake_airbyte.expire_tokens()  # the server forgets tokens early: a 401 mid-run
    third = await engine.create_source(tenant_id, "three", connector("faker"), FAKER)

    workspace = await engine.workspace_id(tenant_id)
    assert {s["sourceId"] for s in fake_airbyte.live("sources", workspace)} == {first, second, third}
    assert fake_airbyte.tokens_issued == 3


async def test_rate_limited_then_success(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    tenant_id = tenant()
    fake_airbyte.rate_limit_next(2, retry_after=0.05)

    source_id = await engine.create_source(tenant_id, "one", connector("faker"), FAKER)

    assert [s["sourceId"] for s in fake_airbyte.live("sources")] == [source_id]
    assert [status for _, _, status in fake_airbyte.requests[:2]] == [429, 429]


async def test_503_storm_is_upstream_unavailable(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    fake_airbyte.fail_next(1000, status=503)

    with pytest.raises(UpstreamUnavailableError) as raised:
        await engine.create_source(tenant(), "db", connector("postgres"), POSTGRES)

    assert raised.value.status_code == 503
    assert fake_airbyte.url in raised.value.message
    assert POSTGRES_PASSWORD not in raised.value.message
    assert fake_airbyte.live("sources") == []


async def test_500s_after_retries_are_bad_gateway(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    fake_airbyte.fail_next(1000, status=500, path="/workspaces")

    with pytest.raises(UpstreamError) as raised:
        await engine.workspace_id(tenant())

    assert raised.value.status_code == 502


async def test_unreachable_airbyte_names_the_setting(fake_airbyte: FakeAirbyte) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    engine = AirbyteEngine(airbyte_settings_for(fake_airbyte, airbyte_url=url))
    try:
        with pytest.raises(UpstreamUnavailableError) as raised:
            await engine.check(connector("postgres"), POSTGRES)
    finally:
        await engine.close()

    assert raised.value.status_code == 503
    assert url in raised.value.message
    assert "INGEST_AIRBYTE_URL" in raised.value.message
    assert POSTGRES_PASSWORD not in raised.value.message


async def test_bad_credentials_are_reported_without_the_secret(fake_airbyte: FakeAirbyte) -> None:
    engine = AirbyteEngine(airbyte_settings_for(fake_airbyte, airbyte_client_secret="wrong-secret-value"))
    try:
        with pytest.raises(UpstreamError) as raised:
            await engine.workspace_id(tenant())
    finally:
        await engine.close()

    assert "INGEST_AIRBYTE_CLIENT_SECRET" in raised.value.message
    assert "wrong-secret-value" not in raised.value.message


async def test_hang_is_upstream_timeout(fast_engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    tenant_id = tenant()
    await fast_engine.workspace_id(tenant_id)
    fake_airbyte.hang(r"/sources$", seconds=3, method="GET")

    with pytest.raises(UpstreamTimeoutError) as raised:
        await fast_engine.list_remote(tenant_id)

    assert raised.value.status_code == 504


async def test_slow_discover_is_upstream_timeout_without_retry(
    fast_engine: AirbyteEngine, fake_airbyte: FakeAirbyte
) -> None:
    tenant_id = tenant()
    source_id = await fast_engine.create_source(tenant_id, "sample", connector("faker"), FAKER)
    fake_airbyte.discover_delay_seconds = 2

    with pytest.raises(UpstreamTimeoutError):
        await fast_engine.discover_source(tenant_id, source_id)

    discovers = [path for _, path in fake_airbyte.arrivals if path.endswith("discover_schema")]
    assert len(discovers) == 1  # a connector run that outlived the timeout is not started again


async def test_lost_create_answers_do_not_create_twice(
    fast_engine: AirbyteEngine, fake_airbyte: FakeAirbyte
) -> None:
    tenant_id = tenant()
    for path in (r"/workspaces$", r"/sources$", r"/destinations$", r"/connections$", r"/jobs$"):
        fake_airbyte.drop_after_create(path, seconds=2)

    source_id = await fast_engine.create_source(tenant_id, "db", connector("postgres"), POSTGRES)
    streams = await fast_engine.discover_source(tenant_id, source_id)
    connection_id = await fast_engine.create_connection(remote_connection(tenant_id, source_id, streams))
    job = await fast_engine.start_sync(tenant_id, connection_id)

    workspaces = [w for w in fake_airbyte.live("workspaces") if w["name"] == f"ingest-{tenant_id}"]
    assert len(workspaces) == 1
    workspace = workspaces[0]["workspaceId"]
    assert [s["sourceId"] for s in fake_airbyte.live("sources", workspace)] == [source_id]
    assert len(fake_airbyte.live("destinations", workspace)) == 1
    assert fake_airbyte.live("destinations", workspace)[0]["configuration"] == DESTINATION_CONFIG
    assert [c["connectionId"] for c in fake_airbyte.live("connections", workspace)] == [connection_id]
    assert list(fake_airbyte.jobs) == [int(job.id)]
    assert job.status in (RemoteJobStatus.PENDING, RemoteJobStatus.RUNNING, RemoteJobStatus.SUCCEEDED)
