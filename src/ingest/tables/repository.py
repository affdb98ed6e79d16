"""Tenant-scoped queries for table care: operations (rollback, maintenance), the loads a rollback undoes."""

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import Connection, FileImport, Sync, TableOperation


class TableRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def add(self, operation: TableOperation) -> TableOperation:
        self.session.add(operation)
        await self.session.flush()
        return operation

    async def operation(self, operation_id: uuid.UUID, *, for_update: bool = False) -> TableOperation | None:
        query = select(TableOperation).where(
            TableOperation.tenant_id == self.tenant_id, TableOperation.id == operation_id
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def operations(
        self, namespace: str, table: str, kind: str | None = None, limit: int = 50
    ) -> list[TableOperation]:
        query = select(TableOperation).where(
            TableOperation.tenant_id == self.tenant_id,
            TableOperation.namespace == namespace,
            TableOperation.table_name == table,
        )
        if kind is not None:
            query = query.where(TableOperation.kind == kind)
        query = query.order_by(TableOperation.created_at.desc(), TableOperation.id).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def file(self, file_id: uuid.UUID) -> FileImport | None:
        query = select(FileImport).where(FileImport.tenant_id == self.tenant_id, FileImport.id == file_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def sync(self, sync_id: uuid.UUID) -> Sync | None:
        query = select(Sync).where(Sync.tenant_id == self.tenant_id, Sync.id == sync_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def mark_rolled_back(
        self, file_ids: list[uuid.UUID], sync_ids: list[uuid.UUID], when: datetime
    ) -> None:
        if file_ids:
            await self.session.execute(
                update(FileImport)
                .where(FileImport.tenant_id == self.tenant_id, FileImport.id.in_(file_ids))
                .values(rolled_back_at=when)
            )
        if sync_ids:
            await self.session.execute(
                update(Sync)
                .where(Sync.tenant_id == self.tenant_id, Sync.id.in_(sync_ids))
                .values(rolled_back_at=when)
            )

    async def syncs_with_connection(self, sync_ids: list[uuid.UUID]) -> list[tuple[Sync, Connection]]:
        """The syncs (of this tenant) and their connections, the connections locked for the state rewind."""
        if not sync_ids:
            return []
        query = (
            select(Sync, Connection)
            .join(Connection, Connection.id == Sync.connection_id)
            .where(Sync.tenant_id == self.tenant_id, Sync.id.in_(sync_ids))
            .with_for_update(of=Connection)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(query)).all()]

    async def state_before(
        self, connection_id: uuid.UUID, before: datetime, excluded: set[uuid.UUID]
    ) -> object:
        """The connector state the connection had after its last kept successful sync before `before`."""
        query = (
            select(Sync)
            .where(
                Sync.tenant_id == self.tenant_id,
                Sync.connection_id == connection_id,
                Sync.status == "SUCCEEDED",
                Sync.rolled_back_at.is_(None),
                Sync.completed_at < before,
            )
            .order_by(Sync.completed_at.desc())
        )
        for sync in (await self.session.execute(query)).scalars():
            if sync.id not in excluded:
                return sync.state_after
        return None
