"""The column types the API speaks, shared by discovery, file previews and schema overrides."""

from enum import StrEnum


class ColumnType(StrEnum):
    INTEGER = "INTEGER"
    DECIMAL = "DECIMAL"
    STRING = "STRING"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"
    TIMESTAMP = "TIMESTAMP"
    JSON = "JSON"  # connector streams only: nested objects, arrays and unions


# what a file column can be inferred as, or overridden to
FILE_COLUMN_TYPES = frozenset(ColumnType) - {ColumnType.JSON}
