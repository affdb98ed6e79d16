"""The OpenAPI document: each route's error statuses and security, derived once at app creation.

`document_routes(app)` walks every route and adds, with the `ErrorResponse` schema:
400 (always: malformed requests, and the checks of `ingest.screening`), 401 (unless public),
403 (guards or a tenant), 404 (path parameters), 413 and 415 (a request body). Statuses that depend
on what the handler does (409, 502-504, ...) are declared on the handler: `responses=errors(409, *UPSTREAM)`.
`render_openapi()` writes the document as stable YAML (committed as `openapi.yaml`).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Reference, Schema, SecurityRequirement, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.types import Empty
from litestar.typing import FieldDefinition

from ingest.core.schemas import ErrorResponse
from ingest.core.settings import Settings
from ingest.tenancy import TENANT_HEADER

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar._openapi.schema_generation import SchemaCreator

BEARER_SCHEME = "BearerToken"
TENANT_SCHEME = "TenantId"
API_KEY_SCHEME = "ApiKey"

SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    BEARER_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="A JWT whose `tenants` claim lists the tenants and `permissions` claim the permissions",
    ),
    TENANT_SCHEME: SecurityScheme(
        type="apiKey",
        name=TENANT_HEADER,
        security_scheme_in="header",
        description="The tenant (a UUID) the call acts for; it must be one of the token's tenants",
    ),
    API_KEY_SCHEME: SecurityScheme(
        type="apiKey",
        name="X-API-KEY",
        security_scheme_in="header",
        description="A key from POST /api/v1/api-keys, instead of (never with) a bearer token; it belongs to "
        "one tenant, so X-Tenant-Id may be left out or must name that tenant",
    ),
}

UPSTREAM = (502, 503, 504)
"""What a route that calls a connector or Airbyte may answer: failed, unavailable, timed out."""

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request",
    401: "Missing, malformed, expired or unverifiable bearer token, or an unknown, expired or revoked key",
    403: "The token or key lacks the permission, or does not grant the tenant in X-Tenant-Id",
    404: "No such object for this tenant (another tenant's object answers the same)",
    409: "The object's current state does not allow this",
    410: "The resumable upload failed and its bytes were deleted: start a new one",
    412: "A tus request whose Tus-Resumable is not 1.0.0",
    413: "The request body is too large",
    415: "The request body's content type (or file format) is not supported",
    429: "The tenant's (or the API key's) rate limit is spent: retry after Retry-After seconds",
    502: "A connector or an upstream system failed",
    503: "An upstream system is unavailable",
    504: "An upstream system did not answer in time",
}


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Structs that refuse unknown fields (`forbid_unknown_fields`) say so: additionalProperties false."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return super().is_plugin_supported_field(field_definition) and bool(
            getattr(field_definition.type_, "__struct_config__", None)
            and field_definition.type_.__struct_config__.forbid_unknown_fields
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: "SchemaCreator") -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        target = (
            schema_creator.schema_registry.from_reference(schema).schema
            if isinstance(schema, Reference)
            else schema
        )
        target.additional_properties = False
        return schema


def error_spec(status: int, description: str | None = None) -> ResponseSpec:
    return ResponseSpec(
        data_container=ErrorResponse,
        description=description or ERROR_DESCRIPTIONS.get(status, "Error"),
        generate_examples=False,
    )


def errors(*statuses: int, notes: Mapping[int, str] | None = None) -> dict[int, ResponseSpec]:
    """A handler's own error statuses (`responses=errors(409, *UPSTREAM)`); `notes` words a description."""
    notes = notes or {}
    return {status: error_spec(status, notes.get(status)) for status in statuses}


def body_media_type(handler: HTTPRouteHandler) -> str | None:
    """The media type a handler reads its body as: `opt["body_media_type"]`, JSON for a `data` parameter."""
    declared = handler.opt.get("body_media_type")
    if isinstance(declared, str):
        return declared
    if "data" in handler.parsed_fn_signature.parameters:
        return "application/json"
    return None


def is_public(handler: HTTPRouteHandler) -> bool:
    return bool(handler.opt.get("exclude_from_auth"))


def is_tenant_scoped(handler: HTTPRouteHandler) -> bool:
    return "tenant_id" in handler.resolve_dependencies()


def security_for(handler: HTTPRouteHandler) -> list[SecurityRequirement]:
    """The schemes a call needs: none (public); a bearer token (and the tenant header if scoped); or a key."""
    if is_public(handler):
        return []
    if is_tenant_scoped(handler):
        return [{BEARER_SCHEME: [], TENANT_SCHEME: []}, {API_KEY_SCHEME: []}]
    return [{BEARER_SCHEME: []}, {API_KEY_SCHEME: []}]


def automatic_errors(route: HTTPRoute, handler: HTTPRouteHandler) -> dict[int, ResponseSpec]:
    """The statuses every route of this shape can answer, whatever its handler does."""
    reasons = ["a repeated identity header or a NUL byte"]
    tenant = is_tenant_scoped(handler)
    body = body_media_type(handler)
    if tenant:
        reasons.append(f"{TENANT_HEADER} missing or not a UUID")
    if route.path_parameters or len(handler.parsed_fn_signature.parameters) > 0:
        reasons.append("an invalid path or query parameter")
    if body:
        reasons.append("a body that is malformed, nested too deeply or fails validation")
    found: dict[int, ResponseSpec] = {400: error_spec(400, "Invalid request: " + ", ".join(reasons))}
    if not is_public(handler):
        found[401] = error_spec(401)
        found[429] = error_spec(429)  # ingest.ratelimit, on every authenticated call
    if not is_public(handler) and (tenant or handler.resolve_guards()):
        found[403] = error_spec(403)
    if route.path_parameters:
        found[404] = error_spec(404)
    if body:
        found[413] = error_spec(413)
        found[415] = error_spec(415, f"The request body must be {body}")
    return found


def document_routes(app: "Litestar") -> None:
    """Give every route its error responses and security (called once by `create_app`)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            declared: dict[int, ResponseSpec] = dict(handler.responses or {})
            handler.responses = {**automatic_errors(route, handler), **declared}
            handler.security = security_for(handler)
            handler._resolved_security = Empty  # recomputed from `security` on the next read


def render_openapi() -> str:
    from ingest.app import create_app

    settings = Settings.from_env(environ={}, jwt_secret="openapi-render-only", data_dir=Path("/nonexistent"))
    app = create_app(settings, configure_logs=False)
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return yaml.safe_dump(schema, sort_keys=True, allow_unicode=True, width=120)
