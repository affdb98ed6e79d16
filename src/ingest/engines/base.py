"""The engine seam: services reach connectors only through `Engine` (spec, check, discover, read, cancel).

What a read yields is the same for every kind of source (Airbyte connector, database, ...): Arrow record
batches per stream and state checkpoints. How they were produced (a protocol on stdout, a database
driver) stays behind the engine.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol

import pyarrow as pa

from ingest.core.types import ColumnType as ColumnType  # re-exported: the engine seam speaks it


class SyncMode(StrEnum):
    FULL_REFRESH = "FULL_REFRESH"
    INCREMENTAL = "INCREMENTAL"
    CDC = "CDC"


@dataclass(frozen=True)
class ConnectorType:
    """One entry of the connector registry."""

    id: str  # the API identifier: postgres, faker, s3, ...
    title: str
    package: str | None  # PyPI package for the embedded engine, None when it cannot run embedded
    version: str | None  # pinned version of `package`
    airbyte_definition_name: str  # the source definition's name in Airbyte's catalogue
    engines: frozenset[str]  # which engines can run it: {"embedded", "airbyte"}
    endpoint_fields: tuple[str, ...] = ()  # config keys that say where it connects (host, url, bucket, ...)


@dataclass(frozen=True)
class CheckResult:
    succeeded: bool
    message: str | None = None


@dataclass(frozen=True)
class DiscoveredColumn:
    name: str
    type: ColumnType
    nullable: bool
    json_schema: dict[str, Any] = field(default_factory=dict)
    # an exact DECIMAL's precision and scale (ingest.core.types.TypeSpec); None: a double, or not DECIMAL
    precision: int | None = None
    scale: int | None = None


@dataclass(frozen=True)
class DiscoveredStream:
    name: str
    namespace: str | None
    columns: list[DiscoveredColumn]
    supported_sync_modes: list[SyncMode]
    json_schema: dict[str, Any]
    primary_key: list[list[str]] = field(default_factory=list)
    cursor_field: list[str] = field(default_factory=list)
    source_defined_cursor: bool = False


@dataclass(frozen=True)
class StreamChoice:
    """A connection's choice for one stream (its `streams` entry): mode, cursor column, primary key."""

    sync_mode: SyncMode
    cursor_field: str | None = None
    primary_key: list[str] | None = None


# store(name, content_type, data) -> the object's storage key: how a native reader keeps large values
# (mail attachments) outside the table. Given by the sync (only it knows the tenant and may touch
# storage), called from the reader's worker thread, blocking; its exceptions fail the read.
StoreBlob = Callable[[str | None, str, bytes], str | None]


@dataclass(frozen=True)
class ReadRequest:
    """What one embedded sync reads: the configured catalog is built by the engine from these."""

    connector: ConnectorType
    config: Mapping[str, Any]
    streams: list[DiscoveredStream]
    incremental: bool
    state: Any | None  # the last committed state (Airbyte: list of AirbyteStateMessage; databases: cursors)
    choices: Mapping[str, StreamChoice] = field(default_factory=dict)  # per-stream choices, by stream name
    store_blob: StoreBlob | None = None  # object storage under the tenant's prefix (None: nothing stored)


@dataclass(frozen=True)
class StreamBatch:
    """Records of one stream (the DiscoveredStream's name) as an Arrow batch; it may have 0 rows.

    `source_bytes` is how many bytes the source sent for these records (JSON for a connector), or 0
    when unknown (then the batch's Arrow size is counted).
    """

    stream: str
    batch: pa.RecordBatch
    source_bytes: int = 0


@dataclass(frozen=True)
class StateCheckpoint:
    """The complete state to save once every batch yielded before it is committed (replaces the old one)."""

    state: Any


ReadEvent = StreamBatch | StateCheckpoint


class ReadStream(Protocol):
    """One running read: iterate it for `ReadEvent`s; leaving `async with` stops the source.

    Raises `ConnectorCancelledError` when the cancel event is set, `ConnectorError` (scrubbed) when the
    source fails; an error may come after the last event, so nothing may be committed before the end.
    """

    def __aiter__(self) -> AsyncIterator[ReadEvent]: ...

    async def __aenter__(self) -> "ReadStream": ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Engine(Protocol):
    """A connector engine. Every method raises `ConnectorError` (scrubbed message) on connector failure."""

    name: str

    async def spec(self, connector: ConnectorType) -> dict[str, Any]:
        """The connector's `connectionSpecification` JSON Schema."""
        ...

    def check_options(self, connector: ConnectorType, config: Mapping[str, Any]) -> None:
        """`InvalidRequestError` naming each config option this engine cannot honour (never ignored)."""
        ...

    async def check(self, connector: ConnectorType, config: Mapping[str, Any]) -> CheckResult: ...

    async def discover(
        self, connector: ConnectorType, config: Mapping[str, Any]
    ) -> list[DiscoveredStream]: ...

    def read(self, request: ReadRequest, cancel: asyncio.Event) -> ReadStream:
        """The selected streams as Arrow batches and state checkpoints; see `ReadStream`."""
        ...


class RemoteJobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_REMOTE_STATUSES = frozenset(
    {RemoteJobStatus.SUCCEEDED, RemoteJobStatus.FAILED, RemoteJobStatus.CANCELLED}
)


@dataclass(frozen=True)
class RemoteConnection:
    """What a platform engine needs to create or update its own connection object."""

    tenant_id: str
    connection_id: str
    name: str
    source_external_id: str
    streams: list[DiscoveredStream]
    sync_mode: SyncMode
    cron: str | None  # 5-field Unix cron, or None for manual
    namespace: str  # the tenant's Iceberg namespace, dotted
    active: bool = True  # False: paused (the platform runs none of its scheduled syncs)


@dataclass(frozen=True)
class RemoteJob:
    id: str
    status: RemoteJobStatus
    records: int | None = None
    bytes: int | None = None
    error: str | None = None
    started_at: str | None = None
    ended_at: str | None = None


class PlatformEngine(Engine, Protocol):
    """An engine whose connectors run elsewhere (Airbyte): it also owns remote copies of our objects.

    The sources/connections/syncs services call these only when `engine.runs_syncs_remotely` is true;
    the embedded engine runs syncs in our own worker through `read` instead.
    """

    async def create_source(
        self, tenant_id: str, name: str, connector: ConnectorType, config: Mapping[str, Any]
    ) -> str: ...

    async def update_source(
        self, tenant_id: str, external_id: str, name: str, connector: ConnectorType, config: Mapping[str, Any]
    ) -> None: ...

    async def delete_source(self, tenant_id: str, external_id: str) -> None: ...

    async def check_source(self, tenant_id: str, external_id: str) -> CheckResult: ...

    async def discover_source(self, tenant_id: str, external_id: str) -> list[DiscoveredStream]: ...

    async def create_connection(self, connection: RemoteConnection) -> str: ...

    async def update_connection(self, external_id: str, connection: RemoteConnection) -> None: ...

    async def delete_connection(self, tenant_id: str, external_id: str) -> None: ...

    async def set_connection_status(self, external_id: str, *, active: bool) -> None:
        """Pause (`active=False`) or resume the platform's copy of a connection."""
        ...

    async def start_sync(self, tenant_id: str, connection_external_id: str) -> RemoteJob:
        """Start a job; if one already runs for the connection, return that job instead (Airbyte's 409)."""
        ...

    async def get_job(self, job_id: str) -> RemoteJob: ...

    async def list_jobs(self, connection_external_id: str, limit: int = 20) -> list[RemoteJob]:
        """The connection's latest sync jobs, newest first."""
        ...

    async def cancel_job(self, job_id: str) -> None: ...
