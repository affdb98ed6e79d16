"""File Import API rules: hostile inputs, schema validation, auth, tenancy, the upload limit."""

import dataclasses
import uuid
import zipfile

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import READ, assert_error_body, build_app, headers_for
from tests.files.helpers import configure, start_import, upload, uploaded, wait_for
from tests.formats.samples import write_sample

# --- formats ----------------------------------------------------------------------------------


async def test_formats_need_a_token_but_no_tenant(client, tenant):
    token_only = {"Authorization": headers_for(tenant, READ)["Authorization"]}
    response = await client.get("/api/v1/files/formats", headers=token_only)
    assert response.status_code == 200
    assert response.json() == ["csv", "xlsx", "xls", "parquet", "json", "jsonl", "avro", "mbox", "eml", "pst"]
    assert_error_body(await client.get("/api/v1/files/formats"), 401)


# --- upload -----------------------------------------------------------------------------------


async def test_upload_and_read_back(client, headers, tmp_path):
    path = write_sample(tmp_path, "csv")
    response = await client.post(
        "/api/v1/files/upload",
        files={"file": ("../../etc/sales 2024.csv", path.read_bytes())},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    file = response.json()
    assert file["fileName"] == "sales 2024.csv"
    assert ".." not in file["storagePath"]
    assert file["storagePath"].endswith(f"/uploads/{file['id']}/sales 2024.csv")
    got = (await client.get(f"/api/v1/files/{file['id']}", headers=headers)).json()
    assert got == file
    listed = (await client.get("/api/v1/files", headers=headers)).json()
    assert [f["id"] for f in listed] == [file["id"]]
    status = (await client.get(f"/api/v1/files/{file['id']}/status", headers=headers)).json()
    assert status["status"] == "UPLOADED"
    assert status["errorMessage"] is None


async def test_upload_without_file_field_is_400(client, headers):
    response = await client.post(
        "/api/v1/files/upload", files={"other": ("a.csv", b"a,b\n1,2\n")}, headers=headers
    )
    assert_error_body(response, 400, "no 'file' field")
    response = await client.post("/api/v1/files/upload", data={"file": "not a file"}, headers=headers)
    assert_error_body(response, 415)  # a form, not multipart
    response = await client.post("/api/v1/files/upload", content=b"a,b\n1,2\n", headers=headers)
    assert_error_body(response, 415, "multipart/form-data")  # a body, but not multipart


async def test_truncated_multipart_body_is_400(client, headers):
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\na,b\n1,2\n'
    response = await client.post(
        "/api/v1/files/upload",
        content=body,
        headers={**headers, "Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert_error_body(response, 400, "ended before the file did")


@pytest.mark.parametrize(
    ("name", "content", "status", "message"),
    [
        ("empty.csv", b"", 400, "empty"),
        ("one.csv", b"a", 400, "too small"),
        ("bad.json", b'[{"a": "caf\xe9"}]', 400, "not UTF-8"),  # a csv may be cp1252: test_dialects
        ("notes.txt", b"a,b\n1,2\n", 415, "Unsupported file extension '.txt'"),
        ("noext", b"a,b\n1,2\n", 415, "Unsupported file extension"),
        ("garbage.csv", b"\x00\x01\x02garbage\x00", 415, "binary"),
        ("deep.jsonl", b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n", 400, "nested too deeply"),
    ],
)
async def test_hostile_uploads_are_refused(client, headers, tmp_path, name, content, status, message):
    path = tmp_path / "upload"
    path.write_bytes(content)
    assert_error_body(await upload(client, headers, path, name), status, message)
    assert (await client.get("/api/v1/files", headers=headers)).json() == []


@pytest.mark.parametrize(
    ("content_fmt", "name"), [("parquet", "data.csv"), ("csv", "data.parquet"), ("xlsx", "a.xls")]
)
async def test_wrong_extension_is_415_and_nothing_is_kept(
    client, headers, settings, tmp_path, content_fmt, name
):
    path = write_sample(tmp_path, content_fmt)
    assert_error_body(await upload(client, headers, path, name), 415, "extension says")
    tenant = headers["X-Tenant-Id"]
    uploads = settings.data_dir / "objects" / f"tenant-{tenant}" / "uploads"
    assert not uploads.exists() or not any(p.is_file() for p in uploads.rglob("*"))


async def test_xlsx_zip_bomb_is_refused_at_upload(client, headers, tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (64 * 1024**2))
    assert_error_body(await upload(client, headers, path), 400, "zip bomb")


async def test_upload_over_the_limit_is_413(settings, database_url, rollback_session_maker, tenant, tmp_path):
    small = dataclasses.replace(settings, max_upload_bytes=1000)
    app = build_app(small, database_url, session_maker=rollback_session_maker, run_worker_in_process=False)
    headers = headers_for(tenant)
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 2000)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        assert_error_body(await upload(client, headers, path), 413, "upload limit of 1000 bytes")
        ok = tmp_path / "ok.csv"
        ok.write_bytes(b"a,b\n" + b"1,2\n" * 100)
        assert (await upload(client, headers, ok)).status_code == 201
        assert len((await client.get("/api/v1/files", headers=headers)).json()) == 1
    uploads = settings.data_dir / "objects" / f"tenant-{tenant}" / "uploads"
    assert len([p for p in uploads.rglob("*") if p.is_file()]) == 1  # the refused one left nothing


# --- preview ----------------------------------------------------------------------------------


async def test_preview_rows_parameter(client, headers, tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("n,s\n" + "".join(f"{i},x{i}\n" for i in range(50)))
    file = await uploaded(client, headers, path)
    url = f"/api/v1/files/{file['id']}/preview"
    body = (await client.get(url, headers=headers)).json()
    assert len(body["previewRows"]) == 20
    assert body["totalRows"] == 50
    assert body["fileId"] == file["id"]
    assert body["columns"][0] == {
        "name": "n",
        "type": "INTEGER",
        "nullable": False,
        "sampleValues": ["0", "1", "2", "3", "4"],
    }
    assert len((await client.get(url, params={"rows": 1000}, headers=headers)).json()["previewRows"]) == 50
    assert len((await client.get(url, params={"rows": 3}, headers=headers)).json()["previewRows"]) == 3
    assert_error_body(await client.get(url, params={"rows": 0}, headers=headers), 400, "rows")
    assert_error_body(await client.get(url, params={"rows": 1001}, headers=headers), 400, "rows")
    assert (await client.get(f"/api/v1/files/{file['id']}", headers=headers)).json()["totalRows"] == 50


async def test_malformed_csv_rows_are_named_at_preview(client, headers, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    file = await uploaded(client, headers, path)
    response = await client.get(f"/api/v1/files/{file['id']}/preview", headers=headers)
    assert_error_body(response, 400, "line 3 has 3 fields but the header has 2")


async def test_parquet_whose_footer_lies_is_400_at_preview(client, headers, tmp_path):
    data = bytearray(write_sample(tmp_path, "parquet").read_bytes())
    data[-8:-4] = (len(data) * 4).to_bytes(4, "little")
    path = tmp_path / "lies.parquet"
    path.write_bytes(bytes(data))
    file = await uploaded(client, headers, path)
    assert_error_body(
        await client.get(f"/api/v1/files/{file['id']}/preview", headers=headers), 400, "Parquet"
    )


async def test_deeply_nested_json_array_is_400_at_preview(client, headers, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" + '{"a":' * 100_000 + "1" + "}" * 100_000 + "]")
    file = await uploaded(client, headers, path)
    response = await client.get(f"/api/v1/files/{file['id']}/preview", headers=headers)
    body = assert_error_body(response, 400)
    assert "nested too deeply" in body["message"] or "depth" in body["message"].lower()


# --- schema -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"targetTableName": "1orders"}, "Invalid table name"),
        ({"targetTableName": "orders; drop"}, "Invalid table name"),
        ({"targetTableName": "orders", "targetSchema": "../other"}, "Invalid schema name"),
        ({"targetTableName": "orders", "targetSchema": "a.b"}, "Invalid schema name"),
        ({"targetTableName": ""}, "targetTableName"),
        ({}, "targetTableName"),
        (
            {"targetTableName": "orders", "columnMappings": {"nope": "x"}},
            "columns the file does not have: 'nope'",
        ),
        ({"targetTableName": "orders", "columnMappings": {"name": "id"}}, "duplicate column names: 'id'"),
        (
            {"targetTableName": "orders", "columnMappings": {"name": "a", "amount": "a"}},
            "duplicate column names",
        ),
        ({"targetTableName": "orders", "columnMappings": {"name": "bad name"}}, "not a valid column name"),
        ({"targetTableName": "orders", "columnMappings": {"name": ""}}, "not a valid column name"),
        ({"targetTableName": "orders", "columnTypes": {"nope": "STRING"}}, "columnTypes names a column"),
        ({"targetTableName": "orders", "columnTypes": {"id": "MONEY"}}, "must be one of"),
        ({"targetTableName": "orders", "columnTypes": {"id": "DATE"}}, "cannot be converted to DATE"),
        ({"targetTableName": "orders", "mode": "upsert"}, "mode must be"),
        ({"targetTableName": "orders", "unknown": 1}, "unknown"),
    ],
)
async def test_invalid_schema_is_400(client, headers, tmp_path, body, message):
    file = await uploaded(client, headers, write_sample(tmp_path, "csv"))
    response = await client.put(f"/api/v1/files/{file['id']}/schema", json=body, headers=headers)
    assert_error_body(response, 400, message)
    assert (await client.get(f"/api/v1/files/{file['id']}", headers=headers)).json()["status"] == "UPLOADED"


async def test_schema_defaults_to_the_tenant_default_namespace(client, headers, tmp_path):
    file = await uploaded(client, headers, write_sample(tmp_path, "csv"))
    configured = await configure(
        client, headers, file["id"], targetTableName="orders", columnTypes={"id": "STRING"}, mode="overwrite"
    )
    assert configured["targetSchema"] == "default"
    assert configured["columnTypes"] == {"id": "STRING"}
    assert configured["mode"] == "overwrite"
    assert configured["status"] == "CONFIGURED"


async def test_import_before_schema_is_409(client, headers, tmp_path):
    file = await uploaded(client, headers, write_sample(tmp_path, "csv"))
    response = await client.post(f"/api/v1/files/{file['id']}/import", headers=headers)
    assert_error_body(response, 409, "PUT its schema first")


# --- import failures through the API -----------------------------------------------------------


async def test_bad_value_beyond_the_sample_fails_the_import_with_row_column_value(live_client, tmp_path):
    headers = headers_for(uuid.uuid4())
    path = tmp_path / "late.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(12_000)) + "oops,y\n")
    file = await uploaded(live_client, headers, path)
    await configure(live_client, headers, file["id"], targetTableName="late")
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "FAILED"
    assert "Row 12001, column 'a': value 'oops' is not a valid INTEGER" in status["errorMessage"]
    assert status["recordsImported"] == 0
    assert_error_body(await live_client.get("/api/v1/tables/default/late", headers=headers), 404)


async def test_type_override_that_does_not_fit_fails_naming_the_value(live_client, tmp_path):
    headers = headers_for(uuid.uuid4())
    path = tmp_path / "typed.csv"
    path.write_text("code,flag\n10,yes\n20,no\nX7,yes\n")
    file = await uploaded(live_client, headers, path)
    await configure(
        live_client,
        headers,
        file["id"],
        targetTableName="typed",
        columnTypes={"code": "INTEGER", "flag": "BOOLEAN"},
    )
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "FAILED"
    assert status["errorMessage"] == "Row 3, column 'code': value 'X7' is not a valid INTEGER"

    # fixed schema, same file: a FAILED import can run again
    await configure(
        live_client, headers, file["id"], targetTableName="typed", columnTypes={"flag": "BOOLEAN"}
    )
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    rows = (await live_client.get("/api/v1/tables/default/typed/rows", headers=headers)).json()["rows"]
    assert rows == [{"code": "10", "flag": True}, {"code": "20", "flag": False}, {"code": "X7", "flag": True}]


async def test_malformed_csv_fails_the_import_with_the_line(live_client, tmp_path):
    headers = headers_for(uuid.uuid4())
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n" + "1,2\n" * 20_000 + "3,4,5\n")
    file = await uploaded(live_client, headers, path)
    await configure(live_client, headers, file["id"], targetTableName="ragged")
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "FAILED"
    assert "line 20002 has 3 fields" in status["errorMessage"]


async def test_invalid_utf8_late_in_the_file_fails_the_import_with_the_line(live_client, tmp_path):
    headers = headers_for(uuid.uuid4())
    path = tmp_path / "late_utf8.csv"
    path.write_bytes(b"a,b\n" + b"1,ok\n" * 20_000 + b"2,caf\xe9\n")
    file = await uploaded(live_client, headers, path)
    await configure(live_client, headers, file["id"], targetTableName="utf")
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "FAILED"
    assert "not valid UTF-8" in status["errorMessage"]
    assert "line 20002" in status["errorMessage"]


# --- auth and tenancy -------------------------------------------------------------------------


async def test_another_tenants_file_is_404_on_every_route(client, headers, tmp_path):
    file = await uploaded(client, headers, write_sample(tmp_path, "csv"))
    other = headers_for(uuid.uuid4())
    base = f"/api/v1/files/{file['id']}"
    for method, url, kwargs in [
        ("GET", base, {}),
        ("GET", f"{base}/preview", {}),
        ("GET", f"{base}/status", {}),
        ("PUT", f"{base}/schema", {"json": {"targetTableName": "t"}}),
        ("PUT", f"{base}/read-options", {"json": {"header": True}}),
        ("POST", f"{base}/import", {}),
        ("DELETE", base, {}),
    ]:
        response = await client.request(method, url, headers=other, **kwargs)
        assert_error_body(response, 404, "not found")
    assert (await client.get("/api/v1/files", headers=other)).json() == []
    missing = await client.get(f"/api/v1/files/{uuid.uuid4()}", headers=headers)
    assert_error_body(missing, 404, "not found")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/v1/files/upload", {"files": {"file": ("a.csv", b"a,b\n1,2\n")}}),
        ("PUT", "/api/v1/files/{id}/schema", {"json": {"targetTableName": "t"}}),
        ("PUT", "/api/v1/files/{id}/read-options", {"json": {"header": True}}),
        ("POST", "/api/v1/files/{id}/import", {}),
        ("DELETE", "/api/v1/files/{id}", {}),
    ],
)
async def test_mutating_routes_need_token_permission_and_tenant(
    client, tenant, headers, tmp_path, method, path, kwargs
):
    file = await uploaded(client, headers, write_sample(tmp_path, "csv"))
    url = path.replace("{id}", file["id"])
    assert_error_body(await client.request(method, url, **kwargs), 401)
    read_only = headers_for(tenant, READ)
    assert_error_body(
        await client.request(method, url, headers=read_only, **kwargs), 403, "data:ingestion:manage"
    )
    no_tenant = {"Authorization": headers["Authorization"]}
    assert_error_body(await client.request(method, url, headers=no_tenant, **kwargs), 400, "X-Tenant-Id")
    other_tenant = {**headers, "X-Tenant-Id": str(uuid.uuid4())}
    assert_error_body(await client.request(method, url, headers=other_tenant, **kwargs), 403)


async def test_delete_removes_the_file_and_its_object(client, headers, settings, tmp_path):
    file = await uploaded(client, headers, write_sample(tmp_path, "csv"))
    stored = settings.data_dir / "objects" / file["storagePath"].lstrip("/")
    assert stored.is_file()
    assert (await client.delete(f"/api/v1/files/{file['id']}", headers=headers)).status_code == 204
    assert not stored.exists()
    assert_error_body(await client.get(f"/api/v1/files/{file['id']}", headers=headers), 404)


async def test_read_routes_need_a_token(client):
    assert_error_body(await client.get("/api/v1/files"), 401)
    assert_error_body(await client.get(f"/api/v1/files/{uuid.uuid4()}/status"), 401)
