"""API keys: `/api/v1/api-keys`."""

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ingest.api_keys.schemas import ApiKeyResponse, CreateApiKeyRequest, CreatedApiKeyResponse
from ingest.api_keys.service import ApiKeyService
from ingest.auth import Principal, principal_of, requires_manage
from ingest.db.models import ApiKey
from ingest.tenancy import tenant_dependencies


def to_response(row: ApiKey) -> ApiKeyResponse:
    return ApiKeyResponse(
        id=str(row.id),
        name=row.name,
        prefix=row.prefix,
        permissions=list(row.permissions),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["api-keys"]
    dependencies = tenant_dependencies(ApiKeyService)
    guards = [requires_manage]

    @post("/", operation_id="create_api_key", summary="Create an API key", status_code=HTTP_201_CREATED)
    async def create_api_key(
        self, request: Request[Principal, Any, Any], data: CreateApiKeyRequest, service: ApiKeyService
    ) -> CreatedApiKeyResponse:
        """Issue a key for this tenant with a subset of the caller's permissions; shown only here."""
        row, key = await service.create(principal_of(request), data.name, data.permissions, data.expires_at)
        return CreatedApiKeyResponse(
            id=str(row.id),
            name=row.name,
            prefix=row.prefix,
            permissions=list(row.permissions),
            created_by=row.created_by,
            created_at=row.created_at,
            expires_at=row.expires_at,
            key=key,
        )

    @get("/", operation_id="list_api_keys", summary="List API keys")
    async def list_api_keys(self, service: ApiKeyService) -> list[ApiKeyResponse]:
        """The tenant's keys that are not revoked (never the key itself)."""
        return [to_response(row) for row in await service.list_all()]

    @delete(
        "/{api_key_id:uuid}",
        operation_id="revoke_api_key",
        summary="Revoke an API key",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def revoke_api_key(self, api_key_id: uuid.UUID, service: ApiKeyService) -> None:
        """Revoke a key: every service process refuses it from the next request on."""
        await service.revoke(api_key_id)


def route_handlers() -> list[Any]:
    return [ApiKeyController]
