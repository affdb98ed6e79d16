"""A 300 MB file through a real server in tus chunks, the connection dropped twice mid-chunk and resumed
(HEAD, then PATCH from the server's offset) with the official tus client tuspy, then imported and read
back with pyiceberg: the same file record, and the same bytes, as a one-request upload."""

import hashlib
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyarrow.compute as pc
import pytest
from tusclient.client import TusClient

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse
from tests.conftest import assert_error_body, headers_for, make_token
from tests.files.helpers import configure, start_import, wait_for
from tests.processes import free_port, own_database, running, wait_ready
from tests.uploads.helpers import TUS, UPLOADS, metadata

CHUNK = 16 * 1024**2
TUS_JS = Path(__file__).parent / "js"  # `make tus-js` installs tus-js-client there
ROWS = 1_000_000
LIMIT = 400_000_000  # the server's INGEST_MAX_UPLOAD_BYTES


@pytest.fixture(scope="module")
def own_db(database_url: str) -> Iterator[str]:
    """The server's own database: its in-process worker runs only the jobs this module queues."""
    with own_database(database_url, "ingest_tus") as url:
        yield url


@pytest.fixture(scope="module")
def server(
    env_for_subprocess: dict[str, str], own_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`ingest serve` (API + worker) on a free port: real sockets, so a connection can really drop."""
    port = free_port()
    env = dict(
        env_for_subprocess,
        INGEST_DATABASE_URL=own_db,
        INGEST_UPLOAD_CHUNK_BYTES=str(CHUNK),
        INGEST_MAX_UPLOAD_BYTES=str(LIMIT),
        INGEST_LOG_LEVEL="WARNING",
    )
    logs = tmp_path_factory.mktemp("tus-server")
    url = f"http://127.0.0.1:{port}"
    with running(
        [["serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)]], env, logs
    ) as processes:
        wait_ready([url], processes, logs)
        yield url


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A CSV of a little over 300 MB (1M rows of ~300 bytes), and the sum of its amounts in cents."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    i = pl.int_range(0, ROWS, dtype=pl.Int64, eager=True)
    frame = pl.DataFrame({"id": i}).with_columns(
        amount=pl.format(
            "{}.{}", (pl.col("id") // 100) % 1000, (pl.col("id") % 100).cast(pl.String).str.zfill(2)
        ),
        note=pl.format("{}-{}", pl.lit("n" * 285), pl.col("id")),
    )
    frame.write_csv(path)
    cents = frame.select((((pl.col("id") // 100) % 1000) * 100 + pl.col("id") % 100).sum()).item()
    assert path.stat().st_size > 300_000_000
    return path, int(cents)


def drop_mid_chunk(
    url: str, location: str, headers: dict[str, str], path: Path, offset: int, send: int
) -> None:
    """A PATCH announcing a whole chunk whose connection dies after `send` bytes (a client gone mid-body)."""
    host, port = url.removeprefix("http://").split(":")
    lines = [
        f"PATCH {location} HTTP/1.1",
        f"Host: {host}:{port}",
        *(f"{k}: {v}" for k, v in headers.items()),
        "Tus-Resumable: 1.0.0",
        f"Upload-Offset: {offset}",
        "Content-Type: application/offset+octet-stream",
        f"Content-Length: {CHUNK}",
    ]
    with path.open("rb") as f:
        f.seek(offset)
        body = f.read(send)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    time.sleep(0.5)  # the server reads what arrived before the connection dies
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST, no FIN
    sock.close()


def server_offset(url: str, location: str, headers: dict[str, str]) -> int:
    response = httpx.head(f"{url}{location}", headers={**headers, **TUS})
    assert response.status_code == 200, response.headers
    return int(response.headers["upload-offset"])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * 1024**2):
            digest.update(block)
    return digest.hexdigest()


async def test_300_mb_in_chunks_survives_two_drops_then_imports(
    server: str, big_csv: tuple[Path, int], settings: Settings, own_db: str
) -> None:
    path, cents = big_csv
    size = path.stat().st_size
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    client = TusClient(f"{server}{UPLOADS}", headers=headers)

    def uploader(location: str | None = None) -> Any:
        return client.uploader(
            file_path=str(path),
            url=f"{server}{location}" if location else None,
            chunk_size=CHUNK,
            metadata={"filename": "big.csv"},
            upload_checksum=True,  # sha1 per chunk: the checksum extension, spoken by tuspy
            retries=3,
            retry_delay=1,
        )

    first = uploader()
    first.upload(stop_at=100_000_000)
    location = "/" + first.url.split("/", 3)[3]
    offset = server_offset(server, location, headers)
    assert offset == first.offset >= 100_000_000

    drop_mid_chunk(server, location, headers, path, offset, send=CHUNK // 2)
    time.sleep(0.5)
    after_first_drop = server_offset(server, location, headers)
    assert offset <= after_first_drop <= offset + CHUNK // 2  # what arrived is kept, nothing more

    second = uploader(location)  # a new client: asks HEAD where to go on
    assert second.offset == after_first_drop
    second.upload(stop_at=200_000_000)
    offset = server_offset(server, location, headers)

    drop_mid_chunk(server, location, headers, path, offset, send=3 * CHUNK // 4)
    time.sleep(0.5)
    after_second_drop = server_offset(server, location, headers)
    assert offset <= after_second_drop <= offset + 3 * CHUNK // 4

    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=120) as http:
        assert (await http.get("/api/v1/files")).json() == []  # 200 MB in, and still no file

        third = uploader(location)
        assert third.offset == after_second_drop
        third.upload()
        assert third.offset == size

        upload = (await http.get(location)).json()
        assert upload["status"] == "COMPLETED"
        assert upload["uploadOffset"] == size
        file_id = upload["fileId"]
        file = (await http.get(f"/api/v1/files/{file_id}")).json()
        assert file["fileName"] == "big.csv"
        assert file["fileSize"] == size
        assert file["fileFormat"] == "csv"
        assert file["status"] == "UPLOADED"
        stored = settings.data_dir / "objects" / file["storagePath"].lstrip("/")
        assert sha256(stored) == sha256(path)  # byte for byte, across both drops
        assert not (settings.partial_uploads_dir / f"tenant-{tenant}" / upload["id"]).exists()

        assert_error_body(await http.get(location, headers=headers_for(uuid.uuid4())), 404)

        await configure(http, headers, file_id, targetTableName="big", targetSchema="uploads")
        await start_import(http, headers, file_id)
        status = await wait_for(http, headers, file_id, timeout=300)
        assert status["status"] == "COMPLETED", status
        assert status["recordsImported"] == ROWS

    warehouse = Warehouse.from_settings(settings, own_db)
    table = warehouse.catalog.load_table(warehouse.ref(tenant, "uploads", "big").identifier)
    got = table.scan(selected_fields=("id", "amount")).to_arrow()
    assert got.num_rows == ROWS
    assert pc.min(got["id"]).as_py() == 0
    assert pc.max(got["id"]).as_py() == ROWS - 1
    assert pc.sum(got["id"]).as_py() == ROWS * (ROWS - 1) // 2
    assert pc.sum(got["amount"]).as_py() == Decimal(cents) / 100
    last = table.scan(row_filter=f"id == {ROWS - 1}").to_arrow().to_pylist()
    assert last == [{"id": ROWS - 1, "amount": Decimal("999.99"), "note": "n" * 285 + f"-{ROWS - 1}"}]


def test_over_the_limit_is_refused_by_the_server(server: str) -> None:
    headers = headers_for(uuid.uuid4())
    response = httpx.post(
        f"{server}{UPLOADS}",
        headers={
            **headers,
            **TUS,
            "Upload-Length": str(LIMIT + 1),
            "Upload-Metadata": metadata(filename="x.csv"),
        },
    )
    assert_error_body(response, 413, "upload limit")


def test_tus_js_client_uploads_and_resumes(server: str, settings: Settings, tmp_path: Path) -> None:
    """tus-js-client (what a browser runs) in 8 MiB chunks: stopped after its first chunk, then a second
    client given only the URL resumes from the server's offset; the file is byte for byte the same."""
    path = tmp_path / "from-js.csv"
    pl.DataFrame({"id": pl.int_range(0, 400_000, eager=True)}).with_columns(
        note=pl.format("{}-{}", pl.lit("j" * 40), pl.col("id"))
    ).write_csv(path)
    tenant = uuid.uuid4()
    chunk = 8 * 1024**2
    command = [
        "node",
        str(TUS_JS / "upload.mjs"),
        f"{server}{UPLOADS}",
        str(path),
        make_token([tenant]),
        str(tenant),
    ]
    out = subprocess.run([*command, str(chunk), "--resume"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["firstChunkOffset"] == chunk
    assert result["resumedFrom"] == chunk  # the second client asked HEAD and went on from there
    headers = headers_for(tenant)
    upload = httpx.get(result["url"], headers=headers).json()
    assert upload["status"] == "COMPLETED"
    file = httpx.get(f"{server}/api/v1/files/{upload['fileId']}", headers=headers).json()
    assert file["fileName"] == "from-js.csv"
    assert file["fileSize"] == path.stat().st_size > 2 * chunk
    assert sha256(settings.data_dir / "objects" / file["storagePath"].lstrip("/")) == sha256(path)
