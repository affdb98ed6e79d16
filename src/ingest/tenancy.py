"""`X-Tenant-Id` -> the tenant id, checked against the caller's token."""

import uuid
from typing import Annotated, Any

from litestar import Request
from litestar.di import Provide
from litestar.params import HeaderParameter

from ingest.auth import principal_of
from ingest.core.errors import ForbiddenError, InvalidRequestError

TENANT_HEADER = "X-Tenant-Id"


def parse_tenant(value: str | None) -> uuid.UUID:
    if not value:
        raise InvalidRequestError(f"Missing {TENANT_HEADER} header")
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidRequestError(f"{TENANT_HEADER} header must be a UUID") from None


async def provide_tenant_id(
    request: Request[Any, Any, Any],
    x_tenant_id: Annotated[
        str | None, HeaderParameter(name=TENANT_HEADER, required=False, description="Tenant UUID")
    ] = None,
) -> uuid.UUID:
    """The request's tenant: 400 when missing or not a UUID, 403 when the token does not grant it."""
    tenant = parse_tenant(x_tenant_id)
    if tenant not in principal_of(request).tenant_ids:
        raise ForbiddenError(f"Token does not grant access to tenant {tenant}")
    return tenant


# Controllers of tenant-scoped routes set `dependencies = TENANT_DEPENDENCY`.
TENANT_DEPENDENCY = {"tenant_id": Provide(provide_tenant_id)}
