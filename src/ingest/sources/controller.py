"""Sources API: `/api/v1/sources`."""

import uuid
from typing import Any

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.datastructures import State
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ingest.auth import requires_manage, requires_read
from ingest.db.models import Source
from ingest.engines.base import DiscoveredColumn, DiscoveredStream
from ingest.jobs.runtime import Runtime
from ingest.openapi import UPSTREAM, errors
from ingest.sources.schemas import (
    ColumnSchema,
    ConnectorSpecResponse,
    CreateSourceRequest,
    DiscoverResponse,
    SourceResponse,
    StreamSchema,
    UpdateSourceRequest,
)
from ingest.sources.service import SourceService, masked_config
from ingest.tenancy import tenant_dependencies


def to_response(source: Source, *, with_config: bool = True) -> SourceResponse:
    response = SourceResponse(
        id=str(source.id),
        name=source.name,
        description=source.description,
        connector_type=source.connector_type,
        status=source.status,
        last_tested_at=source.last_tested_at,
        created_at=source.created_at,
        updated_at=source.updated_at,
        status_message=source.status_message,
    )
    if with_config:
        response.connection_config = masked_config(source.config)
    return response


def _column(column: DiscoveredColumn) -> ColumnSchema:
    db_type = column.json_schema.get("db_type")
    return ColumnSchema(
        column.name,
        column.type.value,
        column.nullable,
        [],
        precision=column.precision if column.precision is not None else msgspec.UNSET,
        scale=column.scale if column.scale is not None else msgspec.UNSET,
        db_type=str(db_type) if db_type else msgspec.UNSET,
    )


def to_discover_response(streams: list[DiscoveredStream]) -> DiscoverResponse:
    return DiscoverResponse(
        streams=[
            StreamSchema(
                name=s.name,
                columns=[_column(c) for c in s.columns],
                supported_sync_modes=[m.value for m in s.supported_sync_modes],
                primary_key=s.primary_key,
                cursor_field=s.cursor_field,
                cursor_candidates=(
                    list(s.json_schema["x-cursor-candidates"])
                    if "x-cursor-candidates" in s.json_schema
                    else msgspec.UNSET
                ),
            )
            for s in streams
        ]
    )


class ConnectorTypeController(Controller):
    path = "/api/v1/sources/connector-types"
    tags = ["sources"]
    guards = [requires_read]

    @get("/", operation_id="list_connector_types", summary="List connector types")
    async def list_connector_types(self, state: State) -> list[str]:
        """Connector type identifiers the configured engine can run (no X-Tenant-Id needed)."""
        runtime: Runtime = state.runtime
        return SourceService.connector_types(runtime.engine.name)

    @get(
        "/{connector_type:str}/spec",
        operation_id="get_connector_spec",
        summary="Connector configuration spec",
        responses=errors(*UPSTREAM),
    )
    async def get_connector_spec(self, state: State, connector_type: str) -> ConnectorSpecResponse:
        """The JSON Schema a connector type's connectionConfig must follow (secrets carry airbyte_secret)."""
        runtime: Runtime = state.runtime
        connector = SourceService.connector_by_path(connector_type, runtime.engine.name)
        spec = await runtime.engine.spec(connector)
        return ConnectorSpecResponse(
            connector_type=connector.id,
            title=connector.title,
            engines=sorted(connector.engines),
            connection_specification=spec,
        )


class SourceController(Controller):
    path = "/api/v1/sources"
    tags = ["sources"]
    dependencies = tenant_dependencies(SourceService)

    @post(
        "/",
        operation_id="create_source",
        summary="Create a source",
        guards=[requires_manage],
        responses=errors(409, *UPSTREAM),
        status_code=HTTP_201_CREATED,
    )
    async def create_source(self, data: CreateSourceRequest, service: SourceService) -> SourceResponse:
        """Create a source; its connectionConfig is validated against the connector's spec."""
        source = await service.create(
            data.name, data.connector_type, data.connection_config, data.description
        )
        return to_response(source)

    @get("/", operation_id="list_sources", summary="List sources", guards=[requires_read])
    async def list_sources(self, service: SourceService) -> list[SourceResponse]:
        """The tenant's sources (without connectionConfig)."""
        return [to_response(s, with_config=False) for s in await service.list_all()]

    @get("/{source_id:uuid}", operation_id="get_source", summary="Get a source", guards=[requires_read])
    async def get_source(self, source_id: uuid.UUID, service: SourceService) -> SourceResponse:
        """One source, with its connectionConfig (secrets masked)."""
        return to_response(await service.get(source_id))

    @put(
        "/{source_id:uuid}",
        operation_id="update_source",
        summary="Update a source",
        guards=[requires_manage],
        responses=errors(409, *UPSTREAM),
        status_code=HTTP_200_OK,
    )
    async def update_source(
        self, source_id: uuid.UUID, data: UpdateSourceRequest, service: SourceService
    ) -> SourceResponse:
        """Update a source; a changed connectionConfig makes it INACTIVE until tested again."""
        source = await service.update(source_id, data.name, data.description, data.connection_config)
        return to_response(source)

    @delete(
        "/{source_id:uuid}",
        operation_id="delete_source",
        summary="Delete a source",
        guards=[requires_manage],
        responses=errors(409, *UPSTREAM, notes={409: "Connections still use the source"}),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_source(self, source_id: uuid.UUID, service: SourceService) -> None:
        """Delete a source; 409 while connections use it."""
        await service.delete(source_id)

    @post(
        "/{source_id:uuid}/test",
        operation_id="test_source",
        summary="Test the connection",
        guards=[requires_manage],
        responses=errors(*UPSTREAM),
        status_code=HTTP_200_OK,
    )
    async def test_source(self, source_id: uuid.UUID, service: SourceService) -> SourceResponse:
        """Run the connector's check: ACTIVE when it passes, ERROR (with statusMessage) when not."""
        return to_response(await service.test_connection(source_id))

    @post(
        "/{source_id:uuid}/discover",
        operation_id="discover_source",
        summary="Discover the schema",
        guards=[requires_manage],
        responses=errors(*UPSTREAM),
        status_code=HTTP_200_OK,
    )
    async def discover_source(self, source_id: uuid.UUID, service: SourceService) -> DiscoverResponse:
        """Streams with their columns and supported sync modes; the catalog is kept for connections."""
        return to_discover_response(await service.discover(source_id))


def route_handlers() -> list[Any]:
    return [ConnectorTypeController, SourceController]
