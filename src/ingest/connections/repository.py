"""Tenant-scoped queries on connections."""

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import Connection, Source, Sync


class ConnectionRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get(self, connection_id: uuid.UUID, *, for_update: bool = False) -> Connection | None:
        query = select(Connection).where(
            Connection.tenant_id == self.tenant_id, Connection.id == connection_id
        )
        if for_update:
            query = query.with_for_update()
        result: Connection | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def list_with_sources(self) -> list[tuple[Connection, str]]:
        query = (
            select(Connection, Source.name)
            .join(Source, Source.id == Connection.source_id)
            .where(Connection.tenant_id == self.tenant_id)
            .order_by(Connection.created_at, Connection.id)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(query)).all()]

    async def name_taken(self, name: str, exclude: uuid.UUID | None = None) -> bool:
        query = select(func.count()).where(Connection.tenant_id == self.tenant_id, Connection.name == name)
        if exclude is not None:
            query = query.where(Connection.id != exclude)
        return bool((await self.session.execute(query)).scalar_one())

    async def active_sync(self, connection_id: uuid.UUID) -> Sync | None:
        query = select(Sync).where(
            Sync.tenant_id == self.tenant_id,
            Sync.connection_id == connection_id,
            Sync.status.in_(("PENDING", "RUNNING")),
        )
        result: Sync | None = (await self.session.execute(query)).scalars().first()
        return result

    async def of_source(self, source_id: uuid.UUID) -> list[Connection]:
        query = (
            select(Connection)
            .where(Connection.tenant_id == self.tenant_id, Connection.source_id == source_id)
            .order_by(Connection.created_at, Connection.id)
            .with_for_update()
        )
        return list((await self.session.execute(query)).scalars())

    async def last_ended_status(self, connection_id: uuid.UUID) -> str | None:
        """The status of the connection's latest ended sync (SUCCEEDED, FAILED, CANCELLED) or None."""
        query = (
            select(Sync.status)
            .where(
                Sync.tenant_id == self.tenant_id,
                Sync.connection_id == connection_id,
                Sync.status.in_(("SUCCEEDED", "FAILED")),
            )
            .order_by(Sync.completed_at.desc().nulls_last(), Sync.created_at.desc())
            .limit(1)
        )
        result: str | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def add(self, connection: Connection) -> Connection:
        self.session.add(connection)
        await self.session.flush()
        return connection

    async def delete(self, connection: Connection) -> None:
        await self.session.delete(connection)
        await self.session.flush()


async def due_connections(session: AsyncSession, now: datetime, limit: int = 100) -> list[Connection]:
    """Scheduled connections whose next run is due, locked so that each is claimed by one scheduler only."""
    query = (
        select(Connection)
        .where(
            Connection.sync_schedule.is_not(None),
            Connection.next_run_at <= now,
            Connection.status != "PAUSED",  # paused: no scheduled run (its next_run_at is also cleared)
        )
        .order_by(Connection.next_run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())
