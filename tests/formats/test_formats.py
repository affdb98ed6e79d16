import io
import zipfile
from pathlib import Path

import fastavro
import polars as pl
import pytest

from ingest.core.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaError
from ingest.formats import (
    SUPPORTED_FORMATS,
    ColumnType,
    FileFormat,
    SourceFile,
    detect_format,
    preview_file,
)
from ingest.formats.avro import avro_frames, count_avro_rows
from tests.formats.samples import EXACT_AMOUNT_FORMATS, FORMATS, ROWS, write_sample

EXPECTED_TYPES = {
    "id": ColumnType.INTEGER,
    "name": ColumnType.STRING,
    "amount": ColumnType.DECIMAL,
    "active": ColumnType.BOOLEAN,
    "day": ColumnType.DATE,
    "ts": ColumnType.TIMESTAMP,
}


def test_supported_formats_match_the_contract() -> None:
    assert [f.value for f in SUPPORTED_FORMATS] == [*FORMATS, "mbox", "eml", "pst"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_preview_of_each_format(tmp_path: Path, fmt: str) -> None:
    path = write_sample(tmp_path, fmt)
    source = SourceFile(path, detect_format(path, path.name))

    preview = preview_file(source, rows=2)

    assert preview.total_rows == len(ROWS)
    assert preview.inferred_types == EXPECTED_TYPES
    assert [c.name for c in preview.columns] == list(EXPECTED_TYPES)
    by_name = {c.name: c for c in preview.columns}
    assert by_name["name"].nullable is True
    assert by_name["id"].nullable is False
    assert by_name["id"].sample_values == ["1", "2", "3"]
    assert by_name["day"].sample_values[0] == "2024-03-01"
    exact = fmt in EXACT_AMOUNT_FORMATS
    assert (by_name["amount"].precision, by_name["amount"].scale) == ((18, 2) if exact else (None, None))
    assert by_name["amount"].sample_values[:2] == (["150.50", "299.25"] if exact else ["150.5", "299.25"])
    assert preview.rows == [
        {
            "id": 1,
            "name": "Alice",
            "amount": "150.50" if exact else 150.5,
            "active": True,
            "day": "2024-03-01",
            "ts": "2024-03-01T10:30:00",
        },
        {
            "id": 2,
            "name": None,
            "amount": "299.25" if exact else 299.25,
            "active": False,
            "day": "2024-03-02",
            "ts": "2024-03-02T11:00:00",
        },
    ]


@pytest.mark.parametrize("rows", [0, 1001])
def test_preview_rows_bounds(tmp_path: Path, rows: int) -> None:
    path = write_sample(tmp_path, "csv")
    with pytest.raises(InvalidRequestError, match="previewRows"):
        preview_file(SourceFile(path, FileFormat.CSV), rows=rows)


def test_total_rows_is_exact_beyond_the_sample(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    pl.DataFrame({"a": range(25_000), "b": ["x"] * 25_000}).write_csv(path)
    preview = preview_file(SourceFile(path, FileFormat.CSV))
    assert preview.total_rows == 25_000
    assert len(preview.rows) == 20


def test_avro_is_read_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "many.avro"
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "r",
            "fields": [{"name": "n", "type": "long"}, {"name": "s", "type": "string"}],
        }
    )
    with path.open("wb") as f:
        fastavro.writer(f, schema, ({"n": i, "s": "v" * 50} for i in range(20_000)), sync_interval=4_000)
    frames = list(avro_frames(path, chunk_bytes=50_000))
    assert len(frames) > 3
    assert sum(f.height for f in frames) == 20_000 == count_avro_rows(path)
    lf = SourceFile(path, FileFormat.AVRO).scan()
    assert lf.select(pl.col("n").sum()).collect().item() == sum(range(20_000))


# --- detection and hostile input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_fmt", "name"),
    [("parquet", "data.csv"), ("csv", "data.parquet"), ("xlsx", "data.xls"), ("json", "data.avro")],
)
def test_wrong_extension_is_415(tmp_path: Path, content_fmt: str, name: str) -> None:
    real = write_sample(tmp_path, content_fmt)
    renamed = real.rename(tmp_path / name)
    with pytest.raises(UnsupportedMediaError, match="extension says"):
        detect_format(renamed, name)


def test_unknown_extension_is_415(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UnsupportedMediaError, match=r"Unsupported file extension '\.txt'"):
        detect_format(path, "x.txt")


def test_binary_garbage_is_415(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\x00\x01\x02garbage\x00")
    with pytest.raises(UnsupportedMediaError, match="binary"):
        detect_format(path, "x.csv")


def test_zip_that_is_not_a_workbook_is_415(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedMediaError, match="not an Excel workbook"):
        detect_format(path, "x.xlsx")


def test_empty_file_is_400(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"")
    with pytest.raises(InvalidRequestError, match="empty"):
        detect_format(path, "x.csv")


def test_one_byte_file_is_400(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a")
    with pytest.raises(InvalidRequestError, match="too small"):
        detect_format(path, "x.csv")


def test_json_that_is_not_utf8_is_400_at_detection(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b'[{"a": "caf\xe9"}]')
    with pytest.raises(InvalidRequestError, match=r"cp1252 text, not UTF-8"):
        detect_format(path, "x.json")


def test_invalid_utf8_late_in_the_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n" + b"1,ok\n" * 20_000 + b"2,caf\xe9\n")
    assert detect_format(path, "x.csv") is FileFormat.CSV
    source = SourceFile(path, FileFormat.CSV)
    with pytest.raises(pl.exceptions.ComputeError) as info:
        source.scan().collect()
    assert "not valid UTF-8: invalid byte at offset 100009 (line 20002)" in source.explain(info.value)


def test_malformed_csv_row_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(InvalidRequestError, match="line 3 has 3 fields but the header has 2"):
        preview_file(SourceFile(path, FileFormat.CSV))


def test_csv_value_beyond_the_sample_names_row_column_value(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(12_000)) + "oops,y\n")
    source = SourceFile(path, FileFormat.CSV)
    message = "Row 12001, column 'a': value 'oops' is not a valid INTEGER"
    with pytest.raises(InvalidRequestError, match=message):
        source.head(20_000)
    # the same explanation is what the import writer reports
    with pytest.raises(pl.exceptions.ComputeError) as info:
        source.scan().collect()
    assert "Row 12001, column 'a'" in source.explain(info.value)


def test_xlsx_zip_bomb_is_rejected_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (64 * 1024**2))
    assert detect_format(path, "bomb.xlsx") is FileFormat.XLSX
    with pytest.raises(InvalidRequestError, match="zip bomb"):
        preview_file(SourceFile(path, FileFormat.XLSX))


def test_parquet_whose_footer_lies(tmp_path: Path) -> None:
    good = write_sample(tmp_path, "parquet")
    data = bytearray(good.read_bytes())
    # the 4 bytes before the closing magic hold the footer length: make it point past the file start
    data[-8:-4] = (len(data) * 4).to_bytes(4, "little")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    source = SourceFile(bad, detect_format(bad, "bad.parquet"))
    with pytest.raises(InvalidRequestError, match="Parquet file is damaged"):
        preview_file(source)


def test_truncated_parquet_is_400(tmp_path: Path) -> None:
    good = write_sample(tmp_path, "parquet")
    bad = tmp_path / "cut.parquet"
    bad.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(InvalidRequestError, match="truncated"):
        detect_format(bad, "cut.parquet")


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_deeply_nested_json_is_400(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"deep.{fmt}"
    depth = 100_000
    body = '{"a":' * depth + "1" + "}" * depth
    path.write_text(f"[{body}]" if fmt == "json" else body + "\n")
    with pytest.raises(InvalidRequestError, match=r"nested too deeply|Depth"):
        preview_file(SourceFile(path, detect_format(path, path.name)))


def test_oversized_json_array_is_413(tmp_path: Path) -> None:
    path = write_sample(tmp_path, "json")
    with pytest.raises(PayloadTooLargeError, match="JSON Lines"):
        SourceFile(path, FileFormat.JSON, max_json_bytes=10).scan()


def test_jsonl_value_of_wrong_type_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n' * 11_000 + '{"a": "x"}\n')
    source = SourceFile(path, FileFormat.JSONL)
    with pytest.raises(pl.exceptions.ComputeError) as info:
        source.scan().collect()
    assert source.explain(info.value) == "Row 11001, column 'a': value 'x' is not a valid INTEGER"


def test_damaged_avro_is_400(tmp_path: Path) -> None:
    good = write_sample(tmp_path, "avro")
    data = good.read_bytes()
    bad = tmp_path / "bad.avro"
    bad.write_bytes(data[:-20])
    with pytest.raises(InvalidRequestError, match="Avro file"):
        preview_file(SourceFile(bad, detect_format(bad, "bad.avro")))


def test_json_object_lines_with_json_extension_is_json(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text('{"a": 1, "b": "x"}')
    preview = preview_file(SourceFile(path, detect_format(path, "one.json")))
    assert preview.total_rows == 1
    assert preview.rows == [{"a": 1, "b": "x"}]


def test_avro_magic_alone_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "x.avro"
    path.write_bytes(b"Obj\x01" + io.BytesIO(b"\x02").read())
    with pytest.raises(InvalidRequestError):
        preview_file(SourceFile(path, detect_format(path, "x.avro")))


def test_xlsx_declared_rows_reads_the_sheet_dimension(tmp_path):
    import openpyxl

    from ingest.formats.excel import xlsx_declared_rows

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["a", "b"])
    for i in range(12):
        sheet.append([i, f"v{i}"])
    path = tmp_path / "dim.xlsx"
    book.save(path)
    assert xlsx_declared_rows(path) == 12
    (tmp_path / "not.xlsx").write_bytes(b"PK\x03\x04 not really")
    assert xlsx_declared_rows(tmp_path / "not.xlsx") is None


def test_csv_decimal_inference_rules(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    rows = [
        "money,noise,sci,huge,ratio",
        "0.10,0.47000000000000003,1e-5,123456789012345678901234567890123.5,0.12345678",
        "-12345678901234.57,1.5,2.5,1.25,1",
    ]
    path.write_text("\n".join(rows) + "\n")

    preview = preview_file(SourceFile(path, FileFormat.CSV))

    types = {c.name: (c.type, c.precision, c.scale) for c in preview.columns}
    assert types == {
        "money": (ColumnType.DECIMAL, 18, 2),
        "noise": (ColumnType.DECIMAL, None, None),  # a double's rendering, not an amount: stays a double
        "sci": (ColumnType.DECIMAL, None, None),  # exponents are not plain decimals
        "huge": (ColumnType.DECIMAL, 35, 2),  # past 18 digits the precision is what the data needs
        "ratio": (ColumnType.DECIMAL, 18, 8),  # 8 digits after the point is the most inferred
    }
    assert preview.rows[1]["money"] == "-12345678901234.57"
    assert preview.rows[0]["huge"] == "123456789012345678901234567890123.50"
