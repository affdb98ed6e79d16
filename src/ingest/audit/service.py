"""Recording and reading audit events.

Every successful mutating API request is recorded once, centrally (`ingest.audit.controller.audit_request`,
called by the request's database session just before it commits: the event exists exactly when the change
does). Changes made outside a request (the auto-disable of a failing connection, CLI commands) and routes
that want to record something else call `record_audit` themselves, in the transaction of the change.
An event holds names and ids only: never a config, a secret or a request body.
"""

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ingest.audit.repository import AuditRepository
from ingest.core.errors import InvalidRequestError
from ingest.db.models import AuditEvent
from ingest.jobs.runtime import Runtime

MAX_PAGE_SIZE = 200
SYSTEM_ACTOR = "system"
_INSERTED = "ingest.audit.inserted"


async def record_audit(
    session: AsyncSession,
    actor: str,
    tenant_id: uuid.UUID,
    action: str,
    target_type: str,
    target_id: str | uuid.UUID | None,
    request_id: str | None = None,
) -> AuditEvent:
    """Add one audit event to `session`'s transaction (the caller commits it with the change it records).

    `actor` is the token subject (or `system`), `action` a dotted `<noun>.<verb>` such as `connection.pause`,
    `target_type`/`target_id` the object changed. Pass ids and names only, never values from a config.
    """
    audit = AuditEvent(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        actor=actor[:255],
        action=action[:64],
        target_type=target_type[:32],
        target_id=str(target_id)[:64] if target_id is not None else None,
        request_id=request_id[:128] if request_id else None,
        created_at=datetime.now(UTC),
    )
    await AuditRepository(session, tenant_id).add(audit)
    return audit


def track_inserts(session: AsyncSession) -> None:
    """Remember the rows `session` inserts, so a create can be audited with the id it made."""
    inserted: list[tuple[str, Any]] = []
    session.info[_INSERTED] = inserted

    def after_flush(flushed: Session, _context: Any) -> None:
        for obj in flushed.new:
            table = getattr(obj, "__tablename__", None)
            if table is not None and table != AuditEvent.__tablename__:
                inserted.append((table, getattr(obj, "id", None)))

    event.listen(session.sync_session, "after_flush", after_flush)


def inserted_id(session: AsyncSession, noun: str) -> Any:
    """The id of the first `noun` row (`source` -> table `sources`) this session inserted, if any."""
    for table, object_id in session.info.get(_INSERTED, []):
        if table in {noun, f"{noun}s"}:
            return object_id
    return None


class AuditService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.repository = AuditRepository(session, tenant_id)

    async def page(
        self, action: str | None, target_id: str | None, since: datetime | None, page: int, size: int
    ) -> tuple[list[AuditEvent], int, int]:
        if page < 0:
            raise InvalidRequestError("page must be >= 0")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequestError(f"size must be between 1 and {MAX_PAGE_SIZE}")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        rows, total = await self.repository.page(action, target_id, since, page, size)
        return rows, total, math.ceil(total / size) if total else 0
