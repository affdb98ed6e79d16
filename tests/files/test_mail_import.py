"""Mailbox files through the API: upload, preview, import into Iceberg, read back with pyiceberg."""

import uuid
from pathlib import Path
from typing import Any

import pytest

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse
from ingest.mail import MESSAGE_COLUMNS
from tests.conftest import assert_error_body, headers_for
from tests.files.helpers import configure, start_import, upload, uploaded, wait_for
from tests.mail.samples import PST_SAMPLE, corrupt_pst, messages, write_eml_zip, write_mbox, zip_bomb


@pytest.fixture
def warehouse(settings: Settings, database_url: str) -> Warehouse:
    return Warehouse.from_settings(settings, database_url)


def _read_back(warehouse: Warehouse, tenant: uuid.UUID, table: str) -> list[dict[str, Any]]:
    """The table's rows as pyiceberg reads them (not through the service's own reader)."""
    loaded = warehouse.catalog.load_table(warehouse.ref(tenant, "mail", table).identifier)
    return loaded.scan().to_arrow().to_pylist()


async def _import(client: Any, headers: dict[str, str], path: Path, name: str, table: str) -> dict[str, Any]:
    file = await uploaded(client, headers, path, name)
    await configure(client, headers, file["id"], targetTableName=table, targetSchema="mail")
    await start_import(client, headers, file["id"])
    return await wait_for(client, headers, file["id"])


@pytest.mark.parametrize(("kind", "name"), [("mbox", "archive.mbox"), ("eml", "export.zip")])
async def test_mailbox_files_import_with_equal_values(
    live_client: Any, warehouse: Warehouse, tmp_path: Path, kind: str, name: str
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    samples = messages()
    raws = [raw for raw, _ in samples]
    path = write_mbox(tmp_path / name, raws) if kind == "mbox" else write_eml_zip(tmp_path / name, raws)

    file = await uploaded(live_client, headers, path, name)
    assert file["fileFormat"] == kind
    preview = (await live_client.get(f"/api/v1/files/{file['id']}/preview?rows=2", headers=headers)).json()
    assert [c["name"] for c in preview["columns"]] == list(MESSAGE_COLUMNS)
    assert preview["totalRows"] == 5
    assert [r["subject"] for r in preview["previewRows"]] == [samples[0][1].subject, samples[1][1].subject]
    assert preview["inferredTypes"]["date"] == "TIMESTAMP"
    assert preview["inferredTypes"]["to"] == "JSON"

    await configure(live_client, headers, file["id"], targetTableName=f"{kind}_box", targetSchema="mail")
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    assert status["recordsImported"] == 5

    rows = _read_back(warehouse, tenant, f"{kind}_box")
    assert len(rows) == 5
    by_subject = {r["subject"]: r for r in rows}
    for _, want in samples:
        if want.broken:
            continue
        row = by_subject[want.subject]
        assert row["message_id"] == want.message_id
        assert row["thread_id"] == want.thread_id
        assert row["date"] == want.date
        assert row["folders"] == ([] if kind == "mbox" else ["Inbox/2026"])
        attachments = [(a["name"], a["content_type"]) for a in row["attachments"]]
        assert attachments == [(n, t) for n, t, _, _ in want.attachments]
        for att, (_, _, size, sha) in zip(row["attachments"], want.attachments, strict=True):
            if sha:
                assert (att["size"], att["sha256"]) == (size, sha)
    threads = {r["thread_id"] for r in rows if r["subject"] and "über" in r["subject"]}
    assert threads == {"<root-1@example.com>"}
    assert sum(1 for r in rows if r["parse_error"]) == 1  # the broken message is a row with its error
    assert by_subject["Réunion 日本語 📧 über alles"]["from"] == [
        {"name": "Zoë Ünïcode", "address": "zoe@example.com"}
    ]


async def test_pst_imports_and_a_corrupt_node_is_a_row_error(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)

    status = await _import(live_client, headers, PST_SAMPLE, "outlook.pst", "pst_box")
    assert status["status"] == "COMPLETED", status
    [row] = _read_back(warehouse, tenant, "pst_box")
    assert row["subject"] == "I have attachments!"
    assert row["folders"] == ["Outlook データ ファイルのトップ"]
    assert [a["name"] for a in row["attachments"]] == ["Microsoft Outlook テスト メッセージ", "green.png"]
    assert row["parse_error"] is None

    damaged = corrupt_pst(tmp_path / "damaged.pst")
    status = await _import(live_client, headers, damaged, "damaged.pst", "pst_damaged")
    assert status["status"] == "COMPLETED", status
    [row] = _read_back(warehouse, tenant, "pst_damaged")
    assert "attachment 2 cannot be read" in row["parse_error"]


async def test_a_zip_bomb_is_refused_at_upload(live_client: Any, tmp_path: Path) -> None:
    headers = headers_for(uuid.uuid4())
    response = await upload(live_client, headers, zip_bomb(tmp_path / "bomb.zip"))

    assert_error_body(response, 400, "zip bomb")
    assert (await live_client.get("/api/v1/files", headers=headers)).json() == []
