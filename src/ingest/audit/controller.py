"""Audit API: `/api/v1/audit-events`."""

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import QueryParameter

from ingest.audit.schemas import AuditEventPage, AuditEventResponse
from ingest.audit.service import AuditService
from ingest.auth import requires_read
from ingest.core.errors import InvalidRequestError
from ingest.db.models import AuditEvent
from ingest.tenancy import tenant_dependencies


def to_response(event: AuditEvent) -> AuditEventResponse:
    return AuditEventResponse(
        id=str(event.id),
        tenant_id=str(event.tenant_id),
        actor=event.actor,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        request_id=event.request_id,
        created_at=event.created_at,
    )


def parse_since(value: str | None) -> datetime | None:
    """An ISO 8601 time (a bare number is not one: msgspec would read it as a Unix time)."""
    if value is None:  # `since=` (empty) is not a time either
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequestError("since must be an ISO 8601 timestamp (2026-12-02T05:00:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class AuditController(Controller):
    path = "/api/v1/audit-events"
    tags = ["audit"]
    dependencies = tenant_dependencies(AuditService)

    @get("/", operation_id="list_audit_events", summary="Audit trail", guards=[requires_read])
    async def list_audit_events(
        self,
        service: AuditService,
        action: Annotated[
            str | None, QueryParameter(required=False, description="e.g. connection.pause")
        ] = None,
        target_id: Annotated[str | None, QueryParameter(name="targetId", required=False)] = None,
        since: Annotated[
            str | None,
            QueryParameter(required=False, format="date-time", description="ISO-8601; events at or after it"),
        ] = None,
        page: Annotated[int, QueryParameter(ge=0)] = 0,
        size: Annotated[int, QueryParameter(ge=1, le=200)] = 20,
    ) -> AuditEventPage:
        """The tenant's audit events, newest first: who changed what, when, under which request id."""
        rows, total, pages = await service.page(action, target_id, parse_since(since), page, size)
        return AuditEventPage(
            content=[to_response(e) for e in rows],
            total_elements=total,
            total_pages=pages,
            number=page,
            size=size,
        )


def route_handlers() -> list[Any]:
    return [AuditController]
