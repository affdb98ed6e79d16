"""The console is served at /console: SPA routes answer index.html, hashed assets are cached for a year, strict
security headers everywhere, no auth needed for the page itself; CORS for an SPA hosted elsewhere."""

import dataclasses
import re
import subprocess
import sys
import uuid
from pathlib import Path

import jwt
import pytest
from litestar.testing import AsyncTestClient

from ingest.console import DEFAULT_DIST
from tests.conftest import JWT_SECRET, assert_error_body, build_app, headers_for

ASSET = "assets/index-Ab12Cd34.js"
INDEX = (
    '<!doctype html><html><head><script type="module" crossorigin src="/console/assets/index-Ab12Cd34.js">'
    "</script></head><body><div id=app></div></body></html>"
)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / ASSET).write_text("console.log('console');")
    (tmp_path / "secret.txt").write_text("outside the console")
    return root


@pytest.fixture
async def console_client(settings, database_url, dist, rollback_session_maker):
    app = build_app(
        dataclasses.replace(settings, console_dir=dist, cors_origins=["https://admin.example.com"]),
        database_url,
        session_maker=rollback_session_maker,
        run_worker_in_process=False,
    )
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield client


def assert_security_headers(response) -> None:
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "path", ["/console", "/console/", "/console/sources", "/console/tables/default/users"]
)
async def test_spa_routes_answer_index_without_a_token(console_client, path):
    response = await console_client.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert_security_headers(response)


async def test_hashed_assets_are_immutable(console_client):
    response = await console_client.get(f"/console/{ASSET}")
    assert response.status_code == 200
    assert response.text == "console.log('console');"
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert_security_headers(response)


async def test_missing_asset_is_a_404_error_body(console_client):
    response = await console_client.get("/console/assets/index-gone.js")
    assert response.status_code == 404
    assert_error_body(response, 404)


@pytest.mark.parametrize(
    "path", ["/console/assets/../../secret.txt", "/console/assets/%2e%2e/%2e%2e/secret.txt"]
)
async def test_no_file_outside_the_build_is_served(console_client, path):
    response = await console_client.get(path)
    assert "outside the console" not in response.text


async def test_config_names_the_token_claims(console_client):
    response = await console_client.get("/console/config.json")
    assert response.status_code == 200
    assert response.json() == {"tenantsClaim": "tenants", "permissionsClaim": "permissions"}
    assert response.headers["cache-control"] == "no-cache"


async def test_console_not_built_is_a_503_that_says_so(settings, database_url, tmp_path):
    app = build_app(
        dataclasses.replace(settings, console_dir=tmp_path / "nothing"),
        database_url,
        run_worker_in_process=False,
    )
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        response = await client.get("/console/sources")
    assert response.status_code == 503
    assert_error_body(response, 503)
    assert "make console" in response.json()["message"]


async def test_console_is_not_an_api_operation(console_client):
    document = (await console_client.get("/schema/openapi.json")).json()
    assert not [p for p in document["paths"] if p.startswith("/console")]


async def test_cors_preflight_and_errors_for_a_configured_origin(console_client):
    origin = "https://admin.example.com"
    preflight = await console_client.options(
        "/api/v1/sources",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-tenant-id",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == origin
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "x-tenant-id" in allowed
    # an error answer must be readable by the SPA too (its message is what the console shows)
    unauthorized = await console_client.get("/api/v1/sources", headers={"Origin": origin})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == origin
    tenant = uuid.uuid4()
    ok = await console_client.get("/api/v1/sources", headers={**headers_for(tenant), "Origin": origin})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == origin


async def test_cors_refuses_other_origins(console_client):
    response = await console_client.get("/api/v1/sources", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in response.headers


async def test_no_cors_headers_without_configured_origins(client):
    response = await client.get("/api/v1/sources", headers={"Origin": "https://admin.example.com"})
    assert "access-control-allow-origin" not in response.headers


def test_console_command_prints_a_link_with_a_token_in_the_fragment(tmp_path):
    tenant = str(uuid.uuid4())
    env = {"INGEST_JWT_SECRET": JWT_SECRET, "INGEST_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "console", "--tenant", tenant, "--ttl", "120"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    match = re.fullmatch(r"http://localhost:8113/console/#token=([\w.-]+)", out)
    assert match, out
    claims = jwt.decode(match.group(1), JWT_SECRET, algorithms=["HS256"])
    assert claims["tenants"] == [tenant]
    assert set(claims["permissions"]) == {"data:ingestion:read", "data:ingestion:manage"}
    assert 0 < claims["exp"] - claims["iat"] <= 120


def test_built_console_has_no_inline_script():
    """The CSP forbids inline scripts: the real build (make console) must not need one."""
    index = DEFAULT_DIST / "index.html"
    if not index.is_file():
        pytest.fail("console/dist is missing: run `make console` (make test does)")
    html = index.read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attributes, body in scripts:
        assert 'src="/console/assets/' in attributes and not body.strip()
    assert "style=" not in html and "<style" not in html
