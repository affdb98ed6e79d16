"""The framework's own errors answer the seed's body too, and unexpected ones hide their details."""

import logging

from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from ingest.app import handle_exception
from tests.conftest import assert_error_body


async def test_unknown_route_is_404_with_seed_body(client, headers):
    assert_error_body(await client.get("/api/v1/nothing-here", headers=headers), 404, "no route")


async def test_wrong_method_is_405_with_seed_body(client, headers):
    assert_error_body(await client.delete("/health", headers=headers), 405, "not allowed")


async def test_bad_json_is_400(client, headers):
    response = await client.post(
        "/api/v1/sources", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert_error_body(response, 400)


async def test_validation_names_the_field(client, headers):
    response = await client.post(
        "/api/v1/sources", json={"name": 5, "connectorType": "faker"}, headers=headers
    )
    body = assert_error_body(response, 400)
    assert "name" in body["message"] or "connectionConfig" in body["message"]


async def test_body_too_large_is_413(client, headers):
    response = await client.post(
        "/api/v1/sources",
        content=b"x" * (11 * 1024 * 1024),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert_error_body(response, 413, "too large")


async def test_unexpected_exception_is_generic_500_and_logged(caplog):
    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-password-in-exception")

    app = Litestar([boom], exception_handlers={Exception: handle_exception}, logging_config=None)
    with caplog.at_level(logging.ERROR):
        async with AsyncTestClient(app=app, raise_server_exceptions=False) as c:
            response = await c.get("/boom")
    body = assert_error_body(response, 500)
    assert body["message"] == "Internal server error"
    assert "secret-password" not in response.text
    logged = [r for r in caplog.records if "http.unhandled" in str(r.msg)]
    assert logged and "RuntimeError" in str(logged[0].msg)  # the traceback goes to the log, not the caller


async def test_request_log_line_carries_the_answered_status(client, caplog, tenant):
    import logging

    with caplog.at_level(logging.INFO, logger="ingest.http"):
        await client.get("/api/v1/me")  # refused by the auth middleware: 401
        await client.get("/health")
    lines = [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == "http.request"
    ]
    by_path = {line["path"]: line for line in lines}
    assert by_path["/api/v1/me"]["status"] == 401
    assert by_path["/health"]["status"] == 200
    assert {"method", "path", "status", "duration_ms", "tenant"} <= set(by_path["/health"])
