"""`X-Tenant-Id` -> the tenant id, checked against the caller's token."""

import uuid
from typing import Any, Protocol

from litestar import Request
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.auth import principal_of
from ingest.core.errors import ForbiddenError, InvalidRequestError
from ingest.jobs.runtime import Runtime

TENANT_HEADER = "X-Tenant-Id"


def parse_tenant(value: str | None) -> uuid.UUID:
    if not value:
        raise InvalidRequestError(f"Missing {TENANT_HEADER} header")
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidRequestError(f"{TENANT_HEADER} header must be a UUID") from None


async def provide_tenant_id(request: Request[Any, Any, Any]) -> uuid.UUID:
    """The request's tenant: 400 when missing or not a UUID, 403 when the token does not grant it.

    An API key belongs to one tenant: the header may be left out (the key's tenant applies) or must name it.
    """
    # read here rather than declared as a header parameter: the OpenAPI document declares the header
    # once, as the `TenantId` security scheme every tenant-scoped operation requires
    header = request.headers.get(TENANT_HEADER)
    principal = principal_of(request)
    if principal.api_key_id is not None:
        if not header:
            return next(iter(principal.tenant_ids))
        tenant = parse_tenant(header)
        if tenant not in principal.tenant_ids:
            raise ForbiddenError(f"API key does not grant access to tenant {tenant}")
        return tenant
    tenant = parse_tenant(header)
    if tenant not in principal.tenant_ids:
        raise ForbiddenError(f"Token does not grant access to tenant {tenant}")
    return tenant


# Controllers of tenant-scoped routes set `dependencies = TENANT_DEPENDENCY`.
TENANT_DEPENDENCY = {"tenant_id": Provide(provide_tenant_id)}


class TenantService(Protocol):
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None: ...


def tenant_dependencies(service: type[TenantService]) -> dict[str, Provide]:
    """A controller's `dependencies`: the checked tenant id, and `service` built for that tenant."""

    async def provide_service(
        db_session: AsyncSession, tenant_id: NamedDependency[uuid.UUID], runtime: Runtime
    ) -> Any:
        return service(db_session, tenant_id, runtime)

    return {**TENANT_DEPENDENCY, "service": Provide(provide_service)}
