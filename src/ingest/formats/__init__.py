"""File readers: detect a file's format, preview it, and scan it as a polars LazyFrame (Arrow underneath)."""

from ingest.core.types import ColumnType
from ingest.formats.detect import SUPPORTED_FORMATS, FileFormat, detect_format, format_from_name
from ingest.formats.dialect import ReadOptions
from ingest.formats.excel import check_xlsx_archive
from ingest.formats.preview import (
    DEFAULT_PREVIEW_ROWS,
    MAX_PREVIEW_ROWS,
    FilePreview,
    PreviewColumn,
    preview_file,
)
from ingest.formats.readers import SourceFile

__all__ = [
    "DEFAULT_PREVIEW_ROWS",
    "MAX_PREVIEW_ROWS",
    "SUPPORTED_FORMATS",
    "ColumnType",
    "FileFormat",
    "FilePreview",
    "PreviewColumn",
    "ReadOptions",
    "SourceFile",
    "check_xlsx_archive",
    "detect_format",
    "format_from_name",
    "preview_file",
]
