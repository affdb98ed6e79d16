"""The column types the API speaks, shared by discovery, file previews and schema overrides.

The wire type is always one of the `ColumnType` names. An exact decimal carries its precision and scale
beside it (`precision`, `scale` fields next to `type`; `DECIMAL(p,s)` where a single string is needed,
as in `columnTypes`). A DECIMAL without them is a binary double: Airbyte `number` fields with no
declared scale, floats in files that do not read as exact decimals.
"""

import re
from enum import StrEnum
from typing import NamedTuple


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

# Iceberg's (and Arrow decimal128's) widest decimal
MAX_DECIMAL_PRECISION = 38

_TYPE_TEXT = re.compile(r"^\s*([A-Za-z]+)\s*(?:\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\))?\s*$")


class TypeSpec(NamedTuple):
    """A column type; an exact DECIMAL has its precision (total digits) and scale (digits after the point)."""

    type: ColumnType
    precision: int | None = None
    scale: int | None = None

    @property
    def is_exact_decimal(self) -> bool:
        return self.type is ColumnType.DECIMAL and self.precision is not None

    def __str__(self) -> str:
        if self.precision is None:
            return self.type.value
        return f"{self.type.value}({self.precision},{self.scale})"

    @classmethod
    def decimal(cls, precision: int, scale: int) -> "TypeSpec":
        """DECIMAL(precision, scale); ValueError when Iceberg cannot hold it."""
        check_decimal(precision, scale)
        return cls(ColumnType.DECIMAL, precision, scale)

    @classmethod
    def parse(cls, text: str) -> "TypeSpec":
        """`INTEGER`, `DECIMAL`, `DECIMAL(p,s)`, ... (case-insensitive); ValueError naming what is wrong."""
        found = _TYPE_TEXT.match(text)
        if found is None:
            raise ValueError(f"'{text[:40]}' is not a column type")
        name, precision, scale = found.groups()
        try:
            kind = ColumnType(name.upper())
        except ValueError:
            raise ValueError(f"'{name[:40]}' is not a column type") from None
        if precision is None:
            return cls(kind)
        if kind is not ColumnType.DECIMAL:
            raise ValueError(f"only DECIMAL takes a precision and scale, not {kind.value}")
        return cls.decimal(int(precision), int(scale))


def check_decimal(precision: int, scale: int) -> None:
    """ValueError unless 1 <= precision <= 38 and 0 <= scale <= precision."""
    if not 1 <= precision <= MAX_DECIMAL_PRECISION:
        raise ValueError(f"DECIMAL precision must be between 1 and {MAX_DECIMAL_PRECISION}, not {precision}")
    if not 0 <= scale <= precision:
        raise ValueError(f"DECIMAL scale must be between 0 and the precision ({precision}), not {scale}")
