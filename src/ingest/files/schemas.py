"""File Import API wire structs (names match openapi.yaml components)."""

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ingest.core.schemas import CamelStruct, PartitionFieldSchema

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ReadOptions(CamelStruct, forbid_unknown_fields=True, omit_defaults=True):
    """How the file is read; an absent option is detected (csv encoding and delimiter) or takes its default.

    csv: `delimiter` (detected among , ; tab |), `quoteChar` (default `"`, "" for none), `encoding` (detected:
    BOM, UTF-16, UTF-8, else cp1252; or any Python codec name), `header` (default true; false: columns are
    column_1, column_2, ...), `skipRows` (lines before the header), `decimalComma` (`1,50` is 1.50).
    xlsx/xls: `sheet` (name or 0-based index; default the first), `header`, `skipRows` (rows above the
    header). json/jsonl: `recordsPath` (dotted keys to the list of records, such as `data.items`).
    """

    delimiter: (
        Annotated[
            str,
            msgspec.Meta(min_length=1, max_length=1, description="csv: detected among , ; tab | when absent"),
        ]
        | None
    ) = None
    quote_char: (
        Annotated[str, msgspec.Meta(max_length=1, description='csv: default ", "" for no quoting')] | None
    ) = None
    encoding: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=40,
                description="csv: a Python codec name (cp1252, latin-1, utf-16-le, ...); detected when"
                " absent: BOM, UTF-16 zero bytes, UTF-8, else cp1252",
            ),
        ]
        | None
    ) = None
    header: (
        Annotated[
            bool,
            msgspec.Meta(description="csv, xlsx, xls: default true; false names the columns column_1, ..."),
        ]
        | None
    ) = None
    skip_rows: (
        Annotated[
            int, msgspec.Meta(ge=0, le=10_000, description="csv, xlsx, xls: lines or rows above the header")
        ]
        | None
    ) = None
    decimal_comma: (
        Annotated[
            bool,
            msgspec.Meta(description="csv: 1,50 is 1.50 (needs a delimiter other than ','); default false"),
        ]
        | None
    ) = None
    sheet: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=255, description="xlsx, xls: a sheet's name")]
        | Annotated[int, msgspec.Meta(ge=0, description="xlsx, xls: a 0-based sheet index")]
        | None
    ) = None
    records_path: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=512,
                description="json, jsonl: dotted keys to a list of objects (data.items)",
            ),
        ]
        | None
    ) = None


class FileImportJob(CamelStruct):
    """An uploaded file and its import: the seed's upload, schema and list responses."""

    id: str
    tenant_id: str
    file_name: str
    file_size: int
    file_format: str
    storage_path: str
    status: str
    created_at: datetime
    updated_at: datetime
    target_table_name: str | None = None
    target_schema: str | None = None
    column_mappings: dict[str, str] | None = None
    column_types: dict[str, str] | None = None
    mode: str = "append"
    total_rows: int | None = None
    records_imported: int | None = None
    error_message: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    attempts: int = 0  # import runs started (more than one when a worker died mid-import)
    rolled_back_at: datetime | None = None  # a table rollback undid this import
    partition_spec: list[PartitionFieldSchema] | None = None
    evolve_partition_spec: bool = False
    on_error: str = "abort"
    max_error_rows: int | None = None
    max_error_ratio: float | None = None
    records_rejected: int | None = None
    rejects_table: str | None = None  # `<schema>.<table>__rejects` when onError is skip
    read_options: ReadOptions | None = None  # the options chosen (PUT read-options); the rest is detected


class UpdateSchemaRequest(CamelStruct, forbid_unknown_fields=True):
    """Target table and column mapping; `columnTypes` and `mode` are optional extensions of the seed."""

    target_table_name: Identifier
    target_schema: Identifier | None = None
    column_mappings: dict[str, str] | None = None
    # source column -> INTEGER | DECIMAL | DECIMAL(p,s) | STRING | BOOLEAN | DATE | TIMESTAMP
    column_types: dict[str, str] | None = None
    mode: str | None = None  # append (default) | overwrite
    # used when the import creates the table; a different spec on an existing table is 409 unless evolved
    partition_spec: list[PartitionFieldSchema] | None = None
    evolve_partition_spec: bool = False
    # abort (default): the first value that does not convert fails the import; skip: such rows are set
    # aside in `<table>__rejects` while they stay within maxErrorRows and/or maxErrorRatio (one needed)
    on_error: Literal["abort", "skip"] = "abort"
    max_error_rows: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_error_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    # replaces the file's read options (as PUT read-options does) before the columns are checked
    read_options: ReadOptions | None = None


class ImportAccepted(CamelStruct):
    id: str
    file_name: str
    target_table_name: str | None
    target_schema: str | None
    status: str
    created_at: datetime


class ImportStatus(CamelStruct):
    """Progress of an import; `percentage` and `recordsImported` move while IMPORTING."""

    id: str
    file_name: str
    status: str
    records_imported: int | None = None
    total_rows: int | None = None
    percentage: float | None = None
    error_message: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    rolled_back_at: datetime | None = None  # a table rollback undid this import
    records_rejected: int | None = None  # onError skip: rows set aside (also when over budget)
    reject_reasons: list["RejectedValue"] | None = None  # the first of them, by row
    rejects_table: str | None = None


class PreviewColumnSchema(CamelStruct, omit_defaults=True):
    """A file column; an exact DECIMAL has its precision (total digits) and scale (digits after the point)."""

    name: str
    type: str
    nullable: bool
    sample_values: list[str]
    precision: int | None = None  # exact DECIMAL only (absent: a binary double, or not DECIMAL)
    scale: int | None = None


class FilePreviewResponse(CamelStruct):
    file_id: str
    file_name: str
    columns: list[PreviewColumnSchema]
    preview_rows: list[dict[str, Any]]
    total_rows: int
    inferred_types: dict[str, str]
    # the options the preview (and the import) read the file with: chosen, detected or default
    read_options: ReadOptions = msgspec.field(default_factory=ReadOptions)
    sheets: list[str] | None = None  # a workbook's sheets in order (readOptions.sheet picks one)


class RejectedValue(CamelStruct):
    """A row that does not convert: its number in the file (1 = first data row), the column, value, why."""

    row: int
    column: str
    value: str | None
    reason: str


class PlanColumn(CamelStruct):
    name: str
    type: str  # the Iceberg type, as GET /tables/{ns}/{table} shows it


class PlanConversion(CamelStruct):
    """A column whose values are converted to the table's type, or whose table type is widened."""

    name: str
    file_type: str
    table_type: str


class PlanRefusal(CamelStruct):
    name: str
    file_type: str
    table_type: str


class ImportPlan(CamelStruct):
    """What `POST /files/{id}/import` would do (`dryRun=true`); nothing is written."""

    file_id: str
    target_schema: str
    target_table_name: str
    mode: str
    on_error: str
    action: str  # CREATE_TABLE | APPEND | OVERWRITE
    table_exists: bool
    columns: list[PlanColumn]  # the table's columns after the import
    new_columns: list[PlanColumn]
    widened_columns: list[PlanConversion]
    converted_columns: list[PlanConversion]
    refused_changes: list[PlanRefusal]
    replaces_schema: bool  # overwrite of a table whose columns the file does not fit
    row_count: int | None  # data rows in the file (None when it cannot be read)
    records_imported: int  # rows the import would write
    records_rejected: int  # rows that would not convert
    failures: list[RejectedValue]  # the first of them, by row
    would_succeed: bool
    message: str | None = None  # why it would fail
    rejects_table: str | None = None
