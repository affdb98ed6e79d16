"""Per-tenant (and per-API-key) token buckets shared by every API process: PostgreSQL or Redis.

Each request takes one token from its tenant's bucket for the route's class (reads, changes, and the heavy
uploads, imports and sync triggers), and, when it came with an API key, from that key's own smaller bucket
too, so one runaway automation leaves the rest of the tenant's quota to everyone else. The bucket state lives
in the shared store and is computed there in one atomic statement (an UPSERT on an UNLOGGED table, or a Lua
script in Redis), on the store's clock, so every process sees one limit.
"""

import math
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ingest.auth import Principal
from ingest.core.errors import TooManyRequestsError
from ingest.core.settings import Settings

UNLIMITED_PATHS = frozenset({"/health", "/ready", "/metrics"})
UNLIMITED_PREFIXES = ("/schema",)
# starting an upload is heavy; a resumable upload's chunks (PATCH) count as ordinary changes
HEAVY_ROUTES = re.compile(
    r"^/api/v1/(files/upload|files/uploads|files/multipart-uploads(/[^/]+/complete)?|files/[^/]+/import"
    r"|syncs/connections/[^/]+/trigger)/?$"
)


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens added a second
    burst: int  # bucket size


@dataclass(frozen=True)
class Bucket:
    allowed: bool
    tokens: float  # left after this request


class BucketStore(Protocol):
    async def take(self, keys: Sequence[str], limits: Sequence[Limit]) -> list[Bucket]:
        """Take one token from each bucket (atomically per bucket); answers them in the same order."""
        ...

    async def aclose(self) -> None: ...


# All SET expressions see the old row (`b`); EXCLUDED carries this request's rate, burst and clock.
TAKE_SQL = """
INSERT INTO rate_limit_buckets AS b (key, rate, burst, tokens, stamp, allowed)
SELECT k, r, c, c - 1, extract(epoch FROM clock_timestamp()), true
FROM unnest(%(keys)s::text[], %(rates)s::float8[], %(bursts)s::float8[]) AS u(k, r, c)
ON CONFLICT (key) DO UPDATE SET
  rate = EXCLUDED.rate,
  burst = EXCLUDED.burst,
  stamp = EXCLUDED.stamp,
  allowed = least(EXCLUDED.burst, b.tokens + greatest(0, EXCLUDED.stamp - b.stamp) * EXCLUDED.rate) >= 1,
  tokens = least(EXCLUDED.burst, b.tokens + greatest(0, EXCLUDED.stamp - b.stamp) * EXCLUDED.rate)
    - CASE WHEN least(EXCLUDED.burst, b.tokens + greatest(0, EXCLUDED.stamp - b.stamp) * EXCLUDED.rate) >= 1
      THEN 1 ELSE 0 END
RETURNING key, allowed, tokens
"""


class PostgresBucketStore:
    """Buckets in the `rate_limit_buckets` UNLOGGED table, through a small autocommit pool of its own."""

    def __init__(self, conninfo: str, max_size: int = 4) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo, min_size=1, max_size=max_size, kwargs={"autocommit": True}, open=False
        )

    async def open(self) -> None:
        await self.pool.open()

    async def take(self, keys: Sequence[str], limits: Sequence[Limit]) -> list[Bucket]:
        # rows locked in key order: two requests on the same buckets never deadlock
        order = sorted(range(len(keys)), key=lambda i: keys[i])
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                TAKE_SQL,
                {
                    "keys": [keys[i] for i in order],
                    "rates": [limits[i].rate for i in order],
                    "bursts": [float(limits[i].burst) for i in order],
                },
            )
            rows = {str(k): Bucket(bool(a), float(t)) for k, a, t in await cursor.fetchall()}
        return [rows[k] for k in keys]

    async def aclose(self) -> None:
        await self.pool.close()


TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens = tonumber(state[1])
  local stamp = tonumber(state[2])
  if tokens == nil or stamp == nil then
    tokens = burst
    stamp = now
  end
  tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
  local allowed = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
  redis.call('EXPIRE', key, math.ceil(burst / rate) + 60)
  out[#out + 1] = allowed
  out[#out + 1] = tostring(tokens)
end
return out
"""


class RedisBucketStore:
    """Buckets as Redis hashes, computed by one Lua script per request (atomic, on Redis's clock)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(TAKE_LUA)

    async def open(self) -> None:
        await self.client.ping()

    async def take(self, keys: Sequence[str], limits: Sequence[Limit]) -> list[Bucket]:
        args: list[Any] = []
        for limit in limits:
            args += [limit.rate, limit.burst]
        out = await self.script(keys=list(keys), args=args)
        return [Bucket(bool(int(out[i])), float(out[i + 1])) for i in range(0, len(out), 2)]

    async def aclose(self) -> None:
        await self.client.aclose()


def create_store(settings: Settings, database_url: str) -> PostgresBucketStore | RedisBucketStore:
    if settings.redis_url:
        return RedisBucketStore(settings.redis_url)
    from ingest.db.session import libpq_url

    return PostgresBucketStore(libpq_url(database_url))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the binding bucket is full again
    retry_after: int  # until one token is back (0 when allowed)

    def headers(self) -> dict[str, str]:
        reset_at = int(time.time()) + self.reset_seconds
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(reset_at),  # epoch seconds, as the seed documents
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    """Classifies a request, takes its tokens and decides; the limits come from `INGEST_RATE_LIMIT_*`."""

    def __init__(self, settings: Settings, store: BucketStore) -> None:
        self.store = store
        self.limits = {
            "read": Limit(settings.rate_limit_read_rate, settings.rate_limit_read_burst),
            "write": Limit(settings.rate_limit_rate, settings.rate_limit_burst),
            "heavy": Limit(settings.rate_limit_heavy_rate, settings.rate_limit_heavy_burst),
        }
        fraction = settings.rate_limit_key_fraction
        self.key_limits = {
            name: Limit(limit.rate * fraction, max(1, math.floor(limit.burst * fraction)))
            for name, limit in self.limits.items()
        }

    @staticmethod
    def route_class(method: str, path: str) -> str:
        if method in {"GET", "HEAD", "OPTIONS"}:
            return "read"
        return "heavy" if HEAVY_ROUTES.match(path) else "write"

    async def check(
        self, method: str, path: str, principal: Principal, tenant_header: str | None
    ) -> Decision:
        kind = self.route_class(method, path)
        keys = [f"rl:{kind}:{_owner(principal, tenant_header)}"]
        limits = [self.limits[kind]]
        if principal.api_key_id is not None:
            keys.append(f"rl:{kind}:key:{principal.api_key_id}")
            limits.append(self.key_limits[kind])
        buckets = await self.store.take(keys, limits)
        allowed = all(b.allowed for b in buckets)
        # the bucket with the fewest tokens left is the one the caller runs into first
        binding, limit = min(zip(buckets, limits, strict=True), key=lambda bl: bl[0].tokens / bl[1].burst)
        if not allowed:
            binding, limit = next((b, lim) for b, lim in zip(buckets, limits, strict=True) if not b.allowed)
        tokens = max(0.0, binding.tokens)
        return Decision(
            allowed=allowed,
            limit=limit.burst,
            remaining=math.floor(tokens),
            reset_seconds=math.ceil((limit.burst - tokens) / limit.rate),
            retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / limit.rate)),
        )

    async def aclose(self) -> None:
        await self.store.aclose()


def _owner(principal: Principal, tenant_header: str | None) -> str:
    """The tenant the request is for (when the caller may use it), else the caller itself."""
    if tenant_header:
        try:
            tenant = uuid.UUID(tenant_header.strip())
        except ValueError:
            tenant = None
        if tenant is not None and tenant in principal.tenant_ids:
            return f"tenant:{tenant}"
    if principal.api_key_id is not None:
        return f"tenant:{next(iter(principal.tenant_ids))}"
    return f"subject:{principal.subject}"


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    """Runs after authentication: limits the caller and adds the RateLimit-* headers to every answer."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        limiter: RateLimiter | None = getattr(scope["app"].state, "rate_limiter", None)
        path = scope.get("path", "")
        principal = scope.get("user")
        if (
            scope["type"] != ScopeType.HTTP
            or limiter is None
            or not isinstance(principal, Principal)
            or path in UNLIMITED_PATHS
            or path.startswith(UNLIMITED_PREFIXES)
        ):
            await app(scope, receive, send)
            return
        tenant_header = None
        for name, value in scope.get("headers", []):
            if name == b"x-tenant-id":
                tenant_header = value.decode("latin-1")
        decision = await limiter.check(scope.get("method", "GET"), path, principal, tenant_header)
        headers = decision.headers()
        if not decision.allowed:
            raise TooManyRequestsError(
                f"Rate limit exceeded: retry in {decision.retry_after} s", headers=headers
            )
        encoded = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *encoded]
            await send(message)

        await app(scope, receive, with_headers)

    return middleware
