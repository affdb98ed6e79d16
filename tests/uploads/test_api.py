"""Resumable (tus) upload rules through the API: protocol headers, offsets, limits, checks, tenancy, expiry."""

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from litestar.testing import AsyncTestClient

from ingest.jobs.runtime import Runtime
from ingest.uploads.service import sweep_expired
from tests.conftest import MANAGE, READ, assert_error_body, build_app, headers_for
from tests.uploads.helpers import OFFSET_STREAM, TUS, UPLOADS, create, created, metadata, send, sha1

CSV = b"id,name,amount\n1,ann,1.50\n2,bob,2.25\n3,cy,3.00\n"


async def test_options_tells_the_tus_capabilities(client, settings):
    response = await client.options(UPLOADS)
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation",
        "termination",
        "expiration",
        "checksum",
    }
    assert int(response.headers["tus-max-size"]) == settings.max_upload_bytes
    assert "sha1" in response.headers["tus-checksum-algorithm"]
    assert int(response.headers["upload-chunk-max-size"]) == settings.upload_chunk_bytes


async def test_chunks_make_the_same_file_as_a_one_request_upload(client, headers, settings):
    location = await created(client, headers, len(CSV), "sales.csv")
    head = await client.head(location, headers={**headers, **TUS})
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "0"
    assert head.headers["upload-length"] == str(len(CSV))
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["tus-resumable"] == "1.0.0"
    assert head.headers["upload-expires"].endswith("GMT")

    first = await send(client, headers, location, 0, CSV[:10], checksum=sha1(CSV[:10]))
    assert first.status_code == 204, first.text
    assert first.headers["upload-offset"] == "10"
    assert "x-file-id" not in first.headers
    assert (await client.get("/api/v1/files", headers=headers)).json() == []  # partial bytes are no file
    state = (await client.get(location, headers=headers)).json()
    assert state["uploadOffset"] == 10
    assert state["status"] == "ACTIVE"
    assert state["fileId"] is None

    last = await send(client, headers, location, 10, CSV[10:])
    assert last.status_code == 204, last.text
    assert last.headers["upload-offset"] == str(len(CSV))
    file_id = last.headers["x-file-id"]
    file = (await client.get(f"/api/v1/files/{file_id}", headers=headers)).json()
    assert file["fileName"] == "sales.csv"
    assert file["fileSize"] == len(CSV)
    assert file["fileFormat"] == "csv"
    assert file["status"] == "UPLOADED"
    assert file["storagePath"] == f"/tenant-{headers['X-Tenant-Id']}/uploads/{file_id}/sales.csv"
    preview = await client.get(f"/api/v1/files/{file_id}/preview", headers=headers)
    assert preview.status_code == 200
    assert preview.json()["totalRows"] == 3
    done = (await client.get(location, headers=headers)).json()
    assert done["status"] == "COMPLETED"
    assert done["fileId"] == file_id
    head = await client.head(location, headers={**headers, **TUS})
    assert head.headers["upload-offset"] == str(len(CSV))
    assert head.headers["x-file-id"] == file_id
    staged = settings.partial_uploads_dir / f"tenant-{headers['X-Tenant-Id']}" / location.rsplit("/", 1)[1]
    assert not staged.exists()
    assert_error_body(await send(client, headers, location, len(CSV), b"x"), 409, "COMPLETED")
    events = (await client.get("/api/v1/audit-events?size=50", headers=headers)).json()["content"]
    upload_id = location.rsplit("/", 1)[1]
    # creation and the chunk that made the file are audited; the other chunks are not
    assert sorted((e["action"], e["targetId"]) for e in events) == [
        ("upload.complete", upload_id),
        ("upload.create", upload_id),
    ]


async def test_wrong_offset_is_409_and_keeps_nothing(client, headers):
    location = await created(client, headers, len(CSV))
    assert (await send(client, headers, location, 0, CSV[:5])).status_code == 204
    response = await send(client, headers, location, 3, CSV[3:8])
    assert_error_body(response, 409, "ask HEAD")
    assert response.headers["tus-resumable"] == "1.0.0"
    assert (await client.head(location, headers={**headers, **TUS})).headers["upload-offset"] == "5"


async def test_checksum_mismatch_is_460_and_keeps_nothing(client, headers):
    location = await created(client, headers, len(CSV))
    response = await send(client, headers, location, 0, CSV[:10], checksum=sha1(b"something else"))
    assert_error_body(response, 460, "Upload-Checksum")
    assert response.json()["error"] == "Checksum Mismatch"
    assert (await client.head(location, headers={**headers, **TUS})).headers["upload-offset"] == "0"
    assert_error_body(await send(client, headers, location, 0, CSV[:10], checksum="crc32 AAAA"), 400, "sha1")


async def test_tus_version_content_type_and_length_are_checked(client, headers):
    no_version = {**headers, "Upload-Length": "10", "Upload-Metadata": metadata(filename="a.csv")}
    assert_error_body(await client.post(UPLOADS, headers=no_version), 400, "Tus-Resumable")
    response = await client.post(UPLOADS, headers={**no_version, "Tus-Resumable": "0.2.2"})
    assert_error_body(response, 412, "Tus-Resumable")
    assert response.headers["tus-version"] == "1.0.0"
    response = await client.post(
        UPLOADS, headers={**headers, **TUS, "Upload-Metadata": metadata(filename="a.csv")}
    )
    assert_error_body(response, 400, "Upload-Length")
    response = await client.post(UPLOADS, headers={**headers, **TUS, "Upload-Length": "10"})
    assert_error_body(response, 400, "filename")
    assert_error_body(await create(client, headers, 10, "notes.txt"), 415, ".txt")
    assert_error_body(await create(client, headers, 0), 400, "empty")
    response = await client.post(
        UPLOADS,
        content=CSV,
        headers={
            **headers,
            **TUS,
            "Upload-Length": str(len(CSV)),
            "Upload-Metadata": metadata(filename="a.csv"),
        },
    )
    assert_error_body(response, 400, "creation-with-upload")
    location = await created(client, headers, len(CSV))
    response = await client.patch(
        location, content=CSV, headers={**headers, **TUS, "Upload-Offset": "0", "Content-Type": "text/csv"}
    )
    assert_error_body(response, 415, OFFSET_STREAM)
    response = await send(client, headers, location, 0, CSV + b"9,too,long\n")
    assert_error_body(response, 413, "Upload-Length")
    assert (await client.head(location, headers={**headers, **TUS})).headers["upload-offset"] == "0"


async def test_over_the_size_limit_is_refused(client, headers, settings):
    response = await create(client, headers, settings.max_upload_bytes + 1, "big.csv")
    assert_error_body(response, 413, "upload limit")
    location = await created(client, headers, settings.upload_chunk_bytes * 2)
    body = b"a,b\n" + b"1,2\n" * (settings.upload_chunk_bytes // 4)  # one chunk limit and 4 bytes
    assert_error_body(await send(client, headers, location, 0, body), 413, "INGEST_UPLOAD_CHUNK_BYTES")
    assert (await client.head(location, headers={**headers, **TUS})).headers["upload-offset"] == "0"


async def test_wrong_format_is_refused_at_completion(client, headers, settings):
    body = b"\x00\x01\x02 binary, not csv \x00" * 4
    location = await created(client, headers, len(body), "data.csv")
    assert (await send(client, headers, location, 0, body[:20])).status_code == 204
    response = await send(client, headers, location, 20, body[20:])
    assert_error_body(response, 415, "binary")
    assert response.headers["upload-offset"] == str(len(body))
    state = (await client.get(location, headers=headers)).json()
    assert state["status"] == "FAILED"
    assert "binary" in state["errorMessage"]
    assert state["fileId"] is None
    assert (await client.get("/api/v1/files", headers=headers)).json() == []
    staged = settings.partial_uploads_dir / f"tenant-{headers['X-Tenant-Id']}" / location.rsplit("/", 1)[1]
    assert not staged.exists()
    # its bytes are gone: tus' 410 for HEAD (no body, no Upload-Offset) and PATCH
    gone = await client.head(location, headers={**headers, **TUS})
    assert gone.status_code == 410 and "upload-offset" not in gone.headers
    assert gone.headers["tus-resumable"] == "1.0.0"
    assert_error_body(await send(client, headers, location, len(body), b"x"), 410, "failed")


async def test_termination_removes_the_upload_and_its_bytes(client, headers, settings):
    location = await created(client, headers, len(CSV))
    assert (await send(client, headers, location, 0, CSV[:10])).status_code == 204
    staged = settings.partial_uploads_dir / f"tenant-{headers['X-Tenant-Id']}" / location.rsplit("/", 1)[1]
    assert staged.stat().st_size == 10
    response = await client.delete(location, headers={**headers, **TUS})
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert not staged.exists()
    assert (await client.head(location, headers={**headers, **TUS})).status_code == 404
    assert_error_body(await send(client, headers, location, 10, CSV[10:]), 404)


async def test_another_tenant_gets_404(client, headers):
    location = await created(client, headers, len(CSV))
    assert (await send(client, headers, location, 0, CSV[:10])).status_code == 204
    other = headers_for(uuid.uuid4())
    assert (await client.head(location, headers={**other, **TUS})).status_code == 404
    assert_error_body(await client.get(location, headers=other), 404)
    assert_error_body(await send(client, other, location, 10, CSV[10:]), 404)
    assert_error_body(await client.delete(location, headers={**other, **TUS}), 404)
    assert (await client.head(location, headers={**headers, **TUS})).headers["upload-offset"] == "10"


async def test_auth_and_tenant_are_required(client, tenant):
    location = f"{UPLOADS}/{uuid.uuid4()}"
    assert_error_body(await client.post(UPLOADS, headers={**TUS, "Upload-Length": "3"}), 401)
    read_only = headers_for(tenant, READ)
    response = await client.post(
        UPLOADS,
        headers={**read_only, **TUS, "Upload-Length": "3", "Upload-Metadata": metadata(filename="a.csv")},
    )
    assert_error_body(response, 403)
    assert_error_body(await send(client, read_only, location, 0, b"abc"), 403)
    no_tenant = {"Authorization": headers_for(tenant, READ, MANAGE)["Authorization"]}
    assert_error_body(await create(client, no_tenant, 3), 400, "X-Tenant-Id")
    assert_error_body(await client.get(location, headers=no_tenant), 400, "X-Tenant-Id")


async def test_expired_uploads_are_swept_with_their_bytes(client, headers, settings, rollback_session_maker):
    location = await created(client, headers, len(CSV))
    assert (await send(client, headers, location, 0, CSV[:10])).status_code == 204
    staged = settings.partial_uploads_dir / f"tenant-{headers['X-Tenant-Id']}" / location.rsplit("/", 1)[1]
    assert staged.exists()
    runtime = Runtime(settings=settings, session_maker=rollback_session_maker, database_url="unused")
    later = datetime.now(UTC) + timedelta(hours=settings.upload_expire_hours, minutes=1)
    assert await sweep_expired(runtime, now=later) >= 1
    assert not staged.exists()
    assert_error_body(await client.get(location, headers=headers), 404)


async def test_a_browser_on_another_origin_may_speak_tus(
    settings, database_url, rollback_session_maker, headers
):
    origin = "https://admin.example.com"
    app = build_app(
        dataclasses.replace(settings, cors_origins=[origin]),
        database_url,
        session_maker=rollback_session_maker,
        run_worker_in_process=False,
    )
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as browser:
        preflight = await browser.options(
            f"{UPLOADS}/{uuid.uuid4()}",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization,x-tenant-id,tus-resumable,upload-offset,content-type",
            },
        )
        assert preflight.status_code in (200, 204)
        assert "PATCH" in preflight.headers["access-control-allow-methods"]
        assert "upload-offset" in preflight.headers["access-control-allow-headers"].lower()
        response = await create(browser, {**headers, "Origin": origin}, len(CSV))
        assert response.status_code == 201
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "location" in exposed and "upload-offset" in exposed and "x-file-id" in exposed
