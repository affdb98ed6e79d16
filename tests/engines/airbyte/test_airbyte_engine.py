"""AirbyteEngine against the fake Airbyte: outcomes are read back from the fake's state."""

import asyncio

import pytest

from ingest.core.errors import ConnectorError, InvalidRequestError
from ingest.core.settings import Settings
from ingest.engines.airbyte import AirbyteEngine, RemoteNotFoundError
from ingest.engines.base import ColumnType, ReadRequest, RemoteJobStatus, SyncMode
from tests.engines.airbyte.helpers import (
    FAKER,
    POSTGRES,
    POSTGRES_PASSWORD,
    connector,
    remote_connection,
    tenant,
)
from tests.fake_airbyte import MASK, FakeAirbyte


async def test_spec_check_and_discover_without_a_stored_source(
    engine: AirbyteEngine, fake_airbyte: FakeAirbyte
) -> None:
    spec = await engine.spec(connector("postgres"))
    good = await engine.check(connector("postgres"), POSTGRES)
    bad = await engine.check(connector("postgres"), {**POSTGRES, "host": "unreachable.example"})
    streams = await engine.discover(connector("faker"), FAKER)

    assert spec["properties"]["password"]["airbyte_secret"] is True
    assert good.succeeded
    assert not bad.succeeded
    assert bad.message
    assert "refused" in bad.message
    assert [s.name for s in streams] == ["users", "products", "purchases"]
    assert fake_airbyte.live("sources") == []  # nothing stored by check/discover


async def test_read_is_not_available(engine: AirbyteEngine) -> None:
    request = ReadRequest(connector("faker"), FAKER, [], incremental=False, state=None)

    with pytest.raises(ConnectorError):
        engine.read(request, asyncio.Event())


async def test_workspace_per_tenant_survives_a_restart(
    engine: AirbyteEngine, airbyte_settings: Settings, fake_airbyte: FakeAirbyte
) -> None:
    tenant_id = tenant()
    first = await engine.workspace_id(tenant_id)
    again = await engine.workspace_id(tenant_id)
    restarted = AirbyteEngine(airbyte_settings)
    try:
        after_restart = await restarted.workspace_id(tenant_id)
    finally:
        await restarted.close()

    workspaces = [w for w in fake_airbyte.live("workspaces") if w["name"] == f"ingest-{tenant_id}"]
    assert first == again == after_restart
    assert [w["workspaceId"] for w in workspaces] == [first]


async def test_source_lifecycle(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    tenant_id = tenant()
    source_id = await engine.create_source(tenant_id, "shop db", connector("postgres"), POSTGRES)
    workspace = await engine.workspace_id(tenant_id)

    stored = fake_airbyte.live("sources", workspace)
    assert [(s["sourceId"], s["name"], s["configuration"]["password"]) for s in stored] == [
        (source_id, "shop db", POSTGRES_PASSWORD)
    ]

    # the masked secret sent back (as read from Airbyte) keeps the stored one
    await engine.update_source(
        tenant_id,
        source_id,
        "shop replica",
        connector("postgres"),
        {**POSTGRES, "host": "replica.internal", "password": MASK},
    )
    (updated,) = fake_airbyte.live("sources", workspace)
    assert updated["name"] == "shop replica"
    assert updated["configuration"]["host"] == "replica.internal"
    assert updated["configuration"]["password"] == POSTGRES_PASSWORD

    check = await engine.check_source(tenant_id, source_id)
    streams = await engine.discover_source(tenant_id, source_id)
    assert check.succeeded
    accounts = next(s for s in streams if s.name == "accounts")
    assert accounts.namespace == "public"
    assert accounts.primary_key == [["id"]]
    assert accounts.supported_sync_modes == [SyncMode.FULL_REFRESH, SyncMode.INCREMENTAL]
    assert {c.name: c.type for c in accounts.columns} == {
        "id": ColumnType.INTEGER,
        "name": ColumnType.STRING,
        "opened_on": ColumnType.DATE,
        "updated_at": ColumnType.TIMESTAMP,
    }

    await engine.delete_source(tenant_id, source_id)
    await engine.delete_source(tenant_id, source_id)  # already gone: fine
    assert fake_airbyte.live("sources", workspace) == []
    with pytest.raises(RemoteNotFoundError):
        await engine.check_source(tenant_id, source_id)
    with pytest.raises(RemoteNotFoundError):
        await engine.update_source(tenant_id, source_id, "x", connector("postgres"), POSTGRES)


async def test_invalid_config_is_a_400_without_secrets(
    engine: AirbyteEngine, fake_airbyte: FakeAirbyte
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        await engine.create_source(tenant(), "shop db", connector("postgres"), {**POSTGRES, "port": "x"})

    assert raised.value.status_code == 400
    assert POSTGRES_PASSWORD not in raised.value.message
    assert fake_airbyte.live("sources") == []


async def test_connection_maps_modes_cron_and_namespace(
    engine: AirbyteEngine, fake_airbyte: FakeAirbyte
) -> None:
    tenant_id = tenant()
    source_id = await engine.create_source(tenant_id, "shop db", connector("postgres"), POSTGRES)
    streams = await engine.discover_source(tenant_id, source_id)
    remote = remote_connection(tenant_id, source_id, streams, cron="15 2 * * 1-5")

    connection_id = await engine.create_connection(remote)

    workspace = await engine.workspace_id(tenant_id)
    (connection,) = fake_airbyte.live("connections", workspace)
    assert connection["connectionId"] == connection_id
    assert connection["schedule"] == {"scheduleType": "cron", "cronExpression": "0 15 2 ? * MON-FRI"}
    assert connection["namespaceDefinition"] == "custom_format"
    assert connection["namespaceFormat"] == remote.namespace
    modes = {s["name"]: s["syncMode"] for s in connection["configurations"]["streams"]}
    assert modes == {"accounts": "incremental_deduped_history", "events": "incremental_append"}
    (destination,) = fake_airbyte.live("destinations", workspace)
    assert connection["destinationId"] == destination["destinationId"]
    assert destination["name"] == f"ingest-{tenant_id}-iceberg"
    assert destination["configuration"]["catalog_type"]["catalog_type"] == "REST"

    # a second connection reuses the tenant's destination; full refresh overwrites
    second = await engine.create_connection(
        remote_connection(tenant_id, source_id, streams, sync_mode=SyncMode.FULL_REFRESH, name="snapshot")
    )
    assert len(fake_airbyte.live("destinations", workspace)) == 1
    snapshot = next(c for c in fake_airbyte.live("connections", workspace) if c["connectionId"] == second)
    assert {s["syncMode"] for s in snapshot["configurations"]["streams"]} == {"full_refresh_overwrite"}
    assert snapshot["schedule"] == {"scheduleType": "manual"}

    await engine.update_connection(
        connection_id,
        remote_connection(
            tenant_id, source_id, streams[:1], sync_mode=SyncMode.FULL_REFRESH, cron="0 3 1 * *"
        ),
    )
    updated = next(
        c for c in fake_airbyte.live("connections", workspace) if c["connectionId"] == connection_id
    )
    assert updated["schedule"]["cronExpression"] == "0 0 3 1 * ?"
    assert [s["syncMode"] for s in updated["configurations"]["streams"]] == ["full_refresh_overwrite"]

    await engine.delete_connection(tenant_id, connection_id)
    await engine.delete_connection(tenant_id, connection_id)
    assert [c["connectionId"] for c in fake_airbyte.live("connections", workspace)] == [second]


async def test_unconvertible_cron_creates_nothing(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    tenant_id = tenant()
    source_id = await engine.create_source(tenant_id, "sample", connector("faker"), FAKER)
    streams = await engine.discover_source(tenant_id, source_id)

    with pytest.raises(InvalidRequestError):
        await engine.create_connection(remote_connection(tenant_id, source_id, streams, cron="0 9 1 * 1"))

    assert fake_airbyte.live("connections") == []


async def _connection(engine: AirbyteEngine) -> tuple[str, str]:
    tenant_id = tenant()
    source_id = await engine.create_source(tenant_id, "sample", connector("faker"), FAKER)
    streams = await engine.discover_source(tenant_id, source_id)
    return tenant_id, await engine.create_connection(remote_connection(tenant_id, source_id, streams))


async def test_sync_job_runs_to_success(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    tenant_id, connection_id = await _connection(engine)

    job = await engine.start_sync(tenant_id, connection_id)
    assert job.status in (RemoteJobStatus.PENDING, RemoteJobStatus.RUNNING)
    for _ in range(100):
        job = await engine.get_job(job.id)
        if job.status is RemoteJobStatus.SUCCEEDED:
            break
        await asyncio.sleep(0.05)

    assert job.status is RemoteJobStatus.SUCCEEDED
    assert job.records == fake_airbyte.job_rows
    assert job.bytes
    assert job.bytes > 0
    assert job.ended_at is not None


async def test_start_sync_while_running_attaches(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    fake_airbyte.job_running_seconds = 60
    tenant_id, connection_id = await _connection(engine)

    first = await engine.start_sync(tenant_id, connection_id)
    await asyncio.sleep(0.1)  # past pending
    second = await engine.start_sync(tenant_id, connection_id)

    assert second.id == first.id
    assert second.status is RemoteJobStatus.RUNNING
    assert len(fake_airbyte.jobs) == 1


async def test_cancel_job(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    fake_airbyte.job_running_seconds = 60
    tenant_id, connection_id = await _connection(engine)
    job = await engine.start_sync(tenant_id, connection_id)

    await engine.cancel_job(job.id)
    await engine.cancel_job(job.id)  # not running any more: a no-op

    assert fake_airbyte.job_status(job.id) == "cancelled"
    cancelled = await engine.get_job(job.id)
    assert cancelled.status is RemoteJobStatus.CANCELLED
    assert cancelled.ended_at is not None
    # a new sync can start once the old one is cancelled
    assert (await engine.start_sync(tenant_id, connection_id)).id != job.id


async def test_failed_job_carries_the_failure(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    fake_airbyte.job_result = "failed"
    tenant_id, connection_id = await _connection(engine)
    job = await engine.start_sync(tenant_id, connection_id)
    fake_airbyte.finish_job(job.id, "failed")

    failed = await engine.get_job(job.id)

    assert failed.status is RemoteJobStatus.FAILED
    assert failed.error
    assert "connector" in failed.error


@pytest.mark.parametrize(
    ("airbyte_status", "expected"),
    [
        ("pending", RemoteJobStatus.PENDING),
        ("queued", RemoteJobStatus.PENDING),
        ("running", RemoteJobStatus.RUNNING),
        ("incomplete", RemoteJobStatus.RUNNING),
        ("succeeded", RemoteJobStatus.SUCCEEDED),
        ("failed", RemoteJobStatus.FAILED),
        ("cancelled", RemoteJobStatus.CANCELLED),
        ("something_new", RemoteJobStatus.RUNNING),
    ],
)
def test_job_status_mapping(airbyte_status: str, expected: RemoteJobStatus) -> None:
    from ingest.engines.airbyte.engine import remote_job

    job = remote_job({"jobId": 7, "status": airbyte_status, "startTime": "2026-01-01T00:00:00Z"})

    assert (job.id, job.status) == ("7", expected)


async def test_unknown_job_is_remote_not_found(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    with pytest.raises(RemoteNotFoundError) as raised:
        await engine.get_job("424242")
    assert raised.value.status_code == 404


async def test_list_remote_pages_through_everything(engine: AirbyteEngine, fake_airbyte: FakeAirbyte) -> None:
    tenant_id = tenant()
    assert (await engine.list_remote(tenant_id)).workspace_id is None  # does not create the workspace
    assert fake_airbyte.live("workspaces") == []

    source_ids = {await engine.create_source(tenant_id, f"s{i}", connector("faker"), FAKER) for i in range(3)}
    workspace = await engine.workspace_id(tenant_id)
    with fake_airbyte._lock:  # more than one page (the API's max limit is 100), without 200 HTTP calls
        template = fake_airbyte.sources[next(iter(source_ids))]
        for i in range(150):
            copy_id = f"00000000-0000-0000-0000-{i:012d}"
            fake_airbyte.sources[copy_id] = {**template, "sourceId": copy_id, "name": f"bulk{i}"}
            source_ids.add(copy_id)

    remote = await engine.list_remote(tenant_id)

    assert remote.workspace_id == workspace
    assert remote.source_ids == source_ids
    assert remote.connection_ids == frozenset()


async def test_every_airbyte_connector_resolves_a_definition(
    engine: AirbyteEngine, fake_airbyte: FakeAirbyte
) -> None:
    from ingest.engines.registry import runnable_by

    specs = {c.id: await engine.spec(c) for c in runnable_by("airbyte")}

    assert all(spec.get("type") == "object" for spec in specs.values())


async def test_a_destination_deleted_in_airbyte_is_made_again(
    engine: AirbyteEngine, fake_airbyte: FakeAirbyte
) -> None:
    tenant_id = tenant()
    source_id = await engine.create_source(tenant_id, "sample", connector("faker"), FAKER)
    streams = await engine.discover_source(tenant_id, source_id)
    await engine.create_connection(remote_connection(tenant_id, source_id, streams, name="first"))
    workspace = await engine.workspace_id(tenant_id)
    (lost,) = fake_airbyte.live("destinations", workspace)
    fake_airbyte.destinations[lost["destinationId"]]["_deleted"] = True  # someone deletes it in Airbyte's UI

    second = await engine.create_connection(remote_connection(tenant_id, source_id, streams, name="second"))

    (fresh,) = fake_airbyte.live("destinations", workspace)
    assert fresh["destinationId"] != lost["destinationId"]
    made = next(c for c in fake_airbyte.live("connections", workspace) if c["connectionId"] == second)
    assert made["destinationId"] == fresh["destinationId"]
