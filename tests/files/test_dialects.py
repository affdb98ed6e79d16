"""Read options through the API: CSV dialects and encodings, workbook sheets, JSON records paths.

Each case uploads a small file, checks what the preview says it assumed (readOptions echoed), imports it and
reads the Iceberg table back with pyiceberg.
"""

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlwt
from pyiceberg.types import DecimalType, LongType, StringType

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse
from tests.conftest import assert_error_body, headers_for
from tests.files.helpers import configure, start_import, uploaded, wait_for

NAMESPACE = "dialects"


@pytest.fixture
def warehouse(settings: Settings, database_url: str) -> Warehouse:
    return Warehouse.from_settings(settings, database_url)


async def preview(client: Any, headers: dict[str, str], file_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/files/{file_id}/preview", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def set_options(client: Any, headers: dict[str, str], file_id: str, **options: Any) -> dict[str, Any]:
    response = await client.put(f"/api/v1/files/{file_id}/read-options", json=options, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def import_into(client: Any, headers: dict[str, str], file_id: str, table: str) -> None:
    await configure(client, headers, file_id, targetTableName=table, targetSchema=NAMESPACE)
    await start_import(client, headers, file_id)
    status = await wait_for(client, headers, file_id)
    assert status["status"] == "COMPLETED", status


def read_back(warehouse: Warehouse, tenant: uuid.UUID, table: str) -> Any:
    return warehouse.catalog.load_table(warehouse.ref(tenant, NAMESPACE, table).identifier)


async def test_cp1252_semicolon_csv_with_decimal_commas(live_client, warehouse, tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    path = tmp_path / "prix.csv"
    lines = ["id;produit;prix", "1;Crème brûlée;4,50", "2;Café;1,25", "3;Prix en €;12345678901234,57"]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))

    file = await uploaded(live_client, headers, path)
    assert file["fileFormat"] == "csv"
    detected = await preview(live_client, headers, file["id"])
    assert detected["readOptions"] == {
        "delimiter": ";",
        "quoteChar": '"',
        "encoding": "cp1252",
        "header": True,
        "skipRows": 0,
        "decimalComma": False,
    }
    assert detected["inferredTypes"] == {"id": "INTEGER", "produit": "STRING", "prix": "STRING"}
    assert [r["produit"] for r in detected["previewRows"]] == ["Crème brûlée", "Café", "Prix en €"]

    job = await set_options(live_client, headers, file["id"], decimalComma=True)
    assert job["readOptions"] == {"decimalComma": True}  # what was chosen; the rest stays detected
    chosen = await preview(live_client, headers, file["id"])
    assert chosen["readOptions"]["decimalComma"] is True
    assert chosen["readOptions"]["encoding"] == "cp1252"
    prix = next(c for c in chosen["columns"] if c["name"] == "prix")
    assert (prix["type"], prix["precision"], prix["scale"]) == ("DECIMAL", 18, 2)
    assert [r["prix"] for r in chosen["previewRows"]] == ["4.50", "1.25", "12345678901234.57"]

    await configure(live_client, headers, file["id"], targetTableName="prix", targetSchema=NAMESPACE)
    dry = await live_client.post(f"/api/v1/files/{file['id']}/import?dryRun=true", headers=headers)
    assert dry.status_code == 200, dry.text
    plan = dry.json()  # the dry run reads with the same options
    assert (plan["wouldSucceed"], plan["rowCount"], plan["recordsRejected"]) == (True, 3, 0)
    assert {"name": "prix", "type": "decimal(18, 2)"} in plan["columns"]
    await start_import(live_client, headers, file["id"])
    assert (await wait_for(live_client, headers, file["id"]))["status"] == "COMPLETED"
    table = read_back(warehouse, tenant, "prix")
    assert table.schema().find_field("prix").field_type == DecimalType(18, 2)
    rows = table.scan().to_arrow().sort_by("id").to_pylist()
    assert rows == [
        {"id": 1, "produit": "Crème brûlée", "prix": Decimal("4.50")},
        {"id": 2, "produit": "Café", "prix": Decimal("1.25")},
        {"id": 3, "produit": "Prix en €", "prix": Decimal("12345678901234.57")},
    ]


@pytest.mark.parametrize("on_error", ["abort", "skip"])
async def test_decimal_commas_with_a_column_type_override(
    live_client, warehouse, tmp_path: Path, on_error
) -> None:
    """decimalComma applies to a column typed by columnTypes on both paths (under skip it once did not:
    the lenient conversion read `4,50` as a bad value and every row went to the rejects table)."""
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    path = tmp_path / "prix.csv"
    path.write_bytes("id;prix;qty\n1;4,50;2\n2;1,25;3\n".encode("cp1252"))
    file = await uploaded(live_client, headers, path)
    await set_options(live_client, headers, file["id"], decimalComma=True)
    budget = {"onError": "skip", "maxErrorRows": 10} if on_error == "skip" else {}
    table = f"override_{on_error}"
    await configure(
        live_client,
        headers,
        file["id"],
        targetTableName=table,
        targetSchema=NAMESPACE,
        columnTypes={"prix": "DECIMAL(6,3)", "qty": "DECIMAL(4,1)"},
        **budget,
    )
    await start_import(live_client, headers, file["id"])
    status = await wait_for(live_client, headers, file["id"])
    assert status["status"] == "COMPLETED", status
    assert status["recordsImported"] == 2 and not status.get("recordsRejected")
    rows = read_back(warehouse, tenant, table).scan().to_arrow().sort_by("id").to_pylist()
    assert rows == [
        {"id": 1, "prix": Decimal("4.500"), "qty": Decimal("2.0")},
        {"id": 2, "prix": Decimal("1.250"), "qty": Decimal("3.0")},
    ]


async def test_utf16_headerless_csv_after_skipped_lines(live_client, warehouse, tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    path = tmp_path / "export.csv"
    text = 'Exported 2026-12-01\t"by ops"\nsecond, free text line\n1\tÅsa\t2026-01-31\n2\tŽofie\t2026-02-01\n'
    path.write_bytes(text.encode("utf-16"))  # with its BOM, in this machine's byte order

    file = await uploaded(live_client, headers, path)
    job = await set_options(live_client, headers, file["id"], header=False, skipRows=2)
    assert job["readOptions"] == {"header": False, "skipRows": 2}
    body = await preview(live_client, headers, file["id"])
    assert body["readOptions"]["encoding"] in ("utf-16-le", "utf-16-be")
    assert body["readOptions"]["delimiter"] == "\t"  # sniffed below the skipped lines
    assert [c["name"] for c in body["columns"]] == ["column_1", "column_2", "column_3"]
    assert body["inferredTypes"] == {"column_1": "INTEGER", "column_2": "STRING", "column_3": "DATE"}
    assert body["totalRows"] == 2

    await import_into(live_client, headers, file["id"], "export")
    table = read_back(warehouse, tenant, "export")
    assert table.scan().to_arrow().sort_by("column_1").to_pylist() == [
        {"column_1": 1, "column_2": "Åsa", "column_3": dt.date(2026, 1, 31)},
        {"column_1": 2, "column_2": "Žofie", "column_3": dt.date(2026, 2, 1)},
    ]


def write_workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "Summary"
    first.append(["total"])
    first.append([3])
    second = book.create_sheet("Q2 orders")
    second.append(["Orders, second quarter"])
    second.append(["(draft)"])
    second.append(["order_id", "customer", "amount"])
    second.append([10, "Ada", 12.5])
    second.append([11, "Grace", 7.25])
    book.save(path)
    return path


async def test_second_xlsx_sheet_with_its_header_on_row_three(live_client, warehouse, tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    file = await uploaded(live_client, headers, write_workbook(tmp_path / "book.xlsx"))
    first = await preview(live_client, headers, file["id"])
    assert first["sheets"] == ["Summary", "Q2 orders"]
    assert first["readOptions"] == {"header": True, "skipRows": 0, "sheet": "Summary"}
    assert [c["name"] for c in first["columns"]] == ["total"]

    await set_options(live_client, headers, file["id"], sheet=1, skipRows=2)
    body = await preview(live_client, headers, file["id"])
    assert body["readOptions"] == {"header": True, "skipRows": 2, "sheet": "Q2 orders"}  # named
    assert [c["name"] for c in body["columns"]] == ["order_id", "customer", "amount"]
    assert body["totalRows"] == 2

    await import_into(live_client, headers, file["id"], "q2")
    table = read_back(warehouse, tenant, "q2")
    assert table.schema().find_field("order_id").field_type == LongType()
    assert table.schema().find_field("customer").field_type == StringType()
    assert table.scan().to_arrow().sort_by("order_id").to_pylist() == [
        {"order_id": 10, "customer": "Ada", "amount": Decimal("12.50")},
        {"order_id": 11, "customer": "Grace", "amount": Decimal("7.25")},
    ]


async def test_second_xls_sheet_by_name(live_client, warehouse, tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    book = xlwt.Workbook()
    book.add_sheet("Notes").write(0, 0, "nothing here")
    sheet = book.add_sheet("Data")
    for r, row in enumerate([["Title"], ["id", "city"], [1, "Oslo"], [2, "Bergen"]]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    path = tmp_path / "old.xls"
    book.save(str(path))

    file = await uploaded(live_client, headers, path)
    await set_options(live_client, headers, file["id"], sheet="Data", skipRows=1)
    body = await preview(live_client, headers, file["id"])
    assert body["sheets"] == ["Notes", "Data"]
    assert body["previewRows"] == [{"id": 1, "city": "Oslo"}, {"id": 2, "city": "Bergen"}]

    await import_into(live_client, headers, file["id"], "cities")
    rows = read_back(warehouse, tenant, "cities").scan().to_arrow().sort_by("id").to_pylist()
    assert rows == [{"id": 1, "city": "Oslo"}, {"id": 2, "city": "Bergen"}]


async def test_json_records_path(live_client, warehouse, tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    document = {
        "meta": {"page": 1, "count": 3},
        "data": {
            "items": [
                {"sku": "A-1", "qty": 2, "shipped": "2026-11-30"},
                {"sku": "B-2", "qty": 5, "shipped": "2026-12-01"},
                {"sku": "C-3", "qty": 1, "shipped": None, "note": "backorder"},
            ]
        },
    }
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(document))

    file = await uploaded(live_client, headers, path)
    await set_options(live_client, headers, file["id"], recordsPath="data.items")
    body = await preview(live_client, headers, file["id"])
    assert body["readOptions"] == {"recordsPath": "data.items"}
    assert body["totalRows"] == 3
    assert body["inferredTypes"] == {"sku": "STRING", "qty": "INTEGER", "shipped": "DATE", "note": "STRING"}

    await import_into(live_client, headers, file["id"], "orders")
    rows = read_back(warehouse, tenant, "orders").scan().to_arrow().sort_by("sku").to_pylist()
    assert rows == [
        {"sku": "A-1", "qty": 2, "shipped": dt.date(2026, 11, 30), "note": None},
        {"sku": "B-2", "qty": 5, "shipped": dt.date(2026, 12, 1), "note": None},
        {"sku": "C-3", "qty": 1, "shipped": None, "note": "backorder"},
    ]


# --- bad options: 400 with the error body, nothing stored -------------------------------------------


BAD_OPTIONS = [
    ("a.csv", b"a,b\n1,2\n", {"encoding": "klingon-8"}, "not a known text encoding"),
    ("a.csv", b"a,b\n1,2\n", {"encoding": "base64"}, "not a known text encoding"),
    ("a.csv", b"a,b\n1,2\n", {"sheet": "Data"}, "sheet do not apply to a csv file"),
    ("a.csv", b"a,b\n1,2\n", {"delimiter": ",", "decimalComma": True}, "delimiter other than ','"),
    ("a.csv", b"a,b\n1,2\n", {"delimiter": ";;"}, "delimiter"),
    ("a.csv", b"a,b\n1,2\n", {"delimiter": "\u00a7"}, "single ASCII character"),
    ("a.csv", b"a,b\n1,2\n", {"bogus": 1}, "bogus"),
    ("a.csv", "a,b\n1,\u20ac\n".encode("cp1252"), {"encoding": "utf-8"}, "not valid utf-8"),
    ("a.json", b'{"data": {"n": 1}}', {"recordsPath": "data.items"}, "has no key 'items'"),
    ("a.json", b'{"data": {"n": 1}}', {"recordsPath": "data.n"}, "not resolve to a list of objects"),
    ("a.json", b'{"data": [1, 2]}', {"recordsPath": "data"}, "not resolve to a list of objects"),
    ("a.json", b'[{"a": 1}]', {"recordsPath": "a..b"}, "separated by dots"),
    ("a.jsonl", b'{"a": 1}\n', {"skipRows": 1}, "do not apply to a jsonl file"),
]


async def test_bad_read_options_are_400_and_nothing_is_stored(client, tmp_path):
    for i, (name, content, options, message) in enumerate(BAD_OPTIONS):
        headers = headers_for(uuid.uuid4())  # a tenant per case: the loop stays under the rate limit
        path = tmp_path / f"{i}-{name}"
        path.write_bytes(content)
        file = await uploaded(client, headers, path, name)
        url = f"/api/v1/files/{file['id']}/read-options"
        assert_error_body(await client.put(url, json=options, headers=headers), 400, message)
        stored = (await client.get(f"/api/v1/files/{file['id']}", headers=headers)).json()
        assert stored["readOptions"] is None, options


async def test_a_missing_sheet_is_400_naming_the_sheets(client, headers, tmp_path):
    file = await uploaded(client, headers, write_workbook(tmp_path / "book.xlsx"))
    url = f"/api/v1/files/{file['id']}/read-options"
    response = await client.put(url, json={"sheet": "Q3"}, headers=headers)
    assert_error_body(response, 400, "the workbook's sheets: 'Summary', 'Q2 orders'")
    assert_error_body(await client.put(url, json={"sheet": 2}, headers=headers), 400, "has 2 sheet(s)")


async def test_schema_put_carries_read_options_and_checks_mappings_against_them(client, headers, tmp_path):
    path = tmp_path / "plain.csv"
    path.write_bytes(b"junk\nid|name\n1|x\n")
    file = await uploaded(client, headers, path)
    configured = await configure(
        client,
        headers,
        file["id"],
        targetTableName="plain",
        columnMappings={"name": "who"},
        readOptions={"skipRows": 1, "delimiter": "|"},
    )
    assert configured["readOptions"] == {"skipRows": 1, "delimiter": "|"}
    assert configured["columnMappings"] == {"name": "who"}
    # without the skipped line the columns change, and the mapping names a column no longer there
    response = await client.put(f"/api/v1/files/{file['id']}/read-options", json={}, headers=headers)
    assert_error_body(response, 400, "PUT the schema with its readOptions")
