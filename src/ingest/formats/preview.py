"""Preview of a file: column types inferred from a bounded sample, the first rows, the exact row count."""

import datetime as dt
import decimal
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ingest.core.errors import InvalidRequestError
from ingest.core.types import ColumnType
from ingest.formats.dialect import ReadOptions
from ingest.formats.readers import SourceFile, type_spec

DEFAULT_PREVIEW_ROWS = 20
MAX_PREVIEW_ROWS = 1000
SAMPLE_ROWS = 1000
SAMPLE_VALUES = 5


@dataclass(frozen=True)
class PreviewColumn:
    name: str
    type: ColumnType
    nullable: bool
    sample_values: list[str]
    precision: int | None = None  # an exact DECIMAL's total digits; None for a double
    scale: int | None = None  # an exact DECIMAL's digits after the point


@dataclass(frozen=True)
class FilePreview:
    columns: list[PreviewColumn]
    rows: list[dict[str, Any]]  # JSON-ready values: int, float, bool, str (exact decimals too) or None
    total_rows: int
    inferred_types: dict[str, ColumnType] = field(default_factory=dict)
    read_options: ReadOptions = field(default_factory=ReadOptions)  # as used: chosen, detected or default
    sheets: list[str] | None = None  # a workbook's sheets, in order


def preview_file(source: SourceFile, rows: int = DEFAULT_PREVIEW_ROWS) -> FilePreview:
    """Columns, the first `rows` rows (1..1000) and the exact count; InvalidRequestError on bad data."""
    if not 1 <= rows <= MAX_PREVIEW_ROWS:
        raise InvalidRequestError(f"previewRows must be between 1 and {MAX_PREVIEW_ROWS}")
    sample = source.head(max(rows, SAMPLE_ROWS))
    total = source.count_rows()
    columns = [_column(sample.get_column(name)) for name in sample.columns]
    return FilePreview(
        columns=columns,
        rows=[{k: _json_value(v) for k, v in row.items()} for row in sample.head(rows).iter_rows(named=True)],
        total_rows=total,
        inferred_types={c.name: c.type for c in columns},
        read_options=source.read_options,
        sheets=source.sheets(),
    )


def _column(series: pl.Series) -> PreviewColumn:
    values: list[str] = []
    for value in series.drop_nulls().head(SAMPLE_ROWS).to_list():
        text = _text(value)
        if text not in values:
            values.append(text)
        if len(values) == SAMPLE_VALUES:
            break
    spec = type_spec(series.dtype)
    return PreviewColumn(
        name=series.name,
        type=spec.type,
        nullable=series.null_count() > 0 or series.len() == 0,
        sample_values=values,
        precision=spec.precision,
        scale=spec.scale,
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return str(_json_value(value))
    return str(value)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact: a float would round (12345678901234.57 has 16 digits)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
