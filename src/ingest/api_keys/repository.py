"""Queries on API keys: tenant-scoped for the routes; by prefix only for authentication."""

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import ApiKey


class ApiKeyRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get_active(self, key_id: uuid.UUID) -> ApiKey | None:
        query = select(ApiKey).where(
            ApiKey.tenant_id == self.tenant_id, ApiKey.id == key_id, ApiKey.revoked_at.is_(None)
        )
        result: ApiKey | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def list_active(self) -> list[ApiKey]:
        query = (
            select(ApiKey)
            .where(ApiKey.tenant_id == self.tenant_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at, ApiKey.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        return key


async def find_by_prefix(session: AsyncSession, prefix: str) -> ApiKey | None:
    """Authentication's lookup: the key's prefix says which tenant's row it is (the hash proves it)."""
    query = select(ApiKey).where(ApiKey.prefix == prefix)
    result: ApiKey | None = (await session.execute(query)).scalar_one_or_none()
    return result


async def touch_last_used(session: AsyncSession, key_id: uuid.UUID, now: datetime, stale: datetime) -> None:
    """Record a use, at most once per interval: a write per request would cost more than the lookup."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale))
        .values(last_used_at=now)
    )
