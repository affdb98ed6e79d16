"""Airbyte stream JSON schema -> ColumnType and Arrow types (the sync writer's explicit schema)."""

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from ingest.engines.base import ColumnType, DiscoveredColumn, DiscoveredStream

_INTEGER_AIRBYTE_TYPES = frozenset({"integer", "big_integer"})
_TIMESTAMP_AIRBYTE_TYPES = frozenset({"timestamp_with_timezone", "timestamp_without_timezone"})

# DECIMAL -> float64: Airbyte's `number` carries no precision or scale, and JSON numbers are doubles on the
# wire anyway; a fixed decimal would either overflow or invent precision the source never declared.
_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.INTEGER: pa.int64(),
    ColumnType.DECIMAL: pa.float64(),
    ColumnType.STRING: pa.string(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.DATE: pa.date32(),
    ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    ColumnType.JSON: pa.string(),  # nested objects, arrays and unions travel as JSON text
}


def arrow_type(column_type: ColumnType) -> pa.DataType:
    """The Arrow type the sync writer uses for a column type."""
    return _ARROW_TYPES[column_type]


def column_type(prop: Mapping[str, Any]) -> tuple[ColumnType, bool]:
    """Map one JSON-schema property to (ColumnType, nullable); `null` in a `type` list means nullable."""
    raw = prop.get("type")
    if raw is None:
        types: list[str] = []
    elif isinstance(raw, str):
        types = [raw]
    else:
        types = [str(t) for t in raw]
    nullable = "null" in types or not types
    concrete = [t for t in types if t != "null"]
    airbyte_type = prop.get("airbyte_type")
    if airbyte_type in _INTEGER_AIRBYTE_TYPES:
        return ColumnType.INTEGER, nullable
    if not concrete or len(concrete) > 1:
        # no type (any value), oneOf/anyOf, or a union such as ["string", "integer"]
        return ColumnType.JSON, True if not concrete else nullable
    kind = concrete[0]
    if kind == "integer":
        return ColumnType.INTEGER, nullable
    if kind == "number":
        return ColumnType.DECIMAL, nullable
    if kind == "boolean":
        return ColumnType.BOOLEAN, nullable
    if kind == "string":
        fmt = prop.get("format")
        if fmt == "date":
            return ColumnType.DATE, nullable
        if fmt == "date-time" or airbyte_type in _TIMESTAMP_AIRBYTE_TYPES:
            return ColumnType.TIMESTAMP, nullable
        return ColumnType.STRING, nullable
    return ColumnType.JSON, nullable  # object, array


def columns_from_schema(json_schema: Mapping[str, Any]) -> list[DiscoveredColumn]:
    """Top-level properties of a stream's JSON schema as columns, in declaration order."""
    properties = json_schema.get("properties") or {}
    columns: list[DiscoveredColumn] = []
    for name, prop in properties.items():
        prop_dict = dict(prop) if isinstance(prop, Mapping) else {}
        kind, nullable = column_type(prop_dict)
        columns.append(DiscoveredColumn(name=str(name), type=kind, nullable=nullable, json_schema=prop_dict))
    return columns


def arrow_schema(stream: DiscoveredStream) -> pa.Schema:
    """The explicit Arrow schema of a stream's record batches.

    Every field is nullable in Arrow: Airbyte sources routinely omit declared fields, and a catalog/data
    mismatch must not fail a sync.
    """
    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=True) for c in stream.columns])
