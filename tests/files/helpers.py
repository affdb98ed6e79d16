"""Helpers for the file import tests: upload, configure, import and wait."""

import asyncio
import time
from pathlib import Path
from typing import Any

TERMINAL = {"COMPLETED", "FAILED"}


async def upload(client: Any, headers: dict[str, str], path: Path, name: str | None = None) -> Any:
    with path.open("rb") as f:
        return await client.post(
            "/api/v1/files/upload", files={"file": (name or path.name, f.read())}, headers=headers
        )


async def uploaded(
    client: Any, headers: dict[str, str], path: Path, name: str | None = None
) -> dict[str, Any]:
    response = await upload(client, headers, path, name)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def configure(client: Any, headers: dict[str, str], file_id: str, **body: Any) -> dict[str, Any]:
    response = await client.put(f"/api/v1/files/{file_id}/schema", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def start_import(client: Any, headers: dict[str, str], file_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/files/{file_id}/import", headers=headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


async def wait_for(
    client: Any, headers: dict[str, str], file_id: str, wanted: set[str] = TERMINAL, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/files/{file_id}/status", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in wanted:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"file {file_id} stayed {body.get('status')!r}, wanted {wanted}")
