"""Read options at the reader: encoding detection, delimiter sniffing, streamed transcoding, quoting."""

import codecs
from pathlib import Path

import polars as pl
import pytest

from ingest.core.errors import InvalidRequestError, UnsupportedMediaError
from ingest.formats import FileFormat, ReadOptions, SourceFile, detect_format, dialect
from ingest.formats.detect import detect_encoding
from ingest.formats.dialect import sniff_delimiter


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a,b\n1,2\n", "utf-8"),
        (codecs.BOM_UTF8 + "a,b\n1,é\n".encode(), "utf-8-sig"),
        ("a,b\n1,€\n".encode("cp1252"), "cp1252"),
        (b"a,b\n1,\x81\n", "iso8859-1"),  # 0x81 is not a cp1252 character
        (
            "a;b\n1;Ä\n".encode("utf-16"),
            "utf-16-le" if codecs.BOM_UTF16 == codecs.BOM_UTF16_LE else "utf-16-be",
        ),
        ("a;b\n1;Ä\n".encode("utf-16-le"), "utf-16-le"),  # no BOM: told by its zero bytes
        ("a;b\n1;Ä\n".encode("utf-16-be"), "utf-16-be"),
    ],
)
def test_encoding_detection(data: bytes, expected: str) -> None:
    assert detect_encoding(data, complete=True) == expected


def test_binary_is_still_refused() -> None:
    with pytest.raises(UnsupportedMediaError, match="binary"):
        detect_encoding(b"\x00\x01\x02garbage\x00\x00\x07", complete=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1;2,5;3\n4;5,5;6\n", ";"),  # commas inside values do not split every line alike
        ("a\tb\n1\t2\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ('name,note\n"Smith; John","a|b"\n', ","),  # quoted delimiters do not count
        ("single\n1\n2\n", ","),  # one column
    ],
)
def test_delimiter_sniffing(text: str, expected: str) -> None:
    assert sniff_delimiter(text, '"', 0) == expected


def test_utf16_transcoding_is_chunked_and_exact_across_chunk_edges(tmp_path: Path, monkeypatch) -> None:
    # chunks of 7 bytes cut UTF-16 code units and surrogate pairs (the emoji) in half
    monkeypatch.setattr(dialect, "_TRANSCODE_CHUNK", 7)
    rows = [(i, f"Zoë {i} 😀 €") for i in range(300)]
    text = "id\tname\n" + "".join(f"{i}\t{name}\n" for i, name in rows)
    path = tmp_path / "u16.csv"
    path.write_bytes(text.encode("utf-16"))
    source = SourceFile(path, FileFormat.CSV)
    with source:
        frame = source.scan().collect()
        staged = source._text_path
        assert staged != path and staged.read_text(encoding="utf-8") == text  # BOM dropped
    assert not staged.exists()  # removed with the source
    assert frame.rows() == rows


def test_a_bad_byte_for_the_chosen_encoding_names_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n" + b"1,x\n" * 10 + b"2,\x81\n")
    source = SourceFile(path, FileFormat.CSV, options=ReadOptions(encoding="cp1252"))
    with source, pytest.raises(InvalidRequestError, match="not valid cp1252 text: invalid byte at offset 46"):
        source.scan().collect()


def test_no_quoting_keeps_quotes_as_text(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('id,said\n1,"hi\n2,5" tall\n')
    with SourceFile(path, FileFormat.CSV, options=ReadOptions(quote_char="")) as source:
        assert source.scan().collect().get_column("said").to_list() == ['"hi', '5" tall']
    with SourceFile(path, FileFormat.CSV, options=ReadOptions(quote_char="'")) as source:
        assert source.read_options.quote_char == "'"


def test_jsonl_records_path_takes_each_lines_list(tmp_path: Path) -> None:
    path = tmp_path / "pages.jsonl"
    path.write_text('{"page": 1, "items": [{"a": 1}, {"a": 2}]}\n{"page": 2, "items": [{"a": 3}]}\n')
    with SourceFile(path, FileFormat.JSONL, options=ReadOptions(records_path="items")) as source:
        assert source.scan().collect().get_column("a").to_list() == [1, 2, 3]
        assert source.count_rows() == 3


def test_upload_detection_accepts_any_csv_encoding_but_json_only_as_utf8(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_bytes("a;b\n1;Ä\n".encode("utf-16"))
    assert detect_format(csv, "x.csv") is FileFormat.CSV
    json = tmp_path / "x.json"
    json.write_bytes('[{"a": "Ä"}]'.encode("utf-16"))
    with pytest.raises(InvalidRequestError, match="not UTF-8"):
        detect_format(json, "x.json")


def test_decimal_comma_numbers_kept_for_an_override_read_with_a_point(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("id;v\n1;1,5\n2;2,25\n")
    with SourceFile(path, FileFormat.CSV, options=ReadOptions(decimal_comma=True)) as source:
        assert source.scan().collect_schema()["v"] == pl.Decimal(18, 2)
        # a columnTypes override converts this text (DECIMAL(p,s) exactly, DECIMAL as a double)
        assert source.scan(raw=["v"]).collect().get_column("v").to_list() == ["1.5", "2.25"]
