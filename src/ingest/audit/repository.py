"""Tenant-scoped queries on audit events."""

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import AuditEvent


class AuditRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def page(
        self, action: str | None, target_id: str | None, since: datetime | None, page: int, size: int
    ) -> tuple[list[AuditEvent], int]:
        where = [AuditEvent.tenant_id == self.tenant_id]
        if action:
            where.append(AuditEvent.action == action)
        if target_id:
            where.append(AuditEvent.target_id == target_id)
        if since is not None:
            where.append(AuditEvent.created_at >= since)
        total = int(
            (
                await self.session.execute(select(func.count()).select_from(AuditEvent).where(*where))
            ).scalar_one()
        )
        query = (
            select(AuditEvent)
            .where(*where)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id)
            .offset(page * size)
            .limit(size)
        )
        return list((await self.session.execute(query)).scalars()), total

    async def add(self, event: AuditEvent) -> None:
        self.session.add(event)
        await self.session.flush()
