"""API keys: issue (shown once), list, revoke, and verify a presented key on every request.

A key reads `ik_<prefix>_<secret>`. The prefix (random, unique, stored in clear) finds the row; the whole key
is checked against an HMAC-SHA256 under a server key (`INGEST_API_KEY_SECRET`), compared in constant time.
Verification reads the database on every request, so a revoked key stops working at once in every process.
"""

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.api_keys.repository import ApiKeyRepository, find_by_prefix, touch_last_used
from ingest.auth import PERMISSION_MANAGE, PERMISSION_READ, Principal, dev_secret
from ingest.core.errors import ForbiddenError, InvalidRequestError, NotFoundError, UnauthorizedError
from ingest.core.logging import get_logger
from ingest.core.settings import Settings
from ingest.db.models import ApiKey
from ingest.jobs.runtime import Runtime

log = get_logger("ingest.api_keys")

KEY_PREFIX = "ik_"
DEV_KEY_FILE = "dev-api-key-secret"
KNOWN_PERMISSIONS = frozenset({PERMISSION_READ, PERMISSION_MANAGE})
# one answer for unknown, malformed, revoked and expired keys: a caller learns nothing from the difference
INVALID_KEY = "Invalid, expired or revoked API key"
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hashing_key(settings: Settings) -> bytes:
    """The server key of the HMAC: `INGEST_API_KEY_SECRET`, or a development key in the data dir."""
    if settings.api_key_secret:
        return settings.api_key_secret.encode()
    return dev_secret(settings.data_dir, DEV_KEY_FILE).encode()


def key_hash(secret_key: bytes, key: str) -> str:
    return hmac.new(secret_key, key.encode(), hashlib.sha256).hexdigest()


def split_key(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or len(secret) < 32:
        return None
    return KEY_PREFIX + prefix


class ApiKeyService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.repository = ApiKeyRepository(session, tenant_id)
        self.tenant_id = tenant_id
        self.settings = runtime.settings

    async def create(
        self, caller: Principal, name: str, permissions: list[str], expires_at: datetime | None
    ) -> tuple[ApiKey, str]:
        """A new key with a subset of the caller's permissions; answers the row and the key (shown once)."""
        wanted = sorted(set(permissions))
        unknown = [p for p in wanted if p not in KNOWN_PERMISSIONS]
        if unknown:
            raise InvalidRequestError(f"Unknown permission '{unknown[0]}'")
        missing = [p for p in wanted if p not in caller.permissions]
        if missing:
            raise ForbiddenError(f"A key cannot get permission '{missing[0]}' the caller does not have")
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidRequestError("expiresAt must carry a time zone")
            if expires_at <= datetime.now(UTC):
                raise InvalidRequestError("expiresAt must be in the future")
        prefix = KEY_PREFIX + secrets.token_hex(6)
        key = f"{prefix}_{secrets.token_urlsafe(32)}"
        row = ApiKey(
            tenant_id=self.tenant_id,
            name=name,
            prefix=prefix,
            key_hash=key_hash(hashing_key(self.settings), key),
            permissions=wanted,
            created_by=caller.subject,
            expires_at=expires_at,
        )
        await self.repository.add(row)
        log.info("api_keys.created", key_id=str(row.id), prefix=prefix, tenant=str(self.tenant_id))
        return row, key

    async def list_all(self) -> list[ApiKey]:
        return await self.repository.list_active()

    async def revoke(self, key_id: uuid.UUID) -> ApiKey:
        row = await self.repository.get_active(key_id)
        if row is None:
            raise NotFoundError(f"API key {key_id} not found")
        row.revoked_at = datetime.now(UTC)
        await self.repository.session.flush()
        log.info("api_keys.revoked", key_id=str(row.id), prefix=row.prefix, tenant=str(self.tenant_id))
        return row


class DatabaseApiKeyVerifier:
    """Checks a presented key against the database on every request (no cache: revocation is immediate)."""

    def __init__(self, session_maker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.session_maker = session_maker
        self.secret_key = hashing_key(settings)

    async def verify(self, key: str) -> Principal:
        prefix = split_key(key)
        presented = key_hash(self.secret_key, key)
        if prefix is None:
            raise UnauthorizedError(INVALID_KEY)
        async with self.session_maker() as session:
            row = await find_by_prefix(session, prefix)
            now = datetime.now(UTC)
            if row is None or not hmac.compare_digest(presented, row.key_hash):
                raise UnauthorizedError(INVALID_KEY)
            if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
                raise UnauthorizedError(INVALID_KEY)
            if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
                await touch_last_used(session, row.id, now, now - LAST_USED_RESOLUTION)
                await session.commit()
            return Principal(
                subject=f"api-key:{row.prefix}",
                tenant_ids=frozenset({row.tenant_id}),
                permissions=frozenset(row.permissions),
                api_key_id=row.id,
                api_key_prefix=row.prefix,
            )
