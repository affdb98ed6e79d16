import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ingest.core.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from ingest.core.settings import Settings
from ingest.storage import LocalStorage, S3Storage, Storage, object_key, safe_file_name, storage_path


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sales_2024.csv", "sales_2024.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.xlsx", "report.xlsx"),
        ("a/b/..", "file"),
        ("\x00evil\x1f\n.csv", "_evil_.csv"),
        ("..", "file"),
        ("ünïcödé.parquet", "unicode.parquet"),
        ("x" * 500 + ".json", "x" * 123 + ".json"),
    ],
)
def test_safe_file_name(given: str, expected: str) -> None:
    assert safe_file_name(given) == expected


def test_object_key_is_tenant_scoped() -> None:
    tenant, file_id = uuid.uuid4(), uuid.uuid4()
    key = object_key(tenant, file_id, "../x/sales.csv")
    assert key == f"tenant-{tenant}/uploads/{file_id}/sales.csv"
    assert storage_path(key) == f"/tenant-{tenant}/uploads/{file_id}/sales.csv"


async def stream(total: int, chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield bytes([sent % 251]) * n
        sent += n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storage:
    if request.param == "local":
        return Storage.from_settings(Settings.from_env(environ={}, data_dir=tmp_path))
    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    settings = Settings.from_env(
        environ={}, data_dir=tmp_path, storage_url=f"s3://{bucket}/pre", s3_endpoint_url=endpoint
    )
    return Storage.from_settings(settings)


async def test_write_read_delete(storage: Storage) -> None:
    key = object_key(uuid.uuid4(), uuid.uuid4(), "data.csv")
    size = 20 * 1024 * 1024 + 17  # more than two S3 parts
    assert await storage.write(key, stream(size), max_bytes=size) == size
    assert await storage.exists(key)
    async with storage.local_copy(key) as path:
        data = path.read_bytes()
        assert len(data) == size
        assert data[:1] == b"\x00"
        assert path.name == "data.csv"
    await storage.delete(key)
    assert not await storage.exists(key)
    with pytest.raises(NotFoundError):
        async with storage.local_copy(key):
            pass


async def test_too_large_keeps_nothing(storage: Storage) -> None:
    key = object_key(uuid.uuid4(), uuid.uuid4(), "big.csv")
    with pytest.raises(PayloadTooLargeError):
        await storage.write(key, stream(10 * 1024 * 1024), max_bytes=9 * 1024 * 1024)
    assert not await storage.exists(key)
    if isinstance(storage, LocalStorage):
        assert list(storage.root.rglob("*")) == [p for p in storage.root.rglob("*") if p.is_dir()]
    if isinstance(storage, S3Storage):
        uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket)
        assert not uploads.get("Uploads")


async def test_s3_keys_live_under_the_prefix(storage: Storage) -> None:
    if not isinstance(storage, S3Storage):
        pytest.skip("S3 only")
    key = object_key(uuid.uuid4(), uuid.uuid4(), "x.json")
    await storage.write(key, stream(10), max_bytes=100)
    listed = storage.client.list_objects_v2(Bucket=storage.bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"pre/{key}"]


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", ""])
async def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(InvalidRequestError):
        await storage.write(key, stream(1), max_bytes=10)


async def test_put_file_moves_a_finished_local_file_in(storage: Storage, tmp_path: Path) -> None:
    """A completed resumable upload's staged file goes into storage whole; past the limit nothing is kept."""
    staged = tmp_path / "staged"
    staged.write_bytes(b"id,name\n" + b"1,x\n" * 3_000_000)  # 12 MB: several S3 parts
    size = staged.stat().st_size
    key = object_key(uuid.uuid4(), uuid.uuid4(), "moved.csv")
    with pytest.raises(PayloadTooLargeError):
        await storage.put_file(key, staged, max_bytes=size - 1)
    assert staged.exists()
    assert not await storage.exists(key)
    assert await storage.put_file(key, staged, max_bytes=size) == size
    assert not staged.exists()  # moved (or uploaded), not left behind
    async with storage.local_copy(key) as path:
        assert path.stat().st_size == size
        assert path.read_bytes()[-8:] == b"1,x\n1,x\n"
