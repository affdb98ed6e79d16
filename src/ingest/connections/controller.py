"""Connections API: `/api/v1/connections`."""

import uuid
from typing import Any

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ingest.auth import requires_manage, requires_read
from ingest.connections.schemas import (
    ConnectionRequest,
    ConnectionResponse,
    SourceConnectionsResponse,
    StreamConfig,
)
from ingest.connections.service import ConnectionService
from ingest.core.schemas import PartitionFieldSchema
from ingest.db.models import Connection
from ingest.openapi import UPSTREAM, errors
from ingest.tenancy import tenant_dependencies


def to_response(connection: Connection, source_name: str) -> ConnectionResponse:
    return ConnectionResponse(
        id=str(connection.id),
        source_id=str(connection.source_id),
        source_name=source_name,
        name=connection.name,
        destination_type=connection.destination_type,
        sync_schedule=connection.sync_schedule,
        sync_mode=connection.sync_mode,
        status=connection.status,
        last_sync_at=connection.last_sync_at,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
        selected_streams=connection.selected_streams,
        namespace=connection.namespace,
        next_run_at=connection.next_run_at,
        status_reason=connection.status_reason,
        paused_at=connection.paused_at,
        consecutive_failures=connection.consecutive_failures or 0,
        streams=(
            [msgspec.convert(s, StreamConfig) for s in connection.streams]
            if connection.streams is not None
            else None
        ),
        partition_specs={
            stream: [PartitionFieldSchema(**f) for f in fields]
            for stream, fields in connection.partition_specs["streams"].items()
        }
        if connection.partition_specs
        else None,
        evolve_partition_specs=bool(connection.partition_specs and connection.partition_specs.get("evolve")),
    )


class ConnectionController(Controller):
    path = "/api/v1/connections"
    tags = ["connections"]
    dependencies = tenant_dependencies(ConnectionService)

    @post(
        "/",
        operation_id="create_connection",
        summary="Create a connection",
        guards=[requires_manage],
        responses=errors(404, 409, *UPSTREAM, notes={404: "No such source for this tenant"}),
        status_code=HTTP_201_CREATED,
    )
    async def create_connection(
        self, data: ConnectionRequest, service: ConnectionService
    ) -> ConnectionResponse:
        """Create a connection from one of the tenant's sources into Iceberg."""
        connection, source = await service.create(data)
        return to_response(connection, source.name)

    @get("/", operation_id="list_connections", summary="List connections", guards=[requires_read])
    async def list_connections(self, service: ConnectionService) -> list[ConnectionResponse]:
        """The tenant's connections."""
        return [to_response(c, name) for c, name in await service.list_all()]

    @get(
        "/{connection_id:uuid}",
        operation_id="get_connection",
        summary="Get a connection",
        guards=[requires_read],
    )
    async def get_connection(
        self, connection_id: uuid.UUID, service: ConnectionService
    ) -> ConnectionResponse:
        """One connection."""
        connection = await service.get(connection_id)
        return to_response(connection, (await service.source_of(connection)).name)

    @put(
        "/{connection_id:uuid}",
        operation_id="update_connection",
        summary="Update a connection",
        guards=[requires_manage],
        responses=errors(409, *UPSTREAM),
        status_code=HTTP_200_OK,
    )
    async def update_connection(
        self, connection_id: uuid.UUID, data: ConnectionRequest, service: ConnectionService
    ) -> ConnectionResponse:
        """Replace a connection's settings (same body as create)."""
        connection, source = await service.update(connection_id, data)
        return to_response(connection, source.name)

    @delete(
        "/{connection_id:uuid}",
        operation_id="delete_connection",
        summary="Delete a connection",
        guards=[requires_manage],
        responses=errors(*UPSTREAM),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_connection(self, connection_id: uuid.UUID, service: ConnectionService) -> None:
        """Delete a connection; a running sync is cancelled first. The Iceberg tables stay."""
        await service.delete(connection_id)

    @post(
        "/{connection_id:uuid}/pause",
        operation_id="pause_connection",
        summary="Pause a connection",
        guards=[requires_manage],
        status_code=HTTP_200_OK,
        responses=errors(*UPSTREAM),
    )
    async def pause_connection(
        self, connection_id: uuid.UUID, service: ConnectionService
    ) -> ConnectionResponse:
        """Stop scheduled syncs (status PAUSED); a running sync finishes; manual triggers answer 409."""
        connection = await service.pause(connection_id)
        return to_response(connection, (await service.source_of(connection)).name)

    @post(
        "/{connection_id:uuid}/resume",
        operation_id="resume_connection",
        summary="Resume a connection",
        guards=[requires_manage],
        status_code=HTTP_200_OK,
        responses=errors(*UPSTREAM),
    )
    async def resume_connection(
        self, connection_id: uuid.UUID, service: ConnectionService
    ) -> ConnectionResponse:
        """Restart the schedule from now (missed runs are not replayed) and allow triggers again."""
        connection = await service.resume(connection_id)
        return to_response(connection, (await service.source_of(connection)).name)


class SourceLifecycleController(Controller):
    """`/api/v1/sources/{id}/pause|resume`: served here because they act on the source's connections."""

    path = "/api/v1/sources"
    tags = ["sources"]
    dependencies = tenant_dependencies(ConnectionService)

    @post(
        "/{source_id:uuid}/pause",
        operation_id="pause_source",
        summary="Pause a source's connections",
        guards=[requires_manage],
        status_code=HTTP_200_OK,
        responses=errors(*UPSTREAM),
    )
    async def pause_source(
        self, source_id: uuid.UUID, service: ConnectionService
    ) -> SourceConnectionsResponse:
        """Pause every connection of the source."""
        return await self._answer(source_id, await service.pause_source(source_id), service)

    @post(
        "/{source_id:uuid}/resume",
        operation_id="resume_source",
        summary="Resume a source's connections",
        guards=[requires_manage],
        status_code=HTTP_200_OK,
        responses=errors(*UPSTREAM),
    )
    async def resume_source(
        self, source_id: uuid.UUID, service: ConnectionService
    ) -> SourceConnectionsResponse:
        """Resume every paused connection of the source (schedules restart from now)."""
        return await self._answer(source_id, await service.resume_source(source_id), service)

    @staticmethod
    async def _answer(
        source_id: uuid.UUID, connections: list[Connection], service: ConnectionService
    ) -> SourceConnectionsResponse:
        name = (await service.sources.get(source_id)).name
        return SourceConnectionsResponse(
            source_id=str(source_id), connections=[to_response(c, name) for c in connections]
        )


def route_handlers() -> list[Any]:
    return [ConnectionController, SourceLifecycleController]
