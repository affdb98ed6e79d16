"""Presigned S3 multipart uploads against moto's S3 server: real HTTP PUTs of the parts to the presigned
URLs, completion checking size and format, then the import read back with pyiceberg."""

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import polars as pl
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from moto.server import ThreadedMotoServer

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse
from tests.conftest import assert_error_body, build_app, headers_for
from tests.files.helpers import configure, start_import, wait_for
from tests.processes import free_port

MULTIPART = "/api/v1/files/multipart-uploads"
ROWS = 400_000


@pytest.fixture(scope="module")
def bucket() -> Iterator[tuple[str, str]]:
    """moto's S3 server on a free port and a bucket in it: (endpoint, bucket)."""
    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    name = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    try:
        yield endpoint, name
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
async def s3_client(
    bucket: tuple[str, str], settings: Settings, database_url: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The API on the S3 store, committed data and an in-process worker (imports run)."""
    endpoint, name = bucket
    s3_settings = dataclasses.replace(settings, storage_url=f"s3://{name}/pre", s3_endpoint_url=endpoint)
    app = build_app(s3_settings, database_url, run_worker_in_process=True)
    async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 20 MB: two parts of the server's 16 MiB part size."""
    path = tmp_path_factory.mktemp("mp") / "orders.csv"
    frame = pl.DataFrame({"id": pl.int_range(0, ROWS, eager=True)}).with_columns(
        note=pl.format("{}-{}", pl.lit("q" * 40), pl.col("id"))
    )
    frame.write_csv(path)
    return path


def objects(endpoint: str, name: str, tenant: uuid.UUID) -> list[str]:
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(
        Bucket=name, Prefix=f"pre/tenant-{tenant}/"
    )
    return [o["Key"] for o in listed.get("Contents", [])]


def put_parts(start: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    """PUT each part's bytes to its presigned URL, as a browser would: the ETags S3 answers."""
    size = start["partSize"]
    parts = []
    with httpx.Client(timeout=60) as http:
        for part in start["parts"]:
            n = part["partNumber"]
            response = http.put(part["url"], content=data[(n - 1) * size : n * size])
            assert response.status_code == 200, response.text
            parts.append({"partNumber": n, "etag": response.headers["etag"]})
    return parts


async def test_presigned_multipart_upload_then_import(s3_client, bucket, csv_file, settings, database_url):
    endpoint, name = bucket
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    data = csv_file.read_bytes()
    response = await s3_client.post(
        MULTIPART, json={"fileName": "orders.csv", "fileSize": len(data)}, headers=headers
    )
    assert response.status_code == 201, response.text
    start = response.json()
    assert start["partSize"] == 16 * 1024**2
    assert [p["partNumber"] for p in start["parts"]] == [1, 2]
    assert start["status"] == "ACTIVE"
    assert_error_body(
        await s3_client.get(f"{MULTIPART}/{start['id']}", headers=headers_for(uuid.uuid4())), 404
    )

    parts = put_parts(start, data)
    assert objects(endpoint, name, tenant) == []  # parts are no object, and no file
    assert (await s3_client.get("/api/v1/files", headers=headers)).json() == []

    other = headers_for(uuid.uuid4())
    response = await s3_client.post(
        f"{MULTIPART}/{start['id']}/complete", json={"parts": parts}, headers=other
    )
    assert_error_body(response, 404)
    response = await s3_client.post(
        f"{MULTIPART}/{start['id']}/complete", json={"parts": parts}, headers=headers
    )
    assert response.status_code == 201, response.text
    file = response.json()
    assert file["fileName"] == "orders.csv"
    assert file["fileSize"] == len(data)
    assert file["fileFormat"] == "csv"
    assert file["status"] == "UPLOADED"
    assert objects(endpoint, name, tenant) == [f"pre/tenant-{tenant}/uploads/{file['id']}/orders.csv"]
    done = (await s3_client.get(f"{MULTIPART}/{start['id']}", headers=headers)).json()
    assert done["status"] == "COMPLETED"
    assert done["parts"] == []

    await configure(s3_client, headers, file["id"], targetTableName="orders", targetSchema="direct")
    await start_import(s3_client, headers, file["id"])
    status = await wait_for(s3_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    assert status["recordsImported"] == ROWS
    warehouse = Warehouse.from_settings(settings, database_url)
    got = warehouse.read_all(tenant, "direct", "orders").sort("id")
    assert got.height == ROWS
    assert got["id"].to_list() == list(range(ROWS))
    assert got.row(ROWS - 1) == (ROWS - 1, "q" * 40 + f"-{ROWS - 1}")


async def test_wrong_format_or_size_is_refused_and_the_object_deleted(s3_client, bucket, csv_file):
    endpoint, name = bucket
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    data = csv_file.read_bytes()[: 17 * 1024**2]
    start = (
        await s3_client.post(
            MULTIPART, json={"fileName": "orders.parquet", "fileSize": len(data)}, headers=headers
        )
    ).json()
    parts = put_parts(start, data)
    response = await s3_client.post(
        f"{MULTIPART}/{start['id']}/complete", json={"parts": parts}, headers=headers
    )
    assert_error_body(response, 415, "csv")
    assert objects(endpoint, name, tenant) == []
    failed = (await s3_client.get(f"{MULTIPART}/{start['id']}", headers=headers)).json()
    assert failed["status"] == "FAILED"
    assert (await s3_client.get("/api/v1/files", headers=headers)).json() == []

    # declared larger than what the parts hold: refused at completion, nothing kept
    start = (
        await s3_client.post(
            MULTIPART, json={"fileName": "orders.csv", "fileSize": len(data) + 5}, headers=headers
        )
    ).json()
    parts = put_parts(start, data)
    response = await s3_client.post(
        f"{MULTIPART}/{start['id']}/complete", json={"parts": parts}, headers=headers
    )
    assert_error_body(response, 400, "fileSize")
    assert objects(endpoint, name, tenant) == []

    # a wrong ETag: S3 refuses, the upload stays ACTIVE and completes with the right ones
    start = (
        await s3_client.post(
            MULTIPART, json={"fileName": "orders.csv", "fileSize": len(data)}, headers=headers
        )
    ).json()
    parts = put_parts(start, data)
    wrong = [{**parts[0], "etag": '"0123456789abcdef0123456789abcdef"'}, parts[1]]
    response = await s3_client.post(
        f"{MULTIPART}/{start['id']}/complete", json={"parts": wrong}, headers=headers
    )
    assert_error_body(response, 400, "InvalidPart")
    response = await s3_client.post(
        f"{MULTIPART}/{start['id']}/complete", json={"parts": parts[:1]}, headers=headers
    )
    assert_error_body(response, 400, "each part")
    response = await s3_client.post(
        f"{MULTIPART}/{start['id']}/complete", json={"parts": parts}, headers=headers
    )
    assert response.status_code == 201, response.text


async def test_over_the_limit_and_abort(s3_client, bucket, settings):
    endpoint, name = bucket
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    body = {"fileName": "big.csv", "fileSize": settings.max_upload_bytes + 1}
    assert_error_body(await s3_client.post(MULTIPART, json=body, headers=headers), 413, "upload limit")
    body = {"fileName": "notes.txt", "fileSize": 10}
    assert_error_body(await s3_client.post(MULTIPART, json=body, headers=headers), 415, ".txt")
    start = (
        await s3_client.post(MULTIPART, json={"fileName": "a.csv", "fileSize": 10}, headers=headers)
    ).json()
    s3 = boto3.client("s3", endpoint_url=endpoint)
    assert len(s3.list_multipart_uploads(Bucket=name, Prefix=f"pre/tenant-{tenant}/")["Uploads"]) == 1
    assert (await s3_client.delete(f"{MULTIPART}/{start['id']}", headers=headers)).status_code == 204
    assert_error_body(await s3_client.get(f"{MULTIPART}/{start['id']}", headers=headers), 404)
    assert not s3.list_multipart_uploads(Bucket=name, Prefix=f"pre/tenant-{tenant}/").get("Uploads")


async def test_the_local_store_says_it_needs_s3(client, headers):
    response = await client.post(MULTIPART, json={"fileName": "a.csv", "fileSize": 10}, headers=headers)
    assert_error_body(response, 409, "S3 store")
