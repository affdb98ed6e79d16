"""The import's plan: how a file's values become the table's types, strictly (columnTypes overrides) or
leniently (onError skip: the rows that do not convert are set aside into the rejects table), and the dry
run that answers what an import would do by the same read, writing nothing.
"""

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl

from ingest.core import decimals
from ingest.core.errors import AppError, InvalidRequestError, NotFoundError
from ingest.core.types import ColumnType, TypeSpec
from ingest.db.models import FileImport
from ingest.formats import FileFormat, SourceFile
from ingest.formats.readers import type_spec
from ingest.formats.rejects import (
    Check,
    RejectCollector,
    Rejection,
    first_rejections,
    forgiving,
    rejects_parts,
)
from ingest.iceberg import (
    Fit,
    SchemaMismatchError,
    TableColumns,
    Warehouse,
    WriteMode,
    WriteResult,
    convert,
    fit_columns,
    iceberg_dtype,
    iceberg_type_names,
    mismatch_message,
    parse_fields,
)

_ROW_INDEX = "__ingest_row"

# DECIMAL without precision and scale is a double (a float column of a file); DECIMAL(p,s) goes through
# core.decimals, never through these.
_POLARS_TYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.INTEGER: pl.Int64(),
    ColumnType.DECIMAL: pl.Float64(),
    ColumnType.STRING: pl.String(),
    ColumnType.BOOLEAN: pl.Boolean(),
    ColumnType.DATE: pl.Date(),
    ColumnType.TIMESTAMP: pl.Datetime("us"),
}
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


class OnError(StrEnum):
    ABORT = "abort"
    SKIP = "skip"


REJECTS_SUFFIX = "__rejects"
MAX_REJECT_REASONS = 20  # kept on the file and shown by its status
MAX_PLAN_FAILURES = 100  # listed by a dry run


class ErrorBudgetExceededError(InvalidRequestError):
    """More rows do not convert than `maxErrorRows` / `maxErrorRatio` allow: nothing is written."""

    def __init__(self, message: str, rejected: int, reasons: list[Rejection]) -> None:
        super().__init__(message)
        self.rejected = rejected
        self.reasons = reasons


def rejects_table_name(table: str) -> str:
    """The table beside `table` that keeps an import's rejected rows (onError skip)."""
    return f"{table}{REJECTS_SUFFIX}"


def reason_dicts(reasons: list[Rejection]) -> list[dict[str, Any]]:
    return [{"row": r.row, "column": r.column, "value": r.value, "reason": r.reason} for r in reasons]


def over_budget(file: FileImport, rejected: int, total: int) -> str | None:
    """Why `rejected` of `total` rows is past the file's error budget; None within it."""
    if file.max_error_rows is not None and rejected > file.max_error_rows:
        return f"{rejected} of {total} rows do not convert, more than maxErrorRows ({file.max_error_rows})"
    ratio = file.max_error_ratio
    if ratio is not None and total and Fraction(rejected, total) > Fraction(repr(ratio)):
        return (
            f"{rejected} of {total} rows do not convert ({rejected / total:.4%}),"
            f" more than maxErrorRatio ({ratio})"
        )
    return None


def import_job_id(file_id: uuid.UUID) -> str:
    """The snapshot tag of a file's import: the same on every attempt of the job."""
    return f"import-{file_id}"


# -- column type overrides ------------------------------------------------------------------------------


def _from_text(column: pl.Expr, target: ColumnType, *, strict: bool) -> pl.Expr:
    text = column.str.strip_chars()
    if target is ColumnType.BOOLEAN:
        mapping = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False), "": None}
        lowered = text.str.to_lowercase()
        if strict:
            return lowered.replace_strict(mapping, return_dtype=pl.Boolean)
        return lowered.replace_strict(mapping, default=None, return_dtype=pl.Boolean)
    if target is ColumnType.DATE:
        return text.str.to_date(strict=strict)
    if target is ColumnType.TIMESTAMP:
        return text.str.to_datetime(time_unit="us", strict=strict)
    if target is ColumnType.STRING:
        return column
    if target is ColumnType.INTEGER:  # "12.0" too: a float column of a csv overridden to INTEGER
        return _whole_number(text, pl.String(), strict=strict)
    return text.cast(_POLARS_TYPES[target], strict=strict)


def _whole_number(column: pl.Expr, source: pl.DataType, *, strict: bool) -> pl.Expr:
    """Float, decimal or text -> Int64 only when the value has no fraction (polars truncates 1.5 to 1)."""
    if source.is_float():
        whole = column.is_null() | (column == column.round(0))
        fallback = None if not strict else float("nan")  # NaN: a strict cast refuses it
        return pl.when(whole).then(column).otherwise(fallback).cast(pl.Int64, strict=strict)
    text = column if source == pl.String else column.cast(pl.String)
    whole = text.str.contains(r"^[+-]?[0-9]+(?:\.0*)?$")
    digits = text.str.replace(r"\.0*$", "")
    return pl.when(whole).then(digits).otherwise(pl.lit("not an integer")).cast(pl.Int64, strict=strict)


def _cast(
    name: str, source: pl.DataType, target: TypeSpec, *, strict: bool, decimal_comma: bool = False
) -> pl.Expr:
    column = pl.col(name)
    if decimal_comma and source == pl.String and target.type in (ColumnType.DECIMAL, ColumnType.INTEGER):
        column = column.str.replace(",", ".", literal=True)  # readOptions.decimalComma: `1,50` is 1.50
    if target.precision is not None and target.scale is not None:
        return decimals.to_decimal(column, source, target.precision, target.scale, strict=strict).alias(name)
    if source == pl.String:
        return _from_text(column, target.type, strict=strict).alias(name)
    if target.type is ColumnType.INTEGER and (source.is_float() or source.is_decimal()):
        return _whole_number(column, source, strict=strict).alias(name)
    return column.cast(_POLARS_TYPES[target.type], strict=strict).alias(name)


def apply_types(
    lf: pl.LazyFrame, types: dict[str, str] | None, *, decimal_comma: bool = False
) -> pl.LazyFrame:
    """The lazy plan with the requested column types (strict: a bad value fails the collect)."""
    if not types:
        return lf
    schema = lf.collect_schema()
    return lf.with_columns(
        [
            _cast(name, schema[name], TypeSpec.parse(kind), strict=True, decimal_comma=decimal_comma)
            for name, kind in types.items()
            if name in schema
        ]
    )


def decimal_comma_of(source: SourceFile) -> bool:
    """readOptions.decimalComma of a csv (the one format it applies to)."""
    return source.format is FileFormat.CSV and bool(source.read_options.decimal_comma)


def find_bad_value(source: SourceFile, types: dict[str, str]) -> str | None:
    """The first row whose value does not convert to its requested type, named by row, column and value."""
    lf = source.scan(raw=types.keys())
    schema = lf.collect_schema()
    checks: list[tuple[str, TypeSpec, pl.Expr]] = []
    for name, kind in types.items():
        if name not in schema:
            continue
        spec = TypeSpec.parse(kind)
        converted = _cast(name, schema[name], spec, strict=False, decimal_comma=decimal_comma_of(source))
        original = pl.col(name)
        present = original.is_not_null()
        if schema[name] == pl.String:
            present = present & original.str.strip_chars().str.len_chars().gt(0)
        checks.append((name, spec, (converted.is_null() & present).alias(f"__bad_{len(checks)}")))
    if not checks:
        return None
    flagged = lf.with_row_index(_ROW_INDEX, offset=1).with_columns([c for _, _, c in checks])
    bad = flagged.filter(pl.any_horizontal([f"__bad_{i}" for i in range(len(checks))])).head(1).collect()
    if bad.height == 0:
        return None
    row = bad.row(0, named=True)
    for i, (name, spec, _) in enumerate(checks):
        if row[f"__bad_{i}"]:
            value = row[name]
            shown = repr(str(value) if isinstance(value, Decimal) else value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            if spec.precision is not None and spec.scale is not None:
                why = decimals.why_not_decimal(value, spec.precision, spec.scale)
                hint = decimals.OVERRIDE_HINT if "digits" in why else ""
                return f"Row {row[_ROW_INDEX]}, column '{name}': value {shown} {why}{hint}"
            return f"Row {row[_ROW_INDEX]}, column '{name}': value {shown} is not a valid {spec}"
    return None


def explainer(source: SourceFile, types: dict[str, str] | None) -> Callable[[BaseException], str]:
    """A failed read explained: the first value that does not convert to its type, else the reader's why."""

    def explain(error: BaseException) -> str:
        if types:
            try:
                found = find_bad_value(source, types)
            except Exception:  # the file itself does not read: the reader explains that
                found = None
            if found:
                return found
        return source.explain(error)

    return explain


# -- onError skip and dry runs: the rows that convert, the rest set aside ----------------------------------


@dataclass
class ForgivingRead:
    """A file read so that rows which do not convert are set aside (onError skip, dry runs)."""

    frame: pl.LazyFrame  # the rows that convert, typed as the table will hold them (source names)
    checks: list[Check]
    columns: list[str]  # the file's columns
    collector: RejectCollector
    incoming: pl.Schema  # target names -> the types written (before conversion to the table's)
    fit: Fit | None  # against the existing table
    replaces_schema: bool


def forgiving_read(
    source: SourceFile, file: FileImport, table: TableColumns | None, spill: Path
) -> ForgivingRead:
    """The import's plan with lenient conversions: the reader's typing, the overrides, the table's types.

    Each conversion gives null instead of failing; a row with a present value that became null is
    handed to the collector (spilled under `spill`) and left out of `frame`.
    """
    types = file.column_types or {}
    mappings = file.column_mappings or {}
    text = source.scan_text()
    lf, parsed = text if text is not None else (source.scan(raw=types.keys()), {})
    schema = lf.collect_schema()
    exprs: dict[str, pl.Expr] = {}
    for name, dtype in schema.items():
        if name in types:
            exprs[name] = _cast(
                name, dtype, TypeSpec.parse(types[name]), strict=False, decimal_comma=decimal_comma_of(source)
            )
        elif name in parsed:
            exprs[name] = parsed[name].alias(name)
    typed = lf.select([exprs.get(n, pl.col(n)) for n in schema.names()]).collect_schema()
    for name, dtype in typed.items():
        if iceberg_dtype(dtype) != dtype:  # lossless, as the writer would
            exprs[name] = exprs.get(name, pl.col(name)).cast(iceberg_dtype(dtype)).alias(name)
    incoming = pl.Schema({mappings.get(n, n): iceberg_dtype(t) for n, t in typed.items()})
    final = dict(incoming.items())
    fit = fit_columns(table.schema, table.required, incoming) if table is not None else None
    replaces = bool(fit and fit.problems and file.mode == WriteMode.OVERWRITE)
    if fit is not None and not fit.problems:
        for name in schema.names():
            target = mappings.get(name, name)
            if target in fit.casts:
                source_type = incoming[target]
                value = exprs.get(name, pl.col(name))
                exprs[name] = convert(value, source_type, fit.casts[target], strict=False).alias(name)
                final[target] = fit.casts[target]
    checks = []
    for name, expr in exprs.items():
        target_type = final[mappings.get(name, name)]
        checks.append(Check(name, expr, target_type, str(type_spec(target_type))))
    collector = RejectCollector(spill)
    return ForgivingRead(
        forgiving(lf, checks, collector), checks, schema.names(), collector, incoming, fit, replaces
    )


def _budget_check(file: FileImport, read: ForgivingRead) -> Callable[[], None]:
    def check() -> None:
        read.collector.close()
        why = over_budget(file, read.collector.rejected, read.collector.rows_seen)
        if why is not None:
            reasons = first_rejections(read.collector, read.checks, MAX_REJECT_REASONS)
            first = f"; the first: {reasons[0].message()}" if reasons else ""
            raise ErrorBudgetExceededError(
                f"{why}: nothing was written{first}", read.collector.rejected, reasons
            )

    return check


def import_forgiving(
    warehouse: Warehouse,
    tenant_id: uuid.UUID,
    file: FileImport,
    source: SourceFile,
    progress: Callable[[int], None],
    scratch: Path,
) -> tuple[WriteResult, int, list[Rejection]]:
    """onError skip: the rows that convert in one commit, then the rejected ones into the rejects table.

    Past the budget nothing is committed to either table (ErrorBudgetExceededError). The rejects table's
    commit carries the same job id as the target's, so a retry after a worker died between the two
    commits finds the target's, reads the file again for its rejects and writes only those.
    """
    assert file.target_table_name is not None
    job_id = import_job_id(file.id)
    with tempfile.TemporaryDirectory(prefix="ingest-rejects-", dir=scratch) as tmp:
        spill, out = Path(tmp) / "spill", Path(tmp) / "rejects"
        spill.mkdir()
        out.mkdir()
        table = warehouse.columns(tenant_id, file.target_schema, file.target_table_name)
        read = forgiving_read(source, file, table, spill)
        if read.fit is not None and read.fit.problems and not read.replaces_schema:
            raise SchemaMismatchError(mismatch_message(read.fit))
        result = warehouse.write_frame(
            tenant_id,
            file.target_schema,
            file.target_table_name,
            read.frame,
            job_id=job_id,
            mode=WriteMode(file.mode),
            column_mappings=file.column_mappings,
            progress=progress,
            explain=source.explain,
            partition_spec=parse_fields(spec["fields"]) if (spec := file.partition_spec) else None,
            evolve_partition_spec=bool(spec and spec.get("evolve")),
            before_commit=_budget_check(file, read),
        )
        if result.already_applied:
            read.frame.select(pl.len()).collect()  # the rejects of the earlier attempt's read
        read.collector.close()
        rejects = rejects_table_name(file.target_table_name)
        if read.collector.rejected and not _committed(
            warehouse, tenant_id, file.target_schema, rejects, job_id
        ):
            parts = list(
                rejects_parts(
                    read.collector,
                    read.checks,
                    read.columns,
                    file_id=str(file.id),
                    file_name=file.file_name,
                    as_csv=source.format is FileFormat.CSV,
                    directory=out,
                )
            )
            warehouse.write_frame(
                tenant_id, file.target_schema, rejects, pl.scan_parquet(parts), job_id=job_id
            )
        reasons = first_rejections(read.collector, read.checks, MAX_REJECT_REASONS)
        return result, read.collector.rejected, reasons


def _committed(
    warehouse: Warehouse, tenant_id: uuid.UUID, schema: str | None, table: str, job_id: str
) -> bool:
    try:
        return warehouse.job_rows(tenant_id, schema, table, job_id) is not None
    except NotFoundError:
        return False


@dataclass
class PlanResult:
    """A dry run's answer (the controller turns it into `ImportPlan`)."""

    file: FileImport
    action: str
    table_exists: bool
    columns: list[tuple[str, str]]
    new_columns: list[tuple[str, str]]
    widened: list[tuple[str, str, str]]
    converted: list[tuple[str, str, str]]
    refused: list[tuple[str, str, str]]
    replaces_schema: bool
    row_count: int | None
    records_imported: int
    records_rejected: int
    failures: list[Rejection]
    message: str | None
    rejects_table: str | None


def plan_import(
    warehouse: Warehouse, tenant_id: uuid.UUID, file: FileImport, source: SourceFile, scratch: Path
) -> PlanResult:
    """What the import would do, by the same read and fit as `import_forgiving`; nothing is written."""
    assert file.target_table_name is not None
    table = warehouse.columns(tenant_id, file.target_schema, file.target_table_name)
    message: str | None = None
    row_count: int | None = None
    kept = rejected = 0
    failures: list[Rejection] = []
    read: ForgivingRead | None = None
    with tempfile.TemporaryDirectory(prefix="ingest-plan-", dir=scratch) as tmp:
        try:
            read = forgiving_read(source, file, table, Path(tmp))
            kept = int(read.frame.select(pl.len()).collect().item())
            read.collector.close()
            row_count, rejected = read.collector.rows_seen, read.collector.rejected
            failures = first_rejections(read.collector, read.checks, MAX_PLAN_FAILURES)
        except AppError as e:
            message = e.message
        except Exception as e:
            message = source.explain(e)
    incoming = read.incoming if read is not None else pl.Schema()
    types = iceberg_type_names(incoming) if read is not None else {}
    fit = read.fit if read is not None else None
    replaces = bool(read and read.replaces_schema)
    if table is None or replaces:
        columns = list(types.items())
        new_columns = (
            columns if table is None else [(n, t) for n, t in types.items() if n not in table.schema]
        )
    else:
        widened_names = set(fit.widened) if fit else set()
        columns = [(n, types[n] if n in widened_names else t) for n, t in table.iceberg_types.items()]
        new_columns = [(n, types[n]) for n in (fit.new_columns if fit else [])]
        columns += new_columns
    converted = widened = refused = []
    if table is not None and fit is not None:
        converted = [(n, types[n], table.iceberg_types[n]) for n in fit.casts]
        widened = [(n, types[n], table.iceberg_types[n]) for n in fit.widened]
        refused = [(n, types[n], table.iceberg_types[n]) for n in fit.refused]
    if message is None and fit is not None and fit.problems and not replaces:
        message = mismatch_message(fit)
    if message is None and rejected:
        if file.on_error == OnError.ABORT:
            message = (
                f"A value does not convert, which fails the import (onError abort): {failures[0].message()}"
            )
        else:
            why = over_budget(file, rejected, row_count or 0)
            message = f"{why}: nothing would be written" if why else None
    action = (
        "CREATE_TABLE" if table is None else "OVERWRITE" if file.mode == WriteMode.OVERWRITE else "APPEND"
    )
    return PlanResult(
        file=file,
        action=action,
        table_exists=table is not None,
        columns=columns,
        new_columns=new_columns,
        widened=widened,
        converted=converted,
        refused=refused,
        replaces_schema=replaces,
        row_count=row_count,
        records_imported=kept if message is None else 0,
        records_rejected=rejected,
        failures=failures,
        message=message,
        rejects_table=f"{file.target_schema}.{rejects_table_name(file.target_table_name)}"
        if file.on_error == OnError.SKIP
        else None,
    )
