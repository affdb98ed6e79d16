"""Every format through the API: upload, preview, schema with a rename, import, data read back."""

import uuid
from pathlib import Path

import pytest

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse
from ingest.tables.service import json_value
from tests.conftest import assert_error_body, headers_for
from tests.files.helpers import configure, start_import, uploaded, wait_for
from tests.formats.samples import COLUMNS, FORMATS, stored_frame, write_sample

RENAMES = {"name": "customer", "amount": "total_amount"}


@pytest.fixture
def warehouse(settings: Settings, database_url: str) -> Warehouse:
    return Warehouse.from_settings(settings, database_url)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_each_format_imports_with_a_rename(live_client, warehouse, tmp_path: Path, fmt: str) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    path = write_sample(tmp_path, fmt, name=f"sales_{fmt}")

    file = await uploaded(live_client, headers, path)
    assert file["status"] == "UPLOADED"
    assert file["fileFormat"] == fmt
    assert file["fileName"] == path.name
    assert file["fileSize"] == path.stat().st_size
    assert file["tenantId"] == str(tenant)
    assert file["storagePath"] == f"/tenant-{tenant}/uploads/{file['id']}/{path.name}"

    preview = await live_client.get(f"/api/v1/files/{file['id']}/preview", headers=headers)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert [c["name"] for c in body["columns"]] == COLUMNS
    assert body["totalRows"] == 3
    assert body["inferredTypes"]["id"] == "INTEGER"
    assert body["inferredTypes"]["amount"] == "DECIMAL"
    assert body["previewRows"][0]["id"] == 1

    configured = await configure(
        live_client,
        headers,
        file["id"],
        targetTableName=f"sales_{fmt}",
        targetSchema="raw_data",
        columnMappings=RENAMES,
    )
    assert configured["status"] == "CONFIGURED"
    assert configured["columnMappings"] == RENAMES

    accepted = await start_import(live_client, headers, file["id"])
    assert accepted["status"] == "IMPORTING"
    assert accepted["targetTableName"] == f"sales_{fmt}"
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    assert status["recordsImported"] == 3
    assert status["percentage"] == 100.0
    assert status["completedAt"]

    expected = stored_frame(fmt).rename(RENAMES)
    got = warehouse.read_all(tenant, "raw_data", f"sales_{fmt}")
    assert got.to_dicts() == expected.to_dicts()

    tables = (await live_client.get("/api/v1/tables", headers=headers)).json()
    assert [(t["namespace"], t["name"], t["rowCount"]) for t in tables] == [("raw_data", f"sales_{fmt}", 3)]
    assert tables[0]["lastUpdated"]
    detail = (await live_client.get(f"/api/v1/tables/raw_data/sales_{fmt}", headers=headers)).json()
    assert [c["name"] for c in detail["columns"]] == list(expected.columns)
    assert detail["snapshots"][-1]["jobId"] == f"import-{file['id']}"
    assert detail["snapshots"][-1]["importId"] == file["id"]
    rows = (
        await live_client.get(f"/api/v1/tables/raw_data/sales_{fmt}/rows?limit=10", headers=headers)
    ).json()
    assert rows["rows"] == [{k: json_value(v) for k, v in r.items()} for r in expected.to_dicts()]

    # one file, one import: a second import is refused
    assert_error_body(
        await live_client.post(f"/api/v1/files/{file['id']}/import", headers=headers), 409, "upload it again"
    )
