"""AirbyteEngine: the PlatformEngine that keeps our sources, connections and syncs as Airbyte objects.

Tenant -> one workspace `ingest-<tenant uuid>`, holding the tenant's sources, one S3 Data Lake (Iceberg)
destination and the connections. Tenant-less calls (spec, check and discover of an unsaved config) run in
a shared workspace `ingest-system`.
"""

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from ingest.core.errors import AppError, ConnectorError
from ingest.core.settings import Settings
from ingest.engines.airbyte.client import (
    CONFIG,
    PUBLIC,
    AirbyteClient,
    Call,
    RemoteConflictError,
    RemoteNotFoundError,
    scrub,
)
from ingest.engines.airbyte.cron import unix_to_quartz
from ingest.engines.base import (
    CheckResult,
    ConnectorType,
    DiscoveredStream,
    PlatformEngine,
    ReadRequest,
    ReadStream,
    RemoteConnection,
    RemoteJob,
    RemoteJobStatus,
    SyncMode,
)
from ingest.engines.registry import docker_repository
from ingest.engines.types import columns_from_schema

SYSTEM_WORKSPACE = "ingest-system"
DESTINATION_REPOSITORY = "airbyte/destination-s3-data-lake"
DESTINATION_DEFINITION_ID = "716ca874-520b-4902-9f80-9fad66754b89"  # stable across installs
_CREATED_SLACK_SECONDS = 30  # clock skew allowed when matching `createdAt` after an ambiguous create
_ACTIVE_JOB_STATUSES = ("running", "pending", "queued", "incomplete")

JOB_STATUSES: dict[str, RemoteJobStatus] = {
    "pending": RemoteJobStatus.PENDING,
    "queued": RemoteJobStatus.PENDING,
    "running": RemoteJobStatus.RUNNING,
    "incomplete": RemoteJobStatus.RUNNING,  # an attempt failed and Airbyte will retry: not terminal
    "succeeded": RemoteJobStatus.SUCCEEDED,
    "failed": RemoteJobStatus.FAILED,
    "cancelled": RemoteJobStatus.CANCELLED,
}
TERMINAL_JOB_STATUSES = frozenset(
    {RemoteJobStatus.SUCCEEDED, RemoteJobStatus.FAILED, RemoteJobStatus.CANCELLED}
)


@dataclasses.dataclass(frozen=True)
class RemoteObjects:
    """What exists in a tenant's Airbyte workspace, for drift repair (`ingest airbyte reconcile`)."""

    workspace_id: str | None  # None: the workspace was never created
    source_ids: frozenset[str]
    connection_ids: frozenset[str]
    destination_ids: frozenset[str]
    inactive_connection_ids: frozenset[str] = frozenset()  # status other than `active` (paused)


def workspace_name(tenant_id: str) -> str:
    return f"ingest-{tenant_id}"


def destination_name(tenant_id: str) -> str:
    return f"ingest-{tenant_id}-iceberg"


def stream_sync_mode(mode: SyncMode, stream: DiscoveredStream) -> str:
    """Our sync mode -> Airbyte's connection sync mode for one stream (dedup needs a primary key)."""
    if mode is SyncMode.FULL_REFRESH or SyncMode.INCREMENTAL not in stream.supported_sync_modes:
        return "full_refresh_overwrite"
    return "incremental_deduped_history" if stream.primary_key else "incremental_append"


def remote_job(body: Mapping[str, Any]) -> RemoteJob:
    status = JOB_STATUSES.get(str(body.get("status", "")).lower(), RemoteJobStatus.RUNNING)
    terminal = status in TERMINAL_JOB_STATUSES
    return RemoteJob(
        id=str(body["jobId"]),
        status=status,
        records=_int_or_none(body.get("rowsSynced")),
        bytes=_int_or_none(body.get("bytesSynced")),
        started_at=body.get("startTime"),
        ended_at=body.get("lastUpdatedAt") if terminal else None,
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def discovered_streams(catalog: Mapping[str, Any]) -> list[DiscoveredStream]:
    """Config-API catalog (camelCase) -> DiscoveredStream with typed columns."""
    streams: list[DiscoveredStream] = []
    for entry in catalog.get("streams") or []:
        stream = entry.get("stream") or {}
        schema = stream.get("jsonSchema") or {}
        modes = [
            SyncMode.INCREMENTAL if mode == "incremental" else SyncMode.FULL_REFRESH
            for mode in stream.get("supportedSyncModes") or ["full_refresh"]
            if mode in ("incremental", "full_refresh")
        ]
        streams.append(
            DiscoveredStream(
                name=str(stream["name"]),
                namespace=stream.get("namespace"),
                columns=columns_from_schema(schema),
                supported_sync_modes=list(dict.fromkeys(modes)),
                json_schema=schema,
                primary_key=[list(path) for path in stream.get("sourceDefinedPrimaryKey") or []],
                cursor_field=list(stream.get("defaultCursorField") or []),
                source_defined_cursor=bool(stream.get("sourceDefinedCursor")),
            )
        )
    return streams


def _failure_message(body: Mapping[str, Any], default: str) -> str:
    job_info = body.get("jobInfo") or {}
    reason = job_info.get("failureReason") or {}
    message = body.get("message") or reason.get("externalMessage")
    return str(message) if message else default


class AirbyteEngine:
    """Connectors run inside a self-managed Airbyte; we drive it through its public and config APIs."""

    name = "airbyte"
    runs_syncs_remotely = True

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self._api = AirbyteClient(settings, client)
        self._destination_config: dict[str, Any] | None = None
        if settings.airbyte_destination_config:
            try:
                parsed = json.loads(settings.airbyte_destination_config)
            except ValueError as exc:
                raise ValueError("INGEST_AIRBYTE_DESTINATION_CONFIG is not valid JSON") from exc
            if not isinstance(parsed, dict):
                raise ValueError("INGEST_AIRBYTE_DESTINATION_CONFIG must be a JSON object")
            self._destination_config = parsed
        self._workspaces: dict[str, str] = {}
        self._destinations: dict[str, str] = {}
        self._definitions: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        await self._api.close()

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # -- workspaces and definitions -------------------------------------------------------------------

    async def workspace_id(self, tenant_id: str) -> str:
        """The tenant's workspace id, found by name or created on first use; cached in memory."""
        return await self._workspace(workspace_name(str(tenant_id)))

    def remember_workspace(self, tenant_id: str, workspace_id: str) -> None:
        """Seed the cache with an id the caller persisted, saving the lookup after a restart."""
        self._workspaces[workspace_name(str(tenant_id))] = workspace_id

    async def _workspace(self, name: str) -> str:
        if name in self._workspaces:
            return self._workspaces[name]
        async with self._lock(f"workspace:{name}"):
            if name in self._workspaces:
                return self._workspaces[name]
            found = await self._find_workspace(name)
            if found is None:
                body = await self._api.request(
                    "POST",
                    f"{PUBLIC}/workspaces",
                    json_body={"name": name},
                    call=Call.WRITE,
                    recover=lambda: self._find_workspace(name),
                    operation="create a workspace",
                )
                found = str(body["workspaceId"]) if isinstance(body, dict) else str(body)
            self._workspaces[name] = found
            return found

    async def _find_workspace(self, name: str) -> str | None:
        # the public API cannot filter workspaces by name
        for workspace in await self._api.list_all(f"{PUBLIC}/workspaces", {}, operation="list workspaces"):
            if workspace.get("name") == name:
                return str(workspace["workspaceId"])
        return None

    async def _source_definition_id(self, connector: ConnectorType) -> str:
        if connector.id in self._definitions:
            return self._definitions[connector.id]
        workspace = await self._workspace(SYSTEM_WORKSPACE)
        body = await self._api.request(
            "GET", f"{PUBLIC}/workspaces/{workspace}/definitions/sources", operation="list source definitions"
        )
        definitions = (body.get("data") or []) if isinstance(body, dict) else []
        repository = docker_repository(connector)
        wanted = connector.airbyte_definition_name.casefold()
        # the Docker repository is stable; display names drift between releases
        match = next((d for d in definitions if d.get("dockerRepository") == repository), None)
        match = match or next((d for d in definitions if str(d.get("name", "")).casefold() == wanted), None)
        if match is None:
            raise ConnectorError(f"Airbyte has no source definition for connector type {connector.id!r}")
        self._definitions[connector.id] = str(match["id"])
        return self._definitions[connector.id]

    async def _destination_definition_id(self, workspace: str) -> str:
        if "destination" in self._definitions:
            return self._definitions["destination"]
        body = await self._api.request(
            "GET",
            f"{PUBLIC}/workspaces/{workspace}/definitions/destinations",
            operation="list destination definitions",
        )
        definitions = (body.get("data") or []) if isinstance(body, dict) else []
        match = next((d for d in definitions if d.get("dockerRepository") == DESTINATION_REPOSITORY), None)
        self._definitions["destination"] = str(match["id"]) if match else DESTINATION_DEFINITION_ID
        return self._definitions["destination"]

    async def _destination(self, tenant_id: str, workspace: str) -> str:
        """The tenant's Iceberg (S3 Data Lake) destination, created on first use."""
        if tenant_id in self._destinations:
            return self._destinations[tenant_id]
        async with self._lock(f"destination:{tenant_id}"):
            if tenant_id in self._destinations:
                return self._destinations[tenant_id]
            name = destination_name(tenant_id)
            found = await self._find_by_name("destinations", workspace, name)
            if found is None:
                if self._destination_config is None:
                    raise AppError(
                        "INGEST_AIRBYTE_DESTINATION_CONFIG is not set: Airbyte has nowhere to write the sync"
                    )
                definition = await self._destination_definition_id(workspace)
                config = self._destination_config
                body = await self._api.request(
                    "POST",
                    f"{PUBLIC}/destinations",
                    json_body={
                        "name": name,
                        "workspaceId": workspace,
                        "definitionId": definition,
                        "configuration": config,
                    },
                    call=Call.WRITE,
                    recover=lambda: self._find_by_name("destinations", workspace, name),
                    operation="create the Iceberg destination",
                    config=config,
                )
                found = str(body["destinationId"]) if isinstance(body, dict) else str(body)
            self._destinations[tenant_id] = found
            return found

    async def _find_by_name(
        self, kind: str, workspace: str, name: str, since: float | None = None, **match: str
    ) -> str | None:
        """Newest `kind` object named `name` in the workspace (created after `since`, epoch seconds)."""
        items = await self._api.list_all(
            f"{PUBLIC}/{kind}", {"workspaceIds": workspace}, operation=f"list {kind}"
        )
        id_key = {"sources": "sourceId", "destinations": "destinationId", "connections": "connectionId"}[kind]
        candidates = [
            item
            for item in items
            if item.get("name") == name
            and all(item.get(key) == value for key, value in match.items())
            and (since is None or float(item.get("createdAt") or 0) >= since - _CREATED_SLACK_SECONDS)
        ]
        if not candidates:
            return None
        newest = max(candidates, key=lambda item: float(item.get("createdAt") or 0))
        return str(newest[id_key])

    # -- Engine ---------------------------------------------------------------------------------------

    async def spec(self, connector: ConnectorType) -> dict[str, Any]:
        workspace = await self._workspace(SYSTEM_WORKSPACE)
        body = await self._api.request(
            "POST",
            f"{CONFIG}/source_definition_specifications/get",
            json_body={
                "sourceDefinitionId": await self._source_definition_id(connector),
                "workspaceId": workspace,
            },
            operation="read the connector specification",
        )
        spec = body.get("connectionSpecification") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise ConnectorError(f"Airbyte returned no specification for connector type {connector.id!r}")
        return spec

    async def check(self, connector: ConnectorType, config: Mapping[str, Any]) -> CheckResult:
        """Check an unsaved config through the config API's scheduler endpoint (no source is stored)."""
        body = await self._scheduler("check_connection", connector, config, "check the connection")
        return self._check_result(body, config)

    async def discover(self, connector: ConnectorType, config: Mapping[str, Any]) -> list[DiscoveredStream]:
        body = await self._scheduler("discover_schema", connector, config, "discover the source schema")
        return self._streams(body, config)

    async def _scheduler(
        self, action: str, connector: ConnectorType, config: Mapping[str, Any], operation: str
    ) -> Any:
        """A connector run on an unsaved config (config API `scheduler/sources/<action>`)."""
        return await self._api.request(
            "POST",
            f"{CONFIG}/scheduler/sources/{action}",
            json_body={
                "sourceDefinitionId": await self._source_definition_id(connector),
                "workspaceId": await self._workspace(SYSTEM_WORKSPACE),
                "connectionConfiguration": dict(config),
            },
            call=Call.CONNECTOR,
            long=True,
            operation=operation,
            config=config,
        )

    def check_options(self, connector: ConnectorType, config: Mapping[str, Any]) -> None:
        """Airbyte runs the connector itself: every option of its spec is honoured there."""

    def read(self, request: ReadRequest, cancel: asyncio.Event) -> ReadStream:
        raise ConnectorError("with INGEST_ENGINE=airbyte syncs run inside Airbyte; there is no local read")

    @staticmethod
    def _check_result(body: Any, config: Mapping[str, Any] | None) -> CheckResult:
        body = body if isinstance(body, dict) else {}
        if body.get("status") == "succeeded":
            return CheckResult(True, body.get("message"))
        return CheckResult(False, scrub(_failure_message(body, "the connection check failed"), config))

    @staticmethod
    def _streams(body: Any, config: Mapping[str, Any] | None) -> list[DiscoveredStream]:
        body = body if isinstance(body, dict) else {}
        catalog = body.get("catalog")
        if not isinstance(catalog, dict):
            raise ConnectorError(scrub(_failure_message(body, "the schema discovery failed"), config))
        return discovered_streams(catalog)

    # -- sources --------------------------------------------------------------------------------------

    async def create_source(
        self, tenant_id: str, name: str, connector: ConnectorType, config: Mapping[str, Any]
    ) -> str:
        workspace = await self.workspace_id(tenant_id)
        definition = await self._source_definition_id(connector)
        started = time.time()
        body = await self._api.request(
            "POST",
            f"{PUBLIC}/sources",
            json_body={
                "name": name,
                "workspaceId": workspace,
                "definitionId": definition,
                "configuration": dict(config),
            },
            call=Call.WRITE,
            # no idempotency keys: a create whose answer was lost is found by name, type and creation time
            recover=lambda: self._find_by_name("sources", workspace, name, started, definitionId=definition),
            operation="create the source",
            config=config,
        )
        return str(body["sourceId"]) if isinstance(body, dict) else str(body)

    async def update_source(
        self, tenant_id: str, external_id: str, name: str, connector: ConnectorType, config: Mapping[str, Any]
    ) -> None:
        # PUT replaces name and configuration; masked secrets sent back keep the stored value
        await self._api.request(
            "PUT",
            f"{PUBLIC}/sources/{external_id}",
            json_body={"name": name, "configuration": dict(config)},
            operation="update the source",
            config=config,
        )

    async def delete_source(self, tenant_id: str, external_id: str) -> None:
        """Delete the source (Airbyte also deletes its connections); already gone counts as done."""
        with contextlib.suppress(RemoteNotFoundError):
            await self._api.request(
                "DELETE", f"{PUBLIC}/sources/{external_id}", operation="delete the source"
            )

    async def check_source(self, tenant_id: str, external_id: str) -> CheckResult:
        body = await self._api.request(
            "POST",
            f"{CONFIG}/sources/check_connection",
            json_body={"sourceId": external_id},
            call=Call.CONNECTOR,
            long=True,
            operation="check the connection",
        )
        return self._check_result(body, None)

    async def discover_source(self, tenant_id: str, external_id: str) -> list[DiscoveredStream]:
        body = await self._api.request(
            "POST",
            f"{CONFIG}/sources/discover_schema",
            json_body={"sourceId": external_id, "disable_cache": True},
            call=Call.CONNECTOR,
            long=True,
            operation="discover the source schema",
        )
        return self._streams(body, None)

    # -- connections ----------------------------------------------------------------------------------

    @staticmethod
    def _connection_body(connection: RemoteConnection) -> dict[str, Any]:
        streams = []
        for stream in connection.streams:
            mode = stream_sync_mode(connection.sync_mode, stream)
            item: dict[str, Any] = {"name": stream.name, "syncMode": mode}
            if stream.namespace:
                item["namespace"] = stream.namespace
            if mode.startswith("incremental") and stream.cursor_field and not stream.source_defined_cursor:
                item["cursorField"] = list(stream.cursor_field)
            if mode == "incremental_deduped_history":
                item["primaryKey"] = [list(path) for path in stream.primary_key]
            streams.append(item)
        schedule: dict[str, Any] = (
            {"scheduleType": "cron", "cronExpression": unix_to_quartz(connection.cron)}
            if connection.cron
            else {"scheduleType": "manual"}
        )
        return {
            "name": connection.name,
            "configurations": {"streams": streams},
            "schedule": schedule,
            # every tenant writes into its own Iceberg namespace, whatever the destination's default
            "namespaceDefinition": "custom_format",
            "namespaceFormat": connection.namespace,
            "prefix": "",
            "nonBreakingSchemaUpdatesBehavior": "ignore",
            # a paused connection is `inactive`: Airbyte runs none of its scheduled syncs
            "status": "active" if connection.active else "inactive",
        }

    async def create_connection(self, connection: RemoteConnection) -> str:
        tenant = str(connection.tenant_id)
        body = self._connection_body(connection)  # validates the cron before anything is created
        workspace = await self.workspace_id(tenant)
        source = connection.source_external_id
        for attempt in range(2):
            destination = await self._destination(tenant, workspace)
            started = time.time()
            try:
                created = await self._api.request(
                    "POST",
                    f"{PUBLIC}/connections",
                    json_body={**body, "sourceId": source, "destinationId": destination},
                    call=Call.WRITE,
                    recover=lambda started=started: self._find_by_name(  # type: ignore[misc]
                        "connections", workspace, connection.name, started, sourceId=source
                    ),
                    long=True,  # creating a connection runs a discover
                    operation="create the connection",
                )
            except RemoteNotFoundError:
                # the tenant's destination was deleted in Airbyte (its UI): forget it and make a new one
                if attempt or await self._exists("destinations", destination):
                    raise
                self._destinations.pop(tenant, None)
                continue
            return str(created["connectionId"]) if isinstance(created, dict) else str(created)
        raise AssertionError("unreachable")

    async def _exists(self, kind: str, object_id: str) -> bool:
        try:
            await self._api.request("GET", f"{PUBLIC}/{kind}/{object_id}", operation=f"read the {kind[:-1]}")
        except RemoteNotFoundError:
            return False
        return True

    async def update_connection(self, external_id: str, connection: RemoteConnection) -> None:
        await self._api.request(
            "PATCH",
            f"{PUBLIC}/connections/{external_id}",
            json_body=self._connection_body(connection),
            long=True,
            operation="update the connection",
        )

    async def delete_connection(self, tenant_id: str, external_id: str) -> None:
        """Delete the connection; already gone counts as done."""
        with contextlib.suppress(RemoteNotFoundError):
            await self._api.request(
                "DELETE", f"{PUBLIC}/connections/{external_id}", operation="delete the connection"
            )

    async def set_connection_status(self, external_id: str, *, active: bool) -> None:
        """Pause or resume: the connection's `status` is `active` (scheduled) or `inactive` (paused)."""
        await self._api.request(
            "PATCH",
            f"{PUBLIC}/connections/{external_id}",
            json_body={"status": "active" if active else "inactive"},
            operation="pause the connection" if not active else "resume the connection",
        )

    # -- jobs -----------------------------------------------------------------------------------------

    async def _active_job(self, connection_id: str) -> RemoteJob | None:
        for status in _ACTIVE_JOB_STATUSES:
            body = await self._api.request(
                "GET",
                f"{PUBLIC}/jobs",
                params={
                    "connectionId": connection_id,
                    "jobType": "sync",
                    "status": status,
                    "orderBy": "createdAt|DESC",
                    "limit": 1,
                },
                operation="list the connection's jobs",
            )
            data = body.get("data") if isinstance(body, dict) else None
            if data:
                return remote_job(data[0])
        return None

    async def list_jobs(self, connection_external_id: str, limit: int = 20) -> list[RemoteJob]:
        """The connection's latest sync jobs, newest first (whoever started them: us, its cron, its UI)."""
        body = await self._api.request(
            "GET",
            f"{PUBLIC}/jobs",
            params={
                "connectionId": connection_external_id,
                "jobType": "sync",
                "orderBy": "createdAt|DESC",
                "limit": limit,
            },
            operation="list the connection's jobs",
        )
        data = body.get("data") if isinstance(body, dict) else None
        return [remote_job(item) for item in data or []]

    async def start_sync(self, tenant_id: str, connection_external_id: str) -> RemoteJob:
        """Start a sync job; when one already runs (409, or a trigger whose answer was lost) return it."""
        for _ in range(2):
            try:
                body = await self._api.request(
                    "POST",
                    f"{PUBLIC}/jobs",
                    json_body={"connectionId": connection_external_id, "jobType": "sync"},
                    call=Call.WRITE,
                    recover=lambda: self._active_job(connection_external_id),
                    operation="start the sync",
                )
            except RemoteConflictError:
                running = await self._active_job(connection_external_id)
                if running is not None:
                    return running
                continue  # it finished between the 409 and our lookup: trigger again
            return body if isinstance(body, RemoteJob) else remote_job(body)
        raise RemoteConflictError("Airbyte refuses to start a sync for this connection; try again later")

    async def get_job(self, job_id: str) -> RemoteJob:
        job = remote_job(await self._api.request("GET", f"{PUBLIC}/jobs/{job_id}", operation="read the job"))
        if job.status is RemoteJobStatus.FAILED:
            return dataclasses.replace(job, error=await self._job_failure(job.id))
        return job

    async def _job_failure(self, job_id: str) -> str:
        """The last attempt's failure message (config API; the public job has none), best effort."""
        try:
            body = await self._api.request(
                "POST", f"{CONFIG}/jobs/get", json_body={"id": int(job_id)}, operation="read the job failure"
            )
        except (AppError, ValueError):
            return "the Airbyte sync failed"
        for attempt in reversed((body or {}).get("attempts") or []):
            failures = ((attempt.get("attempt") or attempt).get("failureSummary") or {}).get("failures") or []
            for failure in failures:
                if failure.get("externalMessage"):
                    return str(failure["externalMessage"])
        return "the Airbyte sync failed"

    async def cancel_job(self, job_id: str) -> None:
        """Cancel a job; a job that already ended (Airbyte's 409) or vanished counts as done."""
        with contextlib.suppress(RemoteConflictError, RemoteNotFoundError):
            await self._api.request("DELETE", f"{PUBLIC}/jobs/{job_id}", operation="cancel the job")

    # -- reconcile ------------------------------------------------------------------------------------

    async def list_remote(self, tenant_id: str) -> RemoteObjects:
        """The tenant's sources, connections and destinations in Airbyte; never creates the workspace."""
        name = workspace_name(str(tenant_id))
        workspace = self._workspaces.get(name) or await self._find_workspace(name)
        if workspace is None:
            return RemoteObjects(None, frozenset(), frozenset(), frozenset())
        self._workspaces[name] = workspace
        params = {"workspaceIds": workspace}
        sources = await self._api.list_all(f"{PUBLIC}/sources", params, operation="list sources")
        connections = await self._api.list_all(f"{PUBLIC}/connections", params, operation="list connections")
        destinations = await self._api.list_all(
            f"{PUBLIC}/destinations", params, operation="list destinations"
        )
        return RemoteObjects(
            workspace,
            frozenset(str(s["sourceId"]) for s in sources),
            frozenset(str(c["connectionId"]) for c in connections),
            frozenset(str(d["destinationId"]) for d in destinations),
            frozenset(str(c["connectionId"]) for c in connections if c.get("status") != "active"),
        )


def _conforms(engine: AirbyteEngine) -> PlatformEngine:
    return engine  # mypy proves AirbyteEngine implements every PlatformEngine method
