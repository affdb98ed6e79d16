import uuid

from ingest.engines.base import ConnectorType, DiscoveredStream, RemoteConnection, SyncMode
from ingest.engines.registry import get_connector


def connector(connector_id: str) -> ConnectorType:
    found = get_connector(connector_id)
    assert found is not None
    return found


FAKER = {"count": 100, "seed": 1, "records_per_slice": 100, "always_updated": True, "parallelism": 1}
POSTGRES_PASSWORD = "hunter2-very-secret"
POSTGRES = {
    "host": "db.internal",
    "port": 5432,
    "database": "shop",
    "username": "reader",
    "password": POSTGRES_PASSWORD,
}


def tenant() -> str:
    return str(uuid.uuid4())


def remote_connection(
    tenant_id: str,
    source_id: str,
    streams: list[DiscoveredStream],
    *,
    sync_mode: SyncMode = SyncMode.INCREMENTAL,
    cron: str | None = None,
    name: str = "orders nightly",
) -> RemoteConnection:
    return RemoteConnection(
        tenant_id=tenant_id,
        connection_id=str(uuid.uuid4()),
        name=name,
        source_external_id=source_id,
        streams=streams,
        sync_mode=sync_mode,
        cron=cron,
        namespace=f"tenant_{tenant_id.replace('-', '')}",
    )
