"""Syncs API: `/api/v1/syncs`."""

import uuid
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from ingest.auth import requires_manage, requires_read
from ingest.db.models import Sync
from ingest.openapi import errors
from ingest.syncs.schemas import SkippedConnection, SourceSyncResponse, SyncPage, SyncResponse
from ingest.syncs.service import SORT_FIELDS, SyncService, page_count
from ingest.tenancy import tenant_dependencies


def to_response(sync: Sync, connection_name: str) -> SyncResponse:
    return SyncResponse(
        id=str(sync.id),
        connection_id=str(sync.connection_id),
        connection_name=connection_name,
        status=sync.status,
        records_synced=sync.records_synced,
        bytes_synced=sync.bytes_synced,
        started_at=sync.started_at,
        completed_at=sync.completed_at,
        duration_ms=sync.duration_ms,
        trigger=sync.trigger,
        error_message=sync.error_message,
        created_at=sync.created_at,
        rolled_back_at=sync.rolled_back_at,
    )


SORT_PATTERN = rf"^({'|'.join(SORT_FIELDS)})(,(asc|desc|ASC|DESC))?$"
MAX_PAGE = 10_000_000  # page * size stays far inside PostgreSQL's OFFSET range


class SyncController(Controller):
    path = "/api/v1/syncs"
    tags = ["syncs"]
    dependencies = tenant_dependencies(SyncService)

    @post(
        "/connections/{connection_id:uuid}/trigger",
        operation_id="trigger_sync",
        summary="Trigger a sync",
        guards=[requires_manage],
        responses=errors(
            409, notes={409: "The connection is paused, or another of its syncs is pending or running"}
        ),
        status_code=HTTP_202_ACCEPTED,
    )
    async def trigger_sync(self, connection_id: uuid.UUID, service: SyncService) -> SyncResponse:
        """Start a sync now; 409 while another sync of the connection is pending or running."""
        sync, name = await service.trigger(connection_id)
        return to_response(sync, name)

    @post(
        "/{sync_id:uuid}/cancel",
        operation_id="cancel_sync",
        summary="Cancel a sync",
        guards=[requires_manage],
        responses=errors(409, notes={409: "The sync already ended"}),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def cancel_sync(self, sync_id: uuid.UUID, service: SyncService) -> None:
        """Stop a pending or running sync; nothing of it is committed."""
        await service.cancel(sync_id)

    @get("/{sync_id:uuid}", operation_id="get_sync", summary="Get a sync", guards=[requires_read])
    async def get_sync(self, sync_id: uuid.UUID, service: SyncService) -> SyncResponse:
        """A sync's status and figures."""
        return to_response(*await service.get(sync_id))

    @get(
        "/",
        operation_id="list_syncs",
        summary="Sync history",
        guards=[requires_read],
        responses=errors(404, notes={404: "No such connection (connectionId) for this tenant"}),
    )
    async def list_syncs(
        self,
        service: SyncService,
        connection_id: Annotated[
            uuid.UUID | None,
            QueryParameter(name="connectionId", required=False, description="Only this one's"),
        ] = None,
        page: Annotated[int, QueryParameter(ge=0, le=MAX_PAGE)] = 0,
        size: Annotated[int, QueryParameter(ge=1, le=200)] = 20,
        sort: Annotated[
            str | None, QueryParameter(required=False, pattern=SORT_PATTERN, description="field,asc|desc")
        ] = None,
    ) -> SyncPage:
        """Paged sync history, newest first by default; `sort=startedAt,desc`."""
        rows, total = await service.page(str(connection_id) if connection_id else None, page, size, sort)
        return SyncPage(
            content=[to_response(s, n) for s, n in rows],
            total_elements=total,
            total_pages=page_count(total, size),
            number=page,
            size=size,
        )


class SourceSyncController(Controller):
    """`/api/v1/sources/{id}/sync`: served here because it starts syncs."""

    path = "/api/v1/sources"
    tags = ["sources"]
    dependencies = tenant_dependencies(SyncService)

    @post(
        "/{source_id:uuid}/sync",
        operation_id="sync_source",
        summary="Sync all of a source's connections",
        guards=[requires_manage],
        status_code=HTTP_202_ACCEPTED,
        responses=errors(409, notes={409: "A sync of one of its connections started at the same moment"}),
    )
    async def sync_source(self, source_id: uuid.UUID, service: SyncService) -> SourceSyncResponse:
        """Start a sync of each active connection of the source; paused and busy ones are listed."""
        started, skipped = await service.trigger_source(source_id)
        return SourceSyncResponse(
            source_id=str(source_id),
            started=[to_response(s, n) for s, n in started],
            skipped=[
                SkippedConnection(
                    connection_id=str(k.connection_id),
                    connection_name=k.connection_name,
                    reason=k.reason,
                    sync_id=str(k.sync_id) if k.sync_id else None,
                )
                for k in skipped
            ],
        )


def route_handlers() -> list[Any]:
    return [SyncController, SourceSyncController]
