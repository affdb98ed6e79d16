"""Partition specs: parsed from the API's `[{column, transform}]`, used at table creation, compared, evolved.

Writes need nothing more: polars' `sink_iceberg` (the writer's pipeline) splits the rows by the table's
spec and writes each partition's rows to files of their own, in the same single commit.
"""

import re
from dataclasses import dataclass
from typing import Any

from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.update.spec import UpdateSpec
from pyiceberg.transforms import Transform, parse_transform

from ingest.core.errors import ConflictError, InvalidRequestError

_TRANSFORM = re.compile(
    r"^(identity|year|month|day|hour|bucket\[([1-9][0-9]{0,5})\]|truncate\[([1-9][0-9]{0,5})\])$"
)
# which column types (the API's labels) each transform applies to
_APPLIES = {
    "identity": {"INTEGER", "DECIMAL", "STRING", "BOOLEAN", "DATE", "TIMESTAMP"},
    "year": {"DATE", "TIMESTAMP"},
    "month": {"DATE", "TIMESTAMP"},
    "day": {"DATE", "TIMESTAMP"},
    "hour": {"TIMESTAMP"},
    "bucket": {"INTEGER", "DECIMAL", "STRING", "DATE", "TIMESTAMP"},
    "truncate": {"INTEGER", "DECIMAL", "STRING"},
}


class PartitionSpecConflictError(ConflictError):
    """The table exists with another partition spec and the request did not ask to evolve it."""


@dataclass(frozen=True)
class PartitionField:
    column: str
    transform: str  # identity, year, month, day, hour, bucket[N], truncate[W]

    def as_dict(self) -> dict[str, str]:
        return {"column": self.column, "transform": self.transform}


def parse_fields(raw: list[Any] | None) -> list[PartitionField] | None:
    """Validated fields from the API's list of `{column, transform}`; 400 naming the bad one."""
    if raw is None:
        return None
    fields: list[PartitionField] = []
    for i, item in enumerate(raw):
        column = item.get("column") if isinstance(item, dict) else getattr(item, "column", None)
        transform = item.get("transform") if isinstance(item, dict) else getattr(item, "transform", None)
        if not isinstance(column, str) or not column:
            raise InvalidRequestError(f"partitionSpec[{i}]: column is required")
        if not isinstance(transform, str) or not _TRANSFORM.match(transform.strip().lower()):
            raise InvalidRequestError(
                f"partitionSpec[{i}]: transform '{str(transform)[:40]}' is not one of identity, year, month,"
                " day, hour, bucket[N], truncate[W]"
            )
        fields.append(PartitionField(column, transform.strip().lower()))
    if len({(f.column, f.transform) for f in fields}) != len(fields):
        raise InvalidRequestError("partitionSpec repeats a field")
    return fields


def check_columns(fields: list[PartitionField], columns: dict[str, str]) -> None:
    """Each field names an existing column whose type (API label) its transform applies to; 400 if not."""
    for f in fields:
        label = columns.get(f.column)
        if label is None:
            raise InvalidRequestError(f"partitionSpec: column '{f.column}' is not a column of the table")
        kind = f.transform.split("[", 1)[0]
        base = label.split("(", 1)[0].upper()
        if base not in _APPLIES[kind]:
            raise InvalidRequestError(f"partitionSpec: {f.transform} does not apply to {f.column} ({label})")


def _transform(field: PartitionField) -> Transform[Any, Any]:
    return parse_transform(field.transform)


def fields_of(spec: PartitionSpec, schema: Schema) -> list[PartitionField]:
    return [
        PartitionField(schema.find_column_name(f.source_id) or str(f.source_id), str(f.transform))
        for f in spec.fields
    ]


def apply(update: UpdateSpec, fields: list[PartitionField]) -> None:
    for f in fields:
        update.add_field(f.column, _transform(f))


def differs(table: Table, fields: list[PartitionField]) -> bool:
    return fields_of(table.spec(), table.schema()) != fields


def reconcile(table: Table, fields: list[PartitionField] | None, *, evolve: bool) -> Table:
    """An existing table against the asked spec: unchanged, evolved (new spec for new data), or 409."""
    if fields is None or not differs(table, fields):
        return table
    current = fields_of(table.spec(), table.schema())
    if not evolve:
        shown = ", ".join(f"{f.transform}({f.column})" for f in current) or "unpartitioned"
        raise PartitionSpecConflictError(
            f"The table exists with partition spec [{shown}]; ask to evolve it (evolvePartitionSpec)"
        )
    names = [f.name for f in table.spec().fields]
    with table.update_spec() as update:
        for name, existing in zip(names, current, strict=True):
            if existing not in fields:
                update.remove_field(name)
        for wanted in fields:
            if wanted not in current:
                update.add_field(wanted.column, _transform(wanted))
    return table.refresh()
