"""Audit API wire structs."""

from datetime import datetime

from ingest.core.schemas import CamelStruct


class AuditEventResponse(CamelStruct):
    id: str
    tenant_id: str
    actor: str
    action: str
    target_type: str
    target_id: str | None
    request_id: str | None
    created_at: datetime


class AuditEventPage(CamelStruct):
    """The sync history's page envelope (zero-based `number`)."""

    content: list[AuditEventResponse]
    total_elements: int
    total_pages: int
    number: int
    size: int
