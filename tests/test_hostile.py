"""Hostile input is refused with the error envelope, never a 500 (ingest.screening, files upload)."""

import json
from typing import Any

import pytest

from tests.conftest import assert_error_body

SOURCES = "/api/v1/sources"


def faker_source(**overrides: Any) -> dict[str, Any]:
    return {"name": "hostile", "connectorType": "faker", "connectionConfig": {"count": 10}, **overrides}


async def post_raw(client, path: str, body: bytes, headers: dict[str, str], ctype="application/json"):
    return await client.post(path, content=body, headers={**headers, "Content-Type": ctype})


# -- repeated identity headers


async def test_two_tenant_headers_are_400(client, headers, tenant):
    other = {"Authorization": headers["Authorization"]}
    pairs = [*other.items(), ("X-Tenant-Id", str(tenant)), ("X-Tenant-Id", str(tenant))]
    assert_error_body(
        await client.get(SOURCES, headers=pairs), 400, "X-Tenant-Id header must not be repeated"
    )


async def test_two_authorization_headers_are_400_not_401(client, headers):
    pairs = [*headers.items(), ("Authorization", headers["Authorization"])]
    assert_error_body(
        await client.get(SOURCES, headers=pairs), 400, "Authorization header must not be repeated"
    )
    # also on a route without a tenant, and before the token is even looked at
    pairs = [("Authorization", "Bearer a"), ("Authorization", "Bearer b")]
    assert_error_body(await client.get(f"{SOURCES}/connector-types", headers=pairs), 400, "repeated")


async def test_two_content_types_are_400(client, headers):
    pairs = [*headers.items(), ("Content-Type", "application/json"), ("Content-Type", "text/plain")]
    response = await client.post(SOURCES, content=json.dumps(faker_source()).encode(), headers=pairs)
    assert_error_body(response, 400, "repeated")


# -- NUL bytes


@pytest.mark.parametrize(
    "body",
    [
        faker_source(name="a\u0000b"),  # the value Postgres cannot store (was a 500)
        faker_source(connectionConfig={"count": 1, "k\u0000": 1}),  # in a key
        faker_source(connectionConfig={"nested": [{"deep": "x\u0000"}]}),  # deep inside
        faker_source(description="\u0000"),
    ],
)
async def test_nul_in_json_strings_is_400(client, headers, body):
    response = await post_raw(client, SOURCES, json.dumps(body).encode(), headers)
    assert_error_body(response, 400, "NUL")


async def test_raw_nul_byte_in_json_body_is_400(client, headers):
    response = await post_raw(client, SOURCES, b'{"name": "a\x00b"}', headers)
    assert_error_body(response, 400, "NUL")


async def test_nul_in_every_json_body_route(client, headers):
    """Every route that reads JSON goes through the same check (PUTs on unknown ids included)."""
    missing = "00000000-0000-0000-0000-000000000001"
    cases = [
        ("POST", "/api/v1/connections", {"sourceId": missing, "name": "x\u0000"}),
        ("PUT", f"/api/v1/connections/{missing}", {"sourceId": missing, "name": "x\u0000"}),
        ("PUT", f"{SOURCES}/{missing}", {"name": "x\u0000"}),
        ("PUT", f"/api/v1/files/{missing}/schema", {"targetTableName": "t\u0000"}),
    ]
    for method, path, body in cases:
        response = await client.request(
            method,
            path,
            content=json.dumps(body).encode(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_error_body(response, 400, "NUL")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/syncs?sort=startedAt%00,asc",
        "/api/v1/syncs?connectionId=%00",
        "/api/v1/syncs?x%00=1",
        "/api/v1/files/00000000-0000-0000-0000-000000000001/preview?rows=1%00",
        "/api/v1/tables/default/t?snapshotId=%00",
    ],
)
async def test_nul_in_query_strings_is_400(client, headers, path):
    assert_error_body(await client.get(path, headers=headers), 400, "NUL")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tables/def%00ault/t",
        "/api/v1/tables/default/t%00/rows",
        "/api/v1/sources/connector-types/fa%00ker/spec",
    ],
)
async def test_nul_in_path_ids_is_400(client, headers, path):
    assert_error_body(await client.get(path, headers=headers), 400, "NUL")


async def test_nul_in_uuid_path_id_is_refused_not_500(client, headers):
    response = await client.get(f"{SOURCES}/%00", headers=headers)
    assert response.status_code in {400, 404}
    assert_error_body(response, response.status_code)


async def _asgi_get(app, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any]]:
    """Straight into the ASGI app: HTTP clients (and uvicorn) refuse NUL in headers before the app."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


async def test_nul_in_header_values_is_400(client, headers):
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    status, body = await _asgi_get(client.app, SOURCES, [*raw, (b"x-request-note", b"a\x00b")])
    assert (
        status == 400
        and "NUL" in body["message"]
        and set(body) == {"timestamp", "status", "error", "message", "path"}
    )
    tenant_with_nul = [(b"authorization", headers["Authorization"].encode()), (b"x-tenant-id", b"\x00")]
    status, body = await _asgi_get(client.app, SOURCES, tenant_with_nul)
    assert status == 400 and body["path"] == SOURCES


# -- depth, numbers, encodings


@pytest.mark.parametrize("depth", [33, 5000, 200_000])
async def test_deeply_nested_json_is_400_before_validation(client, headers, depth):
    config = "[" * depth + "]" * depth
    body = ('{"name": "deep", "connectorType": "faker", "connectionConfig": {"x": ' + config + "}}").encode()
    response = await post_raw(client, SOURCES, body, headers)
    assert_error_body(response, 400, "nests deeper")


async def test_sane_nesting_is_accepted_by_the_screen(client, headers):
    config = {"count": 5, "a": [[[[[[{"b": 1}]]]]]]}
    response = await post_raw(
        client, SOURCES, json.dumps(faker_source(connectionConfig=config)).encode(), headers
    )
    # refused by the connector's spec (unknown property) or accepted, but not by the screen
    assert response.status_code in {201, 400}
    if response.status_code == 400:
        assert "nests" not in response.json()["message"]


@pytest.mark.parametrize(
    "number",
    [b"9223372036854775808", b"-9223372036854775809", b"1" + b"0" * 5000, b"1e400", b"-1e999"],
)
async def test_huge_numbers_are_400(client, headers, number):
    body = b'{"name": "n", "connectorType": "faker", "connectionConfig": {"count": ' + number + b"}}"
    assert_error_body(await post_raw(client, SOURCES, body, headers), 400)


async def test_invalid_utf8_json_body_is_400(client, headers):
    body = b'{"name": "\xff\xfe", "connectorType": "faker", "connectionConfig": {}}'
    assert_error_body(await post_raw(client, SOURCES, body, headers), 400, "UTF-8")


async def test_invalid_utf8_query_and_path_are_400(client, headers):
    assert_error_body(await client.get("/api/v1/syncs?sort=%ff%fe", headers=headers), 400, "UTF-8")
    assert_error_body(await client.get("/api/v1/tables/%ff/t", headers=headers), 400, "UTF-8")


async def test_malformed_json_is_400(client, headers):
    assert_error_body(await post_raw(client, SOURCES, b'{"name": ', headers), 400, "not valid JSON")


# -- content types


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
async def test_json_routes_refuse_other_content_types_with_415(client, headers, ctype):
    response = await post_raw(client, SOURCES, json.dumps(faker_source()).encode(), headers, ctype)
    assert_error_body(response, 415, "application/json")


async def test_json_body_without_content_type_is_415(client, headers):
    response = await client.post(SOURCES, content=json.dumps(faker_source()).encode(), headers=headers)
    assert_error_body(response, 415)


async def test_json_with_a_charset_or_plus_json_is_fine(client, headers):
    for ctype in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await post_raw(
            client, SOURCES, json.dumps(faker_source(name=ctype)).encode(), headers, ctype
        )
        assert response.status_code == 201, response.text


async def test_upload_refuses_a_non_multipart_body_with_415(client, headers):
    response = await post_raw(client, "/api/v1/files/upload", b'{"file": "x"}', headers)
    assert_error_body(response, 415, "multipart/form-data")


# -- multipart uploads


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "hostile-boundary") -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


CSV = b"a,b\n1,2\n3,4\n"


async def _upload(client, headers, body: bytes):
    ctype = "multipart/form-data; boundary=hostile-boundary"
    return await post_raw(client, "/api/v1/files/upload", body, headers, ctype)


def _stored_files(settings) -> list[str]:
    root = settings.data_dir / "objects"
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize(
    "parts",
    [
        [("file", "a.csv", CSV), ("file", "b.csv", CSV)],  # the same field twice
        [("file", "a.csv", CSV), ("other", "b.csv", CSV)],  # a second file under another name
        [("other", "b.csv", CSV), ("file", "a.csv", CSV)],  # another file first
    ],
)
async def test_more_than_one_file_part_is_400_and_nothing_is_kept(client, headers, settings, parts):
    before = _stored_files(settings)
    response = await _upload(client, headers, _multipart(parts))
    assert_error_body(response, 400, "exactly one file part")
    assert _stored_files(settings) == before
    listed = await client.get("/api/v1/files", headers=headers)
    assert listed.json() == []


async def test_one_file_with_text_fields_is_accepted(client, headers):
    body = _multipart([("note", None, b"hello"), ("file", "a.csv", CSV), ("comment", None, b"bye")])
    response = await _upload(client, headers, body)
    assert response.status_code == 201, response.text
    assert response.json()["fileName"] == "a.csv"


async def test_nul_in_the_file_name_is_400(client, headers):
    body = _multipart([("file", "a\x00.csv", CSV)])
    assert_error_body(await _upload(client, headers, body), 400, "NUL")


async def test_repeated_header_lines_are_400(client, headers):
    """Two separate header lines (as uvicorn passes them), not folded into one value by the client."""
    auth = (b"authorization", headers["Authorization"].encode())
    tenant = (b"x-tenant-id", headers["X-Tenant-Id"].encode())
    for extra in (tenant, auth):
        status, body = await _asgi_get(client.app, SOURCES, [auth, tenant, extra])
        assert status == 400 and "must not be repeated" in body["message"]
