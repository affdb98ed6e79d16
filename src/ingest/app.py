"""The composition root: `create_app(settings)` wires settings, database, auth, errors, jobs and routes."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ingest import __version__, metrics, tracing
from ingest.api_keys.service import DatabaseApiKeyVerifier
from ingest.audit.service import track_inserts
from ingest.audit_hook import REQUEST_ID_SCOPE_KEY, audit_request, request_id_from
from ingest.auth import JWTAuthenticationMiddleware, Principal, TokenVerifier, requires_read
from ingest.core.errors import AppError
from ingest.core.logging import configure_logging, get_logger
from ingest.core.schemas import ErrorResponse, HealthResponse
from ingest.core.settings import Settings
from ingest.db.session import create_engine, libpq_url, resolve_database_url, session_factory
from ingest.jobs.queue import create_job_app
from ingest.jobs.runtime import Runtime, set_runtime
from ingest.jobs.worker import run_worker
from ingest.openapi import SECURITY_SCHEMES, StrictStructSchemaPlugin, document_routes
from ingest.ratelimit import RateLimiter, create_store, rate_limit_middleware
from ingest.screening import allowed_methods, options_headers, screening_middleware
from ingest.tenancy import TENANT_DEPENDENCY

log = get_logger("ingest.app")
READ_METHODS = frozenset({"GET", "HEAD"})

# resumable uploads from a browser (tus-js-client): what it sends and what it must read back
TUS_REQUEST_HEADERS = (
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Offset",
    "Upload-Checksum",
)
TUS_RESPONSE_HEADERS = (
    "Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Expires",
    "Upload-Metadata",
    "X-File-Id",
)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # tus' 460 is no registered status
        return {460: "Checksum Mismatch"}.get(status, "Error")


def error_response(
    request: Request[Any, Any, Any], status: int, message: str, headers: dict[str, str] | None = None
) -> Response[ErrorResponse]:
    body = ErrorResponse(
        timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        status=status,
        error=_phrase(status),
        message=message,
        path=request.url.path,
    )
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _validation_message(exc: ValidationException) -> str:
    """Name each bad field and the problem, never the submitted value."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        key = item.get("key") or ""
        source = item.get("source") or "body"
        source = getattr(source, "value", source)  # Litestar's ParamType enum: "query", "path", ...
        problem = str(item.get("message") or "is invalid")
        parts.append(f"{source} field '{key}': {problem}" if key else problem)
    detail = exc.detail or "Validation failed"
    if detail.startswith("Validation failed for"):
        detail = "Invalid request"
    return f"{detail}: " + "; ".join(parts) if parts else detail


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorResponse]:
    if isinstance(exc, AppError):
        response = error_response(request, exc.status_code, exc.message)
        response.headers.update(exc.headers)
        return response
    if isinstance(exc, ValidationException):
        return error_response(request, 400, _validation_message(exc))
    if isinstance(exc, HTTPException):
        status = exc.status_code
        message = exc.detail or HTTPStatus(status).phrase
        if status == 404 and message == "Not Found":
            message = f"No route for {request.method} {request.url.path}"
        elif status == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
            allow = next((v for k, v in (exc.headers or {}).items() if k.lower() == "allow"), None)
            if allow:  # RFC 9110: a 405 lists the methods the resource supports
                return error_response(request, status, message, {"Allow": allow})
        elif status == 413:
            message = "Request body is too large"
        elif status >= 500:
            log.error("http.unhandled", path=request.url.path, exc_info=exc)
            message = "Internal server error"
        return error_response(request, status, message)
    log.error("http.unhandled", path=request.url.path, exc_info=exc)
    return error_response(request, 500, "Internal server error")


def request_log_middleware(app: ASGIApp) -> ASGIApp:
    """One structured line per request: method, path, status, duration, tenant, request id; and its metrics.

    The request id is the caller's `X-Request-Id` (a plain token) or a fresh one; it is answered in the
    same header and recorded with the request's audit event.
    """
    access = get_logger("ingest.http")

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        given = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                given = value.decode("latin-1")
        request_id = request_id_from(given)
        scope[REQUEST_ID_SCOPE_KEY] = request_id  # type: ignore[literal-required]

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await app(scope, receive, capture)
        except Exception as exc:
            # raised by a middleware inside this one (401 from auth): the outer handler answers it
            status = int(getattr(exc, "status_code", 500))
            raise
        finally:
            seconds = time.perf_counter() - started
            metrics.observe_request(scope, status, seconds)
            tenant = None
            for name, value in scope.get("headers", []):
                if name == b"x-tenant-id":
                    with contextlib.suppress(ValueError):
                        tenant = str(uuid.UUID(value.decode("latin-1")))
            access.info(
                "http.request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round(seconds * 1000, 2),
                tenant=tenant,
                request_id=request_id,
            )

    return middleware


async def provide_db_session(
    state: State, request: Request[Any, Any, Any]
) -> AsyncGenerator[AsyncSession, None]:
    """One session per request: committed when the handler succeeds, rolled back when it raises.

    A successful change is audited in the same transaction, just before the commit (`ingest.audit_hook`).
    A read (GET, HEAD) runs in autocommit instead: PostgreSQL's default READ COMMITTED gives each statement
    its own snapshot inside a transaction too, so a read sees the same data without the BEGIN and COMMIT
    round trips (two of a simple GET's three; a few GETs store a derived value, which a single statement
    commits on its own).
    """
    maker: async_sessionmaker[AsyncSession] = (
        state.read_session_maker if request.method in READ_METHODS else state.session_maker
    )
    async with maker() as session:
        track_inserts(session)
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await audit_request(request, session)
            await session.commit()


async def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


@get("/health", operation_id="health", summary="Liveness", tags=["health"], exclude_from_auth=True)
async def health() -> HealthResponse:
    """The process is up."""
    return HealthResponse(status="UP")


@get(
    "/ready",
    operation_id="ready",
    summary="Readiness",
    tags=["health"],
    exclude_from_auth=True,
    responses={503: ResponseSpec(HealthResponse, description="The database is not reachable: DOWN")},
)
async def ready(state: State) -> Response[HealthResponse]:
    """The database is reachable."""
    try:
        async with state.session_maker() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=5)
    except Exception as exc:
        log.warning("health.not_ready", error=type(exc).__name__)
        return Response(HealthResponse(status="DOWN"), status_code=503)
    return Response(HealthResponse(status="UP"))


class MeResponse(msgspec.Struct, rename="camel"):
    subject: str
    tenant: str
    permissions: list[str]


@get(
    "/api/v1/me",
    operation_id="get_me",
    summary="Caller identity",
    tags=["account"],
    guards=[requires_read],
    dependencies=TENANT_DEPENDENCY,
)
async def get_me(request: Request[Principal, Any, Any], tenant_id: NamedDependency[uuid.UUID]) -> MeResponse:
    """Who the token says the caller is, for the tenant in X-Tenant-Id."""
    return MeResponse(
        subject=request.user.subject, tenant=str(tenant_id), permissions=sorted(request.user.permissions)
    )


def route_handlers() -> list[Any]:
    """Every controller of the API (the domains register here)."""
    from ingest import console
    from ingest.api_keys import controller as api_keys
    from ingest.audit import controller as audit
    from ingest.connections import controller as connections
    from ingest.files import controller as files
    from ingest.sources import controller as sources
    from ingest.syncs import controller as syncs
    from ingest.tables import controller as tables
    from ingest.uploads import controller as uploads
    from ingest.webhooks import controller as webhooks

    return [
        health,
        ready,
        get_me,
        *sources.route_handlers(),
        *connections.route_handlers(),
        *syncs.route_handlers(),
        *files.route_handlers(),
        *uploads.route_handlers(),
        *tables.route_handlers(),
        *console.route_handlers(),
        *audit.route_handlers(),
        *webhooks.route_handlers(),
        *api_keys.route_handlers(),
    ]


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS for a console (or another SPA) served from another origin: only the configured origins."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=[o if o == "*" else o.strip().rstrip("/") for o in settings.cors_origins],
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"],
        allow_headers=["Authorization", "Content-Type", "X-Tenant-Id", *TUS_REQUEST_HEADERS],
        expose_headers=list(TUS_RESPONSE_HEADERS),  # a browser tus client reads them
        allow_credentials=False,  # bearer tokens, never cookies
        max_age=600,
    )


def create_app(
    settings: Settings,
    *,
    session_maker: async_sessionmaker[AsyncSession] | None = None,
    database_url: str | None = None,
    run_worker_in_process: bool | None = None,
    configure_logs: bool = True,
) -> Litestar:
    """Build the app. Tests pass their own `session_maker` (joined to a rolled-back transaction)."""
    if configure_logs:
        configure_logging(settings.log_level, settings.log_format)
    verifier = TokenVerifier(settings)
    metrics.install()
    tracing.install("ingest-api")
    metrics_route = metrics.metrics_handler(settings)
    run_worker_flag = settings.run_worker if run_worker_in_process is None else run_worker_in_process

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if verifier.using_dev_key:
            log.warning(
                "auth.development_key",
                message="Running with a development JWT key from the data dir; set INGEST_JWT_SECRET "
                "or INGEST_JWT_JWKS_URL in production",
            )
        url: str = database_url if database_url else await asyncio.to_thread(resolve_database_url, settings)
        engine: AsyncEngine | None = None
        maker = session_maker
        read_maker = session_maker  # tests: their rolled-back transaction, for reads too
        if maker is None:
            engine = create_engine(url)
            maker = session_factory(engine)
            read_maker = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
        job_app = create_job_app(libpq_url(url))
        runtime = Runtime(settings=settings, session_maker=maker, database_url=url)
        set_runtime(runtime)
        app.state.session_maker = maker
        app.state.read_session_maker = read_maker
        app.state.runtime = runtime
        app.state.job_app = job_app
        app.state.api_key_verifier = DatabaseApiKeyVerifier(maker, settings)
        limiter: RateLimiter | None = None
        if settings.rate_limit_enabled:
            store = create_store(settings, url)
            await store.open()
            limiter = RateLimiter(settings, store)
        app.state.rate_limiter = limiter
        worker_task: asyncio.Task[None] | None = None
        async with job_app.open_async():
            if run_worker_flag:
                worker_task = asyncio.create_task(run_worker(job_app, settings), name="ingest-worker")
            try:
                yield
            finally:
                if worker_task is not None:
                    worker_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await worker_task
                await runtime.aclose()
                if limiter is not None:
                    await limiter.aclose()
                metrics.process_exited()
        if engine is not None:
            await engine.dispose()

    app = Litestar(
        route_handlers=[*route_handlers(), *([metrics_route] if metrics_route else [])],
        lifespan=[lifespan],
        dependencies={"db_session": Provide(provide_db_session), "runtime": Provide(provide_runtime)},
        exception_handlers={Exception: handle_exception},
        plugins=[StrictStructSchemaPlugin()],
        middleware=[
            tracing.tracing_middleware,  # outermost: the request log line carries the trace id
            request_log_middleware,  # and the request metrics (one status capture for both)
            screening_middleware,  # before auth: a repeated Authorization header is a 400, not a 401
            DefineMiddleware(
                JWTAuthenticationMiddleware,
                exclude=[r"^/health$", r"^/ready$", r"^/schema"],
            ),
            rate_limit_middleware,
        ],
        state=State({"token_verifier": verifier, "settings": settings}),
        openapi_config=OpenAPIConfig(
            title="ingest",
            version=__version__,
            description="Multi-tenant data-ingestion control plane: sources, connections, syncs and file "
            "imports "
            "into Apache Iceberg.",
            path="/schema",
            components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        ),
        cors_config=cors_config(settings),
        request_max_body_size=10 * 1024 * 1024,
        debug=False,
        logging_config=None,  # ours (structlog through stdlib) is set up by configure_logging
    )
    document_routes(app)
    app.state.allowed_methods = allowed_methods(app)
    app.state.options_headers = options_headers(app, settings)
    return app
