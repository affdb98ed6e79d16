"""HTTP transport to Airbyte: tokens, timeouts, retries, pagination and the mapping of failures to AppErrors.

Every Airbyte URL is built here or in `engine.py`; nothing else in the codebase talks to Airbyte.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ingest.core import observe
from ingest.core.errors import (
    AppError,
    ConflictError,
    ConnectorError,
    InvalidRequestError,
    NotFoundError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ingest.core.logging import get_logger
from ingest.core.settings import Settings

PUBLIC = "/api/public/v1"
CONFIG = "/api/v1"
_PAGE = 100  # the public API's maximum `limit`
_TOKEN_MARGIN_SECONDS = 60.0

log = get_logger("ingest.engines.airbyte")


class RemoteNotFoundError(NotFoundError):
    """Airbyte answered 404 for an object we hold an id for: it was deleted remotely (drift)."""


class RemoteConflictError(ConflictError):
    """Airbyte answered 409 (a sync already runs, a job is not running, a locked connection)."""


class Call(Enum):
    """How a request may be retried."""

    READ = "read"  # idempotent: retry on every transient failure
    WRITE = "write"  # creates and triggers: after an ambiguous failure, ask `recover` before re-sending
    CONNECTOR = "connector"  # check/discover: a connector runs; timeouts and 500s are final


@dataclass
class _Transient(Exception):
    """One failed attempt that a retry may fix; `kind` picks the final error if retries run out."""

    kind: str  # unreachable | timeout | unavailable | server
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    json_body: Any
    params: Mapping[str, Any] | None
    call: Call
    recover: Callable[[], Awaitable[Any]] | None
    timeout: float
    operation: str
    config: Mapping[str, Any] | None


@dataclass
class _Token:
    value: str
    expires_at: float


def scrub(text: str, config: Mapping[str, Any] | None) -> str:
    """Replace every string value of a connector config found in `text` (Airbyte may echo values)."""
    if not config:
        return text
    values: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str | int | float) and not isinstance(node, bool):
            value = str(node)
            if len(value) >= 3:
                values.append(value)

    walk(config)
    for value in sorted(set(values), key=len, reverse=True):
        text = text.replace(value, "**********")
    return text


def problem_message(response: httpx.Response) -> str:
    """The human part of an Airbyte error body (public problem, Micronaut or config-API shape)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    embedded = body.get("_embedded")
    if isinstance(embedded, dict):
        errors = embedded.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))
    for key in ("detail", "message", "title"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class AirbyteClient:
    """One shared httpx client plus the token cache; safe to use from concurrent tasks."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        if not settings.airbyte_url:
            raise ValueError("INGEST_AIRBYTE_URL is required when INGEST_ENGINE=airbyte")
        base = settings.airbyte_url.rstrip("/")
        for suffix in (PUBLIC, CONFIG):
            base = base.removesuffix(suffix)
        self.base_url = base
        self._settings = settings
        self._timeout = settings.airbyte_timeout_seconds
        self._long_timeout = max(settings.airbyte_long_timeout_seconds, self._timeout)
        self._owns_client = client is None
        self._http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    async def close(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    # -- tokens ---------------------------------------------------------------------------------------

    async def _access_token(self, stale: str | None = None) -> str | None:
        if not self._settings.airbyte_client_id:
            return None  # an instance with auth disabled
        async with self._token_lock:
            token = self._token
            if token is not None and token.value != stale and time.monotonic() < token.expires_at:
                return token.value
            self._token = await self._fetch_token()
            return self._token.value

    async def _fetch_token(self) -> _Token:
        started = time.monotonic()
        try:
            response = await self._http.post(
                f"{self.base_url}{PUBLIC}/applications/token",
                json={
                    "client_id": self._settings.airbyte_client_id,
                    "client_secret": self._settings.airbyte_client_secret or "",
                    "grant-type": "client_credentials",
                },
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            # the token call is idempotent: never let it look like an ambiguous write or connector timeout
            raise _Transient("timeout") from exc
        except httpx.TransportError as exc:
            raise _Transient("unreachable") from exc
        if response.status_code == 429:
            raise _Transient("unavailable", 429, _retry_after(response))
        if response.status_code >= 500:
            raise _Transient("unavailable" if response.status_code == 503 else "server", response.status_code)
        if response.status_code != 200:
            raise UpstreamError(
                f"Airbyte at {self.base_url} rejected the application credentials (HTTP "
                f"{response.status_code}); check INGEST_AIRBYTE_CLIENT_ID and INGEST_AIRBYTE_CLIENT_SECRET"
            )
        body = response.json()
        expires_in = float(body.get("expires_in") or 180)
        # refresh ahead of expiry; for very short lifetimes, halfway through
        margin = min(_TOKEN_MARGIN_SECONDS, expires_in / 2)
        return _Token(str(body["access_token"]), started + expires_in - margin)

    # -- requests -------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        call: Call = Call.READ,
        recover: Callable[[], Awaitable[Any]] | None = None,
        long: bool = False,
        operation: str,
        config: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one logical request with retries; returns the decoded JSON body (None for 204).

        `path` starts with PUBLIC or CONFIG. For `Call.WRITE`, a timeout or dropped connection may mean
        Airbyte acted without answering: `recover()` looks the result up and, if it returns non-None, that
        is the answer; otherwise the request is sent again. Without `recover` a write is not repeated.
        `long` selects the long timeout (a connector runs behind the call). `config` (a connector config in
        the body) is scrubbed from any message that reaches an error.
        """
        url = f"{self.base_url}{path}"
        timeout = self._long_timeout if long else self._timeout
        attempts = max(1, self._settings.airbyte_retry_attempts)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=lambda state: self._wait(state, operation),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        request = _Request(method, url, json_body, params, call, recover, timeout, operation, config)
        outcome, tries = "error", 0
        try:
            async for attempt in retrying:
                tries = attempt.retry_state.attempt_number
                with attempt:
                    result = await self._attempt(request)
                    outcome = "ok"
                    return result
        except _Transient as failure:
            outcome = "upstream_error"
            raise self._final_error(failure, operation, timeout, attempts) from None
        except AppError as exc:
            outcome = "client_error" if exc.status_code < 500 else "upstream_error"
            raise
        finally:
            observe.airbyte_call(operation, outcome, max(0, tries - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState, operation: str) -> float:
        outcome = state.outcome
        failure = outcome.exception() if outcome is not None else None
        cap = self._settings.airbyte_retry_max_backoff_seconds
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            wait = float(min(failure.retry_after, cap))
        else:
            base = self._settings.airbyte_retry_backoff_seconds * 2 ** (state.attempt_number - 1)
            wait = float(min(cap, base) * (0.5 + random.random() / 2))
        if isinstance(failure, _Transient):
            log.info(
                "airbyte.request.retry",
                operation=operation,
                attempt=state.attempt_number,
                kind=failure.kind,
                status=failure.status,
                wait_seconds=round(wait, 3),
            )
        return wait

    async def _ambiguous(self, request: _Request, kind: str, status: int | None = None) -> Any:
        """After a failure that may have happened after Airbyte acted: recover, give up, or retry."""
        if request.call is Call.WRITE:
            if request.recover is None:
                raise self._final_error(_Transient(kind, status), request.operation, request.timeout, 1)
            found = await request.recover()
            if found is not None:
                return found
        elif request.call is Call.CONNECTOR and kind == "timeout":
            # a connector that ran past the timeout would run past it again
            raise self._final_error(_Transient(kind, status), request.operation, request.timeout, 1)
        raise _Transient(kind, status)

    async def _attempt(self, request: _Request) -> Any:
        try:
            response = await self._send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Transient("unreachable") from exc  # never reached Airbyte: always safe to repeat
        except httpx.TimeoutException:
            return await self._ambiguous(request, "timeout")
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            return await self._ambiguous(request, "unreachable")

        status = response.status_code
        if status in (429, 503):  # shedding load: the request was not processed
            raise _Transient("unavailable", status, _retry_after(response))
        if status == 502:  # a gateway: Airbyte may have acted before the proxy lost its answer
            return await self._ambiguous(request, "unavailable", status)
        if status in (408, 504):
            return await self._ambiguous(request, "timeout", status)
        if status >= 500:
            if request.call is Call.CONNECTOR:
                # Airbyte wraps connector failures (discover/check crashed) in a 500
                raise ConnectorError(
                    scrub(f"the Airbyte connector run failed: {problem_message(response)}", request.config)
                )
            return await self._ambiguous(request, "server", status)
        if status == 204:
            return None
        if status < 300:
            return response.json() if response.content else None
        raise self._client_error(response, request.config)

    async def _send(self, request: _Request) -> httpx.Response:
        token = await self._access_token()
        response = await self._http.request(
            request.method,
            request.url,
            json=request.json_body,
            params=request.params,
            headers=_auth(token),
            timeout=request.timeout,
        )
        if response.status_code == 401 and token is not None:
            # expired or revoked early (server restart, shorter server-side lifetime): refresh once
            token = await self._access_token(stale=token)
            response = await self._http.request(
                request.method,
                request.url,
                json=request.json_body,
                params=request.params,
                headers=_auth(token),
                timeout=request.timeout,
            )
        return response

    def _client_error(self, response: httpx.Response, config: Mapping[str, Any] | None) -> AppError:
        status = response.status_code
        if status == 401:
            return UpstreamError(
                f"Airbyte at {self.base_url} rejected a fresh access token; check INGEST_AIRBYTE_CLIENT_ID "
                "and INGEST_AIRBYTE_CLIENT_SECRET"
            )
        if status == 403:
            return UpstreamError(
                f"the Airbyte application user lacks a role on this workspace at {self.base_url}"
            )
        if status == 404:
            if problem_message(response) == "Page Not Found":
                # the route itself is missing (config-API endpoints vanish between Airbyte releases)
                return UpstreamError(
                    f"Airbyte at {self.base_url} does not serve {response.request.url.path}; "
                    "this Airbyte version may be unsupported"
                )
            return RemoteNotFoundError("the object no longer exists in Airbyte")
        message = scrub(problem_message(response), config)
        if status == 409:
            return RemoteConflictError(f"Airbyte: {message}")
        return InvalidRequestError(f"Airbyte rejected the request: {message}")

    def _final_error(self, failure: _Transient, operation: str, timeout: float, attempts: int) -> AppError:
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        if failure.kind == "unreachable":
            return UpstreamUnavailableError(
                f"Airbyte at {self.base_url} is unreachable{tried}; check INGEST_AIRBYTE_URL and that the "
                "Airbyte server is running"
            )
        if failure.kind == "timeout":
            return UpstreamTimeoutError(
                f"Airbyte at {self.base_url} did not answer within {timeout:g}s while trying to {operation}"
                f"{tried}; it may be overloaded (timeouts: INGEST_AIRBYTE_TIMEOUT_SECONDS, "
                "INGEST_AIRBYTE_LONG_TIMEOUT_SECONDS)"
            )
        if failure.kind == "unavailable":
            return UpstreamUnavailableError(
                f"Airbyte at {self.base_url} is unavailable (HTTP {failure.status}){tried} while trying to "
                f"{operation}; try again later"
            )
        return UpstreamError(
            f"Airbyte at {self.base_url} failed (HTTP {failure.status}){tried} while trying to {operation}"
        )

    async def list_all(self, path: str, params: Mapping[str, Any], *, operation: str) -> list[dict[str, Any]]:
        """Every item of a public list; offsets computed here (`next` links name internal hosts)."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.request(
                "GET", path, params={**params, "limit": _PAGE, "offset": offset}, operation=operation
            )
            data = page.get("data") if isinstance(page, dict) else None
            if not data:
                return items
            items.extend(data)
            if len(data) < _PAGE:
                return items
            offset += _PAGE


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
