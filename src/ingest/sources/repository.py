"""Tenant-scoped queries on sources; there is no unscoped get."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import Connection, Source, Tenant


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


async def tenant_row(session: AsyncSession, tenant_id: uuid.UUID, *, lock: bool = False) -> Tenant | None:
    """The tenant's bookkeeping row (Airbyte workspace id); with `lock`, created if missing and locked."""
    if lock:
        await session.execute(
            insert(Tenant).values(id=tenant_id).on_conflict_do_nothing(index_elements=["id"])
        )
    query = select(Tenant).where(Tenant.id == tenant_id)
    if lock:
        query = query.with_for_update()
    result: Tenant | None = (await session.execute(query)).scalar_one_or_none()
    return result


async def all_tenant_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every tenant that has a source, a connection or a tenants row (for `ingest airbyte reconcile`)."""
    query = (
        select(Source.tenant_id)
        .union(select(Connection.tenant_id), select(Tenant.id))
        .order_by(Source.tenant_id)
    )
    return list((await session.execute(query)).scalars())
