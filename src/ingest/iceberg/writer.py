"""Writes into Iceberg tables: one atomic commit per job, idempotent by job id, memory bounded.

The pipeline is the measured best one (docs/performance-facts): a polars lazy plan (renames and casts
included) streamed by `LazyFrame.sink_iceberg` into rolling Parquet files, then one pyiceberg transaction
that adds them with the job id in the snapshot summary. pyiceberg's own `append(RecordBatchReader)` is
not memory bounded and is not used.
"""

import contextlib
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

import polars as pl
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, IsNull, Or
from pyiceberg.io.pyarrow import PyArrowFileIO, schema_to_pyarrow
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation

from ingest.core import decimals
from ingest.core.errors import AppError, InvalidRequestError, UpstreamError
from ingest.core.logging import get_logger
from ingest.iceberg import partitioning

JOB_ID_PROPERTY = "ingest.job-id"
_ROW_INDEX = "__ingest_row"
_PROGRESS_SECONDS = 1.0

log = get_logger("ingest.iceberg")

Progress = Callable[[int], None]
Source = pl.LazyFrame | Callable[[], pl.LazyFrame]


class WriteMode(StrEnum):
    APPEND = "append"
    OVERWRITE = "overwrite"
    UPSERT = "upsert"


class SchemaMismatchError(InvalidRequestError):
    """The incoming columns cannot go into the existing table."""


class DataConversionError(InvalidRequestError):
    """A value of the input cannot be read or converted; the message names row, column and value."""


@dataclass(frozen=True)
class WriteResult:
    rows_written: int
    snapshot_id: int | None
    already_applied: bool  # the job id was found in an earlier snapshot: nothing was written this time
    table_created: bool = False


def _iceberg_dtype(dtype: pl.DataType) -> pl.DataType | None:
    """The lossless type Iceberg can hold for a polars type (None: keep it)."""
    if dtype in (pl.Int8, pl.Int16, pl.UInt8, pl.UInt16):
        return pl.Int32()
    if dtype == pl.UInt32:
        return pl.Int64()
    if dtype == pl.UInt64:
        return pl.Decimal(20, 0)
    if dtype == pl.Float16:
        return pl.Float32()
    if dtype in (pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum):
        return pl.String()
    if isinstance(dtype, pl.Datetime) and (dtype.time_unit != "us" or dtype.time_zone not in (None, "UTC")):
        return pl.Datetime("us", "UTC" if dtype.time_zone else None)
    return None


def _castable(src: pl.DataType, dst: pl.DataType) -> bool:
    if src == dst or src == pl.Null or dst == pl.String or src == pl.String:
        return True
    if src.is_numeric() and dst.is_numeric():
        return True
    return src == pl.Date and isinstance(dst, pl.Datetime)


def _label(dtype: pl.DataType) -> str:
    return str(dtype)


def _table_schema(table: Table) -> tuple[pl.Schema, set[str]]:
    arrow = schema_to_pyarrow(table.schema(), include_field_ids=False)
    schema = pl.DataFrame(arrow.empty_table()).schema
    required = {f.name for f in table.schema().fields if f.required}
    return schema, required


def _rename(lf: pl.LazyFrame, mappings: dict[str, str] | None) -> pl.LazyFrame:
    if not mappings:
        return lf
    columns = lf.collect_schema().names()
    unknown = sorted(set(mappings) - set(columns))
    if unknown:
        raise InvalidRequestError(f"Column mappings name unknown source columns: {', '.join(unknown)}")
    renames = {src: dst for src, dst in mappings.items() if src != dst}
    targets = [renames.get(c, c) for c in columns]
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        raise InvalidRequestError(f"Column mappings produce duplicate column names: {', '.join(duplicates)}")
    for target in renames.values():
        if not target or len(target) > 256:
            raise InvalidRequestError("Target column names must be 1 to 256 characters")
    return lf.rename(renames)


def _normalize(lf: pl.LazyFrame) -> pl.LazyFrame:
    casts = {}
    for name, dtype in lf.collect_schema().items():
        target = _iceberg_dtype(dtype)
        if target is not None:
            casts[name] = pl.col(name).cast(target)
    return lf.with_columns(**casts) if casts else lf


@dataclass(frozen=True)
class Fit:
    """How incoming columns go into an existing table: what an import plan shows and the write does."""

    casts: dict[str, pl.DataType]  # column -> the table's type its values are converted to
    widened: dict[str, tuple[pl.DataType, pl.DataType]]  # column -> (table's type, wider incoming type)
    new_columns: list[str]  # added to the table by schema evolution, in the input's order
    refused: dict[str, tuple[pl.DataType, pl.DataType]]  # column -> (table's type, incoming type)
    problems: list[str]  # refused: the input does not fit (SchemaMismatchError), unless overwritten


def _widens(table_type: pl.DataType, incoming: pl.DataType) -> bool:
    """An Iceberg type promotion: int -> long, float -> double, decimal(P,S) -> decimal(P',S) with P' > P."""
    if table_type == pl.Int32 and incoming == pl.Int64:
        return True
    if table_type == pl.Float32 and incoming == pl.Float64:
        return True
    return (
        isinstance(table_type, pl.Decimal)
        and isinstance(incoming, pl.Decimal)
        and table_type.scale == incoming.scale
        and (incoming.precision or 38) > (table_type.precision or 38)
    )


def fit_columns(table_schema: pl.Schema, required: set[str], incoming: pl.Schema) -> Fit:
    """Compare the incoming columns with an existing table's (nothing is read or written)."""
    problems = []
    casts: dict[str, pl.DataType] = {}
    widened: dict[str, tuple[pl.DataType, pl.DataType]] = {}
    refused: dict[str, tuple[pl.DataType, pl.DataType]] = {}
    for name, dtype in incoming.items():
        target = table_schema.get(name)
        if target is None or target == dtype:
            continue
        if _widens(target, dtype):
            widened[name] = (target, dtype)
        elif not _castable(dtype, target):
            refused[name] = (target, dtype)
            problems.append(
                f"column '{name}' is {_label(target)} in the table but {_label(dtype)} in the input"
            )
        else:
            casts[name] = target
    missing_required = sorted(required - set(incoming.names()))
    if missing_required:
        problems.append(f"required columns missing from the input: {', '.join(missing_required)}")
    new_columns = [name for name in incoming.names() if name not in table_schema]
    return Fit(casts, widened, new_columns, refused, problems)


def mismatch_message(fit: Fit) -> str:
    return "The input does not fit the existing table: " + "; ".join(fit.problems)


def _fit(lf: pl.LazyFrame, table: Table) -> tuple[pl.LazyFrame, dict[str, pl.DataType], bool]:
    """Cast the incoming columns to the table's types; (plan, casts made, schema evolution needed).

    A column whose incoming type is an Iceberg promotion of the table's (int -> long, float -> double,
    a decimal's precision) widens the table's column instead. Raises SchemaMismatchError when a
    column's type cannot convert or a required column is missing.
    """
    incoming = lf.collect_schema()
    table_schema, required = _table_schema(table)
    fit = fit_columns(table_schema, required, incoming)
    if fit.problems:
        raise SchemaMismatchError(mismatch_message(fit))
    exprs = [
        _convert(name, incoming[name], target, strict=True)
        if name in fit.casts
        else pl.lit(None, dtype=target).alias(name)
        for name, target in table_schema.items()
        if name in fit.casts or name not in incoming
    ]
    order = list(table_schema.names()) + fit.new_columns
    return lf.with_columns(exprs).select(order), fit.casts, bool(fit.new_columns or fit.widened)


def convert(column: pl.Expr, source: pl.DataType, target: pl.DataType, *, strict: bool) -> pl.Expr:
    """`column` cast to a table's type; into a decimal without rounding (polars' cast truncates)."""
    if isinstance(target, pl.Decimal):
        precision, scale = target.precision or 38, target.scale or 0
        return decimals.to_decimal(column, source, precision, scale, strict=strict)
    return column.cast(target, strict=strict)


def _convert(name: str, source: pl.DataType, target: pl.DataType, *, strict: bool) -> pl.Expr:
    return convert(pl.col(name), source, target, strict=strict).alias(name)


def iceberg_dtype(dtype: pl.DataType) -> pl.DataType:
    """The type a column of `dtype` has once written (what `write_frame` normalizes it to)."""
    return _iceberg_dtype(dtype) or dtype


def table_columns(table: Table) -> tuple[pl.Schema, set[str]]:
    """The table's columns as polars types, and the required ones."""
    return _table_schema(table)


def iceberg_type_names(schema: pl.Schema) -> dict[str, str]:
    """The Iceberg type (as the tables API shows it: long, decimal(18, 2), ...) a new column gets."""
    from pyiceberg.catalog import Catalog as _Catalog

    arrow = pa.schema(
        [
            pa.field(name, _iceberg_arrow(field.type), nullable=True)
            for name, field in zip(schema.names(), pl.DataFrame(schema=schema).to_arrow().schema, strict=True)
        ]
    )
    converted = _Catalog._convert_schema_if_needed(arrow)
    return {f.name: str(f.field_type) for f in converted.fields}


def _with_progress(lf: pl.LazyFrame, progress: Progress | None) -> pl.LazyFrame:
    """Count rows as they stream: an elementwise UDF on the first column (the sink stays streaming)."""
    columns = lf.collect_schema()
    if progress is None or not columns:
        return lf
    lock = threading.Lock()
    state = {"rows": 0, "reported": time.monotonic()}

    def count(series: pl.Series) -> pl.Series:
        with lock:
            state["rows"] += len(series)
            now = time.monotonic()
            due = now - state["reported"] >= _PROGRESS_SECONDS
            if due:
                state["reported"] = now
            rows = int(state["rows"])
        if due:
            progress(rows)
        return series

    first, dtype = next(iter(columns.items()))
    return lf.with_columns(pl.col(first).map_batches(count, return_dtype=dtype, is_elementwise=True))


def job_snapshots(table: Table, job_id: str) -> list[Any]:
    return [
        s for s in table.snapshots() if s.summary is not None and s.summary.get(JOB_ID_PROPERTY) == job_id
    ]


def _added(snapshot: Any) -> int:
    """Rows a job's snapshot added; the delete half of an overwrite counts none (it rewrites old rows)."""
    summary = snapshot.summary
    if summary is None or summary.operation != Operation.APPEND:
        return 0
    return int(summary.get("added-records") or 0)


def _result(table: Table, job_id: str, *, already: bool, created: bool) -> WriteResult:
    snapshots = job_snapshots(table, job_id)
    rows = sum(_added(s) for s in snapshots)
    last = snapshots[-1].snapshot_id if snapshots else None
    return WriteResult(rows_written=rows, snapshot_id=last, already_applied=already, table_created=created)


class _GuardedCatalog:
    """The catalog with a check run just before the data's commit, when every row has been read."""

    def __init__(self, catalog: Catalog, check: Callable[[], None]) -> None:
        self._catalog = catalog
        self._check = check

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalog, name)

    def commit_table(self, table: Table, requirements: Any, updates: Any) -> Any:
        self._check()  # raises to refuse the commit (an import past its error budget)
        return self._catalog.commit_table(table, requirements, updates)


def _staged_table(table: Table, before_commit: Callable[[], None] | None = None) -> tuple[Table, str]:
    """The same table, its new data files directed to a directory of their own (deleted if the job fails).

    `write.data.path` is changed on the in-memory metadata only: the commit sends updates, not this copy,
    so the catalog never stores it.
    """
    metadata = table.metadata
    staging = f"{metadata.location.rstrip('/')}/data/ingest-{uuid.uuid4().hex}"
    properties = {**metadata.properties, "write.data.path": staging}
    staged_metadata = metadata.model_copy(update={"properties": properties})
    catalog: Any = table.catalog if before_commit is None else _GuardedCatalog(table.catalog, before_commit)
    return Table(table.name(), staged_metadata, table.metadata_location, table.io, catalog), staging


def _delete_dir(table: Table, location: str) -> None:
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        return
    scheme, netloc, path = PyArrowFileIO.parse_location(location)
    fs = io.fs_by_scheme(scheme, netloc)
    # Twice: a writer thread of the failed sink may still close one last file after the first pass.
    for attempt in range(2):
        if attempt:
            time.sleep(0.5)
        if fs.get_file_info(path).type.name != "NotFound":
            fs.delete_dir(path)


def _find_bad_cast(
    source: Callable[[], pl.LazyFrame], mappings: dict[str, str] | None, casts: dict[str, pl.DataType]
) -> str | None:
    """First row whose value does not convert: null after a lenient cast but not before."""
    lf = _normalize(_rename(source(), mappings)).with_row_index(_ROW_INDEX, offset=1)
    incoming = lf.collect_schema()
    checks = {
        name: _convert(name, incoming[name], target, strict=False).is_null() & pl.col(name).is_not_null()
        for name, target in casts.items()
    }
    bad = lf.filter(pl.any_horizontal(list(checks.values()))).head(1).collect()
    if bad.height == 0:
        return None
    row = bad.row(0, named=True)
    for name, check in checks.items():
        if bad.select(check).item():
            value = repr(str(row[name]) if isinstance(row[name], Decimal) else row[name])
            value = value if len(value) <= 80 else value[:77] + "..."
            target = casts[name]
            if isinstance(target, pl.Decimal):
                why = decimals.why_not_decimal(row[name], target.precision or 38, target.scale or 0)
                return f"Row {row[_ROW_INDEX]}, column '{name}': value {value} {why} (the table's type)"
            return (
                f"Row {row[_ROW_INDEX]}, column '{name}': value {value} cannot be converted"
                f" to the table's type {_label(casts[name])}"
            )
    return None


def _load(catalog: Catalog, identifier: tuple[str, str]) -> Table | None:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def _create(
    catalog: Catalog,
    identifier: tuple[str, str],
    schema: pl.Schema,
    partition_spec: list[partitioning.PartitionField] | None = None,
) -> Table:
    """Create the table (all columns optional), with its partition spec, in one catalog commit."""
    catalog.create_namespace_if_not_exists(identifier[:1])
    arrow = pa.schema(
        [
            pa.field(name, _iceberg_arrow(field.type), nullable=True)
            for name, field in zip(schema.names(), pl.DataFrame(schema=schema).to_arrow().schema, strict=True)
        ]
    )
    if not partition_spec:
        return catalog.create_table(identifier, schema=arrow)
    missing = [f.column for f in partition_spec if f.column not in schema]
    if missing:
        raise InvalidRequestError(f"partitionSpec: column '{missing[0]}' is not a column of the table")
    try:
        with catalog.create_table_transaction(identifier, schema=arrow) as tx, tx.update_spec() as update:
            partitioning.apply(update, partition_spec)
    except ValueError as e:  # a transform that does not apply to the column's type
        raise InvalidRequestError(f"partitionSpec: {e}") from None
    return catalog.load_table(identifier)


def _iceberg_arrow(dtype: pa.DataType) -> pa.DataType:
    """polars holds times in nanoseconds; Iceberg's `time` is microseconds (database TIME columns)."""
    if pa.types.is_time(dtype):
        return pa.time64("us")
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return pa.list_(_iceberg_arrow(dtype.value_type))
    return dtype


def write_frame(
    catalog: Catalog,
    identifier: tuple[str, str],
    source: Source,
    *,
    job_id: str,
    mode: WriteMode = WriteMode.APPEND,
    column_mappings: dict[str, str] | None = None,
    progress: Progress | None = None,
    explain: Callable[[BaseException], str] | None = None,
    overwrite_filter: BooleanExpression | None = None,
    partition_spec: list[partitioning.PartitionField] | None = None,
    evolve_partition_spec: bool = False,
    before_commit: Callable[[], None] | None = None,
    row_group_size: int | None = None,
) -> WriteResult:
    """Stream `source` into the table in ONE commit tagged with `job_id`; a committed job id is a no-op.

    The table is created (all columns optional) when missing and dropped again if this write fails.
    Into an existing table, columns are cast to the table's types and new columns are added by schema
    evolution in the same commit; `overwrite` replaces the schema too when the input does not fit.
    On failure nothing is committed, the staged data files are deleted, and input errors are raised as
    DataConversionError / SchemaMismatchError with a message naming the row, column and value.
    `source` may be a callable returning a fresh LazyFrame: it is then rescanned to locate a bad value.
    `progress(rows)` is called from polars' worker threads about once a second.
    `partition_spec` is used when the table is created; an existing table with another spec is a
    PartitionSpecConflictError (409) unless `evolve_partition_spec`, which changes the spec for new data
    in a commit of its own just before the data's (the existing files keep their layout).
    `before_commit()` runs once every row has been read, just before the data's commit; what it raises
    cancels the write like any other failure (nothing committed, staged files deleted) and is re-raised.
    """
    if mode is WriteMode.UPSERT:
        raise ValueError("use write_batches for upserts")
    rescan = None if isinstance(source, pl.LazyFrame) else source
    lf = _normalize(_rename(rescan() if rescan is not None else source, column_mappings))  # type: ignore[arg-type]

    table = _load(catalog, identifier)
    if table is not None and job_snapshots(table, job_id):
        return _result(table, job_id, already=True, created=False)
    created = table is None
    if table is None:
        table = _create(catalog, identifier, lf.collect_schema(), partition_spec)
    else:
        table = partitioning.reconcile(table, partition_spec, evolve=evolve_partition_spec)

    schema_mode: Literal["merge", "overwrite"] | None = None
    casts: dict[str, pl.DataType] = {}
    if not created:
        try:
            lf, casts, new_columns = _fit(lf, table)
            schema_mode = "merge" if new_columns else None
        except SchemaMismatchError:
            if mode is not WriteMode.OVERWRITE:
                raise
            schema_mode = "overwrite"

    if casts and rescan is not None:
        # Values that do not convert are found BEFORE anything is written: polars' sink can report a
        # failed cast after its commit already happened (seen under load), which would leave a
        # "failed" import's rows in the table. One extra read pass, only when types must be converted.
        bad = _find_bad_cast(rescan, column_mappings, casts)
        if bad is not None:
            if created:
                with contextlib.suppress(NoSuchTableError):
                    catalog.purge_table(identifier)
            raise DataConversionError(bad)

    refused: list[BaseException] = []  # what `before_commit` raised, whatever polars wraps it in

    def guard() -> None:
        assert before_commit is not None
        try:
            before_commit()
        except BaseException as e:
            refused.append(e)
            raise

    staged, staging_dir = _staged_table(table, guard if before_commit is not None else None)
    try:
        _with_progress(lf, progress).sink_iceberg(
            staged,
            mode="overwrite" if mode is WriteMode.OVERWRITE else "append",
            schema_mode=schema_mode,
            overwrite_filter=overwrite_filter,
            snapshot_properties={JOB_ID_PROPERTY: job_id},
            # the sink holds a whole row group before writing it: wide rows (mail bodies) need small ones
            row_group_size=row_group_size,
        )
    except BaseException as e:
        reloaded = _load(catalog, identifier)
        if reloaded is not None and job_snapshots(reloaded, job_id):
            # the commit happened before the error surfaced: its files are referenced now, keep them
            log.error("iceberg.write.error_after_commit", table=".".join(identifier), job_id=job_id)
            return _result(reloaded, job_id, already=False, created=created)
        _cleanup(catalog, identifier, table, staging_dir, created=created)
        if refused:
            raise refused[0] from None
        raise _translate(e, rescan, column_mappings, casts, explain) from e

    table = catalog.load_table(identifier)
    result = _result(table, job_id, already=False, created=created)
    if progress is not None:
        progress(result.rows_written)
    return result


def _cleanup(
    catalog: Catalog, identifier: tuple[str, str], table: Table, staging: str, *, created: bool
) -> None:
    # Best effort: the commit did not happen, so nothing here is visible to readers either way.
    try:
        _delete_dir(table, staging)
    finally:
        if created:
            with contextlib.suppress(NoSuchTableError):
                catalog.purge_table(identifier)


def _translate(
    error: BaseException,
    rescan: Callable[[], pl.LazyFrame] | None,
    mappings: dict[str, str] | None,
    casts: dict[str, pl.DataType],
    explain: Callable[[BaseException], str] | None,
) -> BaseException:
    if isinstance(error, AppError):
        return error
    if isinstance(error, CommitFailedException):
        return UpstreamError(f"The table changed during the write; retry the job ({error})")
    if isinstance(error, pl.exceptions.PolarsError):
        message = None
        if rescan is not None and casts:
            try:
                message = _find_bad_cast(rescan, mappings, casts)
            except Exception:  # the input itself does not read: let `explain` say why
                message = None
        if message is None and explain is not None:
            message = explain(error)
        if message is None:
            lines = str(error).strip().splitlines()
            message = f"The input cannot be written: {lines[0] if lines else type(error).__name__}"
        return DataConversionError(message)
    return error


def _key_filter(keys: pl.DataFrame) -> BooleanExpression:
    """Exactly the rows whose key is in `keys` (distinct key rows), as a shallow expression.

    One key column is one `In`. Several are grouped by their first column, recursively:
    `(a = 1 AND b IN (...)) OR (a = 2 AND b IN (...))`, and the ORs form a balanced tree, so the depth
    grows with the logarithm of the key count, never with it (an OR chain of a few thousand keys
    overflowed pyiceberg's recursive visitors). A null key value matches null, as the dedup does.
    """
    first, rest = keys.columns[0], keys.columns[1:]
    if not rest:
        values = set(keys.get_column(first).drop_nulls().to_list())
        found: BooleanExpression = In(first, values)  # type: ignore[call-arg,arg-type]
        if keys.get_column(first).null_count():
            found = Or(found, IsNull(first)) if values else IsNull(first)  # type: ignore[call-arg,arg-type]
        return found
    terms: list[BooleanExpression] = [
        And(
            IsNull(first) if value is None else EqualTo(first, value),  # type: ignore[call-arg,arg-type]
            _key_filter(group.drop(first)),
        )
        for (value,), group in keys.group_by(first, maintain_order=True)
    ]
    while len(terms) > 1:
        paired = [Or(terms[i], terms[i + 1]) for i in range(0, len(terms) - 1, 2)]
        terms = paired + terms[len(terms) - len(terms) % 2 :]
    return terms[0]


def write_batches(
    catalog: Catalog,
    identifier: tuple[str, str],
    batches: pa.RecordBatchReader | Source,
    *,
    job_id: str,
    mode: WriteMode = WriteMode.APPEND,
    primary_key: list[str] | None = None,
    progress: Progress | None = None,
    staging_dir: str | None = None,
    partition_spec: list[partitioning.PartitionField] | None = None,
    evolve_partition_spec: bool = False,
    row_group_size: int | None = None,
) -> WriteResult:
    """Write a sync's records (Arrow batches, or a rescannable lazy frame of them) in one commit, with the
    guarantees of `write_frame`.

    `upsert` replaces the table's rows whose `primary_key` matches an incoming row (the last incoming row
    of a key wins) and appends the rest, in one commit. Only the incoming keys are held in memory: the
    records are scanned once for their keys and streamed again into the table (a batch reader is first
    staged as local Parquet so it can be read twice). Incoming rows that repeat a key keep the last one
    by a semi-join on the row numbers of the last occurrences.
    """
    if mode is not WriteMode.UPSERT:
        return write_frame(
            catalog,
            identifier,
            pl.scan_arrow_c_stream(batches) if isinstance(batches, pa.RecordBatchReader) else batches,
            job_id=job_id,
            mode=mode,
            progress=progress,
            partition_spec=partition_spec,
            evolve_partition_spec=evolve_partition_spec,
            row_group_size=row_group_size,
        )
    if not primary_key:
        raise InvalidRequestError("An upsert needs a primary key")
    with tempfile.TemporaryDirectory(prefix="ingest-upsert-", dir=staging_dir) as tmp:
        if isinstance(batches, pa.RecordBatchReader):
            staged = f"{tmp}/staged.parquet"
            pl.scan_arrow_c_stream(batches).sink_parquet(staged)

            def scan() -> pl.LazyFrame:
                return pl.scan_parquet(staged)

        elif isinstance(batches, pl.LazyFrame):
            frame = batches

            def scan() -> pl.LazyFrame:
                return frame

        else:
            scan = batches
        return _upsert(
            catalog,
            identifier,
            scan,
            primary_key,
            job_id=job_id,
            progress=progress,
            partition_spec=partition_spec,
            evolve_partition_spec=evolve_partition_spec,
            row_group_size=row_group_size,
        )


_ROW = "__ingest_row"


def _upsert(
    catalog: Catalog,
    identifier: tuple[str, str],
    scan: Callable[[], pl.LazyFrame],
    primary_key: list[str],
    *,
    job_id: str,
    progress: Progress | None,
    partition_spec: list[partitioning.PartitionField] | None,
    evolve_partition_spec: bool,
    row_group_size: int | None,
) -> WriteResult:
    missing = [k for k in primary_key if k not in scan().collect_schema()]
    if missing:
        raise InvalidRequestError(f"Primary key columns missing from the records: {', '.join(missing)}")
    keys = scan().select(primary_key).collect()
    deduped = scan
    if keys.is_duplicated().any():
        last = keys.with_row_index(_ROW).unique(subset=primary_key, keep="last").select(_ROW).lazy()

        def deduped() -> pl.LazyFrame:
            return scan().with_row_index(_ROW).join(last, on=_ROW, how="semi").drop(_ROW)

        keys = keys.unique()
    table = _load(catalog, identifier)
    replaces = table is not None and table.current_snapshot() is not None and keys.height > 0
    return write_frame(
        catalog,
        identifier,
        deduped,
        job_id=job_id,
        mode=WriteMode.OVERWRITE if replaces else WriteMode.APPEND,
        progress=progress,
        overwrite_filter=_key_filter(keys) if replaces else None,
        partition_spec=partition_spec,
        evolve_partition_spec=evolve_partition_spec,
        row_group_size=row_group_size,
    )


def batches_reader(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> pa.RecordBatchReader:
    """Wrap a batch iterator for `write_batches`."""
    return pa.RecordBatchReader.from_batches(schema, batches)
