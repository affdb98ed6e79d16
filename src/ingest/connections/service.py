"""Connections: a source, its streams, a sync mode and a schedule, into the tenant's Iceberg tables."""

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.connections.repository import ConnectionRepository
from ingest.core.errors import ConflictError, InvalidRequestError, NotFoundError
from ingest.core.logging import get_logger
from ingest.db.models import Connection, Source
from ingest.engines.airbyte.client import RemoteNotFoundError
from ingest.engines.base import DiscoveredStream, RemoteConnection, StreamChoice, SyncMode
from ingest.jobs.runtime import Runtime
from ingest.sources.service import SourceService
from ingest.webhooks.service import emit, iso

log = get_logger("ingest.connections")

DESTINATION_TYPES = {"iceberg"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class ConnectionStatus:
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"
    PAUSED = "PAUSED"  # no scheduled sync runs, a manual trigger answers 409


def validate_cron(expression: str) -> str:
    """A 5-field Unix cron expression (minute hour day-of-month month day-of-week), else 400."""
    normalized = " ".join(expression.split())
    if len(normalized.split(" ")) != 5:
        raise InvalidRequestError(
            f"syncSchedule '{expression[:100]}' must have 5 fields: "
            "minute hour day-of-month month day-of-week"
        )
    if not croniter.is_valid(normalized):
        raise InvalidRequestError(f"syncSchedule '{expression[:100]}' is not a valid cron expression")
    return normalized


def next_run(expression: str, after: datetime) -> datetime:
    result: datetime = croniter(expression, after).get_next(datetime)
    return result


def table_name(stream: str) -> str:
    """The Iceberg table a stream lands in: its name with anything but letters, digits and _ replaced."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stream)
    return f"s_{name}" if not name or name[0].isdigit() else name


def stream_choices(
    entries: list[Any] | None, streams: list[DiscoveredStream], mode: SyncMode, *, names_given: bool
) -> dict[str, StreamChoice]:
    """Check the `streams` entries against the catalog.

    400 naming the stream for: an entry not among the selected streams, an unknown syncMode, a cursorField
    or primaryKey column the stream does not have.
    """
    by_name = {s.name: s for s in streams}
    choices: dict[str, StreamChoice] = {}
    for entry in entries or []:
        stream = by_name.get(entry.name)
        if stream is None:
            where = "selectedStreams" if names_given else "the source's catalog"
            raise InvalidRequestError(f"streams entry '{entry.name}' is not in {where}")
        try:
            stream_mode = SyncMode((entry.sync_mode or mode.value).upper())
        except ValueError:
            raise InvalidRequestError(
                f"Stream '{entry.name}': syncMode must be one of FULL_REFRESH, INCREMENTAL, CDC"
            ) from None
        columns = {c.name for c in stream.columns}
        for column in [entry.cursor_field, *(entry.primary_key or [])]:
            if column is not None and columns and column not in columns:
                raise InvalidRequestError(f"Stream '{entry.name}' has no column '{column[:100]}'")
        if entry.primary_key is not None and not entry.primary_key:
            raise InvalidRequestError(f"Stream '{entry.name}': primaryKey must name at least one column")
        choices[entry.name] = StreamChoice(stream_mode, entry.cursor_field, entry.primary_key)
    return choices


def require_cursors(
    streams: list[DiscoveredStream], choices: dict[str, StreamChoice], mode: SyncMode
) -> None:
    """400 naming every INCREMENTAL stream without a cursor (its own, or `cursorField` in `streams`)."""
    no_cursor = []
    for stream in streams:
        choice = choices.get(stream.name)
        stream_mode = choice.sync_mode if choice else mode
        has_cursor = bool(
            (choice and choice.cursor_field) or stream.cursor_field or stream.source_defined_cursor
        )
        if stream_mode is SyncMode.INCREMENTAL and not has_cursor:
            no_cursor.append(stream.name)
    if no_cursor:
        raise InvalidRequestError(
            f"INCREMENTAL needs a cursorField for stream(s): {', '.join(no_cursor)} "
            '(set it in `streams`, e.g. {"name": ..., "syncMode": "INCREMENTAL", "cursorField": ...})'
        )


def stored_choices(connection: Connection) -> dict[str, StreamChoice]:
    """The connection's saved `streams` entries as StreamChoices, by stream name."""
    choices: dict[str, StreamChoice] = {}
    for entry in connection.streams or []:
        choices[str(entry["name"])] = StreamChoice(
            SyncMode(entry.get("syncMode") or connection.sync_mode),
            entry.get("cursorField"),
            list(entry["primaryKey"]) if entry.get("primaryKey") else None,
        )
    return choices


class ConnectionService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.repository = ConnectionRepository(session, tenant_id)
        self.sources = SourceService(session, tenant_id, runtime)
        self.tenant_id = tenant_id
        self.runtime = runtime
        self.engine = runtime.engine

    @property
    def _remote(self) -> bool:
        return bool(getattr(self.engine, "runs_syncs_remotely", False))

    async def get(self, connection_id: uuid.UUID, *, for_update: bool = False) -> Connection:
        connection = await self.repository.get(connection_id, for_update=for_update)
        if connection is None:
            raise NotFoundError(f"Connection {connection_id} not found")
        return connection

    async def source_of(self, connection: Connection) -> Source:
        return await self.sources.get(connection.source_id)

    async def list_all(self) -> list[tuple[Connection, str]]:
        return await self.repository.list_with_sources()

    async def _source(self, source_id: uuid.UUID | str) -> Source:
        try:
            parsed = source_id if isinstance(source_id, uuid.UUID) else uuid.UUID(source_id)
        except ValueError:
            raise InvalidRequestError("sourceId must be a UUID") from None
        return await self.sources.get(parsed)  # another tenant's source: 404 like a missing one

    async def selected(self, source: Source, names: list[str] | None) -> list[DiscoveredStream]:
        """The selected streams from the source's catalog (discovering first when there is none)."""
        catalog = await self.sources.catalog(source)
        if names is None:
            return catalog
        by_name = {s.name: s for s in catalog}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise InvalidRequestError(
                f"selectedStreams not in the source's catalog: {', '.join(unknown)}; "
                f"available: {', '.join(sorted(by_name))}"
            )
        if not names:
            raise InvalidRequestError("selectedStreams must name at least one stream (or be null for all)")
        return [by_name[n] for n in dict.fromkeys(names)]

    def _validate_mode(self, mode: SyncMode, streams: list[DiscoveredStream]) -> None:
        if mode is SyncMode.CDC and not self._remote:
            raise InvalidRequestError(
                "syncMode CDC needs the airbyte engine: CDC sources (postgres, mysql, mssql, mongodb) "
                "are Java "
                "connectors that the embedded engine cannot run"
            )
        unsupported = [s.name for s in streams if mode not in s.supported_sync_modes]
        if unsupported and mode is not SyncMode.CDC:
            raise InvalidRequestError(
                f"syncMode {mode.value} is not supported by stream(s): {', '.join(unsupported)}"
            )

    async def _apply(self, connection: Connection, data: Any) -> tuple[Source, list[DiscoveredStream]]:
        source = await self._source(data.source_id)
        destination = (data.destination_type or "iceberg").lower()
        if destination not in DESTINATION_TYPES:
            raise InvalidRequestError(
                f"destinationType '{data.destination_type}' is not supported; use 'iceberg'"
            )
        try:
            mode = SyncMode((data.sync_mode or SyncMode.FULL_REFRESH.value).upper())
        except ValueError:
            raise InvalidRequestError("syncMode must be one of FULL_REFRESH, INCREMENTAL, CDC") from None
        schedule = validate_cron(data.sync_schedule) if data.sync_schedule else None
        if data.namespace is not None and not _IDENTIFIER.match(data.namespace):
            raise InvalidRequestError(
                "namespace must use letters, digits and underscores, not starting with a digit"
            )
        names = data.selected_streams
        if names is None and data.streams:
            names = [entry.name for entry in data.streams]
        streams = await self.selected(source, names)
        choices = stream_choices(data.streams, streams, mode, names_given=data.selected_streams is not None)
        self._validate_mode(mode, [s for s in streams if s.name not in choices])
        for name, choice in choices.items():
            self._validate_mode(choice.sync_mode, [s for s in streams if s.name == name])
        require_cursors(streams, choices, mode)
        if await self.repository.name_taken(data.name, exclude=connection.id):
            raise ConflictError(f"A connection named '{data.name}' already exists")
        connection.source_id = source.id
        connection.name = data.name
        connection.destination_type = destination
        connection.sync_mode = mode.value
        if schedule != connection.sync_schedule:
            paused = connection.status == ConnectionStatus.PAUSED
            connection.next_run_at = (
                next_run(schedule, datetime.now(UTC)) if schedule and not paused else None
            )
        connection.sync_schedule = schedule
        # `streams` entries alone select their streams (as if listed in selectedStreams)
        connection.selected_streams = list(dict.fromkeys(names)) if names else None
        connection.namespace = data.namespace
        connection.streams = (
            [
                {
                    "name": entry.name,
                    "syncMode": choices[entry.name].sync_mode.value,
                    "cursorField": choices[entry.name].cursor_field,
                    "primaryKey": choices[entry.name].primary_key,
                }
                for entry in data.streams
            ]
            if data.streams
            else None
        )
        connection.partition_specs = await self._partition_specs(data, streams)
        return source, streams

    async def _partition_specs(self, data: Any, streams: list[DiscoveredStream]) -> dict[str, Any] | None:
        """Validated `partitionSpecs`: 400 for unknown streams, columns, transforms; 409 if a table differs"""
        from ingest.iceberg import parse_fields
        from ingest.iceberg.partitioning import check_columns

        raw = getattr(data, "partition_specs", None)
        if not raw:
            return None
        evolve = bool(getattr(data, "evolve_partition_specs", False))
        by_name = {s.name: s for s in streams}
        specs: dict[str, list[dict[str, str]]] = {}
        for stream, fields in raw.items():
            if stream not in by_name:
                raise InvalidRequestError(f"partitionSpecs: '{stream[:100]}' is not a selected stream")
            parsed = parse_fields([{"column": f.column, "transform": f.transform} for f in fields]) or []
            check_columns(parsed, {c.name: c.type.value for c in by_name[stream].columns})
            await asyncio.to_thread(
                self.runtime.warehouse.check_partition_spec,
                self.tenant_id,
                data.namespace,
                table_name(stream),
                parsed,
                evolve=evolve,
            )
            specs[stream] = [f.as_dict() for f in parsed]
        return {"streams": specs, "evolve": evolve}

    def _remote_spec(
        self, connection: Connection, source: Source, streams: list[DiscoveredStream]
    ) -> RemoteConnection:
        from ingest.iceberg.catalog import tenant_namespace

        return RemoteConnection(
            tenant_id=str(self.tenant_id),
            connection_id=str(connection.id),
            name=connection.name,
            source_external_id=source.external_id or "",
            streams=streams,
            sync_mode=SyncMode(connection.sync_mode),
            cron=connection.sync_schedule,
            namespace=tenant_namespace(self.tenant_id, connection.namespace)[0],
            active=connection.status != ConnectionStatus.PAUSED,
        )

    async def create(self, data: Any) -> tuple[Connection, Source]:
        connection = Connection(id=uuid.uuid4(), tenant_id=self.tenant_id, status=ConnectionStatus.PENDING)
        source, streams = await self._apply(connection, data)
        try:
            # our row first: a name taken meanwhile fails here, before anything exists in Airbyte
            async with self.repository.session.begin_nested():
                await self.repository.add(connection)
        except IntegrityError:
            raise ConflictError(f"A connection named '{data.name}' already exists") from None
        if self._remote:
            await self.create_remote(connection, source, streams)
        log.info("connections.created", connection_id=str(connection.id), tenant=str(self.tenant_id))
        return connection, source

    async def update(self, connection_id: uuid.UUID, data: Any) -> tuple[Connection, Source]:
        connection = await self.get(connection_id, for_update=True)
        previous_source = connection.source_id
        source, streams = await self._apply(connection, data)
        if previous_source != source.id:
            connection.state = None  # state belongs to the old source's streams
        if self._remote:
            await self._update_remote(
                connection, source, streams, source_changed=previous_source != source.id
            )
        connection.updated_at = datetime.now(UTC)
        await self.repository.session.flush()
        return connection, source

    async def delete(self, connection_id: uuid.UUID) -> None:
        """Delete; a running sync is cancelled first (its job sees the sync gone and stops the connector)."""
        from ingest.syncs.service import SyncService

        connection = await self.get(connection_id, for_update=True)
        active = await self.repository.active_sync(connection.id)
        if active is not None:
            await SyncService(self.repository.session, self.tenant_id, self.runtime).cancel(active.id)
        if self._remote and connection.external_id:
            await self.engine.delete_connection(str(self.tenant_id), connection.external_id)
        await self.repository.delete(connection)
        log.info("connections.deleted", connection_id=str(connection_id), tenant=str(self.tenant_id))

    # -- lifecycle: pause, resume, auto-disable

    async def pause(self, connection_id: uuid.UUID) -> Connection:
        """Pause: no scheduled sync runs until resumed (a sync already running finishes). Idempotent."""
        connection = await self.get(connection_id, for_update=True)
        await self.pause_connection(connection, "Paused")
        return connection

    async def resume(self, connection_id: uuid.UUID) -> Connection:
        """Resume: the schedule restarts from now (missed runs are not replayed). Idempotent."""
        connection = await self.get(connection_id, for_update=True)
        await self.resume_connection(connection)
        return connection

    async def pause_source(self, source_id: uuid.UUID) -> list[Connection]:
        await self.sources.get(source_id)  # another tenant's source: 404
        connections = await self.repository.of_source(source_id)
        for connection in connections:
            await self.pause_connection(connection, "Paused with its source")
        return connections

    async def resume_source(self, source_id: uuid.UUID) -> list[Connection]:
        await self.sources.get(source_id)
        connections = await self.repository.of_source(source_id)
        for connection in connections:
            await self.resume_connection(connection)
        return connections

    async def pause_connection(self, connection: Connection, reason: str, *, automatic: bool = False) -> bool:
        """PAUSED with `reason`, the schedule cleared, Airbyte's copy set inactive; False if already paused.

        With `automatic` (the auto-disable inside a sync's job) an Airbyte failure is logged and
        left to drift repair (`ingest airbyte reconcile --repair` knows a paused connection is inactive).
        """
        if connection.status == ConnectionStatus.PAUSED:
            return False
        connection.status = ConnectionStatus.PAUSED
        connection.status_reason = reason
        connection.paused_at = datetime.now(UTC)
        connection.next_run_at = None
        connection.updated_at = datetime.now(UTC)
        await self.repository.session.flush()
        if self._remote and connection.external_id:
            try:
                await self.engine.set_connection_status(connection.external_id, active=False)
            except RemoteNotFoundError:
                pass  # the copy is gone: it is re-created (inactive) on next use or by drift repair
            except Exception:
                if not automatic:
                    raise
                log.warning("connections.remote_pause_failed", connection_id=str(connection.id))
        await emit(
            self.repository.session,
            self.tenant_id,
            "connection.paused",
            {
                "connectionId": str(connection.id),
                "sourceId": str(connection.source_id),
                "status": connection.status,
                "automatic": automatic,
                "consecutiveFailures": connection.consecutive_failures or 0,
                "pausedAt": iso(connection.paused_at),
            },
        )
        log.info(
            "connections.paused", connection_id=str(connection.id), tenant=str(self.tenant_id), reason=reason
        )
        return True

    async def resume_connection(self, connection: Connection) -> bool:
        if connection.status != ConnectionStatus.PAUSED:
            return False
        last = await self.repository.last_ended_status(connection.id)
        connection.status = {"SUCCEEDED": ConnectionStatus.ACTIVE, "FAILED": ConnectionStatus.ERROR}.get(
            last or "", ConnectionStatus.PENDING
        )
        connection.status_reason = None
        connection.paused_at = None
        connection.consecutive_failures = 0
        now = datetime.now(UTC)
        connection.next_run_at = next_run(connection.sync_schedule, now) if connection.sync_schedule else None
        connection.updated_at = now
        await self.repository.session.flush()
        if self._remote and connection.external_id:
            with contextlib.suppress(RemoteNotFoundError):  # re-created (active) on next use
                await self.engine.set_connection_status(connection.external_id, active=True)
        log.info("connections.resumed", connection_id=str(connection.id), tenant=str(self.tenant_id))
        return True

    async def record_failure(self, connection: Connection, message: str | None) -> None:
        """A sync of `connection` failed: count it; warn at INGEST_FAILURE_WARNING_AFTER, pause at
        INGEST_DISABLE_AFTER_FAILURES consecutive failures (with the reason, audited as `system`)."""
        from ingest.audit.service import SYSTEM_ACTOR, record_audit

        settings = self.runtime.settings
        connection.consecutive_failures = (connection.consecutive_failures or 0) + 1
        failures = connection.consecutive_failures
        if connection.status != ConnectionStatus.PAUSED:
            connection.status = ConnectionStatus.ERROR
        if settings.failure_warning_after and failures == settings.failure_warning_after:
            log.warning("connections.failure_warning", connection_id=str(connection.id), failures=failures)
            await emit(
                self.repository.session,
                self.tenant_id,
                "connection.failure_warning",
                {
                    "connectionId": str(connection.id),
                    "status": connection.status,
                    "consecutiveFailures": failures,
                    "disableAfterFailures": settings.disable_after_failures,
                },
            )
        if settings.disable_after_failures and failures >= settings.disable_after_failures:
            last = f"; last error: {message[:300]}" if message else ""
            reason = f"Disabled after {failures} consecutive failed syncs{last}"
            if await self.pause_connection(connection, reason, automatic=True):
                await record_audit(
                    self.repository.session,
                    SYSTEM_ACTOR,
                    self.tenant_id,
                    "connection.disable",
                    "connection",
                    connection.id,
                )

    def record_success(self, connection: Connection) -> None:
        connection.consecutive_failures = 0
        if connection.status != ConnectionStatus.PAUSED:
            connection.status = ConnectionStatus.ACTIVE

    # -- the platform copy (INGEST_ENGINE=airbyte); see SourceService for how drift is repaired

    async def create_remote(
        self, connection: Connection, source: Source, streams: list[DiscoveredStream]
    ) -> str:
        """Create the connection's copy in Airbyte (re-creating its source's copy if that is gone)."""
        await self.sources.prepare_platform()
        if not source.external_id:
            await self.sources.create_remote(source)
        try:
            external_id: str = await self.engine.create_connection(
                self._remote_spec(connection, source, streams)
            )
        except RemoteNotFoundError:
            remote = await self.engine.list_remote(str(self.tenant_id))
            if source.external_id in remote.source_ids:
                raise  # something else is missing (the destination): not ours to repair here
            await self.sources.create_remote(source)
            log.warning("sources.remote_recreated", source_id=str(source.id), reason="deleted in Airbyte")
            external_id = await self.engine.create_connection(self._remote_spec(connection, source, streams))
        try:
            connection.external_id = external_id
            await self.repository.session.flush()
        except BaseException:
            await self.delete_remote_quietly(external_id)
            raise
        return external_id

    async def delete_remote_quietly(self, external_id: str) -> None:
        try:
            await self.engine.delete_connection(str(self.tenant_id), external_id)
        except Exception:
            log.warning("connections.remote_orphaned", external_id=external_id, tenant=str(self.tenant_id))

    async def _update_remote(
        self, connection: Connection, source: Source, streams: list[DiscoveredStream], *, source_changed: bool
    ) -> None:
        previous = connection.external_id
        if previous and not source_changed:
            try:
                await self.engine.update_connection(previous, self._remote_spec(connection, source, streams))
                return
            except RemoteNotFoundError:
                log.warning(
                    "connections.remote_recreated", connection_id=str(connection.id), reason="deleted"
                )
        if previous and source_changed:
            # Airbyte cannot move a connection to another source: replace it. The old copy goes first, so a
            # failure leaves no orphan (our row keeps the stale id and the copy is re-created on next use)
            await self.engine.delete_connection(str(self.tenant_id), previous)
        await self.create_remote(connection, source, streams)

    async def recreate_remote(self, connection: Connection) -> str:
        """A new Airbyte copy for a connection whose copy is gone (the sync job calls this on a 404)."""
        source = await self.source_of(connection)
        streams = await self.selected(source, connection.selected_streams)
        previous = connection.external_id
        external_id = await self.create_remote(connection, source, streams)
        log.warning(
            "connections.remote_recreated",
            connection_id=str(connection.id),
            tenant=str(self.tenant_id),
            previous_external_id=previous,
            external_id=external_id,
        )
        return external_id


# -- drift between our rows and Airbyte (`ingest airbyte reconcile`) -------------------------------------


@dataclass
class Drift:
    """What differs between a tenant's rows and its Airbyte workspace."""

    tenant_id: uuid.UUID
    workspace_id: str | None
    missing_sources: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (id, name)
    missing_connections: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    orphan_sources: list[str] = field(default_factory=list)
    orphan_connections: list[str] = field(default_factory=list)
    # (id, name, should be active): a paused connection active in Airbyte, or the other way round
    status_mismatches: list[tuple[uuid.UUID, str, bool]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # what --repair did, in words

    @property
    def clean(self) -> bool:
        return not (
            self.missing_sources
            or self.missing_connections
            or self.orphan_sources
            or self.orphan_connections
            or self.status_mismatches
        )


async def reconcile_tenant(runtime: Runtime, tenant_id: uuid.UUID, *, repair: bool) -> Drift:
    """Compare the tenant's sources and connections with its Airbyte workspace; with `repair`, fix it.

    Repair deletes Airbyte objects we do not know (orphans left by a request that failed after its remote
    create, or made in Airbyte's UI) and re-creates the copies Airbyte lost, from our rows. Orphans go first:
    deleting a source in Airbyte deletes its connections, so what is missing is listed again afterwards.
    """
    engine = runtime.engine
    tenant = str(tenant_id)
    async with runtime.session_maker() as session, session.begin():
        connections = ConnectionService(session, tenant_id, runtime)
        workspace = await connections.sources.remember_workspace()
        remote = await engine.list_remote(tenant)
        drift = Drift(tenant_id, remote.workspace_id or workspace)
        ours_sources = await connections.sources.list_all()
        ours_connections = [c for c, _ in await connections.list_all()]
        drift.missing_sources = [
            (s.id, s.name) for s in ours_sources if s.external_id not in remote.source_ids
        ]
        drift.missing_connections = [
            (c.id, c.name) for c in ours_connections if c.external_id not in remote.connection_ids
        ]
        drift.orphan_sources = sorted(remote.source_ids - {s.external_id for s in ours_sources})
        drift.orphan_connections = sorted(remote.connection_ids - {c.external_id for c in ours_connections})
        drift.status_mismatches = [
            (c.id, c.name, c.status != ConnectionStatus.PAUSED)
            for c in ours_connections
            if c.external_id in remote.connection_ids
            and (c.status == ConnectionStatus.PAUSED) != (c.external_id in remote.inactive_connection_ids)
        ]
        if not repair or drift.clean:
            return drift

        for external_id in drift.orphan_connections:
            await engine.delete_connection(tenant, external_id)
            drift.repaired.append(f"deleted orphan connection {external_id}")
        for external_id in drift.orphan_sources:
            await engine.delete_source(tenant, external_id)
            drift.repaired.append(f"deleted orphan source {external_id}")
        if drift.orphan_sources:
            remote = await engine.list_remote(tenant)
        by_id = {s.id: s for s in ours_sources}
        for source in ours_sources:
            if source.external_id not in remote.source_ids:
                await connections.sources.create_remote(source)
                drift.repaired.append(f"re-created source {source.id} as {source.external_id}")
        for connection in ours_connections:
            if connection.external_id not in remote.connection_ids:
                source = by_id[connection.source_id]
                streams = await connections.selected(source, connection.selected_streams)
                await connections.create_remote(connection, source, streams)
                drift.repaired.append(f"re-created connection {connection.id} as {connection.external_id}")
        by_connection = {c.id: c for c in ours_connections}
        for connection_id, _name, active in drift.status_mismatches:
            remote_id = by_connection[connection_id].external_id
            assert remote_id is not None
            await engine.set_connection_status(remote_id, active=active)
            drift.repaired.append(f"set connection {connection_id} {'active' if active else 'inactive'}")
        log.info("connections.reconciled", tenant=tenant, repairs=len(drift.repaired))
        return drift
