"""Hostile-input screening: every request's headers, path, query string and JSON body, before auth.

Refused with the error envelope (never a 500, never reaching a validator or the database):
- a repeated identity or framing header (two `Authorization`, two `X-Tenant-Id`, ...): 400;
- a NUL byte anywhere (header values, path, query string, JSON strings and keys): 400;
- a path or query string that is not UTF-8 once percent-decoded: 400;
- a body on a route that reads JSON (or multipart) sent with another content type: 415;
- a JSON body that is not UTF-8, is malformed, nests deeper than `MAX_JSON_DEPTH`, or carries a number
  outside a signed 64-bit integer or a finite double: 400; past the route's body limit: 413.

It runs after routing (Litestar applies app middleware per route), so it knows the route's body type.
"""

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

from ingest.core.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaError
from ingest.openapi import body_media_type

if TYPE_CHECKING:
    from litestar import Litestar

    from ingest.core.settings import Settings

MAX_JSON_DEPTH = 32
INT_LIMIT = 2**63
# headers whose second copy would make "which one counts" ambiguous between us and a proxy
SINGLE_HEADERS = (
    b"authorization",
    b"x-tenant-id",
    b"x-api-key",
    b"content-type",
    b"content-length",
    b"transfer-encoding",
    b"host",
)
IDENTITY_HEADERS = (b"authorization", b"x-tenant-id", b"x-api-key")
DEFAULT_MAX_BODY = 10 * 1024 * 1024


def _shown(name: bytes) -> str:
    return {b"x-tenant-id": "X-Tenant-Id", b"x-api-key": "X-API-KEY"}.get(name) or name.decode(
        "latin-1"
    ).title()


def check_headers(headers: list[tuple[bytes, bytes]]) -> None:
    seen: set[bytes] = set()
    for name, value in headers:
        lowered = name.lower()
        if b"\x00" in value or b"\x00" in name:
            raise InvalidRequestError("A header contains a NUL byte")
        if lowered in SINGLE_HEADERS:
            # a client or proxy may fold repeated lines into one comma-joined value (RFC 9110 5.3)
            folded = b"," in (value if lowered in IDENTITY_HEADERS else value.split(b";", 1)[0])
            if lowered in seen or (folded and lowered != b"host"):
                raise InvalidRequestError(f"The {_shown(lowered)} header must not be repeated")
            seen.add(lowered)


def check_path(scope: Scope) -> None:
    raw = scope.get("raw_path")
    decoded = (
        unquote_to_bytes(raw) if isinstance(raw, bytes) else str(scope["path"]).encode("utf-8", "replace")
    )
    if b"\x00" in decoded or "\x00" in scope["path"]:
        raise InvalidRequestError("The path contains a NUL byte")
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("The path is not valid UTF-8") from None


def check_query(query: bytes) -> None:
    if not query:
        return
    for pair in query.split(b"&"):
        for part in pair.split(b"=", 1):
            decoded = unquote_to_bytes(part.replace(b"+", b" "))
            if b"\x00" in decoded:
                raise InvalidRequestError("The query string contains a NUL byte")
            try:
                decoded.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequestError("The query string is not valid UTF-8") from None


def _media_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";", 1)[0].strip().lower().decode("latin-1")
    return None


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            text = value.strip()
            if not text.isdigit():
                raise InvalidRequestError("Content-Length must be a non-negative integer")
            return int(text)
    return None


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    length = _declared_length(headers)
    if length is not None:
        return length > 0
    return any(name.lower() == b"transfer-encoding" for name, _ in headers)


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _walk(value: Any) -> Iterator[tuple[Any, int]]:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def check_json(body: bytes) -> None:
    """400 for a body no validator should ever see; the route's own validation comes after."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("The JSON body is not valid UTF-8") from None
    if "\x00" in text:
        raise InvalidRequestError("The JSON body contains a NUL byte")
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise InvalidRequestError(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except msgspec.ValidationError as exc:  # numbers msgspec cannot hold (1e400, 10**5000)
        raise InvalidRequestError(f"The JSON body has a number out of range ({exc})") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequestError(f"The body is not valid JSON: {exc}") from None
    for item, depth in _walk(value):
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequestError(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidRequestError("The JSON body contains a NUL character")
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not -INT_LIMIT <= item < INT_LIMIT:
                raise InvalidRequestError("The JSON body has an integer outside the signed 64-bit range")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidRequestError("The JSON body has a number that is not finite")


async def read_body(receive: Receive, limit: int | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequestError("The client went away before the body ended")
        chunk = message.get("body", b"")
        assert isinstance(chunk, bytes)
        size += len(chunk)
        if limit is not None and size > limit:
            raise PayloadTooLargeError("Request body is too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> ReceiveMessage:
        nonlocal sent
        if not sent:
            sent = True
            return HTTPRequestEvent(type="http.request", body=body, more_body=False)
        return await receive()

    return replayed


def allowed_methods(app: "Litestar") -> dict[str, str]:
    """Each route path's methods, for the `Allow` header of OPTIONS (and of 405)."""
    methods: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for key in (route.path, route.path_format):
                methods.setdefault(key, set()).update(route.methods)
    return {path: ", ".join(sorted(names)) for path, names in methods.items()}


def options_headers(app: "Litestar", settings: "Settings") -> dict[str, list[tuple[bytes, bytes]]]:
    """Extra headers OPTIONS answers on a path whose handler asks (`opt["options_headers"](settings)`):
    tus discovery (Tus-Version, Tus-Extension, Tus-Max-Size) on the resumable uploads."""
    extra: dict[str, list[tuple[bytes, bytes]]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            make = handler.opt.get("options_headers")
            if callable(make):
                headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in make(settings).items()]
                for key in (route.path, route.path_format):
                    extra[key] = headers
    return extra


async def answer_options(scope: Scope, send: Send) -> None:
    """204 with every method of the path: Litestar's own OPTIONS lists only one handler's when a
    controller registers several methods on one path."""
    table: dict[str, str] = scope["app"].state.allowed_methods
    template = str(scope.get("path_template", ""))
    allow = table.get(template) or "OPTIONS"
    extra: list[tuple[bytes, bytes]] = getattr(scope["app"].state, "options_headers", {}).get(template, [])
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [(b"allow", allow.encode("latin-1")), *extra],
        }
    )
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def screening_middleware(app: ASGIApp) -> ASGIApp:
    """Refuse hostile requests with the error envelope before auth, validators or the database see them."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        check_headers(headers)
        check_path(scope)
        check_query(scope.get("query_string", b""))
        preflight = any(name.lower() == b"access-control-request-method" for name, _ in headers)
        if scope.get("method") == "OPTIONS" and not preflight:  # CORS preflights stay with the CORS layer
            await answer_options(scope, send)
            return
        handler = scope.get("route_handler")
        expected = body_media_type(handler) if isinstance(handler, HTTPRouteHandler) else None
        if expected is None or not _has_body(headers):
            await app(scope, receive, send)
            return
        media_type = _media_type(headers) or ""
        if expected == "application/json":
            if not _is_json(media_type):
                raise UnsupportedMediaError(f"The body must be application/json, not '{media_type[:100]}'")
            assert isinstance(handler, HTTPRouteHandler)
            limit = handler.resolve_request_max_body_size()
            limit = DEFAULT_MAX_BODY if limit is None else limit
            declared = _declared_length(headers)
            if declared is not None and declared > limit:
                raise PayloadTooLargeError("Request body is too large")
            body = await read_body(receive, limit)
            check_json(body)
            await app(scope, replay(body, receive), send)
            return
        if media_type != expected:
            raise UnsupportedMediaError(f"The body must be {expected}, not '{media_type[:100]}'")
        await app(scope, receive, send)

    return middleware
