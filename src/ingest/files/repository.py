"""Tenant-scoped queries on uploaded files; there is no unscoped get."""

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import FileImport


class FileRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get(self, file_id: uuid.UUID, *, for_update: bool = False) -> FileImport | None:
        query = select(FileImport).where(FileImport.tenant_id == self.tenant_id, FileImport.id == file_id)
        if for_update:
            query = query.with_for_update()
        result: FileImport | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def list_all(self) -> list[FileImport]:
        query = (
            select(FileImport)
            .where(FileImport.tenant_id == self.tenant_id)
            .order_by(FileImport.created_at.desc(), FileImport.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def add(self, file: FileImport) -> FileImport:
        self.session.add(file)
        await self.session.flush()
        return file

    async def delete(self, file: FileImport) -> None:
        await self.session.delete(file)
        await self.session.flush()

    async def set_progress(self, file_id: uuid.UUID, rows: int) -> None:
        """Progress without loading the row (the import job writes it about once a second)."""
        await self.session.execute(
            update(FileImport)
            .where(FileImport.tenant_id == self.tenant_id, FileImport.id == file_id)
            .where(FileImport.status == "IMPORTING")
            .values(records_imported=rows)
        )

    async def update_if(self, file_id: uuid.UUID, statuses: set[str], **values: Any) -> bool:
        """Set `values` when the row is in one of `statuses`; whether it was."""
        result = await self.session.execute(
            update(FileImport)
            .where(FileImport.tenant_id == self.tenant_id, FileImport.id == file_id)
            .where(FileImport.status.in_(statuses))
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0))
