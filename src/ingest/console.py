"""The admin console: serves the built SPA (`console/dist`) at /console with its caching and security headers.

The console is a client of the public API only; nothing here reads tenant data. Routes are not API
operations, so they stay out of the OpenAPI document.
"""

import mimetypes
from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from ingest.core.errors import AppError, NotFoundError
from ingest.core.settings import Settings

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "console" / "dist"
ASSETS = "assets/"

# No inline script or style anywhere: Vite emits external, content-hashed files only.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
IMMUTABLE = "public, max-age=31536000, immutable"  # file names carry a content hash
REVALIDATE = "no-cache"  # index.html names the current hashes: always revalidated

TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


class ConsoleNotBuiltError(AppError):
    """The service runs, but the console's front-end build is missing."""

    status_code = 503


def console_dir(settings: Settings) -> Path:
    return (settings.console_dir or DEFAULT_DIST).resolve()


def _file(root: Path, relative: str) -> Path | None:
    """A file under `root`, or None; never a path outside it."""
    if not relative or "\x00" in relative:
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _respond(path: Path, cache_control: str) -> Response[bytes]:
    media_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/html"):
        media_type = "text/html; charset=utf-8"
    return Response(
        content=path.read_bytes(),
        media_type=media_type,
        headers={**SECURITY_HEADERS, "Cache-Control": cache_control},
    )


def client_config(settings: Settings) -> dict[str, str]:
    """What the SPA must know about this deployment's tokens (claim names); no secrets."""
    return {"tenantsClaim": settings.jwt_tenants_claim, "permissionsClaim": settings.jwt_permissions_claim}


@get(
    ["/console", "/console/{path:path}"],
    operation_id="console",
    include_in_schema=False,
    exclude_from_auth=True,
    sync_to_thread=False,  # small local files (index.html, a few hashed assets): no thread hop needed
)
def serve_console(state: State, path: str = "") -> Response[Any]:
    """The SPA: hashed assets cached for a year, anything else answers index.html (client-side routes)."""
    settings: Settings = state.settings
    root = console_dir(settings)
    relative = path.lstrip("/")
    if relative == "config.json":
        return Response(
            content=client_config(settings),
            headers={**SECURITY_HEADERS, "Cache-Control": REVALIDATE},
        )
    index = root / "index.html"
    if not index.is_file():
        raise ConsoleNotBuiltError(
            "The console is not built: run `make console` (npm ci and npm run build in console/)"
        )
    if relative.startswith(ASSETS):
        asset = _file(root, relative)
        if asset is None:
            raise NotFoundError(f"No console asset {relative[:200]}")
        return _respond(asset, IMMUTABLE)
    other = _file(root, relative)
    if other is not None and other != index.resolve():
        return _respond(other, REVALIDATE)
    return _respond(index, REVALIDATE)


def route_handlers() -> list[Any]:
    return [serve_console]
