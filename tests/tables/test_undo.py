"""Undo (rollback) and time travel on real Iceberg tables written by real imports, read back with pyiceberg."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import READ, assert_error_body, headers_for
from tests.files.helpers import configure, start_import, uploaded, wait_for

BASE = "/api/v1/tables/sales/orders"


def write_csv(path: Path, ids: range) -> Path:
    lines = ["id,name,amount"] + [f"{i},name-{i},{i * 1.5}" for i in ids]
    path.write_text("\n".join(lines) + "\n")
    return path


async def import_rows(client, headers, path: Path) -> str:
    file = await uploaded(client, headers, path)
    await configure(client, headers, file["id"], targetTableName="orders", targetSchema="sales")
    await start_import(client, headers, file["id"])
    assert (await wait_for(client, headers, file["id"]))["status"] == "COMPLETED"
    return str(file["id"])


def table_of(warehouse, tenant):
    return warehouse.catalog.load_table(warehouse.ref(tenant, "sales", "orders").identifier)


def rows_at(table, snapshot_id: int | None) -> list[tuple]:
    """The rows of a snapshot read with pyiceberg itself, sorted."""
    arrow = table.scan(snapshot_id=snapshot_id).to_arrow() if snapshot_id else table.scan().to_arrow()
    return sorted(pl.from_arrow(arrow).select("id", "name", "amount").rows())


async def test_undo_imports_and_read_the_past(live_client, tmp_path, warehouse):
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    reader = headers_for(tenant, READ)
    files, times = [], []
    for n, ids in enumerate((range(1, 4), range(4, 7), range(7, 10))):
        files.append(await import_rows(live_client, headers, write_csv(tmp_path / f"part{n}.csv", ids)))
        times.append(datetime.now(UTC))
        await asyncio.sleep(0.05)
    table = table_of(warehouse, tenant)
    snaps = [s.snapshot_id for s in table.snapshots()]
    assert len(snaps) == 3

    # -- time travel: asOf and snapshotId on rows and schema -----------------------------------------
    first = (
        await live_client.get(f"{BASE}/rows", params={"asOf": times[0].isoformat()}, headers=reader)
    ).json()
    assert first["snapshotId"] == str(snaps[0])
    assert sorted(r["id"] for r in first["rows"]) == [1, 2, 3]
    second = (
        await live_client.get(f"{BASE}/rows", params={"snapshotId": str(snaps[1])}, headers=reader)
    ).json()
    assert sorted(r["id"] for r in second["rows"]) == list(range(1, 7))
    detail = (await live_client.get(BASE, params={"asOf": times[1].isoformat()}, headers=reader)).json()
    assert detail["readSnapshotId"] == str(snaps[1]) and detail["currentSnapshotId"] == str(snaps[2])
    assert [c["name"] for c in detail["columns"]] == ["id", "name", "amount"]
    assert [(s["importId"], s["addedRecords"], s["operation"]) for s in detail["snapshots"]] == [
        (files[0], 3, "append"),
        (files[1], 3, "append"),
        (files[2], 3, "append"),
    ]
    before_all = (times[0] - timedelta(hours=1)).isoformat()
    assert_error_body(
        await live_client.get(f"{BASE}/rows", params={"asOf": before_all}, headers=reader), 404, "as of"
    )
    assert_error_body(await live_client.get(f"{BASE}/rows", params={"snapshotId": "x"}, headers=reader), 400)
    assert_error_body(await live_client.get(f"{BASE}/rows", params={"snapshotId": "12"}, headers=reader), 404)
    assert_error_body(
        await live_client.get(f"{BASE}/rows", params={"asOf": "yesterday"}, headers=reader), 400
    )
    both = {"snapshotId": str(snaps[0]), "asOf": times[0].isoformat()}
    assert_error_body(await live_client.get(f"{BASE}/rows", params=both, headers=reader), 400, "not both")

    # -- undo: a later load depends on the second import: 409 naming it ------------------------------
    refused = await live_client.post(f"{BASE}/rollback", json={"toBeforeImport": files[1]}, headers=headers)
    assert_error_body(refused, 409, files[2])
    assert rows_at(table_of(warehouse, tenant), None) == rows_at(table, snaps[2])  # nothing changed

    # undo the last import: the rows equal the snapshot before it, the import's record says so
    undone = await live_client.post(f"{BASE}/rollback", json={"toBeforeImport": files[2]}, headers=headers)
    assert undone.status_code == 200, undone.text
    body = undone.json()
    assert body["currentSnapshotId"] == str(snaps[1]) and body["previousSnapshotId"] == str(snaps[2])
    assert [u["importId"] for u in body["undone"]] == [files[2]] and body["rowCount"] == 6
    after = table_of(warehouse, tenant)
    assert after.current_snapshot().snapshot_id == snaps[1]
    assert rows_at(after, None) == rows_at(after, snaps[1])
    status = (await live_client.get(f"/api/v1/files/{files[2]}/status", headers=reader)).json()
    assert status["rolledBackAt"] is not None and status["status"] == "COMPLETED"
    kept = (await live_client.get(f"/api/v1/files/{files[1]}/status", headers=reader)).json()
    assert kept["rolledBackAt"] is None
    again = await live_client.post(f"{BASE}/rollback", json={"toBeforeImport": files[2]}, headers=headers)
    assert_error_body(again, 409, "already undone")
    # the undone snapshot stays readable by id (time travel) while the table no longer shows its rows
    old = (await live_client.get(f"{BASE}/rows", params={"snapshotId": str(snaps[2])}, headers=reader)).json()
    assert len(old["rows"]) == 9

    # by snapshot id: back to the first import; the history marks what is no longer in it
    by_id = await live_client.post(f"{BASE}/rollback", json={"snapshotId": str(snaps[0])}, headers=headers)
    assert by_id.status_code == 200, by_id.text
    assert [u["importId"] for u in by_id.json()["undone"]] == [files[1]]
    detail = (await live_client.get(BASE, headers=reader)).json()
    assert [(s["current"], s["inHistory"]) for s in detail["snapshots"]] == [
        (True, True),
        (False, False),
        (False, False),
    ]
    assert detail["rowCount"] == 3
    undone_not_ancestor = await live_client.post(
        f"{BASE}/rollback", json={"snapshotId": str(snaps[2])}, headers=headers
    )
    assert_error_body(undone_not_ancestor, 409, "not in the table's current history")

    # a new load after the rollback builds on the restored snapshot
    fourth = await import_rows(live_client, headers, write_csv(tmp_path / "part3.csv", range(20, 22)))
    assert sorted(r[0] for r in rows_at(table_of(warehouse, tenant), None)) == [1, 2, 3, 20, 21]
    # undoing the first import now needs force (the fourth depends on it); it empties the table
    assert_error_body(
        await live_client.post(f"{BASE}/rollback", json={"toBeforeImport": files[0]}, headers=headers),
        409,
        fourth,
    )
    forced = await live_client.post(
        f"{BASE}/rollback", json={"toBeforeImport": files[0], "force": True}, headers=headers
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["currentSnapshotId"] is None and forced.json()["rowCount"] == 0
    assert table_of(warehouse, tenant).scan().to_arrow().num_rows == 0
    now = datetime.now(UTC).isoformat()
    empty = (await live_client.get(f"{BASE}/rows", params={"asOf": now}, headers=reader)).json()
    assert empty["rows"] == [] and empty["snapshotId"] is None  # empty now, not the undone snapshot
    then = (
        await live_client.get(f"{BASE}/rows", params={"asOf": times[0].isoformat()}, headers=reader)
    ).json()
    assert sorted(r["id"] for r in then["rows"]) == [1, 2, 3]  # the past is still readable
    operations = (await live_client.get(f"{BASE}/operations", headers=reader)).json()
    assert [op["kind"] for op in operations] == ["ROLLBACK"] * 3  # refused ones leave no record
    assert operations[0]["details"]["forced"] is True
    # each rollback is in the audit trail (recorded centrally for every successful change)
    audit = (
        await live_client.get("/api/v1/audit-events", params={"action": "table.rollback"}, headers=reader)
    ).json()
    assert [(e["targetId"], e["targetType"]) for e in audit["content"]] == [("sales/orders", "table")] * 3
    assert set(operations[0]["details"]["undone"]) == {f"import-{files[0]}", f"import-{fourth}"}

    # rollback requests that make no sense
    for body, status, text in (
        ({}, 400, "exactly one"),
        ({"snapshotId": "1", "toBeforeImport": files[0]}, 400, "exactly one"),
        ({"toBeforeImport": "nope"}, 400, "UUID"),
        ({"toBeforeImport": str(uuid.uuid4())}, 404, "not found"),
        ({"toBeforeSync": str(uuid.uuid4())}, 404, "not found"),
        ({"snapshotId": "123"}, 404, "not found"),
        ({"unknownField": 1}, 400, None),
    ):
        assert_error_body(
            await live_client.post(f"{BASE}/rollback", json=body, headers=headers), status, text
        )

    # another tenant: every route of the table is 404, with its own ids too
    other = headers_for(uuid.uuid4())
    for method, url, body in (
        ("post", f"{BASE}/rollback", {"snapshotId": str(snaps[0])}),
        ("post", f"{BASE}/maintenance", None),
        ("get", f"{BASE}/health", None),
        ("get", f"{BASE}/operations", None),
        ("get", f"{BASE}/rows?snapshotId={snaps[0]}", None),
        ("get", f"{BASE}?asOf={times[0].isoformat()}", None),
    ):
        call = getattr(live_client, method)
        response = await (call(url, json=body, headers=other) if body else call(url, headers=other))
        assert_error_body(response, 404, "not found")
    other_tenant_file = await live_client.post(
        "/api/v1/tables/sales/orders/rollback", json={"toBeforeImport": files[0]}, headers=other
    )
    assert_error_body(other_tenant_file, 404)


@pytest.mark.parametrize("path", [f"{BASE}/rollback", f"{BASE}/maintenance"])
async def test_mutating_routes_need_token_permission_and_tenant(client, tenant, path):
    body = {"snapshotId": "1"}
    assert_error_body(await client.post(path, json=body), 401)
    assert_error_body(await client.post(path, json=body, headers=headers_for(tenant, READ)), 403)
    token_only = {"Authorization": headers_for(tenant)["Authorization"]}
    assert_error_body(await client.post(path, json=body, headers=token_only), 400, "X-Tenant-Id")
