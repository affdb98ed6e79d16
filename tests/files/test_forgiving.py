"""Forgiving imports: onError skip within and past its budget, the rejects table, and the dry run's plan."""

import uuid
from pathlib import Path
from typing import Any

import pytest

from ingest.core.settings import Settings
from ingest.db.models import FileImport
from ingest.files.service import import_forgiving
from ingest.formats import FileFormat, SourceFile
from ingest.iceberg import Warehouse
from tests.conftest import READ, assert_error_body, headers_for
from tests.files.helpers import configure, start_import, uploaded, wait_for

ROWS = 12_000  # past the 10,000-row sample the csv's types are inferred from
HEADER = "id,amount,day,qty,note"
# data row -> the line that does not convert (after the sample, so the inferred types stand)
BAD = {
    10_500: "x1,1.00,2024-01-01,1.0,bad id",
    10_600: "10600,1.234,2024-01-01,1.0,three decimals",  # DECIMAL(18,2): rejected, never rounded
    10_700: "10700,1.00,2024-02-30,1.0,no such day",
    11_000: "11000,1.00,2024-01-01,12345.5,qty too big",  # columnTypes DECIMAL(4,1)
    11_500: "y,z,2024-01-01,1.0,two bad cells",
}
SCHEMA = "forgiving"


@pytest.fixture
def warehouse(settings: Settings, database_url: str) -> Warehouse:
    return Warehouse.from_settings(settings, database_url)


def good_line(i: int) -> str:
    return f"{i},{i % 1000}.{i % 100:02d},2024-01-{1 + i % 28:02d},{i % 100}.5,n{i}"


def write_csv(path: Path, rows: int = ROWS, bad: dict[int, str] | None = None) -> Path:
    bad = BAD if bad is None else bad
    lines = [HEADER] + [bad.get(i, good_line(i)) for i in range(1, rows + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def snapshots(warehouse: Warehouse, tenant: uuid.UUID, table: str) -> list[Any]:
    return list(warehouse.catalog.load_table(warehouse.ref(tenant, SCHEMA, table).identifier).snapshots())


async def dry_run(client: Any, headers: dict[str, str], file_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/files/{file_id}/import?dryRun=true", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def table_detail(client: Any, headers: dict[str, str], table: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/tables/{SCHEMA}/{table}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


SKIP = {"onError": "skip", "columnTypes": {"qty": "DECIMAL(4,1)"}}


async def test_skip_within_budget_plan_then_import_and_rejects(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    path = write_csv(tmp_path / "orders.csv")
    file = await uploaded(live_client, headers, path)
    await configure(
        live_client,
        headers,
        file["id"],
        targetTableName="orders",
        targetSchema=SCHEMA,
        maxErrorRows=5,
        **SKIP,
    )

    plan = await dry_run(live_client, headers, file["id"])
    assert plan["action"] == "CREATE_TABLE" and not plan["tableExists"]
    assert plan["wouldSucceed"], plan["message"]
    assert (plan["rowCount"], plan["recordsImported"], plan["recordsRejected"]) == (ROWS, ROWS - 5, 5)
    assert [(f["row"], f["column"]) for f in plan["failures"]] == [
        (10_500, "id"),
        (10_600, "amount"),
        (10_700, "day"),
        (11_000, "qty"),
        (11_500, "id"),
        (11_500, "amount"),
    ]
    assert "never rounded" in plan["failures"][1]["reason"]
    assert plan["failures"][3]["reason"] == (
        "value '12345.5' has 5 digits before the decimal point but DECIMAL(4,1) holds 3"
    )
    assert plan["newColumns"] == plan["columns"]
    assert plan["columns"] == [
        {"name": "id", "type": "long"},
        {"name": "amount", "type": "decimal(18, 2)"},
        {"name": "day", "type": "date"},
        {"name": "qty", "type": "decimal(4, 1)"},
        {"name": "note", "type": "string"},
    ]
    assert plan["rejectsTable"] == f"{SCHEMA}.orders__rejects"
    # the dry run wrote nothing
    assert (await live_client.get(f"/api/v1/tables/{SCHEMA}/orders", headers=headers)).status_code == 404
    assert (await live_client.get(f"/api/v1/files/{file['id']}", headers=headers)).json()[
        "status"
    ] == "CONFIGURED"

    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    assert (status["recordsImported"], status["recordsRejected"]) == (plan["recordsImported"], 5)
    assert status["totalRows"] == plan["rowCount"]
    assert status["rejectReasons"] == plan["failures"]
    assert status["rejectsTable"] == plan["rejectsTable"]

    # one commit into the target, one into the rejects table
    assert len(snapshots(warehouse, tenant, "orders")) == 1
    assert len(snapshots(warehouse, tenant, "orders__rejects")) == 1
    detail = await table_detail(live_client, headers, "orders")
    assert [{"name": c["name"], "type": c["type"]} for c in detail["columns"]] == plan["columns"]
    data = warehouse.read_all(tenant, SCHEMA, "orders")
    assert data.height == ROWS - 5
    assert not set(data["note"].to_list()) & {line.rsplit(",", 1)[1] for line in BAD.values()}
    assert str(data.filter(data["id"] == 10_601)["amount"].item()) == "601.01"  # exact

    rows = await live_client.get(f"/api/v1/tables/{SCHEMA}/orders__rejects/rows?limit=100", headers=headers)
    assert rows.status_code == 200, rows.text
    rejects = sorted(rows.json()["rows"], key=lambda r: r["row_number"])
    assert [r["row_number"] for r in rejects] == sorted(BAD)
    assert {r["file_id"] for r in rejects} == {file["id"]}
    assert {r["file_name"] for r in rejects} == {"orders.csv"}
    assert [r["record"] for r in rejects] == [BAD[n] for n in sorted(BAD)]  # fix these and upload again
    assert [(r["column_name"], r["value"]) for r in rejects][:2] == [("id", "x1"), ("amount", "1.234")]
    assert rejects[-1]["reason"].startswith("column 'id': value 'y' is not a valid INTEGER; column 'amount'")


async def test_skip_past_the_budget_writes_nothing(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    file = await uploaded(live_client, headers, write_csv(tmp_path / "orders.csv"))
    for budget, why in (
        ({"maxErrorRows": 4}, "5 of 12000 rows do not convert, more than maxErrorRows (4)"),
        ({"maxErrorRatio": 0.0004}, "more than maxErrorRatio (0.0004)"),
    ):
        await configure(
            live_client, headers, file["id"], targetTableName="orders", targetSchema=SCHEMA, **SKIP, **budget
        )
        plan = await dry_run(live_client, headers, file["id"])
        assert not plan["wouldSucceed"] and why in plan["message"]
        assert (plan["recordsImported"], plan["recordsRejected"]) == (0, 5)
        await start_import(live_client, headers, file["id"])
        status = await wait_for(live_client, headers, file["id"])
        assert status["status"] == "FAILED", status
        assert why in status["errorMessage"] and "nothing was written" in status["errorMessage"]
        assert "Row 10500, column 'id'" in status["errorMessage"]
        assert status["recordsRejected"] == 5 and len(status["rejectReasons"]) == 6
        assert not warehouse.table_exists(tenant, SCHEMA, "orders")
        assert not warehouse.table_exists(tenant, SCHEMA, "orders__rejects")

    # within the ratio (5 / 12000 <= 0.0005) the same file imports
    await configure(
        live_client,
        headers,
        file["id"],
        targetTableName="orders",
        targetSchema=SCHEMA,
        maxErrorRatio=0.0005,
        **SKIP,
    )
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert (status["status"], status["recordsImported"], status["recordsRejected"]) == (
        "COMPLETED",
        ROWS - 5,
        5,
    )


async def test_dry_run_of_an_append_that_adds_and_widens_then_a_type_conflict(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    first = tmp_path / "first.csv"
    first.write_text("id,amount,day\n1,1.50,2024-01-01\n2,2.25,2024-01-02\n")
    file = await uploaded(live_client, headers, first)
    await configure(live_client, headers, file["id"], targetTableName="ledger", targetSchema=SCHEMA)
    await start_import(live_client, headers, file["id"])
    assert (await wait_for(live_client, headers, file["id"]))["status"] == "COMPLETED"
    before = await table_detail(live_client, headers, "ledger")
    assert [c["type"] for c in before["columns"]] == ["long", "decimal(18, 2)", "date"]

    # 19 digits before the point: decimal(21, 2), a promotion of the table's decimal(18, 2)
    second = tmp_path / "second.csv"
    second.write_text(
        "id,amount,day,region\n3,1234567890123456789.10,2024-01-03,north\n4,x,2024-01-04,south\n"
    )
    file = await uploaded(live_client, headers, second)
    await configure(
        live_client,
        headers,
        file["id"],
        targetTableName="ledger",
        targetSchema=SCHEMA,
        columnTypes={"amount": "DECIMAL(21,2)"},
        onError="skip",
        maxErrorRows=1,
    )
    plan = await dry_run(live_client, headers, file["id"])
    assert plan["action"] == "APPEND" and plan["tableExists"] and plan["wouldSucceed"], plan
    assert plan["newColumns"] == [{"name": "region", "type": "string"}]
    assert plan["widenedColumns"] == [
        {"name": "amount", "fileType": "decimal(21, 2)", "tableType": "decimal(18, 2)"}
    ]
    assert plan["convertedColumns"] == [] and plan["refusedChanges"] == []
    assert (plan["rowCount"], plan["recordsImported"], plan["recordsRejected"]) == (2, 1, 1)
    assert plan["failures"] == [
        {
            "row": 2,
            "column": "amount",
            "value": "x",
            "reason": "value 'x' is not a decimal number (DECIMAL(21,2) expected)",
        }
    ]
    assert len(snapshots(warehouse, tenant, "ledger")) == 1  # the dry run wrote nothing

    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert (status["status"], status["recordsImported"], status["recordsRejected"]) == ("COMPLETED", 1, 1)
    after = await table_detail(live_client, headers, "ledger")
    added = [{"name": c["name"], "type": c["type"]} for c in after["columns"][len(before["columns"]) :]]
    assert added == plan["newColumns"]
    assert [{"name": c["name"], "type": c["type"]} for c in after["columns"]] == plan["columns"]
    assert after["columns"][1]["type"] == "decimal(21, 2)"
    assert len(snapshots(warehouse, tenant, "ledger")) == 2
    amounts = warehouse.read_all(tenant, SCHEMA, "ledger").sort("id")["amount"].cast(str).to_list()
    assert amounts == ["1.50", "2.25", "1234567890123456789.10"]

    # a boolean column into the table's date column: refused, and the import fails the same way
    third = tmp_path / "third.csv"
    third.write_text("id,day\n5,true\n6,false\n")
    file = await uploaded(live_client, headers, third)
    await configure(live_client, headers, file["id"], targetTableName="ledger", targetSchema=SCHEMA)
    plan = await dry_run(live_client, headers, file["id"])
    assert not plan["wouldSucceed"]
    assert plan["refusedChanges"] == [{"name": "day", "fileType": "boolean", "tableType": "date"}]
    assert "column 'day' is Date in the table but Boolean in the input" in plan["message"]
    assert (plan["rowCount"], plan["recordsImported"]) == (2, 0)
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "FAILED" and plan["message"] in status["errorMessage"]
    assert len(snapshots(warehouse, tenant, "ledger")) == 2


async def test_error_policy_is_checked(client: Any, tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    small = tmp_path / "small.csv"
    small.write_text("id\n1\n")
    file = await uploaded(client, headers, small)
    url = f"/api/v1/files/{file['id']}/schema"
    plan_url = f"/api/v1/files/{file['id']}/import?dryRun=true"
    assert_error_body(await client.post(plan_url, headers=headers), 409, "no target table yet")
    for body, message in (
        ({"onError": "skip"}, "needs maxErrorRows and/or maxErrorRatio"),
        ({"maxErrorRows": 3}, "apply to onError 'skip' only"),
        ({"onError": "skip", "maxErrorRatio": 1.5}, None),
        ({"onError": "sometimes", "maxErrorRows": 1}, None),
        ({"onError": "skip", "maxErrorRows": 1, "targetTableName": "t" * 120}, "at most 119 characters"),
    ):
        response = await client.put(url, json={"targetTableName": "small", **body}, headers=headers)
        assert_error_body(response, 400, message)
    other = headers_for(uuid.uuid4())
    assert_error_body(await client.post(plan_url, headers=other), 404)
    assert_error_body(await client.post(plan_url, headers=headers_for(tenant, READ)), 403)


def test_a_retry_after_the_target_commit_writes_only_the_missing_rejects(
    warehouse: Warehouse, settings: Settings, tmp_path: Path
) -> None:
    """A worker that died between the target's commit and the rejects': the job runs again."""
    tenant = uuid.uuid4()
    path = write_csv(tmp_path / "orders.csv")
    file = FileImport(
        id=uuid.uuid4(),
        tenant_id=tenant,
        file_name="orders.csv",
        file_size=path.stat().st_size,
        file_format="csv",
        storage_path="unused",
        status="IMPORTING",
        target_table_name="orders",
        target_schema=SCHEMA,
        column_types={"qty": "DECIMAL(4,1)"},
        mode="append",
        on_error="skip",
        max_error_rows=5,
    )
    source = SourceFile(path, FileFormat.CSV)
    first, rejected, _ = import_forgiving(
        warehouse, tenant, file, source, lambda rows: None, settings.data_dir
    )
    assert (first.rows_written, rejected, first.already_applied) == (ROWS - 5, 5, False)
    warehouse.drop_table(tenant, SCHEMA, "orders__rejects")  # as if the worker died before that commit

    again, rejected, reasons = import_forgiving(
        warehouse, tenant, file, source, lambda rows: None, settings.data_dir
    )
    assert (again.rows_written, again.already_applied, rejected) == (ROWS - 5, True, 5)
    assert [r.row for r in reasons][:5] == sorted(BAD)
    assert len(snapshots(warehouse, tenant, "orders")) == 1
    rejects = warehouse.read_all(tenant, SCHEMA, "orders__rejects")
    assert sorted(rejects["row_number"].to_list()) == sorted(BAD)
    assert set(rejects["file_id"].to_list()) == {str(file.id)}

    # a third run finds both commits: nothing is written twice
    import_forgiving(warehouse, tenant, file, source, lambda rows: None, settings.data_dir)
    assert len(snapshots(warehouse, tenant, "orders__rejects")) == 1
    assert warehouse.read_all(tenant, SCHEMA, "orders__rejects").height == 5
