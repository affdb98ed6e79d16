"""File -> polars LazyFrame (streamed where the format allows), row counts, and clear read errors.

Readers were picked by measurement (docs/performance-facts): polars for csv, jsonl, json and avro,
polars' scan (pyarrow for the footer) for parquet, fastexcel (calamine) for xlsx and xls.
"""

import codecs
import csv
import datetime as dt
import io
import json
import threading
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from ingest.core import decimals
from ingest.core.errors import AppError, InvalidRequestError, PayloadTooLargeError
from ingest.core.types import ColumnType, TypeSpec
from ingest.formats.avro import avro_reader, count_avro_rows
from ingest.formats.detect import FileFormat, detect_encoding
from ingest.formats.dialect import (
    DEFAULT_QUOTE,
    ReadOptions,
    StagedText,
    decode_head,
    head_bytes,
    needs_transcoding,
    not_encoded_as,
    sniff_delimiter,
)
from ingest.formats.excel import count_excel_rows, read_excel, resolve_sheet, sheet_names
from ingest.formats.mail import count_messages, is_mail_format, mail_head, mail_reader

# Types come from a bounded sample: the first rows of the file.
INFER_SCHEMA_ROWS = 10_000
DATE_PROBE_ROWS = 500
_CSV_HEAD_MAX_BYTES = 64 * 1024**2
SAMPLE_ROWS = 1_000
DEFAULT_MAX_JSON_BYTES = 512 * 1024**2
_ROW_INDEX = "__ingest_row"


@dataclass(frozen=True)
class SourceFile:
    """A stored file of a known format, readable from a local path with its read options.

    A CSV in another encoding than UTF-8 is transcoded once, on first read, to a staged UTF-8 copy that
    `close` (or leaving the `with` block) removes.
    """

    path: Path
    format: FileFormat
    # A JSON array is parsed whole (~7x its size in RAM): bigger ones must come as JSON Lines.
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    options: ReadOptions = field(default_factory=ReadOptions)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def __enter__(self) -> "SourceFile":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            staged: StagedText | None = self.__dict__.pop("_staged", None)
        if staged is not None:
            staged.close()

    @cached_property
    def read_options(self) -> ReadOptions:
        """The options the reads use: the chosen ones, the others detected or defaulted (400 when bad).

        csv: the encoding and the delimiter are detected from the first 64 KiB when not chosen; xlsx/xls:
        the sheet is named; json/jsonl: the records path as chosen (None: the top level).
        """
        options = self.options.check(self.format)
        if self.format is FileFormat.CSV:
            head = head_bytes(self.path)
            complete = len(head) >= self.path.stat().st_size
            encoding = options.encoding or detect_encoding(head, complete=complete)
            quote = DEFAULT_QUOTE if options.quote_char is None else options.quote_char
            delimiter = options.delimiter or sniff_delimiter(
                decode_head(head, encoding), quote, options.rows_to_skip
            )
            return replace(
                options,
                encoding=encoding,
                quote_char=quote,
                delimiter=delimiter,
                header=options.has_header,
                skip_rows=options.rows_to_skip,
                decimal_comma=bool(options.decimal_comma),
            )
        if self.format in (FileFormat.XLSX, FileFormat.XLS):
            return replace(
                options,
                sheet=resolve_sheet(self.path, self.format, options.sheet),
                header=options.has_header,
                skip_rows=options.rows_to_skip,
            )
        return options

    def sheets(self) -> list[str] | None:
        """The names of a workbook's sheets in order (None for other formats)."""
        if self.format not in (FileFormat.XLSX, FileFormat.XLS):
            return None
        return sheet_names(self.path, self.format)

    @property
    def _text_path(self) -> Path:
        """The CSV as UTF-8: the file itself, or its staged transcoded copy."""
        encoding = self.read_options.encoding
        assert encoding is not None
        if not needs_transcoding(encoding):
            return self.path
        with self._lock:
            staged: StagedText | None = self.__dict__.get("_staged")
            if staged is None:
                staged = StagedText(self.path, encoding)
                self.__dict__["_staged"] = staged
            return staged.path

    def _csv_args(self) -> dict[str, Any]:
        """polars' CSV reader arguments for the dialect (the text is UTF-8 by then)."""
        o = self.read_options
        args: dict[str, Any] = {
            "separator": o.delimiter,
            "quote_char": o.quote_char or None,
            "has_header": o.has_header,
            "skip_lines": o.rows_to_skip,
            "encoding": "utf8",
        }
        if not o.has_header:
            args["with_column_names"] = generated_names
        if o.decimal_comma:
            args["decimal_comma"] = True
        return args

    def scan(self, raw: Collection[str] = ()) -> pl.LazyFrame:
        """A fresh lazy frame over the whole file; errors surface when it is collected or sunk.

        Numbers of columns named in `raw` come as the file has them, not as the exact decimals inferred
        from the sample (text in a csv, floats in a workbook): a column type override converts them.
        """
        fmt = self.format
        if fmt is FileFormat.CSV:
            # Types (dates and timestamps included) are inferred once from the sample and given to the
            # scan: letting the streaming reader parse dates itself is 1.7x slower (0.73 s against 1.23 s
            # for 1M rows), for the same result.
            schema = self._csv_schema
            args = self._csv_args()
            if schema is None:  # the sample itself does not parse: the scan reports where
                return pl.scan_csv(
                    self._text_path, infer_schema_length=INFER_SCHEMA_ROWS, try_parse_dates=True, **args
                )
            # exact decimals are read as text and converted in the plan: polars' CSV decimal parser
            # truncates extra digits silently
            text_schema = {
                n: pl.String() if isinstance(t, pl.Decimal) or (n in raw and t.is_float()) else t
                for n, t in schema.items()
            }
            exact = pl.Schema({n: t for n, t in schema.items() if n not in raw})
            comma = bool(self.read_options.decimal_comma)
            lf = pl.scan_csv(self._text_path, schema=text_schema, **args)
            if comma:  # numbers kept as text for an override read with a point, as the override expects
                kept = [
                    n for n, t in schema.items() if n in raw and (t.is_float() or isinstance(t, pl.Decimal))
                ]
                lf = lf.with_columns(_decimal_text(pl.col(n), comma) for n in kept) if kept else lf
            return with_decimals(lf, exact, decimal_comma=comma)
        if fmt is FileFormat.JSONL:
            lf = pl.scan_ndjson(self.path, infer_schema_length=INFER_SCHEMA_ROWS)
            sample = self._jsonl_sample(lf.collect_schema())
            if (path := self.read_options.records_path) is not None:
                lf, sample = records_at(lf, path), records_at(sample.lazy(), path).collect()
            return _with_temporal_casts(lf, sample)
        if fmt is FileFormat.PARQUET:
            self._check_parquet()
            return pl.scan_parquet(self.path)
        if fmt is FileFormat.AVRO:
            return pl.scan_arrow_c_stream(avro_reader(self.path))
        if is_mail_format(fmt):
            return pl.scan_arrow_c_stream(mail_reader(self.path, fmt))
        if fmt is FileFormat.JSON:
            df = self._read_json()
            if (path := self.read_options.records_path) is not None:
                df = records_at(df.lazy(), path).collect()
            return _with_temporal_casts(df.lazy(), df.head(SAMPLE_ROWS))
        return read_excel(self.path, fmt, keep=raw, options=self.read_options).lazy()

    def scan_text(self) -> tuple[pl.LazyFrame, dict[str, pl.Expr]] | None:
        """CSV and JSON Lines with every scalar column as text, and how `scan` types each (lenient).

        The expressions give null where a value does not parse (instead of failing the read), so rows
        that do not convert can be set aside. None for formats whose values the file types itself, and
        for a CSV whose sample does not parse (`scan` then reports where).
        """
        if self.format is FileFormat.CSV:
            schema = self._csv_schema
            if schema is None:
                return None
            text = pl.scan_csv(self._text_path, schema={n: pl.String() for n in schema}, **self._csv_args())
        elif self.format is FileFormat.JSONL and self.read_options.records_path is None:
            schema = self.scan().collect_schema()
            text = pl.scan_ndjson(
                self.path,
                schema={
                    n: pl.String() if t.is_numeric() or t == pl.Boolean or t.is_temporal() else t
                    for n, t in schema.items()
                },
            )
        else:
            return None
        parsed = {}
        for name, dtype in schema.items():
            comma = bool(self.read_options.decimal_comma)
            expr = _csv_parse(pl.col(name), dtype, comma) if dtype != pl.String else None
            if expr is not None:
                parsed[name] = expr
        return text, parsed

    @cached_property
    def _csv_schema(self) -> pl.Schema | None:
        """Column types from the first INFER_SCHEMA_ROWS rows, dates and timestamps included.

        polars' own date inference over 10k rows costs ~0.4 s; here the sample is typed without it,
        the first DATE_PROBE_ROWS rows tell which text columns hold dates, and the whole sample must
        then parse with those types (else the columns stay text). ~60 ms. None when the sample itself
        does not parse (the caller falls back to polars' inference, which reports where it fails).
        """
        args = self._csv_args()
        try:
            options = self.read_options
            assert options.encoding is not None
            head = io.BytesIO(
                _csv_head(self.path, INFER_SCHEMA_ROWS + options.rows_to_skip, options.encoding)
            )
            base = pl.read_csv(head, infer_schema_length=INFER_SCHEMA_ROWS, **args).schema
            base = _exact_decimals(head, base, args)
            head.seek(0)
            probe = pl.read_csv(
                head,
                n_rows=DATE_PROBE_ROWS,
                infer_schema_length=DATE_PROBE_ROWS,
                try_parse_dates=True,
                **args,
            ).schema
        except AppError:
            raise
        except Exception:
            return None
        temporal = {
            name: dtype
            for name, dtype in probe.items()
            if base.get(name) == pl.String and (dtype == pl.Date or isinstance(dtype, pl.Datetime))
        }
        if not temporal:
            return base
        candidate = pl.Schema({name: temporal.get(name, dtype) for name, dtype in base.items()})
        try:
            head.seek(0)
            text = {n: pl.String() if isinstance(t, pl.Decimal) else t for n, t in candidate.items()}
            pl.read_csv(head, schema=text, **args)
        except Exception:
            return base
        return candidate

    def schema(self) -> pl.Schema:
        """Column names and types as the scan yields them, from the sample (a CSV is not transcoded)."""
        if self.format is FileFormat.CSV and (schema := self._csv_schema) is not None:
            return schema
        return self.scan().collect_schema()

    def head(self, n: int) -> pl.DataFrame:
        """The first `n` rows, read without scanning the whole file where the format allows."""
        try:
            if self.format in (FileFormat.XLSX, FileFormat.XLS):
                return read_excel(self.path, self.format, n_rows=n, options=self.read_options)
            if is_mail_format(self.format):
                return mail_head(self.path, self.format, n)
            return self.scan().head(n).collect()
        except AppError:
            raise
        except Exception as e:
            raise InvalidRequestError(self.explain(e)) from None

    def count_rows(self) -> int:
        """Exact data rows, by the cheapest pass the format has."""
        try:
            if self.format is FileFormat.PARQUET:
                self._check_parquet()
                return int(pq.ParquetFile(self.path).metadata.num_rows)
            if self.format is FileFormat.AVRO:
                return count_avro_rows(self.path)
            if self.format in (FileFormat.XLSX, FileFormat.XLS):
                return count_excel_rows(self.path, self.format, self.read_options)
            if is_mail_format(self.format):
                return count_messages(self.path, self.format)
            return int(self.scan().select(pl.len()).collect().item())
        except AppError:
            raise
        except Exception as e:
            raise InvalidRequestError(self.explain(e)) from None

    def explain(self, error: BaseException) -> str:
        """A message naming the row, column and value behind a read error when they can be found."""
        if isinstance(error, AppError):
            return error.message
        detail = None
        try:
            if self.format is FileFormat.CSV:
                detail = self._explain_csv(self.scan().collect_schema())
            elif self.format is FileFormat.JSONL and self.read_options.records_path is None:
                detail = _explain_jsonl(self.path, self.scan().collect_schema())
        except Exception:  # the diagnosis is best effort; the original error is reported below
            detail = None
        if detail:
            return detail
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"The {self.format.value} file cannot be read: {first_line}"

    def _explain_csv(self, schema: pl.Schema) -> str | None:
        options = self.read_options
        path = self._text_path
        if path == self.path:  # a transcoded copy is valid UTF-8: the transcoding reports bad bytes
            bad_utf8 = _first_invalid_utf8(path)
            if bad_utf8 is not None:
                offset, line = bad_utf8
                return (
                    f"The csv file is not valid UTF-8: invalid byte at offset {offset} (line {line});"
                    " set readOptions.encoding if it is in another encoding"
                )
        ragged = _first_ragged_row(path, options)
        if ragged is not None:
            line, fields, expected = ragged
            return f"Malformed CSV: line {line} has {fields} fields but the header has {expected}"
        raw = pl.scan_csv(path, infer_schema=False, **self._csv_args()).with_row_index(_ROW_INDEX, offset=1)
        checks = {}
        for name, dtype in schema.items():
            parsed = _csv_parse(pl.col(name), dtype, bool(options.decimal_comma))
            if parsed is not None:
                checks[name] = parsed.is_null() & pl.col(name).str.strip_chars().str.len_chars().gt(0)
        if not checks:
            return None
        bad = raw.filter(pl.any_horizontal(list(checks.values()))).head(1).collect()
        if bad.height == 0:
            return None
        row = bad.row(0, named=True)
        for name, check in checks.items():
            if bad.select(check).item():
                return _bad_value_message(int(row[_ROW_INDEX]), name, row[name], schema[name])
        return None

    def _jsonl_sample(self, schema: pl.Schema) -> pl.DataFrame:
        # polars' ndjson scan parses whole chunks even under head(): read the first lines only.
        lines = []
        with self.path.open("rb") as f:
            for line in f:
                lines.append(line)
                if len(lines) == SAMPLE_ROWS:
                    break
        return pl.read_ndjson(io.BytesIO(b"".join(lines)), schema=schema)

    def _check_parquet(self) -> None:
        try:
            metadata = pq.ParquetFile(self.path).metadata
        except Exception as e:
            raise InvalidRequestError(f"The Parquet file is damaged: {e}") from None
        declared = sum(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
        if declared != metadata.num_rows:
            raise InvalidRequestError(
                f"The Parquet file is damaged: its footer says {metadata.num_rows} rows"
                f" but its row groups hold {declared}"
            )

    def _read_json(self) -> pl.DataFrame:
        size = self.path.stat().st_size
        if size > self.max_json_bytes:
            raise PayloadTooLargeError(
                f"JSON files over {self.max_json_bytes // 1024**2} MiB are not supported;"
                " upload JSON Lines instead"
            )
        try:
            return pl.read_json(self.path, infer_schema_length=INFER_SCHEMA_ROWS)
        except Exception as e:
            raise InvalidRequestError(self.explain(e)) from None


def _exact_decimals(head: io.BytesIO, schema: pl.Schema, args: dict[str, Any]) -> pl.Schema:
    """Float columns of the sample whose text is all plain decimals become Decimal(p, s)."""
    floats = [name for name, dtype in schema.items() if dtype.is_float()]
    if not floats:
        return schema
    head.seek(0)
    text = pl.read_csv(head, infer_schema=False, **args).select(floats)
    if args.get("decimal_comma"):
        text = text.select(pl.all().str.replace(",", ".", literal=True))
    found: dict[str, pl.DataType] = {}
    for name in floats:
        spec = decimals.infer_from_text(text.get_column(name))
        if spec is not None:
            found[name] = decimals.polars_dtype(spec)
    return pl.Schema({name: found.get(name, dtype) for name, dtype in schema.items()}) if found else schema


def with_decimals(lf: pl.LazyFrame, schema: pl.Schema, *, decimal_comma: bool = False) -> pl.LazyFrame:
    """Text columns that `schema` says are Decimal(p, s), converted exactly (a misfit fails the query)."""
    casts = {
        name: decimals.text_to_decimal(
            _decimal_text(pl.col(name), decimal_comma), dtype.precision or 38, dtype.scale or 0, strict=True
        )
        for name, dtype in schema.items()
        if isinstance(dtype, pl.Decimal)
    }
    return lf.with_columns(**casts) if casts else lf


def _with_temporal_casts(lf: pl.LazyFrame, sample: pl.DataFrame) -> pl.LazyFrame:
    """JSON has no date type: text columns whose sampled values are all ISO dates or timestamps become one."""
    casts: dict[str, pl.Expr] = {}
    for name, dtype in sample.schema.items():
        values = sample.get_column(name).drop_nulls()
        if dtype != pl.String or values.len() == 0:
            continue
        for target, fmt in ((pl.Date(), "%Y-%m-%d"), (pl.Datetime("us"), None)):
            if _parses(values, target, fmt):
                casts[name] = _parse_text(pl.col(name), target, fmt, strict=True)
                break
    return lf.with_columns(**casts) if casts else lf


def _parse_text(column: pl.Expr, target: pl.DataType, fmt: str | None, *, strict: bool) -> pl.Expr:
    if target == pl.Date:
        return column.str.to_date(fmt, strict=strict)
    return column.str.to_datetime(fmt, time_unit="us", strict=strict)


def _parses(values: pl.Series, target: pl.DataType, fmt: str | None) -> bool:
    if not values.str.contains(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    if target == pl.Date and not values.str.len_chars().eq(10).all():
        return False
    parsed = values.to_frame().select(_parse_text(pl.col(values.name), target, fmt, strict=False))
    return bool(parsed.null_count().item() == 0)


def _decimal_text(text: pl.Expr, decimal_comma: bool) -> pl.Expr:
    return text.str.replace(",", ".", literal=True) if decimal_comma else text


def generated_names(names: list[str]) -> list[str]:
    """Column names of a file without a header row: column_1, column_2, ..."""
    return [f"column_{i}" for i in range(1, len(names) + 1)]


def records_at(frame: pl.LazyFrame, path: str) -> pl.LazyFrame:
    """The objects of the list at `path` (dotted keys) as rows; 400 when it is not a list of objects."""
    keys = path.split(".")
    schema = frame.collect_schema()
    expr: pl.Expr | None = None
    fields: dict[str, Any] = dict(schema.items())  # polars' struct fields type their dtype loosely
    dtype: Any = pl.Null()
    for depth, key in enumerate(keys):
        where = "the top level" if depth == 0 else "'" + ".".join(keys[:depth]) + "'"
        if key not in fields:
            known = ", ".join(f"'{k}'" for k in list(fields)[:10]) or "none"
            raise InvalidRequestError(
                f"readOptions.recordsPath '{path}' does not resolve:"
                f" {where} has no key '{key}' (keys: {known})"
            )
        dtype = fields[key]
        expr = pl.col(key) if expr is None else expr.struct.field(key)
        if depth < len(keys) - 1:
            if not isinstance(dtype, pl.Struct):
                raise InvalidRequestError(
                    f"readOptions.recordsPath '{path}' does not resolve:"
                    f" '{'.'.join(keys[: depth + 1])}' is not an object"
                )
            fields = {f.name: f.dtype for f in dtype.fields}
    if not (isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)):
        raise InvalidRequestError(
            f"readOptions.recordsPath '{path}' does not resolve to a list of objects"
            f" (it holds {_json_kind(dtype)})"
        )
    assert expr is not None
    records = "__ingest_records"
    return (
        frame.select(expr.alias(records))
        .explode(records)
        .filter(pl.col(records).is_not_null())
        .unnest(records)
    )


def _json_kind(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Struct):
        return "an object"
    if isinstance(dtype, pl.List):
        return "a list of values"
    return "a single value"


def _csv_parse(column: pl.Expr, dtype: pl.DataType, decimal_comma: bool = False) -> pl.Expr | None:
    """How the CSV reader would have parsed a text column into `dtype` (nulls where it cannot)."""
    text = column.str.strip_chars()
    if isinstance(dtype, pl.Decimal) or dtype.is_float():
        text = _decimal_text(text, decimal_comma)
    if isinstance(dtype, pl.Decimal):
        return decimals.text_to_decimal(text, dtype.precision or 38, dtype.scale or 0, strict=False)
    if dtype.is_integer() or dtype.is_float() or dtype.is_decimal():
        return text.cast(dtype, strict=False)
    if dtype == pl.Boolean:
        return text.str.to_lowercase().replace_strict({"true": True, "false": False}, default=None)
    if dtype == pl.Date:
        return text.str.to_date(strict=False)
    if isinstance(dtype, pl.Datetime):
        return text.str.to_datetime(strict=False, time_unit=dtype.time_unit)
    return None


def _csv_head(path: Path, rows: int, encoding: str = "utf-8") -> bytes:
    """The header and the first `rows` lines (fewer at EOF or past 64 MiB) as UTF-8, cut at a line end.

    A file in another encoding is decoded as it is read: the sample needs no transcoded copy of the file.
    """
    head = bytearray()
    decoder = codecs.getincrementaldecoder(encoding)() if needs_transcoding(encoding) else None
    offset = 0
    with path.open("rb") as f:
        while head.count(b"\n") <= rows and len(head) < _CSV_HEAD_MAX_BYTES:
            chunk = f.read(1024 * 1024)
            if decoder is not None:
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as e:
                    raise not_encoded_as(encoding, offset + e.start) from None
                head += (text.removeprefix("\ufeff") if offset == 0 else text).encode("utf-8")
                offset += len(chunk)
            else:
                head += chunk
            if not chunk:
                return bytes(head)
    end = -1
    for _ in range(rows + 1):
        found = head.find(b"\n", end + 1)
        if found < 0:
            break
        end = found
    return bytes(head[: end + 1]) if end >= 0 else bytes(head)


def _bad_value_message(row: int, column: str, value: Any, dtype: pl.DataType) -> str:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    if isinstance(dtype, pl.Decimal):
        why = decimals.why_not_decimal(value, dtype.precision or 38, dtype.scale or 0)
        hint = decimals.OVERRIDE_HINT if "digits" in why else ""
        return f"Row {row}, column '{column}': value {shown} {why}{hint}"
    return f"Row {row}, column '{column}': value {shown} is not a valid {type_label(dtype)}"


def type_spec(dtype: pl.DataType) -> TypeSpec:
    """The API's type of a polars type: an exact DECIMAL carries its precision and scale."""
    if isinstance(dtype, pl.Decimal):
        return TypeSpec(ColumnType.DECIMAL, dtype.precision or 38, dtype.scale or 0)
    return TypeSpec(ColumnType(type_label(dtype)))


def type_label(dtype: pl.DataType) -> str:
    if dtype.is_nested():  # lists and structs (mail's addresses and attachments)
        return "JSON"
    if dtype.is_integer():
        return "INTEGER"
    if dtype.is_float() or dtype.is_decimal():
        return "DECIMAL"
    if dtype == pl.Boolean:
        return "BOOLEAN"
    if dtype == pl.Date:
        return "DATE"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP"
    return "STRING"


def _first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                return offset + e.start, lines + chunk[: e.start].count(b"\n")
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return None


def _first_ragged_row(path: Path, options: ReadOptions) -> tuple[int, int, int] | None:
    skip = options.rows_to_skip
    with path.open(newline="", encoding="utf-8-sig") as f:
        for _ in range(skip):
            f.readline()
        quote = options.quote_char or None
        reader = csv.reader(
            f,
            delimiter=options.delimiter or ",",
            quotechar=quote,
            quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
        )
        header = next(reader, None)
        if header is None:
            return None
        for row in reader:
            if len(row) > len(header):
                return skip + reader.line_num, len(row), len(header)
    return None


def _json_matches(value: Any, dtype: pl.DataType) -> bool:
    if value is None:
        return True
    if dtype.is_integer():
        return isinstance(value, int) and not isinstance(value, bool)
    if dtype.is_float():
        return isinstance(value, int | float) and not isinstance(value, bool)
    if dtype == pl.Boolean:
        return isinstance(value, bool)
    if dtype == pl.String:
        return isinstance(value, str)
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        parse = dt.date.fromisoformat if dtype == pl.Date else dt.datetime.fromisoformat
        try:
            parse(value)
        except (TypeError, ValueError):
            return False
    return True


def _explain_jsonl(path: Path, schema: pl.Schema) -> str | None:
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                return f"Malformed JSON Lines: line {line_no} is not valid JSON ({e.msg})"
            if not isinstance(record, dict):
                return f"Malformed JSON Lines: line {line_no} is not a JSON object"
            for name, dtype in schema.items():
                if not _json_matches(record.get(name), dtype):
                    return _bad_value_message(line_no, name, record.get(name), dtype)
    return None
