"""Every authentication and tenancy case, answered with the seed's error body."""

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ingest.auth import TokenVerifier
from ingest.core.errors import UnauthorizedError
from ingest.core.settings import Settings
from tests.conftest import JWT_SECRET, MANAGE, READ, assert_error_body, headers_for, make_token

PROTECTED = "/api/v1/me"
MANAGED = "/api/v1/sources"


async def test_health_and_ready_need_no_token(client):
    assert (await client.get("/health")).json() == {"status": "UP"}
    assert (await client.get("/ready")).json() == {"status": "UP"}


async def test_openapi_document_needs_no_token(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "ingest"


async def test_no_token_is_401(client):
    assert_error_body(await client.get(PROTECTED), 401, "authorization")


async def test_not_bearer_is_401(client):
    assert_error_body(await client.get(PROTECTED, headers={"Authorization": "Basic abc"}), 401, "bearer")


async def test_malformed_token_is_401(client):
    assert_error_body(
        await client.get(PROTECTED, headers={"Authorization": "Bearer not.a.jwt"}), 401, "malformed"
    )


async def test_bad_signature_is_401(client, tenant):
    token = make_token([tenant], secret="another-secret-of-sufficient-length-000")
    response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert_error_body(response, 401, "signature")


async def test_expired_token_is_401(client, tenant):
    token = make_token([tenant], ttl=-10)
    assert_error_body(
        await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"}), 401, "expired"
    )


async def test_token_without_exp_is_401(client, tenant):
    token = jwt.encode({"sub": "x", "tenants": [str(tenant)], "permissions": [READ]}, JWT_SECRET, "HS256")
    assert_error_body(await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"}), 401, "exp")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_alg_none_is_401(client, tenant):
    claims = {"sub": "x", "exp": int(time.time()) + 60, "tenants": [str(tenant)], "permissions": [MANAGE]}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert_error_body(await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"}), 401, "none")


async def test_unconfigured_algorithm_is_401(client, tenant):
    token = make_token([tenant], algorithm="HS512")
    assert_error_body(await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"}), 401, "HS512")


async def test_missing_tenant_header_is_400(client, tenant):
    headers = {"Authorization": f"Bearer {make_token([tenant])}"}
    assert_error_body(await client.get(PROTECTED, headers=headers), 400, "X-Tenant-Id")


async def test_malformed_tenant_header_is_400(client, tenant):
    headers = {"Authorization": f"Bearer {make_token([tenant])}", "X-Tenant-Id": "not-a-uuid"}
    assert_error_body(await client.get(PROTECTED, headers=headers), 400, "UUID")


async def test_foreign_tenant_is_403(client, tenant):
    headers = {"Authorization": f"Bearer {make_token([tenant])}", "X-Tenant-Id": str(uuid.uuid4())}
    assert_error_body(await client.get(PROTECTED, headers=headers), 403, "tenant")


async def test_missing_read_permission_is_403(client, tenant):
    response = await client.get(PROTECTED, headers=headers_for(tenant, "something:else"))
    assert_error_body(response, 403, READ)


async def test_missing_manage_permission_is_403(client, tenant):
    response = await client.post(MANAGED, headers=headers_for(tenant, READ), json={})
    assert_error_body(response, 403, MANAGE)


async def test_read_and_manage_permissions_pass(client, tenant):
    body = (await client.get(PROTECTED, headers=headers_for(tenant, READ))).json()
    assert body == {"subject": "test", "tenant": str(tenant), "permissions": [READ]}
    assert (await client.get(PROTECTED, headers=headers_for(tenant, MANAGE))).status_code == 200


def _settings(tmp_path, **kwargs) -> Settings:
    return Settings.from_env(environ={}, data_dir=tmp_path, **kwargs)


async def test_wrong_audience_and_issuer_are_401(tmp_path, tenant):
    verifier = TokenVerifier(
        _settings(tmp_path, jwt_secret=JWT_SECRET, jwt_audience="ingest", jwt_issuer="idp")
    )
    good = make_token([tenant], aud="ingest", iss="idp")
    assert tenant in (await verifier.verify(good)).tenant_ids
    with pytest.raises(UnauthorizedError, match="audience"):
        await verifier.verify(make_token([tenant], aud="someone-else", iss="idp"))
    with pytest.raises(UnauthorizedError, match="issuer"):
        await verifier.verify(make_token([tenant], aud="ingest", iss="evil"))


async def test_wrong_audience_through_the_api_is_401(tmp_path, database_url, tenant):
    from litestar.testing import AsyncTestClient

    from tests.conftest import build_app

    settings = _settings(tmp_path, jwt_secret=JWT_SECRET, jwt_audience="ingest", database_url=database_url)
    app = build_app(settings, database_url, run_worker_in_process=False)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as c:
        bad = {"Authorization": f"Bearer {make_token([tenant], aud='other')}", "X-Tenant-Id": str(tenant)}
        assert_error_body(await c.get(PROTECTED, headers=bad), 401, "audience")
        good = {"Authorization": f"Bearer {make_token([tenant], aud='ingest')}", "X-Tenant-Id": str(tenant)}
        assert (await c.get(PROTECTED, headers=good)).status_code == 200


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_jwks_keys_verify_rs256_and_es256(tmp_path, tenant, algorithm, monkeypatch):
    key = (
        rsa.generate_private_key(65537, 2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    jwk = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
        if algorithm == "RS256"
        else jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())
    )
    jwk.update(kid="k1", alg=algorithm, use="sig")
    verifier = TokenVerifier(_settings(tmp_path, jwt_jwks_url="http://127.0.0.1:9/jwks.json"))
    fetched = []

    def fake_fetch():
        fetched.append(1)
        return {"keys": [jwk]}

    monkeypatch.setattr(verifier._jwks, "fetch_data", fake_fetch)
    token = make_token([tenant], secret=key, algorithm=algorithm, headers=None)
    token = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}), key, algorithm, headers={"kid": "k1"}
    )
    principal = await verifier.verify(token)
    assert tenant in principal.tenant_ids
    await verifier.verify(token)
    assert len(fetched) == 1  # keys are cached
    with pytest.raises(UnauthorizedError):
        await verifier.verify(make_token([tenant]))  # HS256 is not accepted when keys come from JWKS


def test_cli_token_is_accepted_by_a_server_on_the_same_data_dir(tmp_path, tenant):
    import asyncio

    from ingest.cli import main

    settings = _settings(tmp_path)
    verifier = TokenVerifier(settings)
    assert verifier.using_dev_key
    assert (tmp_path / "dev-jwt-secret").stat().st_mode & 0o777 == 0o600
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        import os

        os.environ["INGEST_DATA_DIR"] = str(tmp_path)
        try:
            assert main(["token", "--tenant", str(tenant), "--permission", READ, "--ttl", "60"]) == 0
        finally:
            del os.environ["INGEST_DATA_DIR"]
    principal = asyncio.run(TokenVerifier(_settings(tmp_path)).verify(out.getvalue().strip()))
    assert principal.tenant_ids == {tenant}
    assert principal.permissions == {READ}


async def test_a_remembered_token_still_expires(tmp_path, tenant):
    """Verified tokens are cached until their `exp`: after it, the same token is 401 like any expired one."""
    verifier = TokenVerifier(_settings(tmp_path, jwt_secret=JWT_SECRET))
    exp = int(time.time()) + 2
    claims = {"sub": "x", "exp": exp, "tenants": [str(tenant)], "permissions": [READ]}
    token = jwt.encode(claims, JWT_SECRET, "HS256")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # answered from the cache
    forged = jwt.encode(claims, "another-secret-of-sufficient-length-000", "HS256")
    with pytest.raises(UnauthorizedError, match="signature"):
        await verifier.verify(forged)  # same claims, other signature: verified, never taken from the cache
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(UnauthorizedError, match="expired"):
        await verifier.verify(token)
