"""Tenant-scoped queries on sources; there is no unscoped get."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import Connection, Source


class SourceRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get(self, source_id: uuid.UUID, *, for_update: bool = False) -> Source | None:
        query = select(Source).where(Source.tenant_id == self.tenant_id, Source.id == source_id)
        if for_update:
            query = query.with_for_update()
        result: Source | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def list_all(self) -> list[Source]:
        query = (
            select(Source).where(Source.tenant_id == self.tenant_id).order_by(Source.created_at, Source.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def name_taken(self, name: str, exclude: uuid.UUID | None = None) -> bool:
        query = select(func.count()).where(Source.tenant_id == self.tenant_id, Source.name == name)
        if exclude is not None:
            query = query.where(Source.id != exclude)
        return bool((await self.session.execute(query)).scalar_one())

    async def count_connections(self, source_id: uuid.UUID) -> int:
        query = select(func.count()).where(
            Connection.tenant_id == self.tenant_id, Connection.source_id == source_id
        )
        return int((await self.session.execute(query)).scalar_one())

    async def add(self, source: Source) -> Source:
        self.session.add(source)
        await self.session.flush()
        return source

    async def delete(self, source: Source) -> None:
        await self.session.delete(source)
        await self.session.flush()
