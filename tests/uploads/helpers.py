"""Helpers for the upload tests: tus headers and requests spoken by hand (tuspy speaks them in test_tus)."""

import base64
import hashlib
from typing import Any

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"
UPLOADS = "/api/v1/files/uploads"


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def create(client: Any, headers: dict[str, str], length: int, name: str = "data.csv") -> Any:
    return await client.post(
        UPLOADS,
        headers={**headers, **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(filename=name)},
    )


async def created(client: Any, headers: dict[str, str], length: int, name: str = "data.csv") -> str:
    """The new upload's path (its Location)."""
    response = await create(client, headers, length, name)
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert isinstance(location, str)
    return location


async def send(
    client: Any,
    headers: dict[str, str],
    location: str,
    offset: int,
    body: bytes,
    *,
    checksum: str | None = None,
) -> Any:
    extra = {"Upload-Checksum": checksum} if checksum else {}
    return await client.patch(
        location,
        content=body,
        headers={**headers, **TUS, **extra, "Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM},
    )


def sha1(body: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(body).digest()).decode()
