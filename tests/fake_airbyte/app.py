"""An in-process fake of the Airbyte public + config API subset the adapter calls, quirks included.

Behaves like a self-managed Airbyte (see /work/shared/reference/airbyte.md): client-credential bearer tokens
that expire, limit/offset pagination whose `next` link is never empty and names an internal host, secrets
read back as `**********`, Quartz-only cron (returned with ` UTC`), 409 for a second job on a connection,
jobs that move pending -> running -> succeeded with rowsSynced/bytesSynced, and slow discovers.

Faults are injected on the Python object, not over HTTP: `fail_next`, `rate_limit_next`, `hang`,
`drop_after_create`. State is guarded by one lock because uvicorn serves from another thread.
"""

import asyncio
import copy
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jsonschema

from tests.fake_airbyte.catalog import destination_definitions, source_definitions

MASK = "**********"
INTERNAL_HOST = "http://airbyte-server-svc:8001"  # `next`/`previous` links name it, like the real server
PUBLIC = "/api/public/v1"
CONFIG = "/api/v1"
_TERMINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class Fault:
    kind: str  # status | hang | drop
    pattern: str | None
    method: str | None
    remaining: int | None  # None = until cleared
    status: int = 503
    retry_after: float | None = None
    seconds: float = 5.0

    def matches(self, method: str, path: str) -> bool:
        if self.remaining == 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.pattern is None or re.search(self.pattern, path) is not None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: str | None


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HTTPError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def problem(status: int, title: str, message: str, **data: Any) -> HTTPError:
    """The public API's problem body."""
    return HTTPError(
        Response(
            status,
            {
                "status": status,
                "type": f"https://reference.airbyte.com/reference/errors#{title}",
                "title": title,
                "detail": message,
                "documentationUrl": None,
                "data": {"message": message, **data},
            },
        )
    )


def config_error(status: int, message: str) -> HTTPError:
    """The config API's error body."""
    return HTTPError(Response(status, {"message": message, "exceptionClassName": "io.airbyte.FakeError"}))


def _secret_paths(schema: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(schema, dict):
        return []
    found: list[tuple[str, ...]] = []
    if schema.get("airbyte_secret") is True and prefix:
        found.append(prefix)
    for key, sub in (schema.get("properties") or {}).items():
        found.extend(_secret_paths(sub, (*prefix, key)))
    for variant in schema.get("oneOf") or []:
        found.extend(_secret_paths(variant, prefix))
    return found


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _set(node: Any, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, dict) and path[-1] in node:
        node[path[-1]] = value


def mask(config: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    masked = copy.deepcopy(config)
    for path in _secret_paths(spec):
        if _get(masked, path) is not None:
            _set(masked, path, MASK)
    return masked


def keep_masked(new: dict[str, Any], stored: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Sending the mask back keeps the stored secret."""
    result = copy.deepcopy(new)
    for path in _secret_paths(spec):
        if _get(result, path) == MASK:
            _set(result, path, copy.deepcopy(_get(stored, path)))
    return result


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def validate_quartz(expression: str) -> str:
    """Airbyte's public-API cron checks (cron-utils QUARTZ + its own); returns the stored form."""
    text = expression.strip().removesuffix(" UTC").strip()
    fields = text.split()

    def invalid(reason: str) -> HTTPError:
        return problem(
            400,
            "error:cron-validation/invalid-expression",
            f"Invalid cron expression: {reason}",
            value=expression,
        )

    if len(fields) not in (6, 7):
        raise invalid(f"Quartz cron needs 6 or 7 fields, got {len(fields)}")
    if not fields[0].isdigit() or (len(fields) == 7 and not fields[1].isdigit()):
        raise invalid("the seconds field must be a plain integer")
    dom, dow = fields[3], fields[5]
    if (dom == "?") == (dow == "?"):
        raise invalid("exactly one of day-of-month and day-of-week must be '?'")
    if re.fullmatch(r"[0-9]+", dow) and not 1 <= int(dow) <= 7:
        raise invalid("day-of-week numbers are 1-7")
    for value in fields:
        if not re.fullmatch(r"[0-9A-Za-z*/,\-?#L]+", value):
            raise invalid(f"unsupported token {value!r}")
    return text


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeAirbyte:
    """State plus the ASGI app (`fake.app`). Tweak the public attributes to shape behaviour per test."""

    def __init__(self, client_id: str = "fake-client", client_secret: str = "fake-secret") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.url = ""  # set by the server fixture
        self._lock = threading.RLock()
        self.reset()

    # -- configuration and inspection (test side) ------------------------------------------------------

    def reset(self) -> None:
        """Forget every object, token and fault; restore default timings."""
        with self._lock:
            self.generation = getattr(self, "generation", 0) + 1
            self.token_ttl_seconds: float = 900
            self.discover_delay_seconds: float = 0.0
            self.job_pending_seconds: float = 0.05
            self.job_running_seconds: float = 0.3
            self.job_result = "succeeded"  # or "failed"
            self.job_rows = 1000
            self.tokens: dict[str, float] = {}
            self.tokens_issued = 0
            self.workspaces: dict[str, dict[str, Any]] = {}
            self.sources: dict[str, dict[str, Any]] = {}
            self.destinations: dict[str, dict[str, Any]] = {}
            self.connections: dict[str, dict[str, Any]] = {}
            self.jobs: dict[int, dict[str, Any]] = {}
            self.faults: list[Fault] = []
            self.requests: list[tuple[str, str, int]] = []  # (method, path, status) once answered
            self.arrivals: list[tuple[str, str]] = []  # (method, path) as each request comes in
            self._job_ids = itertools.count(1000)
            self.source_definitions = source_definitions()
            self.destination_definitions = destination_definitions()

    def fail_next(
        self, n: int, status: int = 503, path: str | None = None, method: str | None = None
    ) -> None:
        """The next `n` matching requests (`path` is a regex searched in the URL path) answer `status`."""
        with self._lock:
            self.faults.append(Fault("status", path, method, n, status=status))

    def rate_limit_next(
        self, n: int, retry_after: float | None = 1, path: str | None = None, method: str | None = None
    ) -> None:
        """The next `n` matching requests answer 429 (with `Retry-After` unless None)."""
        with self._lock:
            self.faults.append(Fault("status", path, method, n, status=429, retry_after=retry_after))

    def hang(
        self, path: str | None, seconds: float = 5.0, times: int | None = None, method: str | None = None
    ) -> None:
        """Matching requests sleep `seconds` before being handled (`times=None`: until `clear_faults`)."""
        with self._lock:
            self.faults.append(Fault("hang", path, method, times, seconds=seconds))

    def drop_after_create(
        self, path: str, times: int = 1, seconds: float = 5.0, method: str | None = "POST"
    ) -> None:
        """Matching requests are carried out, then the answer is held back `seconds` (client times out)."""
        with self._lock:
            self.faults.append(Fault("drop", path, method, times, seconds=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_tokens(self) -> None:
        """Invalidate every issued token now (as a server restart or a shorter server-side lifetime would)."""
        with self._lock:
            self.tokens.clear()

    def live(self, kind: str, workspace_id: str | None = None) -> list[dict[str, Any]]:
        """Non-deleted objects of `kind` (workspaces, sources, destinations, connections), unmasked copies."""
        with self._lock:
            store: dict[str, dict[str, Any]] = getattr(self, kind)
            return [
                copy.deepcopy(item)
                for item in store.values()
                if not item.get("_deleted")
                and (workspace_id is None or item.get("workspaceId") == workspace_id)
            ]

    def add_source_definition(
        self, name: str, docker_repository: str, spec: dict[str, Any], catalog: list[dict[str, Any]]
    ) -> str:
        with self._lock:
            definition_id = str(uuid.uuid4())
            self.source_definitions.append(
                {
                    "id": definition_id,
                    "name": name,
                    "dockerRepository": docker_repository,
                    "dockerImageTag": "1.0.0",
                    "spec": spec,
                    "catalog": catalog,
                }
            )
            return definition_id

    def finish_job(self, job_id: int | str, status: str = "succeeded") -> None:
        with self._lock:
            job = self.jobs[int(job_id)]
            job["override"] = status
            job["ended"] = _now_iso()

    def job_status(self, job_id: int | str) -> str:
        with self._lock:
            return str(self._job_view(self.jobs[int(job_id)])["status"])

    # -- ASGI ------------------------------------------------------------------------------------------

    async def app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        request = Request(
            method=scope["method"],
            path=scope["path"],
            query={k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()},
            body=self._decode(raw, headers.get("content-type", "")),
            token=auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None,
        )
        response = await self._handle(request)
        body = b"" if response.body is None else json.dumps(response.body).encode()
        out_headers = [(b"content-type", b"application/json")] + [
            (k.encode(), v.encode()) for k, v in response.headers.items()
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _decode(raw: bytes, content_type: str) -> Any:
        if not raw:
            return None
        if "x-www-form-urlencoded" in content_type:
            return {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        try:
            return json.loads(raw)
        except ValueError:
            return "<invalid json>"

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
            return None

    async def _handle(self, request: Request) -> Response:
        generation = self.generation
        with self._lock:
            self.arrivals.append((request.method, request.path))
        fault = self._take_fault(request.method, request.path)
        if fault is not None and fault.kind == "status":
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            body = (
                {"message": "Too many requests"}
                if fault.status == 429
                else {"message": "Service Unavailable", "status": fault.status}
            )
            return self._log(request, Response(fault.status, body, headers))
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            if generation != self.generation:  # a test reset happened meanwhile: do not touch new state
                return Response(503, {"message": "stale"})
        if self._runs_discover(request):
            await asyncio.sleep(self.discover_delay_seconds)
        with self._lock:
            if generation != self.generation:
                return Response(503, {"message": "stale"})
            try:
                response = self._dispatch(request)
            except HTTPError as exc:
                response = exc.response
            self._log(request, response)
        if fault is not None and fault.kind == "drop":
            await asyncio.sleep(fault.seconds)
        return response

    def _log(self, request: Request, response: Response) -> Response:
        with self._lock:
            self.requests.append((request.method, request.path, response.status))
        return response

    @staticmethod
    def _runs_discover(request: Request) -> bool:
        return request.method == "POST" and (
            request.path.endswith("discover_schema") or request.path == f"{PUBLIC}/connections"
        )

    # -- routing ---------------------------------------------------------------------------------------

    _ROUTES: tuple[tuple[str, str, str], ...] = (
        ("POST", rf"{PUBLIC}/applications/token", "token"),
        ("POST", rf"{CONFIG}/applications/token", "token"),
        ("GET", rf"{PUBLIC}/workspaces", "list_workspaces"),
        ("POST", rf"{PUBLIC}/workspaces", "create_workspace"),
        ("GET", rf"{PUBLIC}/workspaces/(?P<id>[^/]+)", "get_workspace"),
        ("DELETE", rf"{PUBLIC}/workspaces/(?P<id>[^/]+)", "delete_workspace"),
        (
            "GET",
            rf"{PUBLIC}/workspaces/(?P<id>[^/]+)/definitions/(?P<kind>sources|destinations)",
            "definitions",
        ),
        ("GET", rf"{PUBLIC}/(?P<kind>sources|destinations)", "list_actors"),
        ("POST", rf"{PUBLIC}/(?P<kind>sources|destinations)", "create_actor"),
        ("GET", rf"{PUBLIC}/(?P<kind>sources|destinations)/(?P<id>[^/]+)", "get_actor"),
        ("PUT", rf"{PUBLIC}/(?P<kind>sources|destinations)/(?P<id>[^/]+)", "put_actor"),
        ("PATCH", rf"{PUBLIC}/(?P<kind>sources|destinations)/(?P<id>[^/]+)", "patch_actor"),
        ("DELETE", rf"{PUBLIC}/(?P<kind>sources|destinations)/(?P<id>[^/]+)", "delete_actor"),
        ("GET", rf"{PUBLIC}/connections", "list_connections"),
        ("POST", rf"{PUBLIC}/connections", "create_connection"),
        ("GET", rf"{PUBLIC}/connections/(?P<id>[^/]+)", "get_connection"),
        ("PATCH", rf"{PUBLIC}/connections/(?P<id>[^/]+)", "patch_connection"),
        ("DELETE", rf"{PUBLIC}/connections/(?P<id>[^/]+)", "delete_connection"),
        ("GET", rf"{PUBLIC}/jobs", "list_jobs"),
        ("POST", rf"{PUBLIC}/jobs", "create_job"),
        ("GET", rf"{PUBLIC}/jobs/(?P<id>[^/]+)", "get_job"),
        ("DELETE", rf"{PUBLIC}/jobs/(?P<id>[^/]+)", "cancel_job"),
        ("POST", rf"{CONFIG}/source_definition_specifications/get", "config_spec"),
        ("POST", rf"{CONFIG}/sources/check_connection", "config_check_source"),
        ("POST", rf"{CONFIG}/sources/discover_schema", "config_discover_source"),
        ("POST", rf"{CONFIG}/scheduler/sources/check_connection", "config_check_config"),
        ("POST", rf"{CONFIG}/scheduler/sources/discover_schema", "config_discover_config"),
        ("POST", rf"{CONFIG}/jobs/get", "config_get_job"),
    )

    def _dispatch(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        known_path = False
        for method, pattern, handler in self._ROUTES:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            known_path = True
            if method != request.method:
                continue
            if handler != "token":
                self._authenticate(request)
            return getattr(self, f"_h_{handler}")(request, **match.groupdict())  # type: ignore[no-any-return]
        if known_path:
            return Response(405, {"message": "Method Not Allowed"})
        return Response(404, {"message": "Page Not Found"})

    def _authenticate(self, request: Request) -> None:
        expiry = self.tokens.get(request.token or "")
        if expiry is None or time.monotonic() >= expiry:
            self.tokens.pop(request.token or "", None)
            raise HTTPError(
                Response(
                    401,
                    {"message": "Unauthorized", "_embedded": {"errors": [{"message": "Unauthorized"}]}},
                    {"WWW-Authenticate": "Bearer"},
                )
            )

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        if not isinstance(request.body, dict):
            raise problem(422, "unprocessable-entity", "The body of the request was not understood")
        return request.body

    def _page(self, request: Request, resource: str, items: list[dict[str, Any]]) -> Response:
        try:
            limit = int(request.query.get("limit", "20"))
            offset = int(request.query.get("offset", "0"))
        except ValueError as exc:
            raise problem(400, "bad-request", "limit and offset must be integers") from exc
        if not 1 <= limit <= 100 or offset < 0:
            raise problem(400, "bad-request", "limit must be within 1-100 and offset non-negative")
        page = items[offset : offset + limit]
        base = f"{INTERNAL_HOST}{PUBLIC}/{resource}"
        # quirk: `next` is set whenever the page had items, even a short last page
        next_link = f"{base}?limit={limit}&offset={offset + limit}" if page else ""
        previous = f"{base}?limit={limit}&offset={max(0, offset - limit)}" if offset else ""
        return Response(200, {"data": page, "next": next_link, "previous": previous})

    @staticmethod
    def _ids(request: Request, key: str) -> set[str] | None:
        raw = request.query.get(key)
        return {part for part in raw.split(",") if part} if raw else None

    def _live(self, store: dict[str, dict[str, Any]], object_id: str, kind: str) -> dict[str, Any]:
        item = store.get(object_id)
        if item is None or item.get("_deleted"):
            raise problem(
                404,
                "resource-not-found",
                f"Could not find a resource for: {object_id}",
                resourceType=kind,
                resourceId=object_id,
            )
        return item

    # -- tokens ----------------------------------------------------------------------------------------

    def _h_token(self, request: Request) -> Response:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return Response(
                400,
                {
                    "message": "Bad Request",
                    "_embedded": {"errors": [{"message": "Invalid client id or token"}]},
                },
            )
        token = f"fake-jwt-{secrets.token_hex(12)}"
        self.tokens[token] = time.monotonic() + self.token_ttl_seconds
        self.tokens_issued += 1
        expires = self.token_ttl_seconds
        return Response(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(expires) if expires >= 1 else expires,
            },
        )

    # -- workspaces ------------------------------------------------------------------------------------

    @staticmethod
    def _public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def _h_list_workspaces(self, request: Request) -> Response:
        ids = self._ids(request, "workspaceIds")
        include_deleted = request.query.get("includeDeleted") == "true"
        items = [
            self._public(w)
            for w in self.workspaces.values()
            if (include_deleted or not w.get("_deleted")) and (ids is None or w["workspaceId"] in ids)
        ]
        return self._page(request, "workspaces", items)

    def _h_create_workspace(self, request: Request) -> Response:
        body = self._body(request)
        if not body.get("name"):
            raise problem(422, "unprocessable-entity", "name is required")
        workspace_id = str(uuid.uuid4())
        # like Airbyte: names need not be unique, a second POST makes a second workspace
        self.workspaces[workspace_id] = {
            "workspaceId": workspace_id,
            "name": body["name"],
            "dataResidency": "auto",
            "notifications": {},
        }
        return Response(200, self._public(self.workspaces[workspace_id]))

    def _h_get_workspace(self, request: Request, id: str) -> Response:
        return Response(200, self._public(self._live(self.workspaces, id, "workspace")))

    def _h_delete_workspace(self, request: Request, id: str) -> Response:
        self._live(self.workspaces, id, "workspace")["_deleted"] = True
        return Response(204)

    def _h_definitions(self, request: Request, id: str, kind: str) -> Response:
        self._live(self.workspaces, id, "workspace")
        definitions = self.source_definitions if kind == "sources" else self.destination_definitions
        data = [
            {
                "id": d["id"],
                "name": d["name"],
                "dockerRepository": d["dockerRepository"],
                "dockerImageTag": d["dockerImageTag"],
                "documentationUrl": f"https://docs.airbyte.com/integrations/{kind}/{d['dockerRepository']}",
            }
            for d in definitions
        ]
        return Response(200, {"data": data})

    # -- sources and destinations ----------------------------------------------------------------------

    def _definition(self, kind: str, definition_id: str | None) -> dict[str, Any]:
        definitions = self.source_definitions if kind == "sources" else self.destination_definitions
        for definition in definitions:
            if definition["id"] == definition_id:
                return definition
        raise problem(400, "value-not-found", f"Unknown definition: {definition_id}", value=definition_id)

    def _validate_config(self, spec: dict[str, Any], config: dict[str, Any]) -> None:
        try:
            jsonschema.validate(config, spec)
        except jsonschema.ValidationError as exc:
            path = "$." + ".".join(str(p) for p in exc.absolute_path) if exc.absolute_path else "$"
            raise problem(
                422,
                "unprocessable-entity",
                f"The provided configuration does not fulfill the specification. "
                f"Errors: json schema validation failed when comparing the data to the json schema. {path}: "
                f"{exc.validator} violated",
            ) from exc

    def _actor_view(self, kind: str, item: dict[str, Any]) -> dict[str, Any]:
        spec = self._definition(kind, item["definitionId"])["spec"]
        view = self._public(item)
        view["configuration"] = mask(item["configuration"], spec)
        return view

    def _h_list_actors(self, request: Request, kind: str) -> Response:
        store = self.sources if kind == "sources" else self.destinations
        ids = self._ids(request, "workspaceIds")
        include_deleted = request.query.get("includeDeleted") == "true"
        items = [
            self._actor_view(kind, item)
            for item in store.values()
            if (include_deleted or not item.get("_deleted")) and (ids is None or item["workspaceId"] in ids)
        ]
        return self._page(request, kind, items)

    def _h_create_actor(self, request: Request, kind: str) -> Response:
        body = self._body(request)
        singular = kind[:-1]
        if (
            not body.get("name")
            or not body.get("workspaceId")
            or not isinstance(body.get("configuration"), dict)
        ):
            raise problem(422, "unprocessable-entity", "name, workspaceId and configuration are required")
        self._live(self.workspaces, body["workspaceId"], "workspace")
        config = dict(body["configuration"])
        type_key = f"{singular}Type"
        type_name = config.pop(type_key, None)
        definition_id = body.get("definitionId")
        if definition_id is None and type_name is None:
            raise problem(
                422, "unprocessable-entity", f"definitionId or configuration.{type_key} is required"
            )
        if definition_id is None:
            definitions = self.source_definitions if kind == "sources" else self.destination_definitions
            definition_id = next(
                (d["id"] for d in definitions if d["dockerRepository"].endswith(f"-{type_name}")), None
            )
        definition = self._definition(kind, definition_id)
        self._validate_config(definition["spec"], config)
        object_id = str(uuid.uuid4())
        store = self.sources if kind == "sources" else self.destinations
        store[object_id] = {
            f"{singular}Id": object_id,
            "name": body["name"],
            type_key: definition["dockerRepository"].split(f"{singular}-", 1)[-1],
            "definitionId": definition["id"],
            "workspaceId": body["workspaceId"],
            "configuration": config,
            "createdAt": int(time.time()),
        }
        return Response(200, self._actor_view(kind, store[object_id]))

    def _h_get_actor(self, request: Request, kind: str, id: str) -> Response:
        store = self.sources if kind == "sources" else self.destinations
        return Response(200, self._actor_view(kind, self._live(store, id, kind[:-1])))

    def _update_actor(self, request: Request, kind: str, id: str, *, replace: bool) -> Response:
        store = self.sources if kind == "sources" else self.destinations
        item = self._live(store, id, kind[:-1])
        body = self._body(request)
        spec = self._definition(kind, item["definitionId"])["spec"]
        if replace and (not body.get("name") or not isinstance(body.get("configuration"), dict)):
            raise problem(422, "unprocessable-entity", "name and configuration are required")
        config = item["configuration"]
        if isinstance(body.get("configuration"), dict):
            incoming = keep_masked(body["configuration"], item["configuration"], spec)
            config = incoming if replace else deep_merge(item["configuration"], incoming)
        self._validate_config(spec, config)
        item["configuration"] = config
        if body.get("name"):
            item["name"] = body["name"]
        return Response(200, self._actor_view(kind, item))

    def _h_put_actor(self, request: Request, kind: str, id: str) -> Response:
        return self._update_actor(request, kind, id, replace=True)

    def _h_patch_actor(self, request: Request, kind: str, id: str) -> Response:
        return self._update_actor(request, kind, id, replace=False)

    def _h_delete_actor(self, request: Request, kind: str, id: str) -> Response:
        store = self.sources if kind == "sources" else self.destinations
        self._live(store, id, kind[:-1])["_deleted"] = True
        key = "sourceId" if kind == "sources" else "destinationId"
        for connection in self.connections.values():
            if connection[key] == id:  # deleting an actor deletes its connections
                connection["_deleted"] = True
        return Response(204)

    # -- connections -----------------------------------------------------------------------------------

    def _catalog_for_source(self, source: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._definition("sources", source["definitionId"])["catalog"])

    def _stream_configs(self, source: dict[str, Any], configurations: Any) -> list[dict[str, Any]]:
        catalog = {(s["name"], s.get("namespace")): s for s in self._catalog_for_source(source)}
        by_name = {s["name"]: s for s in catalog.values()}
        if configurations is None:
            return [{"name": s["name"], "syncMode": "full_refresh_overwrite"} for s in catalog.values()]
        streams = configurations.get("streams") if isinstance(configurations, dict) else None
        if not isinstance(streams, list):
            raise problem(422, "unprocessable-entity", "configurations.streams must be a list")
        result = []
        for config in streams:
            name = config.get("name")
            stream = catalog.get((name, config.get("namespace"))) or by_name.get(name)
            if stream is None:
                raise problem(400, "invalid-stream", f"Invalid stream found: {name}")
            mode = config.get("syncMode") or "full_refresh_overwrite"
            valid = ["full_refresh_overwrite", "full_refresh_append"]
            if "incremental" in stream["supportedSyncModes"]:
                valid += ["incremental_append", "incremental_deduped_history"]
            if mode not in valid:
                raise problem(
                    400,
                    "error:invalid-sync-mode",
                    f"Cannot set sync mode to {mode} for stream {name}",
                    validSyncModes=valid,
                )
            cursor = config.get("cursorField")
            if mode.startswith("incremental"):
                if stream["sourceDefinedCursor"] and cursor and cursor != stream["defaultCursorField"]:
                    raise problem(400, "invalid-cursor-field", f"Cursor field is source-defined for {name}")
                if not (stream["sourceDefinedCursor"] or stream["defaultCursorField"] or cursor):
                    raise problem(400, "missing-cursor-field", f"No cursor field specified for stream {name}")
            if mode == "incremental_deduped_history":
                primary_key = config.get("primaryKey") or stream["sourceDefinedPrimaryKey"]
                if not primary_key:
                    raise problem(400, "missing-primary-key", f"No primary key specified for stream {name}")
            result.append(dict(config, syncMode=mode))
        return result

    def _schedule(self, schedule: Any) -> dict[str, Any]:
        if schedule is None:
            return {"scheduleType": "manual"}
        kind = schedule.get("scheduleType")
        if kind == "manual":
            return {"scheduleType": "manual"}
        if kind != "cron":
            raise problem(400, "bad-request", f"Unsupported schedule type: {kind}")
        return {
            "scheduleType": "cron",
            "cronExpression": validate_quartz(str(schedule.get("cronExpression", ""))),
        }

    @staticmethod
    def _status(value: Any) -> str:
        # ConnectionStatusEnum of the public API (`locked` is set by Airbyte itself, never by a caller)
        if value not in ("active", "inactive", "deprecated"):
            raise problem(400, "bad-request", f"Invalid connection status: {value}")
        return str(value)

    def _connection_view(self, item: dict[str, Any]) -> dict[str, Any]:
        view = self._public(item)
        schedule = dict(view["schedule"])
        if schedule.get("cronExpression"):
            schedule["cronExpression"] += " UTC"  # quirk: stored UTC, read back with the suffix
        view["schedule"] = schedule
        return view

    def _h_list_connections(self, request: Request) -> Response:
        ids = self._ids(request, "workspaceIds")
        include_deleted = request.query.get("includeDeleted") == "true"
        items = [
            self._connection_view(c)
            for c in self.connections.values()
            if (include_deleted or not c.get("_deleted")) and (ids is None or c["workspaceId"] in ids)
        ]
        return self._page(request, "connections", items)

    def _h_create_connection(self, request: Request) -> Response:
        body = self._body(request)
        if not body.get("sourceId") or not body.get("destinationId"):
            raise problem(422, "unprocessable-entity", "sourceId and destinationId are required")
        source = self._live(self.sources, body["sourceId"], "source")
        destination = self._live(self.destinations, body["destinationId"], "destination")
        if source["workspaceId"] != destination["workspaceId"]:
            raise problem(400, "bad-request", "source and destination are in different workspaces")
        namespace_definition = body.get("namespaceDefinition", "destination")
        if namespace_definition not in ("destination", "source", "custom_format"):
            raise problem(400, "bad-request", f"Invalid namespaceDefinition {namespace_definition}")
        connection_id = str(uuid.uuid4())
        self.connections[connection_id] = {
            "connectionId": connection_id,
            "name": body.get("name") or f"{source['name']} → {destination['name']}",
            "sourceId": source["sourceId"],
            "destinationId": destination["destinationId"],
            "workspaceId": source["workspaceId"],
            "status": self._status(body.get("status", "active")),
            "schedule": self._schedule(body.get("schedule")),
            "configurations": {"streams": self._stream_configs(source, body.get("configurations"))},
            "namespaceDefinition": namespace_definition,
            "namespaceFormat": body.get("namespaceFormat"),
            "prefix": body.get("prefix", ""),
            "nonBreakingSchemaUpdatesBehavior": body.get("nonBreakingSchemaUpdatesBehavior", "ignore"),
            "createdAt": int(time.time()),
            "tags": [],
        }
        return Response(200, self._connection_view(self.connections[connection_id]))

    def _h_get_connection(self, request: Request, id: str) -> Response:
        return Response(200, self._connection_view(self._live(self.connections, id, "connection")))

    def _h_patch_connection(self, request: Request, id: str) -> Response:
        item = self._live(self.connections, id, "connection")
        body = self._body(request)
        if item["status"] == "locked":
            raise problem(409, "error:connection/locked", "The connection is locked")
        updates: dict[str, Any] = {}
        if "schedule" in body:
            updates["schedule"] = self._schedule(body["schedule"])
        if "status" in body:
            updates["status"] = self._status(body["status"])
        if "configurations" in body:
            source = self._live(self.sources, item["sourceId"], "source")
            updates["configurations"] = {"streams": self._stream_configs(source, body["configurations"])}
        for key in (
            "name",
            "namespaceDefinition",
            "namespaceFormat",
            "prefix",
            "nonBreakingSchemaUpdatesBehavior",
        ):
            if key in body:
                updates[key] = body[key]
        item.update(updates)
        return Response(200, self._connection_view(item))

    def _h_delete_connection(self, request: Request, id: str) -> Response:
        self._live(self.connections, id, "connection")["_deleted"] = True
        return Response(204)

    # -- jobs ------------------------------------------------------------------------------------------

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        elapsed = time.monotonic() - job["_started"]
        pending, running = job["_pending"], job["_running"]
        status = job.get("override")
        if status is None:
            if elapsed < pending:
                status = "pending"
            elif elapsed < pending + running:
                status = "running"
            else:
                status = job["_result"]
        view: dict[str, Any] = {
            "jobId": job["jobId"],
            "status": status,
            "jobType": job["jobType"],
            "connectionId": job["connectionId"],
            "startTime": job["startTime"],
        }
        if status != "pending":
            view["duration"] = f"PT{int(elapsed)}S"
            fraction = 1.0 if status == "succeeded" else min(1.0, (elapsed - pending) / max(running, 1e-9))
            rows = int(job["_rows"] * max(0.0, fraction)) if status != "failed" else 0
            view["rowsSynced"] = rows
            view["bytesSynced"] = rows * 120
        if status in _TERMINAL:
            view["lastUpdatedAt"] = job.get("ended") or _now_iso()
        return view

    def _active_job(self, connection_id: str) -> dict[str, Any] | None:
        for job in self.jobs.values():
            if job["connectionId"] == connection_id and self._job_view(job)["status"] not in _TERMINAL:
                return job
        return None

    def _h_create_job(self, request: Request) -> Response:
        body = self._body(request)
        job_type = body.get("jobType")
        if job_type not in ("sync", "reset", "clear"):
            raise problem(422, "unprocessable-entity", f"Unsupported jobType {job_type}")
        connection = self._live(self.connections, str(body.get("connectionId")), "connection")
        if self._active_job(connection["connectionId"]) is not None:
            raise problem(
                409, "try-again-later", f"A sync is already running for: {connection['connectionId']}"
            )
        job_id = next(self._job_ids)
        self.jobs[job_id] = {
            "jobId": job_id,
            "jobType": job_type,
            "connectionId": connection["connectionId"],
            "startTime": _now_iso(),
            "_started": time.monotonic(),
            "_pending": self.job_pending_seconds,
            "_running": self.job_running_seconds,
            "_result": self.job_result,
            "_rows": self.job_rows,
        }
        return Response(200, self._job_view(self.jobs[job_id]))

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(int(job_id)) if job_id.isdigit() else None
        if job is None:
            raise problem(
                404,
                "resource-not-found",
                f"Could not find a resource for: {job_id}",
                resourceType="job",
                resourceId=job_id,
            )
        return job

    def _h_get_job(self, request: Request, id: str) -> Response:
        return Response(200, self._job_view(self._job(id)))

    def _h_list_jobs(self, request: Request) -> Response:
        items = [self._job_view(job) for job in self.jobs.values()]
        filters = {key: request.query.get(key) for key in ("connectionId", "status", "jobType")}
        items = [i for i in items if all(v is None or str(i.get(k)) == v for k, v in filters.items())]
        if request.query.get("orderBy", "createdAt|ASC").endswith("DESC"):
            items.reverse()
        return self._page(request, "jobs", items)

    def _h_cancel_job(self, request: Request, id: str) -> Response:
        job = self._job(id)
        if self._job_view(job)["status"] in _TERMINAL:
            raise problem(409, "state-conflict", "Job is not currently running")
        job["override"] = "cancelled"
        job["ended"] = _now_iso()
        return Response(200, self._job_view(job))

    # -- config API ------------------------------------------------------------------------------------

    def _config_definition(self, definition_id: Any) -> dict[str, Any]:
        for definition in self.source_definitions:
            if definition["id"] == definition_id:
                return definition
        raise config_error(404, f"Could not find source definition {definition_id}")

    def _config_source(self, body: Any) -> dict[str, Any]:
        source_id = body.get("sourceId") if isinstance(body, dict) else None
        item = self.sources.get(str(source_id))
        if item is None or item.get("_deleted"):
            raise config_error(404, f"Could not find source {source_id}")
        return item

    @staticmethod
    def _job_info(config_type: str, ok: bool, message: str | None = None) -> dict[str, Any]:
        now = int(time.time() * 1000)
        info: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "configType": config_type,
            "createdAt": now,
            "endedAt": now,
            "succeeded": ok,
            "connectorConfigurationUpdated": False,
            "logs": {"logLines": []},
        }
        if not ok:
            info["failureReason"] = {
                "failureOrigin": "source",
                "failureType": "config_error",
                "externalMessage": message,
                "retryable": False,
                "timestamp": now,
            }
        return info

    @staticmethod
    def _reachable(config: dict[str, Any]) -> bool:
        # a config naming host/url `unreachable...` fails its check and discover, like a wrong hostname would
        return not any(str(config.get(key, "")).startswith("unreachable") for key in ("host", "url"))

    def _check(self, definition: dict[str, Any], config: dict[str, Any]) -> Response:
        try:
            jsonschema.validate(config, definition["spec"])
        except jsonschema.ValidationError as exc:
            message = f"Config validation error: {exc.validator} violated at {list(exc.absolute_path)}"
            return Response(
                200,
                {
                    "status": "failed",
                    "message": message,
                    "jobInfo": self._job_info("check_connection_source", False, message),
                },
            )
        if not self._reachable(config):
            message = "Could not connect with provided configuration. Connection refused."
            return Response(
                200,
                {
                    "status": "failed",
                    "message": message,
                    "jobInfo": self._job_info("check_connection_source", False, message),
                },
            )
        return Response(
            200,
            {
                "status": "succeeded",
                "message": None,
                "jobInfo": self._job_info("check_connection_source", True),
            },
        )

    def _discover(self, definition: dict[str, Any], config: dict[str, Any]) -> Response:
        if not self._reachable(config):
            message = "Unable to discover: connection refused"
            return Response(200, {"jobInfo": self._job_info("discover_schema", False, message)})
        streams = [
            {
                "stream": copy.deepcopy(stream),
                "config": {
                    "syncMode": "full_refresh",
                    "destinationSyncMode": "overwrite",
                    "cursorField": stream["defaultCursorField"],
                    "primaryKey": stream["sourceDefinedPrimaryKey"],
                    "aliasName": stream["name"],
                    "selected": True,
                    "suggested": True,
                },
            }
            for stream in definition["catalog"]
        ]
        return Response(
            200,
            {
                "catalog": {"streams": streams},
                "catalogId": str(uuid.uuid4()),
                "jobInfo": self._job_info("discover_schema", True),
            },
        )

    def _h_config_spec(self, request: Request) -> Response:
        body = request.body if isinstance(request.body, dict) else {}
        definition = self._config_definition(body.get("sourceDefinitionId"))
        return Response(
            200,
            {
                "sourceDefinitionId": definition["id"],
                "connectionSpecification": copy.deepcopy(definition["spec"]),
                "documentationUrl": "https://docs.airbyte.com",
                "jobInfo": self._job_info("get_spec", True),
            },
        )

    def _h_config_check_source(self, request: Request) -> Response:
        source = self._config_source(request.body)
        return self._check(self._config_definition(source["definitionId"]), source["configuration"])

    def _h_config_discover_source(self, request: Request) -> Response:
        source = self._config_source(request.body)
        return self._discover(self._config_definition(source["definitionId"]), source["configuration"])

    def _h_config_check_config(self, request: Request) -> Response:
        body = request.body if isinstance(request.body, dict) else {}
        definition = self._config_definition(body.get("sourceDefinitionId"))
        return self._check(definition, dict(body.get("connectionConfiguration") or {}))

    def _h_config_discover_config(self, request: Request) -> Response:
        body = request.body if isinstance(request.body, dict) else {}
        definition = self._config_definition(body.get("sourceDefinitionId"))
        return self._discover(definition, dict(body.get("connectionConfiguration") or {}))

    def _h_config_get_job(self, request: Request) -> Response:
        body = request.body if isinstance(request.body, dict) else {}
        job = self._job(str(body.get("id")))
        view = self._job_view(job)
        failures = (
            [
                {
                    "failureOrigin": "source",
                    "failureType": "system_error",
                    "externalMessage": "Something went wrong in the connector.",
                }
            ]
            if view["status"] == "failed"
            else []
        )
        return Response(
            200,
            {
                "job": {"id": job["jobId"], "configType": "sync", "status": view["status"]},
                "attempts": [
                    {
                        "attempt": {
                            "id": 0,
                            "status": view["status"],
                            "failureSummary": {"failures": failures} if failures else None,
                        }
                    }
                ],
            },
        )
