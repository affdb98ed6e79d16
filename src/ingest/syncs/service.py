"""Syncs: trigger, cancel, history and the run (embedded: connector -> Arrow -> Iceberg; airbyte: remote job).

How a run keeps its promises:
- Records are staged per stream as local Parquet (LZ4) while the connector runs (memory bounded by the batch
  size); nothing reaches Iceberg until the connector has finished successfully. A cancel or a failure
  deletes the staging, so the tables are exactly as before.
- Each stream's table then gets ONE commit tagged `sync-<id>`; a retried run skips tables that already
  carry its tag, so a crash between commits never writes a stream twice.
- The connector's STATE is saved only after every table commit, so a crash never loses or duplicates
  records: the retried run starts again from the previous state.
"""

import asyncio
import contextlib
import hashlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.connections.service import ConnectionService, ConnectionStatus, stored_choices, table_name
from ingest.core import observe
from ingest.core.errors import (
    AppError,
    ConflictError,
    ConnectorCancelledError,
    InvalidRequestError,
    NotFoundError,
    UpstreamError,
)
from ingest.core.logging import get_logger
from ingest.db.models import Connection, Sync
from ingest.engines.airbyte.client import RemoteNotFoundError
from ingest.engines.base import DiscoveredStream, ReadRequest, RemoteJobStatus, StateCheckpoint, SyncMode
from ingest.formats.staging import Stage
from ingest.jobs.locks import hold_table
from ingest.jobs.queue import defer
from ingest.jobs.runtime import Runtime
from ingest.sources.service import SourceService
from ingest.syncs.repository import SORTABLE, SyncRepository
from ingest.webhooks.service import emit, iso

log = get_logger("ingest.syncs")


class SyncStatus:
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({SyncStatus.SUCCEEDED, SyncStatus.FAILED, SyncStatus.CANCELLED})
ACTIVE = frozenset({SyncStatus.PENDING, SyncStatus.RUNNING})
MAX_PAGE_SIZE = 200
SORT_FIELDS = tuple(SORTABLE)  # for the controller's documented `sort` pattern


def parse_sort(sort: str | None) -> tuple[str, bool]:
    """`field[,asc|desc]` -> (field, descending); startedAt descending by default."""
    if not sort:
        return "startedAt", True
    field, _, direction = sort.partition(",")
    field, direction = field.strip(), (direction.strip().lower() or "asc")
    if field not in SORTABLE:
        raise InvalidRequestError(f"sort field '{field[:50]}' is not one of {', '.join(SORTABLE)}")
    if direction not in {"asc", "desc"}:
        raise InvalidRequestError("sort direction must be 'asc' or 'desc'")
    return field, direction == "desc"


@dataclass(frozen=True)
class Skipped:
    """A connection a source-level sync did not start, and why (PAUSED, ALREADY_RUNNING)."""

    connection_id: uuid.UUID
    connection_name: str
    reason: str
    sync_id: uuid.UUID | None


class SyncService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.repository = SyncRepository(session, tenant_id)
        self.tenant_id = tenant_id
        self.runtime = runtime

    async def get(self, sync_id: uuid.UUID, *, for_update: bool = False) -> tuple[Sync, str]:
        found = await self.repository.get(sync_id, for_update=for_update)
        if found is None:
            raise NotFoundError(f"Sync {sync_id} not found")
        return found

    async def trigger(self, connection_id: uuid.UUID, trigger: str = "MANUAL") -> tuple[Sync, str]:
        connections = ConnectionService(self.repository.session, self.tenant_id, self.runtime)
        connection = await connections.get(connection_id, for_update=True)
        if connection.status == ConnectionStatus.PAUSED:
            raise ConflictError(f"Connection {connection_id} is paused; resume it before triggering a sync")
        running = await connections.repository.active_sync(connection.id)
        if running is not None:
            raise ConflictError(
                f"Connection {connection_id} already has a {running.status} sync ({running.id})"
            )
        sync = await self.create_pending(connection, trigger)
        return sync, connection.name

    async def trigger_source(self, source_id: uuid.UUID) -> tuple[list[tuple[Sync, str]], list[Skipped]]:
        """Start a sync of every active connection of the source; paused or busy ones are reported."""
        connections = ConnectionService(self.repository.session, self.tenant_id, self.runtime)
        await connections.sources.get(source_id)  # another tenant's source: 404
        started: list[tuple[Sync, str]] = []
        skipped: list[Skipped] = []
        for connection in await connections.repository.of_source(source_id):
            if connection.status == ConnectionStatus.PAUSED:
                skipped.append(Skipped(connection.id, connection.name, "PAUSED", None))
                continue
            running = await connections.repository.active_sync(connection.id)
            if running is not None:
                skipped.append(Skipped(connection.id, connection.name, "ALREADY_RUNNING", running.id))
                continue
            started.append((await self.create_pending(connection, "MANUAL"), connection.name))
        return started, skipped

    async def create_pending(self, connection: Connection, trigger: str) -> Sync:
        """A PENDING sync and its job, in the caller's transaction (the job exists iff the sync does)."""
        session = self.repository.session
        sync = Sync(
            id=uuid.uuid4(),
            tenant_id=self.tenant_id,
            connection_id=connection.id,
            status=SyncStatus.PENDING,
            trigger=trigger,
            created_at=datetime.now(UTC),
        )
        try:
            async with session.begin_nested():
                await self.repository.add(sync)
        except IntegrityError:
            raise ConflictError(f"Connection {connection.id} already has a sync running") from None
        await enqueue_run(session, sync)
        log.info("syncs.triggered", sync_id=str(sync.id), connection_id=str(connection.id), trigger=trigger)
        return sync

    async def cancel(self, sync_id: uuid.UUID) -> None:
        sync, _ = await self.get(sync_id, for_update=True)
        if sync.status in TERMINAL:
            raise ConflictError(f"Sync {sync_id} already ended {sync.status}")
        if sync.status == SyncStatus.PENDING:
            # its job will find it ended and do nothing
            finish(sync, SyncStatus.CANCELLED, "Cancelled before it started")
            await sync_event(self.repository.session, sync)
        else:
            sync.cancel_requested = True  # the running job stops the connector and commits nothing
        await self.repository.session.flush()
        log.info("syncs.cancel_requested", sync_id=str(sync_id), tenant=str(self.tenant_id))

    async def page(
        self, connection_id: str | None, page: int, size: int, sort: str | None
    ) -> tuple[list[tuple[Sync, str]], int]:
        if page < 0:
            raise InvalidRequestError("page must be >= 0")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequestError(f"size must be between 1 and {MAX_PAGE_SIZE}")
        field, descending = parse_sort(sort)
        connection_uuid = None
        if connection_id:
            try:
                connection_uuid = uuid.UUID(connection_id)
            except ValueError:
                raise InvalidRequestError("connectionId must be a UUID") from None
            # another tenant's connection answers exactly like a missing one
            await ConnectionService(self.repository.session, self.tenant_id, self.runtime).get(
                connection_uuid
            )
        return await self.repository.page(connection_uuid, page, size, field, descending)


async def enqueue_run(session: AsyncSession, sync: Sync) -> None:
    """Queue the job that runs (or follows) `sync`, in the caller's transaction."""
    await defer(
        session,
        "syncs.run",
        queue="syncs",
        lock=f"connection:{sync.connection_id}",
        sync_id=str(sync.id),
        tenant_id=str(sync.tenant_id),
    )


SYNC_EVENTS = {
    SyncStatus.RUNNING: "sync.started",
    SyncStatus.SUCCEEDED: "sync.succeeded",
    SyncStatus.FAILED: "sync.failed",
    SyncStatus.CANCELLED: "sync.cancelled",
}


async def sync_event(session: AsyncSession, sync: Sync) -> None:
    """Queue the webhook event of the sync's new status, in the transaction that saves the status."""
    await emit(
        session,
        sync.tenant_id,
        SYNC_EVENTS[sync.status],
        {
            "syncId": str(sync.id),
            "connectionId": str(sync.connection_id),
            "status": sync.status,
            "trigger": sync.trigger,
            "recordsSynced": sync.records_synced,
            "bytesSynced": sync.bytes_synced,
            "startedAt": iso(sync.started_at),
            "completedAt": iso(sync.completed_at),
            "durationMs": sync.duration_ms,
        },
    )


def finish(sync: Sync, status: str, message: str | None = None) -> None:
    now = datetime.now(UTC)
    sync.status = status
    sync.completed_at = now
    sync.error_message = message
    if sync.started_at is not None:
        sync.duration_ms = int((now - sync.started_at).total_seconds() * 1000)


def page_count(total: int, size: int) -> int:
    return math.ceil(total / size) if total else 0


# -- the run ------------------------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    records: int
    bytes: int
    state: Any | None


class SyncRunner:
    """Runs one sync inside a durable job; opens its own sessions (the job carries ids only)."""

    PROGRESS_SECONDS = 1.0

    def __init__(self, runtime: Runtime, tenant_id: uuid.UUID, sync_id: uuid.UUID) -> None:
        self.runtime = runtime
        self.tenant_id = tenant_id
        self.sync_id = sync_id
        self.records = 0
        self._last_progress = 0

    async def run(self) -> None:
        prepared = await self._start()
        if prepared is None:
            return
        connection, source, streams, config, remote_job = prepared
        cancel = asyncio.Event()
        watcher = asyncio.create_task(self._watch(cancel))
        try:
            if getattr(self.runtime.engine, "runs_syncs_remotely", False):
                outcome = await self._run_remote(connection, remote_job, cancel)
            else:
                outcome = await self._run_embedded(connection, source, streams, config, cancel)
        except ConnectorCancelledError:
            await self._end(SyncStatus.CANCELLED, "Cancelled")
        except AppError as exc:
            await self._end(SyncStatus.FAILED, exc.message)
        except Exception:
            log.error("syncs.crashed", sync_id=str(self.sync_id), exc_info=True)
            await self._end(SyncStatus.FAILED, "The sync failed with an internal error; see the service logs")
        else:
            await self._end(SyncStatus.SUCCEEDED, None, outcome)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _start(self) -> Any:
        async with self.runtime.session_maker() as session, session.begin():
            found = await SyncRepository(session, self.tenant_id).get(self.sync_id, for_update=True)
            if found is None:
                return None  # its connection was deleted
            sync, _ = found
            if sync.status in TERMINAL:
                return None
            if sync.cancel_requested:
                finish(sync, SyncStatus.CANCELLED, "Cancelled")
                await sync_event(session, sync)
                return None
            connections = ConnectionService(session, self.tenant_id, self.runtime)
            connection = await connections.get(sync.connection_id)
            sources = SourceService(session, self.tenant_id, self.runtime)
            source = await sources.get(connection.source_id)
            try:
                streams = await connections.selected(source, connection.selected_streams)
            except AppError as exc:
                finish(sync, SyncStatus.FAILED, exc.message)
                await sync_event(session, sync)
                await connections.record_failure(connection, exc.message)
                return None
            sync.status = SyncStatus.RUNNING
            sync.started_at = sync.started_at or datetime.now(UTC)
            sync.attempts += 1
            if sync.attempts == 1:  # a run retried after a worker crash started already
                await sync_event(session, sync)
            config = sources.plain_config(source)
            session.expunge(connection)
            return connection, source, streams, config, sync.external_job_id

    async def _watch(self, cancel: asyncio.Event) -> None:
        """Every second: stop when a cancel was asked (or the sync was deleted); publish progress."""
        while True:
            await asyncio.sleep(self.PROGRESS_SECONDS)
            async with self.runtime.session_maker() as session, session.begin():
                found = await SyncRepository(session, self.tenant_id).get(self.sync_id)
                if found is None or found[0].cancel_requested:
                    cancel.set()
                    return
                if self.records != self._last_progress:
                    found[0].records_synced = self.records
                    self._last_progress = self.records

    async def _run_embedded(
        self,
        connection: Connection,
        source: Any,
        streams: list[DiscoveredStream],
        config: dict[str, Any],
        cancel: asyncio.Event,
    ) -> RunOutcome:
        from ingest.engines.types import arrow_schema
        from ingest.iceberg import parse_fields
        from ingest.iceberg.writer import WriteMode

        engine = self.runtime.engine
        connector = SourceService.connector_for_engine(source.connector_type, engine.name)
        mode = SyncMode(connection.sync_mode)
        choices = stored_choices(connection)
        modes = {s.name: choices[s.name].sync_mode if s.name in choices else mode for s in streams}
        incremental = any(m is SyncMode.INCREMENTAL for m in modes.values())
        request = ReadRequest(
            connector=connector,
            config=config,
            streams=streams,
            incremental=mode is SyncMode.INCREMENTAL,
            state=connection.state if incremental and connection.state else None,
            choices=choices,
            store_blob=self._blob_store(asyncio.get_running_loop()),
        )
        staging_root = self.runtime.settings.data_dir / "staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        stage = Stage(staging_root)
        started, started_cpu = time.monotonic(), time.process_time()
        records = source_bytes = 0
        checkpoint: StateCheckpoint | None = None
        known = {s.name for s in streams}
        try:
            async with engine.read(request, cancel) as run:
                async for event in run:
                    if isinstance(event, StateCheckpoint):
                        checkpoint = event
                        continue
                    if event.stream not in known:
                        continue
                    stage.write(event.stream, event.batch)
                    records += event.batch.num_rows
                    source_bytes += event.source_bytes or event.batch.nbytes
                    self.records = records
            stage.close()
            if cancel.is_set():
                raise ConnectorCancelledError("Cancelled")
            read_seconds, read_cpu = time.monotonic() - started, time.process_time() - started_cpu
            job_id = f"sync-{self.sync_id}"
            for stream in streams:
                stream_mode = modes[stream.name]
                choice = choices.get(stream.name)
                primary_key = (choice.primary_key if choice else None) or [
                    p[0] for p in stream.primary_key if p
                ]
                if stream_mode is not SyncMode.FULL_REFRESH and not stage.rows.get(stream.name):
                    continue  # nothing new: no empty snapshot
                if stream_mode is SyncMode.FULL_REFRESH:
                    write_mode = WriteMode.OVERWRITE
                elif primary_key:
                    write_mode = WriteMode.UPSERT
                else:
                    write_mode = WriteMode.APPEND
                table = table_name(stream.name)
                partitions = (connection.partition_specs or {}).get("streams", {}).get(stream.name)
                spec = {
                    "partition_spec": parse_fields(partitions),
                    "evolve_partition_spec": bool((connection.partition_specs or {}).get("evolve")),
                }
                # the table's lock (shared with imports and maintenance) is held for the commit only
                async with hold_table(
                    self.runtime.session_maker, self.tenant_id, connection.namespace, table
                ):
                    # a bounded lazy scan of the staged records streams into the table
                    await asyncio.to_thread(
                        self.runtime.warehouse.write_batches,
                        self.tenant_id,
                        connection.namespace,
                        table,
                        stage.frame(stream.name, arrow_schema(stream)),
                        job_id=job_id,
                        mode=write_mode,
                        primary_key=primary_key if write_mode is WriteMode.UPSERT else None,
                        row_group_size=stage.row_group_rows(stream.name),
                        **spec,
                    )
            log.info(
                "syncs.committed",
                sync_id=str(self.sync_id),
                records=records,
                read_seconds=round(read_seconds, 2),
                commit_seconds=round(time.monotonic() - started - read_seconds, 2),
                # CPU of the whole server process (all threads) in each phase
                read_cpu_seconds=round(read_cpu, 2),
                commit_cpu_seconds=round(time.process_time() - started_cpu - read_cpu, 2),
            )
        finally:
            stage.remove()
        state = checkpoint.state if incremental and checkpoint is not None else None
        return RunOutcome(records, source_bytes, state)

    def _blob_store(self, loop: asyncio.AbstractEventLoop) -> Callable[[str | None, str, bytes], str]:
        """Stores a reader's blob (a mail attachment) under the tenant's prefix, content-addressed; called
        from the reader's thread. A failed or cancelled sync may leave blobs no row references (harmless:
        the same bytes get the same key next time)."""
        from ingest.storage import attachment_key

        storage = self.runtime.storage
        tenant_id = self.tenant_id

        async def put(key: str, data: bytes) -> None:
            if await storage.exists(key):
                return

            async def chunks() -> AsyncIterator[bytes]:
                yield data

            await storage.write(key, chunks(), len(data))

        def store(name: str | None, content_type: str, data: bytes) -> str:
            key = attachment_key(tenant_id, hashlib.sha256(data).hexdigest())
            asyncio.run_coroutine_threadsafe(put(key, data), loop).result()
            return key

        return store

    async def _run_remote(
        self, connection: Connection, job_id: str | None, cancel: asyncio.Event
    ) -> RunOutcome:
        engine = self.runtime.engine
        if job_id is None:  # a retried run re-attaches to the job it started
            external_id = connection.external_id or await self._recreate_remote_connection()
            try:
                # Airbyte's 409 (a job already runs, e.g. started by its own schedule): we attach to that job
                job = await engine.start_sync(str(self.tenant_id), external_id)
            except RemoteNotFoundError:
                # the connection (or its source) was deleted in Airbyte: re-create from our rows, start again
                external_id = await self._recreate_remote_connection()
                job = await engine.start_sync(str(self.tenant_id), external_id)
            async with self.runtime.session_maker() as session, session.begin():
                found = await SyncRepository(session, self.tenant_id).get(self.sync_id)
                if found is not None:
                    found[0].external_job_id = job.id
            job_id = job.id
        poll = self.runtime.settings.airbyte_poll_seconds
        # The job runs in Airbyte whether or not we can see it: an outage of Airbyte's API while we poll
        # (retries already spent in the client) is waited out, up to the long call limit, then the run fails.
        outage_limit = self.runtime.settings.airbyte_long_timeout_seconds
        unreachable_since: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cancel.wait(), poll)
            if cancel.is_set():
                await engine.cancel_job(job_id)
                raise ConnectorCancelledError("Cancelled")
            try:
                job = await engine.get_job(job_id)
            except UpstreamError:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since > outage_limit:
                    raise
                log.warning("syncs.remote_poll_failed", sync_id=str(self.sync_id), job_id=job_id)
                continue
            unreachable_since = None
            self.records = job.records or 0
            if job.status is RemoteJobStatus.SUCCEEDED:
                return RunOutcome(job.records or 0, job.bytes or 0, None)
            if job.status is RemoteJobStatus.CANCELLED:
                raise ConnectorCancelledError("Cancelled on the Airbyte platform")
            if job.status is RemoteJobStatus.FAILED:
                raise AppError(job.error or "The Airbyte job failed")

    async def _recreate_remote_connection(self) -> str:
        async with self.runtime.session_maker() as session, session.begin():
            found = await SyncRepository(session, self.tenant_id).get(self.sync_id)
            if found is None:
                raise ConnectorCancelledError("The connection was deleted")
            connections = ConnectionService(session, self.tenant_id, self.runtime)
            connection = await connections.get(found[0].connection_id, for_update=True)
            return await connections.recreate_remote(connection)

    async def _end(self, status: str, message: str | None, outcome: RunOutcome | None = None) -> None:
        async with self.runtime.session_maker() as session, session.begin():
            found = await SyncRepository(session, self.tenant_id).get(self.sync_id, for_update=True)
            if found is None:
                return
            sync, _ = found
            finish(sync, status, message)
            sync.records_synced = outcome.records if outcome else (self.records or None)
            sync.bytes_synced = outcome.bytes if outcome else None
            ended = (sync.duration_ms, sync.records_synced, sync.bytes_synced)
            await sync_event(session, sync)
            connections = ConnectionService(session, self.tenant_id, self.runtime)
            connection = await connections.get(sync.connection_id)
            if status == SyncStatus.SUCCEEDED:
                connections.record_success(connection)  # a paused connection stays PAUSED
                connection.last_sync_at = sync.completed_at
                if outcome is not None and outcome.state is not None:
                    connection.state = outcome.state  # only now: the data it covers is committed
                    sync.state_after = outcome.state  # what a rollback of a later sync rewinds to
            elif status == SyncStatus.FAILED:
                await connections.record_failure(connection, message)
        log.info("syncs.ended", sync_id=str(self.sync_id), status=status, tenant=str(self.tenant_id))
        duration_ms, records, nbytes = ended
        observe.sync_finished(status, None if duration_ms is None else duration_ms / 1000, records, nbytes)


async def abandon_sync(tenant_id: uuid.UUID, sync_id: uuid.UUID, runtime: Runtime, message: str) -> None:
    """The sync's job was given up on: end it FAILED rather than leave it RUNNING forever."""
    async with runtime.session_maker() as session, session.begin():
        found = await SyncRepository(session, tenant_id).get(sync_id, for_update=True)
        if found is None or found[0].status in TERMINAL:
            return
        finish(found[0], SyncStatus.FAILED, message)
        await sync_event(session, found[0])
        connections = ConnectionService(session, tenant_id, runtime)
        connection = await connections.get(found[0].connection_id)
        await connections.record_failure(connection, message)
    observe.sync_finished(SyncStatus.FAILED, None, None, None)
