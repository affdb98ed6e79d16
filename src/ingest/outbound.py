"""The only code that calls user-given URLs (webhooks), with the SSRF guard.

- https only, unless `INGEST_WEBHOOK_ALLOW_HTTP` (development);
- the host is resolved and EVERY address checked: private, loopback, link-local, multicast, reserved and
  unspecified addresses are refused unless `INGEST_WEBHOOK_ALLOW_PRIVATE`;
- the request goes to the address that was checked (the host name is kept for TLS SNI, certificate
  verification and the Host header), so a DNS answer that changes between check and connect
  (DNS rebinding) cannot redirect it;
- redirects are never followed (a 3xx is a failed delivery).
"""

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from ingest.core.errors import InvalidRequestError
from ingest.core.settings import Settings

MAX_URL_LENGTH = 2000
MAX_ERROR_LENGTH = 500


class UnsafeURLError(InvalidRequestError):
    """The URL is not allowed as an outbound target (scheme, or an address it resolves to)."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query


@dataclass(frozen=True)
class OutboundResult:
    status_code: int | None  # None: no answer (timeout, refused, TLS, unsafe address)
    duration_ms: int
    error: str | None  # safe to show: never a response body
    retryable: bool


def parse_target(url: str, settings: Settings) -> Target:
    """Check the URL's form (scheme, host, no credentials); 400 naming the rule otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"url must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURLError("url is not a valid URL") from None
    scheme = parts.scheme.lower()
    allowed = {"https", "http"} if settings.webhook_allow_http else {"https"}
    if scheme not in allowed:
        raise UnsafeURLError("url must use https" if scheme == "http" else "url must be an https URL")
    if not parts.hostname:
        raise UnsafeURLError("url must name a host")
    if parts.username or parts.password:
        raise UnsafeURLError("url must not carry credentials")
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return Target(url, scheme, parts.hostname, port or (443 if scheme == "https" else 80), path)


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return bool(
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


async def resolve(target: Target, settings: Settings) -> list[str]:
    """Every address the host resolves to, each checked; refuses the lot if any one is not allowed."""
    try:
        literal = ipaddress.ip_address(target.host)
        addresses = [literal]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise UnsafeURLError(f"url host '{target.host[:100]}' does not resolve") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeURLError(f"url host '{target.host[:100]}' does not resolve")
    if not settings.webhook_allow_private:
        for address in addresses:
            if _refused(address):
                raise UnsafeURLError(
                    f"url host '{target.host[:100]}' resolves to a private, loopback or link-local "
                    f"address ({address}); such targets are not allowed"
                )
    return [str(a) for a in addresses]


async def check_url(url: str, settings: Settings) -> Target:
    """What a create or update checks: the form, and that the host resolves to allowed addresses only."""
    target = parse_target(url, settings)
    await resolve(target, settings)
    return target


class OutboundClient:
    """POSTs to user-given URLs through the guard; one pooled httpx client per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(settings.webhook_timeout_seconds),
            trust_env=False,  # never through a proxy from the environment
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> OutboundResult:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            target = parse_target(url, self.settings)
            addresses = await resolve(target, self.settings)
        except UnsafeURLError as exc:
            return OutboundResult(None, took(), exc.message, retryable=False)
        address = addresses[0]
        host = f"[{address}]" if ":" in address else address
        pinned = f"{target.scheme}://{host}:{target.port}{target.path}"
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        try:
            response = await self._client.post(
                pinned,
                content=body,
                headers={**headers, "Host": host_header, "Content-Type": "application/json"},
                extensions={"sni_hostname": target.host},
            )
        except httpx.TimeoutException:
            return OutboundResult(None, took(), "timed out", retryable=True)
        except httpx.HTTPError as exc:
            return OutboundResult(None, took(), f"{type(exc).__name__}: {str(exc)[:200]}", retryable=True)
        status = response.status_code
        if 200 <= status < 300:
            return OutboundResult(status, took(), None, retryable=False)
        if 300 <= status < 400:
            return OutboundResult(
                status, took(), f"HTTP {status}: redirects are not followed", retryable=False
            )
        retryable = status == 429 or status == 408 or status >= 500
        return OutboundResult(status, took(), f"HTTP {status}", retryable=retryable)
