"""File Import API wire structs (names match openapi.yaml components)."""

from datetime import datetime
from typing import Annotated, Any

import msgspec

from ingest.core.schemas import CamelStruct, PartitionFieldSchema

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


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
