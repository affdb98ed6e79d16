"""Tenant-scoped queries on syncs."""

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import Connection, Sync

SORTABLE: dict[str, Any] = {
    "startedAt": Sync.started_at,
    "completedAt": Sync.completed_at,
    "createdAt": Sync.created_at,
    "status": Sync.status,
    "recordsSynced": Sync.records_synced,
    "bytesSynced": Sync.bytes_synced,
    "durationMs": Sync.duration_ms,
}


class SyncRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get(self, sync_id: uuid.UUID, *, for_update: bool = False) -> tuple[Sync, str] | None:
        query = (
            select(Sync, Connection.name)
            .join(Connection, Connection.id == Sync.connection_id)
            .where(Sync.tenant_id == self.tenant_id, Sync.id == sync_id)
        )
        if for_update:
            query = query.with_for_update(of=Sync)
        row = (await self.session.execute(query)).first()
        return (row[0], row[1]) if row else None

    async def page(
        self, connection_id: uuid.UUID | None, page: int, size: int, sort: str, descending: bool
    ) -> tuple[list[tuple[Sync, str]], int]:
        where = [Sync.tenant_id == self.tenant_id]
        if connection_id is not None:
            where.append(Sync.connection_id == connection_id)
        total = int(
            (await self.session.execute(select(func.count()).select_from(Sync).where(*where))).scalar_one()
        )
        column = SORTABLE[sort]
        order = column.desc().nulls_first() if descending else column.asc().nulls_last()
        query = (
            select(Sync, Connection.name)
            .join(Connection, Connection.id == Sync.connection_id)
            .where(*where)
            .order_by(order, Sync.created_at.desc(), Sync.id)
            .offset(page * size)
            .limit(size)
        )
        rows = [(r[0], r[1]) for r in (await self.session.execute(query)).all()]
        return rows, total

    async def add(self, sync: Sync) -> Sync:
        self.session.add(sync)
        await self.session.flush()
        return sync
