"""Tenant-scoped queries on uploads in progress; the expiry sweep lists (tenant, id) pairs across tenants."""

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import Upload


class UploadRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get(
        self,
        upload_id: uuid.UUID,
        *,
        kind: str | None = None,
        for_update: bool = False,
        skip_locked: bool = False,
    ) -> Upload | None:
        query = select(Upload).where(Upload.tenant_id == self.tenant_id, Upload.id == upload_id)
        if kind is not None:
            query = query.where(Upload.kind == kind)
        if for_update:
            query = query.with_for_update(skip_locked=skip_locked)
        result: Upload | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def add(self, upload: Upload) -> Upload:
        self.session.add(upload)
        await self.session.flush()
        return upload

    async def delete(self, upload: Upload) -> None:
        await self.session.delete(upload)
        await self.session.flush()


async def expired(
    session: AsyncSession, now: datetime, limit: int = 500
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant id, upload id) of uploads past their expiry, oldest first."""
    query = (
        select(Upload.tenant_id, Upload.id)
        .where(Upload.expires_at < now)
        .order_by(Upload.expires_at)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in await session.execute(query)]
