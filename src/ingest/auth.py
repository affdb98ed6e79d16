"""Authentication (a JWT bearer token or an `X-API-KEY`) -> `Principal`, and the permission guards."""

import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import jwt
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from ingest.core.errors import ForbiddenError, InvalidRequestError, UnauthorizedError
from ingest.core.logging import get_logger
from ingest.core.settings import Settings

log = get_logger("ingest.auth")

PERMISSION_READ = "data:ingestion:read"
PERMISSION_MANAGE = "data:ingestion:manage"
DEV_SECRET_FILE = "dev-jwt-secret"
PUBLIC_PATHS = {"/health", "/ready"}
PUBLIC_PREFIXES = ("/schema",)
API_KEY_HEADER = "X-API-KEY"
VERIFIED_TOKENS_CACHED = 4096


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_ids: frozenset[uuid.UUID]
    permissions: frozenset[str]
    # set when the caller authenticated with an API key (then `tenant_ids` holds exactly its tenant)
    api_key_id: uuid.UUID | None = None
    api_key_prefix: str | None = None


class ApiKeyVerifier(Protocol):
    """Turns a presented `X-API-KEY` into a Principal; 401 (one message for every failure) otherwise."""

    async def verify(self, key: str) -> Principal: ...


def dev_secret(data_dir: Path, name: str = DEV_SECRET_FILE) -> str:
    """A development key: generated once into the data dir (0600) and reused (by `ingest token`, too)."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(value)
    tmp.replace(path)
    return value


class TokenVerifier:
    """Verifies bearer tokens with HS256 (a shared secret) or RS256/ES256 keys from a JWKS URL (cached)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.using_dev_key = False
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url, cache_keys=True, lifespan=settings.jwt_jwks_cache_seconds
            )
            self.algorithms = settings.jwt_algorithms or ["RS256", "ES256"]
            self._secret: str | None = None
        else:
            self.algorithms = settings.jwt_algorithms or ["HS256"]
            self._secret = settings.jwt_secret
            if not self._secret:
                self._secret = dev_secret(settings.data_dir)
                self.using_dev_key = True
        if "none" in {a.lower() for a in self.algorithms}:
            raise ValueError("INGEST_JWT_ALGORITHMS must not allow 'none'")
        # A client sends the same token on every call until it expires: a verified token is remembered (by
        # its SHA-256, never the token itself) until its `exp`, bounded by the JWKS cache time when keys come
        # from a JWKS URL (a key withdrawn there stops working as soon as it would without this cache).
        self._verified: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    def issue(self, tenants: list[uuid.UUID], permissions: list[str], ttl: int, subject: str = "cli") -> str:
        """Sign a token with the configured secret (HS256 deployments and development only)."""
        if self._secret is None:
            raise ValueError("tokens can only be issued with INGEST_JWT_SECRET or the development key")
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": subject,
            "iat": now,
            "exp": now + ttl,
            self.settings.jwt_tenants_claim: [str(t) for t in tenants],
            self.settings.jwt_permissions_claim: permissions,
        }
        if self.settings.jwt_issuer:
            claims["iss"] = self.settings.jwt_issuer
        if self.settings.jwt_audience:
            claims["aud"] = self.settings.jwt_audience
        return jwt.encode(claims, self._secret, algorithm=self.algorithms[0])

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            if time.time() < cached[0]:  # PyJWT's own rule: expired once `exp <= now`
                self._verified.move_to_end(digest)
                return cached[1]
            del self._verified[digest]
        principal, expires = await self._verify(token)
        if self._jwks is not None:
            expires = min(expires, time.time() + self.settings.jwt_jwks_cache_seconds)
        self._verified[digest] = (expires, principal)
        if len(self._verified) > VERIFIED_TOKENS_CACHED:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        """The token's Principal and its `exp`, or 401."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("Malformed bearer token") from exc
        alg = str(header.get("alg", ""))
        if alg not in self.algorithms:
            raise UnauthorizedError(f"Token algorithm '{alg}' is not accepted")
        key: Any
        if self._jwks is not None:
            try:
                key = (await anyio.to_thread.run_sync(self._jwks.get_signing_key_from_jwt, token)).key
            except jwt.PyJWKClientError as exc:
                raise UnauthorizedError("Token signing key is unknown") from exc
        else:
            key = self._secret
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp"], "verify_aud": self.settings.jwt_audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("Token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise UnauthorizedError("Token audience is not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise UnauthorizedError("Token issuer is not accepted") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise UnauthorizedError(f"Token is missing the '{exc.claim}' claim") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("Token signature is invalid") from exc
        principal = Principal(
            subject=str(claims.get("sub", "")),
            tenant_ids=frozenset(_uuids(claims.get(self.settings.jwt_tenants_claim))),
            permissions=frozenset(str(p) for p in _as_list(claims.get(self.settings.jwt_permissions_claim))),
        )
        return principal, float(claims["exp"])


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return list(value) if isinstance(value, list | tuple) else []


def _uuids(value: Any) -> list[uuid.UUID]:
    out = []
    for item in _as_list(value):
        try:
            out.append(uuid.UUID(str(item)))
        except ValueError:
            continue
    return out


class JWTAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Puts a `Principal` on every request but the public ones; 401 on any token or key problem."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        api_key = connection.headers.get(API_KEY_HEADER)
        if api_key is not None:
            if header:
                raise InvalidRequestError(
                    f"Send either {API_KEY_HEADER} or an Authorization header, not both"
                )
            key_verifier: ApiKeyVerifier = connection.app.state.api_key_verifier
            return AuthenticationResult(user=await key_verifier.verify(api_key.strip()), auth=None)
        if not header:
            raise UnauthorizedError("Missing Authorization header")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedError("Authorization header must be 'Bearer <token>'")
        verifier: TokenVerifier = connection.app.state.token_verifier
        principal = await verifier.verify(token.strip())
        return AuthenticationResult(user=principal, auth=token)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise UnauthorizedError("Missing Authorization header")
    return user


# Guards are coroutines on purpose: Litestar runs a plain-function guard in its thread pool, a thread hop
# per guard per request that cost about a fifth of a simple GET's CPU time.
async def requires_read(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: reading needs `data:ingestion:read` or `data:ingestion:manage`."""
    permissions = principal_of(connection).permissions
    if PERMISSION_READ not in permissions and PERMISSION_MANAGE not in permissions:
        raise ForbiddenError(f"Missing permission '{PERMISSION_READ}'")


async def requires_manage(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: changing anything needs `data:ingestion:manage`."""
    if PERMISSION_MANAGE not in principal_of(connection).permissions:
        raise ForbiddenError(f"Missing permission '{PERMISSION_MANAGE}'")
