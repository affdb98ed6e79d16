"""The same small table written in each supported format, for the reader and writer tests."""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import fastavro
import openpyxl
import polars as pl
import xlwt

COLUMNS = ["id", "name", "amount", "active", "day", "ts"]
ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "Alice",
        "amount": 150.5,
        "active": True,
        "day": dt.date(2024, 3, 1),
        "ts": dt.datetime(2024, 3, 1, 10, 30),
    },
    {
        "id": 2,
        "name": None,
        "amount": 299.25,
        "active": False,
        "day": dt.date(2024, 3, 2),
        "ts": dt.datetime(2024, 3, 2, 11, 0),
    },
    {
        "id": 3,
        "name": "Carol",
        "amount": 12.75,
        "active": True,
        "day": dt.date(2024, 3, 3),
        "ts": dt.datetime(2024, 3, 3, 23, 59, 59),
    },
]
FORMATS = ["csv", "xlsx", "xls", "parquet", "json", "jsonl", "avro"]


def frame() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema_overrides={"ts": pl.Datetime("us")})


# csv text and spreadsheet cells with few decimals are exact decimals; binary doubles stay doubles
EXACT_AMOUNT_FORMATS = frozenset({"csv", "xlsx", "xls"})


def stored_frame(fmt: str) -> pl.DataFrame:
    """`frame()` as an import of `fmt` stores it: `amount` DECIMAL(18,2) where the file's text is exact."""
    df = frame()
    if fmt in EXACT_AMOUNT_FORMATS:
        df = df.with_columns(pl.col("amount").cast(pl.String).cast(pl.Decimal(18, 2)))
    return df


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}


def write_sample(directory: Path, fmt: str, name: str = "sample") -> Path:
    path = directory / f"{name}.{fmt}"
    df = frame()
    if fmt == "csv":
        df.write_csv(path)
    elif fmt == "parquet":
        df.write_parquet(path)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(_jsonable(r)) + "\n" for r in ROWS))
    elif fmt == "json":
        path.write_text(json.dumps([_jsonable(r) for r in ROWS]))
    elif fmt == "avro":
        schema = {
            "type": "record",
            "name": "sample",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "name", "type": ["null", "string"]},
                {"name": "amount", "type": "double"},
                {"name": "active", "type": "boolean"},
                {"name": "day", "type": {"type": "int", "logicalType": "date"}},
                {"name": "ts", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
            ],
        }
        with path.open("wb") as f:
            fastavro.writer(f, fastavro.parse_schema(schema), ROWS)
    elif fmt == "xlsx":
        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        ws.append(COLUMNS)
        for r in ROWS:
            ws.append([r[c] for c in COLUMNS])
        wb.save(path)
    elif fmt == "xls":
        book = xlwt.Workbook()
        sheet = book.add_sheet("data")
        date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
        ts_style = xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS")
        for c, name_ in enumerate(COLUMNS):
            sheet.write(0, c, name_)
        for r_i, r in enumerate(ROWS, start=1):
            for c, col in enumerate(COLUMNS):
                value = r[col]
                if value is None:
                    continue
                style = ts_style if col == "ts" else date_style if col == "day" else xlwt.Style.default_style
                sheet.write(r_i, c, value, style)
        book.save(str(path))
    else:
        raise ValueError(fmt)
    return path
