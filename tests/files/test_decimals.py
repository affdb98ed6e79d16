"""Exact decimals through the API: csv, xlsx and parquet money columns land as Iceberg decimal(p,s)."""

import random
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.types import DecimalType, DoubleType

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse
from tests.conftest import headers_for
from tests.files.helpers import configure, start_import, upload, uploaded, wait_for

ROWS = 30_000  # past the 10,000-row sample the csv types come from
EDGES = ["0.10", "12345678901234.57", "-12345678901234.57", "-0.01", "0.00", "99999999999999.99"]


@pytest.fixture
def warehouse(settings: Settings, database_url: str) -> Warehouse:
    return Warehouse.from_settings(settings, database_url)


def money_values(count: int) -> list[str]:
    rng = random.Random(7)
    values = [f"{rng.randint(-(10**9), 10**9) / 100:.2f}" for _ in range(count - len(EDGES))]
    return EDGES + values


def write_money_csv(path: Path, amounts: list[str]) -> Path:
    lines = ["id,amount,note"] + [f"{i},{a},n{i}" for i, a in enumerate(amounts, start=1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def iceberg_table(warehouse: Warehouse, tenant: uuid.UUID, table: str) -> Any:
    return warehouse.catalog.load_table(warehouse.ref(tenant, "money", table).identifier)


async def import_file(
    client: Any, headers: dict[str, str], path: Path, table: str, **schema: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    file = await uploaded(client, headers, path)
    await configure(client, headers, file["id"], targetTableName=table, targetSchema="money", **schema)
    await start_import(client, headers, file["id"])
    return file, await wait_for(client, headers, file["id"])


async def test_money_csv_is_exact_in_preview_iceberg_and_the_rows_api(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    amounts = money_values(ROWS)
    path = write_money_csv(tmp_path / "money.csv", amounts)

    file = await uploaded(live_client, headers, path)
    preview = (await live_client.get(f"/api/v1/files/{file['id']}/preview?rows=6", headers=headers)).json()
    amount = next(c for c in preview["columns"] if c["name"] == "amount")
    assert (amount["type"], amount["precision"], amount["scale"]) == ("DECIMAL", 18, 2)
    assert preview["inferredTypes"]["amount"] == "DECIMAL"
    assert amount["sampleValues"] == EDGES[:5]
    # strings, not floats: 12345678901234.57 has more digits than a double keeps exactly in JSON
    assert [r["amount"] for r in preview["previewRows"]] == EDGES
    id_column = next(c for c in preview["columns"] if c["name"] == "id")
    assert "precision" not in id_column  # only an exact DECIMAL has them

    await configure(live_client, headers, file["id"], targetTableName="ledger", targetSchema="money")
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    assert status["recordsImported"] == ROWS

    table = iceberg_table(warehouse, tenant, "ledger")
    assert table.schema().find_field("amount").field_type == DecimalType(18, 2)
    stored = table.scan(selected_fields=("id", "amount")).to_arrow().sort_by("id")
    expected = [Decimal(a) for a in amounts]
    assert stored.column("amount").to_pylist() == expected
    assert sum(stored.column("amount").to_pylist()) == sum(expected)  # no drift, to the cent

    rows = (await live_client.get("/api/v1/tables/money/ledger/rows?limit=6", headers=headers)).json()
    assert [r["amount"] for r in rows["rows"]] == EDGES
    detail = (await live_client.get("/api/v1/tables/money/ledger", headers=headers)).json()
    assert {c["name"]: c["type"] for c in detail["columns"]}["amount"] == "decimal(18, 2)"


async def test_xlsx_money_cells_are_exact_and_computed_ratios_stay_double(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    amounts = money_values(500)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["id", "amount", "ratio"])
    for i, amount in enumerate(amounts, start=1):
        # a cell holds a double: what openpyxl (and Excel) write for a typed 0.10 is the double 0.1
        sheet.append([i, float(amount), i / 3])
    path = tmp_path / "money.xlsx"
    workbook.save(path)

    file = await uploaded(live_client, headers, path)
    preview = (await live_client.get(f"/api/v1/files/{file['id']}/preview?rows=3", headers=headers)).json()
    columns = {c["name"]: c for c in preview["columns"]}
    assert (columns["amount"]["precision"], columns["amount"]["scale"]) == (18, 2)
    assert columns["ratio"]["type"] == "DECIMAL"
    assert "precision" not in columns["ratio"]  # a double
    assert [r["amount"] for r in preview["previewRows"]] == EDGES[:3]
    assert preview["previewRows"][0]["ratio"] == pytest.approx(1 / 3)

    await configure(live_client, headers, file["id"], targetTableName="sheet", targetSchema="money")
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status

    table = iceberg_table(warehouse, tenant, "sheet")
    assert table.schema().find_field("amount").field_type == DecimalType(18, 2)
    assert table.schema().find_field("ratio").field_type == DoubleType()
    stored = table.scan().to_arrow().sort_by("id")
    # the file holds each double's shortest text: the typed text itself up to 15 significant digits (and
    # 12345678901234.57 here); 99999999999999.99 (16 digits) is not a double, the cell holds ...98
    cell_texts = [Decimal(repr(float(a))) for a in amounts]
    assert cell_texts[:5] == [Decimal(a) for a in EDGES[:5]]
    assert cell_texts[5] == Decimal("99999999999999.98")
    assert stored.column("amount").to_pylist() == cell_texts
    rows = (await live_client.get("/api/v1/tables/money/sheet/rows?limit=3", headers=headers)).json()
    assert [r["amount"] for r in rows["rows"]] == EDGES[:3]


async def test_parquet_decimal128_keeps_its_precision_and_scale(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    prices = [Decimal("0.0001"), Decimal("-1234567890123456.7891"), None, Decimal("42.5000")]
    wide = [Decimal("12345678901234567890123456789012.345678"), Decimal("-1.000001"), Decimal(0), None]
    path = tmp_path / "prices.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array([1, 2, 3, 4], pa.int64()),
                "price": pa.array(prices, pa.decimal128(20, 4)),
                "wide": pa.array(wide, pa.decimal128(38, 6)),
            }
        ),
        path,
    )

    file = await uploaded(live_client, headers, path)
    preview = (await live_client.get(f"/api/v1/files/{file['id']}/preview", headers=headers)).json()
    columns = {c["name"]: c for c in preview["columns"]}
    assert (columns["price"]["type"], columns["price"]["precision"], columns["price"]["scale"]) == (
        "DECIMAL",
        20,
        4,
    )
    assert (columns["wide"]["precision"], columns["wide"]["scale"]) == (38, 6)
    assert next(r["wide"] for r in preview["previewRows"]) == "12345678901234567890123456789012.345678"

    await configure(live_client, headers, file["id"], targetTableName="prices", targetSchema="money")
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status

    table = iceberg_table(warehouse, tenant, "prices")
    assert table.schema().find_field("price").field_type == DecimalType(20, 4)
    assert table.schema().find_field("wide").field_type == DecimalType(38, 6)
    stored = table.scan().to_arrow().sort_by("id")
    assert stored.column("price").to_pylist() == prices
    assert stored.column("wide").to_pylist() == wide
    rows = (await live_client.get("/api/v1/tables/money/prices/rows", headers=headers)).json()
    assert rows["rows"][1]["price"] == "-1234567890123456.7891"


@pytest.mark.parametrize(
    ("override", "bad_row", "bad_value", "reason"),
    [
        ("DECIMAL(6,2)", 4, "12345.67", "has 5 digits before the decimal point but DECIMAL(6,2) holds 4"),
        ("DECIMAL(10,2)", 3, "1.125", "has 3 digits after the decimal point but DECIMAL(10,2) holds 2"),
        ("DECIMAL(10,2)", 5, "1e3", "is not written as a plain decimal number"),
    ],
)
async def test_a_value_wider_than_its_decimal_fails_the_import_and_writes_nothing(
    live_client: Any,
    warehouse: Warehouse,
    tmp_path: Path,
    override: str,
    bad_row: int,
    bad_value: str,
    reason: str,
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    amounts = ["0.10", "-99.99", "1.5", "1234.56", "7"]
    amounts[bad_row - 1] = bad_value
    path = write_money_csv(tmp_path / "overflow.csv", amounts)

    _file, status = await import_file(
        live_client, headers, path, "overflow", columnTypes={"amount": override}
    )

    assert status["status"] == "FAILED", status
    message = status["errorMessage"]
    assert message.startswith(f"Row {bad_row}, column 'amount': value '{bad_value}' {reason}"), message
    assert not warehouse.table_exists(tenant, "money", "overflow")
    assert (await live_client.get("/api/v1/tables", headers=headers)).json() == []


async def test_a_later_row_past_the_inferred_scale_fails_until_overridden(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    amounts = [*money_values(12_000), "0.125"]  # past the sample: the inferred DECIMAL(18,2) cannot hold it
    path = write_money_csv(tmp_path / "late.csv", amounts)

    file, status = await import_file(live_client, headers, path, "late")
    assert status["status"] == "FAILED", status
    assert status["errorMessage"].startswith(
        "Row 12001, column 'amount': value '0.125' has 3 digits after the decimal point but DECIMAL(18,2)"
    )
    assert not warehouse.table_exists(tenant, "money", "late")

    configured = await configure(
        live_client,
        headers,
        file["id"],
        targetTableName="late",
        targetSchema="money",
        columnTypes={"amount": "DECIMAL(20,3)"},
    )
    assert configured["columnTypes"] == {"amount": "DECIMAL(20,3)"}
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    table = iceberg_table(warehouse, tenant, "late")
    assert table.schema().find_field("amount").field_type == DecimalType(20, 3)
    stored = table.scan(selected_fields=("id", "amount")).to_arrow().sort_by("id")
    assert stored.column("amount").to_pylist() == [Decimal(a) for a in amounts]


async def test_plain_decimal_override_takes_precision_and_scale_from_the_data(
    live_client: Any, warehouse: Warehouse, tmp_path: Path
) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    path = tmp_path / "text.csv"
    # quoted with a currency code the column is text; the override reads the numbers from `amount`
    path.write_text('id,amount,code\n1,"0.5",EUR\n2,"-12.125",USD\n3,,EUR\n')

    file = await uploaded(live_client, headers, path)
    configured = await configure(
        live_client,
        headers,
        file["id"],
        targetTableName="plain",
        targetSchema="money",
        columnTypes={"amount": "decimal", "id": "DECIMAL"},
    )
    assert configured["columnTypes"] == {"amount": "DECIMAL(18,3)", "id": "DECIMAL(18,0)"}
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    table = iceberg_table(warehouse, tenant, "plain")
    assert table.schema().find_field("amount").field_type == DecimalType(18, 3)
    stored = table.scan().to_arrow().sort_by("id")
    assert stored.column("amount").to_pylist() == [Decimal("0.500"), Decimal("-12.125"), None]
    assert stored.column("id").to_pylist() == [Decimal(1), Decimal(2), Decimal(3)]


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ({"amount": "DECIMAL(39,2)"}, "DECIMAL precision must be between 1 and 38"),
        ({"amount": "DECIMAL(2,3)"}, "DECIMAL scale must be between 0 and the precision"),
        ({"amount": "MONEY"}, "'MONEY' is not a column type"),
        ({"code": "DECIMAL"}, "first values are not all plain decimal numbers"),
    ],
)
async def test_bad_decimal_overrides_are_refused(
    client: Any, tmp_path: Path, types: dict[str, str], message: str
) -> None:
    headers = headers_for(uuid.uuid4())
    path = tmp_path / "codes.csv"
    path.write_text("amount,code\n1.50,EUR\n2.25,USD\n")
    response = await upload(client, headers, path)
    assert response.status_code == 201, response.text
    file_id = response.json()["id"]
    answer = await client.put(
        f"/api/v1/files/{file_id}/schema",
        json={"targetTableName": "codes", "columnTypes": types},
        headers=headers,
    )
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["message"]
