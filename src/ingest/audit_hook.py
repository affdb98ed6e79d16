"""The one place that audits API changes: every successful mutating request, in its own transaction.

Wired once in `app.py`: the request's session provider calls `audit_request` after the handler succeeded
and before it commits, so an audit event exists exactly when the change it records does. The action comes
from the route's operation id (`pause_connection` -> `connection.pause`) unless the route sets
`opt={"audit": "<noun>.<verb>"}` (or `opt={"audit": False}` to opt out), or the handler sets
`request.scope[AUDIT_SCOPE_KEY]` for this one request.
"""

import re
import uuid
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.audit.service import inserted_id, record_audit
from ingest.auth import Principal
from ingest.tenancy import TENANT_HEADER

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_SCOPE_KEY = "ingest.request_id"
AUDIT_SCOPE_KEY = (
    "ingest.audit"  # set by a handler: this request's audit action (or False), over opt["audit"]
)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(value: str | None) -> str:
    """The caller's `X-Request-Id` when it is a plain token (<= 128 chars), else a fresh one."""
    if value and _SAFE_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def action_of(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    """(action, noun) from the route: `opt={"audit": "file.schema"}` or its operation id `verb_noun`."""
    handler = request.route_handler
    # a handler may decide per request (the resumable upload's PATCH audits only the chunk that completes it)
    explicit = request.scope.get(AUDIT_SCOPE_KEY, handler.opt.get("audit"))
    if explicit is False:
        return None
    operation_id = handler.operation_id if isinstance(handler.operation_id, str) else handler.handler_name
    verb, _, noun = operation_id.partition("_")
    if isinstance(explicit, str):
        return explicit, explicit.partition(".")[0]
    return (f"{noun}.{verb}" if noun else verb), noun or verb


async def audit_request(request: Request[Any, Any, Any], session: AsyncSession) -> None:
    """Record the request that just succeeded, in its own transaction, if it changed something.

    The target is the object named by the route's `{x_id}` path parameter, or for a create the row of the
    route's noun the request inserted. Called by the request's session provider before it commits.
    """
    if request.method not in MUTATING:
        return
    user = request.scope.get("user")
    raw_tenant = request.headers.get(TENANT_HEADER)
    if isinstance(user, Principal) and user.api_key_id is not None and not raw_tenant:
        raw_tenant = str(next(iter(user.tenant_ids)))  # a key's calls may leave the header out
    if not isinstance(user, Principal) or not raw_tenant:
        return  # not a tenant-scoped change (the tenant dependency has already refused bad headers)
    try:
        tenant_id = uuid.UUID(raw_tenant.strip())
    except ValueError:
        return
    action = action_of(request)
    if action is None:
        return
    name, noun = action
    target_type, target_id = noun, None
    for key, value in request.path_params.items():
        if key.endswith("_id"):
            target_type, target_id = key[: -len("_id")], value
            break
    else:
        # a create: the row it inserted; else the path's own names (`/tables/{namespace}/{table}/...`)
        target_id = inserted_id(session, noun)
        if target_id is None and request.path_params:
            target_id = "/".join(str(v) for v in request.path_params.values())
    request_id = request.scope.get(REQUEST_ID_SCOPE_KEY)
    await record_audit(
        session,
        user.subject,
        tenant_id,
        name,
        target_type,
        target_id,
        str(request_id) if request_id else None,
    )
