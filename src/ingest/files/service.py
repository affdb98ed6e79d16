"""File imports: upload (streamed, size-limited, format checked), preview, target schema, and the import run.

One file is imported at most once: the Iceberg snapshot it makes is tagged `import-<fileId>`, so a job that
runs again after its worker died finds its own commit and never appends twice. Re-importing a COMPLETED
file is refused (409): upload the file again to import the same data again. A FAILED import committed
nothing under its id and may be started again, after fixing its schema if needed.
"""

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.core import decimals, observe
from ingest.core.errors import AppError, ConflictError, InvalidRequestError, NotFoundError
from ingest.core.logging import get_logger
from ingest.core.types import FILE_COLUMN_TYPES, MAX_DECIMAL_PRECISION, ColumnType, TypeSpec
from ingest.db.models import FileImport
from ingest.files.plan import (
    REJECTS_SUFFIX,
    ErrorBudgetExceededError,
    OnError,
    PlanResult,
    apply_types,
    decimal_comma_of,
    explainer,
    import_forgiving,
    import_job_id,
    plan_import,
    reason_dicts,
)
from ingest.files.repository import FileRepository
from ingest.formats import (
    SUPPORTED_FORMATS,
    FileFormat,
    FilePreview,
    ReadOptions,
    SourceFile,
    check_xlsx_archive,
    detect_format,
    format_from_name,
    preview_file,
)
from ingest.formats.excel import xlsx_declared_rows
from ingest.formats.mail import MAIL_ROW_GROUP_ROWS, is_mail_format
from ingest.formats.readers import type_label, type_spec
from ingest.formats.rejects import (
    Rejection,
)
from ingest.iceberg import (
    DEFAULT_SCHEMA,
    Warehouse,
    WriteMode,
    WriteResult,
    parse_fields,
)
from ingest.iceberg.partitioning import check_columns
from ingest.jobs import queue
from ingest.jobs.locks import hold_table, table_lock
from ingest.jobs.runtime import Runtime
from ingest.storage import Storage, object_key, storage_path

log = get_logger("ingest.files")

IMPORT_TASK = "files.import"
IMPORT_QUEUE = "imports"
PROGRESS_SECONDS = 1.0
_HINT_BYTES = 1024**2
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class FileStatus(StrEnum):
    UPLOADED = "UPLOADED"
    CONFIGURED = "CONFIGURED"
    IMPORTING = "IMPORTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


IMPORTABLE = frozenset({FileStatus.CONFIGURED, FileStatus.FAILED})
CONFIGURABLE = frozenset({FileStatus.UPLOADED, FileStatus.CONFIGURED, FileStatus.FAILED})


# Conversions an override may ask for, by the inferred type (STRING -> anything is parsed from text).
_ALLOWED: dict[str, set[ColumnType]] = {
    "STRING": set(FILE_COLUMN_TYPES),
    "INTEGER": {ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.STRING, ColumnType.BOOLEAN},
    "DECIMAL": {ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.STRING},
    "BOOLEAN": {ColumnType.BOOLEAN, ColumnType.STRING, ColumnType.INTEGER},
    "DATE": {ColumnType.DATE, ColumnType.TIMESTAMP, ColumnType.STRING},
    "TIMESTAMP": {ColumnType.DATE, ColumnType.TIMESTAMP, ColumnType.STRING},
    "JSON": set(),  # lists and structs (mail files) keep their type
}
# plain DECIMAL in columnTypes takes its precision and scale from this many first values of the column
DECIMAL_SAMPLE_ROWS = 1000


class FileNotImportableError(ConflictError):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def display_name(file_name: str) -> str:
    """The client's base name for display only (storage keys use `object_key`)."""
    base = PurePosixPath(file_name.replace("\\", "/")).name
    return "".join(ch for ch in base if ch.isprintable())[:255]


def percentage(file: FileImport) -> float | None:
    if file.status == FileStatus.COMPLETED:
        return 100.0
    if file.status != FileStatus.IMPORTING or not file.total_rows:
        return None
    # totalRows may be an estimate while IMPORTING (csv, jsonl): never claim 100 before the end
    return round(min(99.9, 100.0 * (file.records_imported or 0) / file.total_rows), 1)


def check_schema_request(
    columns: dict[str, str],
    mappings: dict[str, str] | None,
    types: dict[str, str] | None,
    mode: str | None,
) -> None:
    """400 for mappings or types naming unknown columns, invalid or duplicate targets, impossible casts.

    `columns` maps each source column to its inferred type label (INTEGER, STRING, ...).
    """
    mappings = mappings or {}
    unknown = [name for name in mappings if name not in columns]
    if unknown:
        raise InvalidRequestError(
            "columnMappings name columns the file does not have: " + ", ".join(f"'{n[:80]}'" for n in unknown)
        )
    for source, target in mappings.items():
        if not _COLUMN_NAME.match(target):
            raise InvalidRequestError(
                f"columnMappings target for '{source[:80]}' is not a valid column name '{target[:80]}':"
                " use letters, digits and underscores (not starting with a digit)"
            )
    finals = [mappings.get(name, name) for name in columns]
    duplicates = sorted({name for name in finals if finals.count(name) > 1})
    if duplicates:
        raise InvalidRequestError(
            "columnMappings produce duplicate column names: " + ", ".join(f"'{d[:80]}'" for d in duplicates)
        )
    for name, kind in (types or {}).items():
        if name not in columns:
            raise InvalidRequestError(f"columnTypes names a column the file does not have: '{name[:80]}'")
        try:
            spec = TypeSpec.parse(kind)
        except ValueError as e:
            allowed = ", ".join(t for t in ColumnType if t in FILE_COLUMN_TYPES)
            raise InvalidRequestError(
                f"columnTypes['{name[:80]}'] must be one of {allowed} or DECIMAL(precision,scale): {e}"
            ) from None
        if spec.type not in FILE_COLUMN_TYPES:
            allowed = ", ".join(t for t in ColumnType if t in FILE_COLUMN_TYPES)
            raise InvalidRequestError(f"columnTypes['{name[:80]}'] must be one of {allowed} or DECIMAL(p,s)")
        if spec.type not in _ALLOWED.get(columns[name], FILE_COLUMN_TYPES):
            raise InvalidRequestError(
                f"Column '{name[:80]}' is {columns[name]} and cannot be converted to {spec.type}"
            )
    if mode is not None and mode not in (WriteMode.APPEND, WriteMode.OVERWRITE):
        raise InvalidRequestError("mode must be 'append' or 'overwrite'")


def formats() -> list[str]:
    return [f.value for f in SUPPORTED_FORMATS]


# -- the service the API calls --------------------------------------------------------------------------


class FileService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.runtime = runtime
        self.repository = FileRepository(session, tenant_id)

    @property
    def storage(self) -> Storage:
        storage: Storage = self.runtime.storage
        return storage

    @property
    def warehouse(self) -> Warehouse:
        warehouse: Warehouse = self.runtime.warehouse
        return warehouse

    def _source(self, path: Path, file: FileImport, read_options: dict[str, Any] | None = None) -> SourceFile:
        return SourceFile(
            path,
            FileFormat(file.file_format),
            max_json_bytes=self.runtime.settings.max_json_bytes,
            options=ReadOptions.from_dict(file.read_options if read_options is None else read_options),
        )

    async def get(self, file_id: uuid.UUID, *, for_update: bool = False) -> FileImport:
        file = await self.repository.get(file_id, for_update=for_update)
        if file is None:
            raise NotFoundError(f"File {file_id} not found")
        return file

    async def list_all(self) -> list[FileImport]:
        return await self.repository.list_all()

    async def upload(self, file_name: str, chunks: AsyncIterator[bytes]) -> FileImport:
        """Stream the bytes to storage (413 past the limit), check the format; keep nothing on failure."""
        limit = self.runtime.settings.max_upload_bytes
        return await self.store(file_name, lambda key: self.storage.write(key, chunks, limit))

    async def store(
        self, file_name: str, write: Callable[[str], Awaitable[int]], *, file_id: uuid.UUID | None = None
    ) -> FileImport:
        """The file record of bytes `write(key)` puts in storage (its size), once their format is checked.

        The one-request upload, a finished resumable upload and a completed multipart upload all end here;
        on any failure the stored object is deleted.
        """
        name = display_name(file_name)
        if not name:
            raise InvalidRequestError("The uploaded file has no name")
        format_from_name(name)  # 415 before any byte is stored
        file_id = file_id or uuid.uuid4()
        key = object_key(self.tenant_id, file_id, name)
        try:
            size = await write(key)
        except BaseException:
            await self.storage.delete(key)
            raise
        try:
            if size == 0:
                raise InvalidRequestError("The file is empty")
            async with self.storage.local_copy(key) as path:
                fmt = await asyncio.to_thread(_check_upload, path, name)
            file = FileImport(
                id=file_id,
                tenant_id=self.tenant_id,
                file_name=name,
                file_size=size,
                file_format=fmt.value,
                storage_path=storage_path(key),
                status=FileStatus.UPLOADED,
                mode=WriteMode.APPEND.value,
                attempts=0,
            )
            await self.repository.add(file)
        except BaseException:
            await self.storage.delete(key)
            raise
        log.info(
            "files.uploaded", tenant=str(self.tenant_id), file_id=str(file_id), size=size, format=fmt.value
        )
        return file

    async def preview(self, file_id: uuid.UUID, rows: int) -> tuple[FileImport, FilePreview]:
        file = await self.get(file_id)
        async with self.storage.local_copy(_key(file)) as path:
            with self._source(path, file) as source:
                preview = await asyncio.to_thread(preview_file, source, rows)
        if file.total_rows != preview.total_rows:
            file.total_rows = preview.total_rows
            await self.session.flush()
        return file, preview

    async def update_schema(
        self,
        file_id: uuid.UUID,
        target_table_name: str,
        target_schema: str | None,
        column_mappings: dict[str, str] | None,
        column_types: dict[str, str] | None,
        mode: str | None,
        *,
        partition_spec: list[dict[str, str]] | None = None,
        evolve_partition_spec: bool = False,
        on_error: str = OnError.ABORT,
        max_error_rows: int | None = None,
        max_error_ratio: float | None = None,
        read_options: dict[str, Any] | None = None,
    ) -> FileImport:
        file = await self.get(file_id, for_update=True)
        if file.status not in CONFIGURABLE:
            raise FileNotImportableError(f"File {file_id} is {file.status}: its schema can no longer change")
        self.warehouse.ref(self.tenant_id, target_schema, target_table_name)  # 400 on invalid identifiers
        check_error_policy(target_table_name, on_error, max_error_rows, max_error_ratio)
        if read_options is not None:
            read_options = _checked_options(file, read_options)
        async with self.storage.local_copy(_key(file)) as path:
            with self._source(path, file, read_options) as source:
                schema = await asyncio.to_thread(_file_schema, source)
                columns = {name: type_label(dtype) for name, dtype in schema.items()}
                check_schema_request(columns, column_mappings, column_types, mode)
                if column_types:
                    column_types = await asyncio.to_thread(resolve_types, source, schema, column_types)
        if read_options is not None:
            file.read_options = read_options or None
        spec = parse_fields(partition_spec)
        if spec is not None:
            # the table's columns: renamed by the mappings, typed by the overrides
            final = {
                (column_mappings or {}).get(n, n): (column_types or {}).get(n, t) for n, t in columns.items()
            }
            check_columns(spec, final)
            await asyncio.to_thread(
                self.warehouse.check_partition_spec,
                self.tenant_id,
                target_schema,
                target_table_name,
                spec,
                evolve=evolve_partition_spec,
            )
        file.partition_spec = (
            {"fields": [f.as_dict() for f in spec], "evolve": evolve_partition_spec}
            if spec is not None
            else None
        )
        file.target_table_name = target_table_name
        file.target_schema = target_schema or DEFAULT_SCHEMA
        file.column_mappings = {s: t for s, t in (column_mappings or {}).items()} or None
        file.column_types = dict(column_types) if column_types else None
        file.mode = mode or WriteMode.APPEND.value
        file.on_error = on_error
        file.max_error_rows = max_error_rows
        file.max_error_ratio = max_error_ratio
        file.status = FileStatus.CONFIGURED
        file.error_message = None
        await self.session.flush()
        return file

    async def set_read_options(self, file_id: uuid.UUID, read_options: dict[str, Any]) -> FileImport:
        """Store how the file is read, once it reads with them (400 otherwise, naming what does not fit)."""
        file = await self.get(file_id, for_update=True)
        if file.status not in CONFIGURABLE:
            raise FileNotImportableError(
                f"File {file_id} is {file.status}: its read options can no longer change"
            )
        options = _checked_options(file, read_options)
        async with self.storage.local_copy(_key(file)) as path:
            with self._source(path, file, options) as source:
                schema = await asyncio.to_thread(_file_schema, source)
        if file.target_table_name is not None:
            # a configured schema must still fit the columns these options give
            columns = {name: type_label(dtype) for name, dtype in schema.items()}
            try:
                check_schema_request(columns, file.column_mappings, file.column_types, file.mode)
            except InvalidRequestError as e:
                raise InvalidRequestError(
                    f"{e.message} with these read options: PUT the schema with its readOptions to change both"
                ) from None
        file.read_options = options or None
        await self.session.flush()
        return file

    async def start_import(self, file_id: uuid.UUID) -> FileImport:
        """IMPORTING, and a durable job enqueued in the same transaction (202)."""
        file = await self.get(file_id, for_update=True)
        _check_importable(file)
        assert file.target_table_name is not None
        file.status = FileStatus.IMPORTING
        file.records_imported = 0
        file.records_rejected = None
        file.reject_reasons = None
        file.error_message = None
        file.started_at = None
        file.completed_at = None
        await self.session.flush()
        await queue.defer(
            self.session,
            IMPORT_TASK,
            queue=IMPORT_QUEUE,
            lock=table_lock(self.tenant_id, file.target_schema, file.target_table_name),
            tenant_id=str(self.tenant_id),
            file_id=str(file.id),
        )
        log.info("files.import.queued", tenant=str(self.tenant_id), file_id=str(file.id))
        return file

    async def plan(self, file_id: uuid.UUID) -> PlanResult:
        """A dry run: what the import would do, read from the file and the table; nothing is written."""
        file = await self.get(file_id)
        _check_importable(file)
        async with self.storage.local_copy(_key(file)) as path:
            with self._source(path, file) as source:  # closing removes a transcoded csv's staged copy
                return await asyncio.to_thread(
                    plan_import,
                    self.warehouse,
                    self.tenant_id,
                    file,
                    source,
                    self.runtime.settings.data_dir,
                )

    async def delete(self, file_id: uuid.UUID) -> None:
        file = await self.get(file_id, for_update=True)
        if file.status == FileStatus.IMPORTING:
            raise FileNotImportableError(f"File {file_id} is being imported")
        await self.repository.delete(file)
        await self.storage.delete(_key(file))


def _check_importable(file: FileImport) -> None:
    if file.status == FileStatus.UPLOADED:
        raise FileNotImportableError(f"File {file.id} has no target table yet: PUT its schema first")
    if file.status not in IMPORTABLE:
        hint = " (upload it again to import it again)" if file.status == FileStatus.COMPLETED else ""
        raise FileNotImportableError(f"File {file.id} is {file.status}{hint}")


def check_error_policy(
    table: str, on_error: str, max_error_rows: int | None, max_error_ratio: float | None
) -> None:
    """400 for budgets without onError skip, skip without a budget, or a target too long for its rejects."""
    if on_error != OnError.SKIP:
        if max_error_rows is not None or max_error_ratio is not None:
            raise InvalidRequestError("maxErrorRows and maxErrorRatio apply to onError 'skip' only")
        return
    if max_error_rows is None and max_error_ratio is None:
        raise InvalidRequestError(
            "onError 'skip' needs maxErrorRows and/or maxErrorRatio (maxErrorRatio 1 allows any number)"
        )
    longest = 128 - len(REJECTS_SUFFIX)
    if len(table) > longest:
        raise InvalidRequestError(
            f"With onError 'skip' the targetTableName may have at most {longest} characters:"
            f" its rejected rows go to '<targetTableName>{REJECTS_SUFFIX}'"
        )


def _key(file: FileImport) -> str:
    return file.storage_path.lstrip("/")


def _checked_options(file: FileImport, read_options: dict[str, Any]) -> dict[str, Any]:
    """The options normalized (the encoding's codec name); 400 for a bad one or one foreign to the format."""
    return ReadOptions.from_dict(read_options).check(FileFormat(file.file_format)).to_dict()


def _file_schema(source: SourceFile) -> pl.Schema:
    """Column names and inferred types without reading the data (a workbook reads a sample)."""
    if source.format in (FileFormat.XLSX, FileFormat.XLS):
        return source.head(1000).schema
    try:
        return source.schema()
    except AppError:
        raise
    except Exception as e:
        raise InvalidRequestError(source.explain(e)) from None


def resolve_types(source: SourceFile, schema: pl.Schema, types: dict[str, str]) -> dict[str, str]:
    """The overrides as stored: names normalized, plain DECIMAL given the precision and scale of the data.

    Plain DECIMAL keeps an exact decimal column's own (p,s), and otherwise infers them from the first
    DECIMAL_SAMPLE_ROWS values as the file readers do (400 when those are not all plain decimal numbers).
    """
    specs = {name: TypeSpec.parse(kind) for name, kind in types.items()}
    plain = [n for n, spec in specs.items() if spec.type is ColumnType.DECIMAL and spec.precision is None]
    if plain:
        sample = source.head(DECIMAL_SAMPLE_ROWS).select(plain)
        for name in plain:
            dtype = schema[name]
            if isinstance(dtype, pl.Decimal):
                specs[name] = type_spec(dtype)
                continue
            values = sample.get_column(name)
            # asked for a decimal: any scale Iceberg holds, not only the inference's short ones
            infer = decimals.infer_from_floats if dtype.is_float() else decimals.infer_from_text
            found = infer(values, MAX_DECIMAL_PRECISION)
            if found is None:
                raise InvalidRequestError(
                    f"columnTypes['{name[:80]}'] is DECIMAL but the column's first values are not all plain"
                    " decimal numbers (or need more than 38 digits): give DECIMAL(precision,scale)"
                )
            specs[name] = found
    return {name: str(spec) for name, spec in specs.items()}


def _check_upload(path: Path, name: str) -> FileFormat:
    fmt = detect_format(path, name)
    if fmt is FileFormat.XLSX:
        check_xlsx_archive(path)
    return fmt


# -- the import run (the job, and `ingest import`) -------------------------------------------------------


@dataclass
class ImportOutcome:
    status: FileStatus
    records_imported: int
    total_rows: int | None
    error_message: str | None = None
    records_rejected: int | None = None  # under onError skip: rows set aside in <table>__rejects


ProgressCallback = Callable[[int, int | None], None]


async def run_import(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    file_id: uuid.UUID,
    *,
    on_progress: ProgressCallback | None = None,
) -> ImportOutcome | None:
    """Run a queued import to COMPLETED or FAILED; None when the file is gone or no longer IMPORTING.

    Safe to run again after a crash: the write is tagged with the file's import id, so a commit made by an
    earlier attempt is found and counted instead of appended twice.
    """
    async with runtime.session_maker() as session:
        repo = FileRepository(session, tenant_id)
        file = await repo.get(file_id, for_update=True)
        if file is None or file.status != FileStatus.IMPORTING:
            log.warning("files.import.skipped", file_id=str(file_id), status=file.status if file else None)
            return None
        file.attempts += 1
        file.started_at = _now()
        file.records_imported = 0
        await session.commit()
    log.info("files.import.started", tenant=str(tenant_id), file_id=str(file_id), attempt=file.attempts)
    started = time.monotonic()

    rows_seen = [0]

    def progress(rows: int) -> None:  # on polars' threads: only note the count
        rows_seen[0] = rows

    total = file.total_rows
    try:
        storage: Storage = runtime.storage
        warehouse: Warehouse = runtime.warehouse
        async with storage.local_copy(_key(file)) as path, contextlib.AsyncExitStack() as stack:
            source = SourceFile(
                path,
                FileFormat(file.file_format),
                max_json_bytes=runtime.settings.max_json_bytes,
                options=ReadOptions.from_dict(file.read_options),
            )
            stack.callback(source.close)  # the staged UTF-8 copy of a transcoded csv
            if total is None:
                total = await asyncio.to_thread(_rows_hint, source, file.file_size)
                if total is not None:
                    await _save(runtime, tenant_id, file_id, total_rows=total)
            types = file.column_types

            def scan() -> pl.LazyFrame:
                return apply_types(
                    source.scan(raw=(types or {}).keys()),
                    types,
                    decimal_comma=decimal_comma_of(source),
                )

            def write_all() -> tuple[WriteResult, int | None, list[Rejection]]:
                if file.on_error == OnError.SKIP:
                    return import_forgiving(
                        warehouse, tenant_id, file, source, progress, runtime.settings.data_dir
                    )
                assert file.target_table_name is not None
                written = warehouse.write_frame(
                    tenant_id,
                    file.target_schema,
                    file.target_table_name,
                    scan,
                    job_id=import_job_id(file_id),
                    mode=WriteMode(file.mode),
                    column_mappings=file.column_mappings,
                    progress=progress,
                    explain=explainer(source, types),
                    partition_spec=parse_fields(spec["fields"]) if (spec := file.partition_spec) else None,
                    evolve_partition_spec=bool(spec and spec.get("evolve")),
                    row_group_size=MAIL_ROW_GROUP_ROWS if is_mail_format(source.format) else None,
                )
                return written, None, []

            assert file.target_table_name is not None
            # the table's lock: maintenance or a rollback of this table never runs during the write
            async with hold_table(
                runtime.session_maker, tenant_id, file.target_schema, file.target_table_name
            ):
                write = asyncio.create_task(asyncio.to_thread(write_all))
                reported = 0
                while not write.done():
                    await asyncio.wait({write}, timeout=PROGRESS_SECONDS)
                    if rows_seen[0] != reported and not write.done():
                        reported = rows_seen[0]
                        await _record_progress(runtime, tenant_id, file_id, reported)
                        if on_progress is not None:
                            on_progress(reported, total)
                result, rejected, reasons = write.result()
    except AppError as e:
        log.warning("files.import.failed", tenant=str(tenant_id), file_id=str(file_id), error=e.message)
        await _save(
            runtime,
            tenant_id,
            file_id,
            status=FileStatus.FAILED,
            error_message=e.message,
            completed_at=_now(),
            **(
                {"records_rejected": e.rejected, "reject_reasons": reason_dicts(e.reasons)}
                if isinstance(e, ErrorBudgetExceededError)
                else {}
            ),
        )

        observe.import_finished(FileStatus.FAILED, time.monotonic() - started, 0, file.file_size)
        return ImportOutcome(
            FileStatus.FAILED,
            0,
            total,
            e.message,
            records_rejected=e.rejected if isinstance(e, ErrorBudgetExceededError) else None,
        )
    except Exception as e:
        log.error("files.import.error", tenant=str(tenant_id), file_id=str(file_id), exc_info=e)
        message = f"The import failed unexpectedly ({type(e).__name__}); it can be started again"
        await _save(
            runtime, tenant_id, file_id, status=FileStatus.FAILED, error_message=message, completed_at=_now()
        )
        observe.import_finished(FileStatus.FAILED, time.monotonic() - started, 0, file.file_size)
        return ImportOutcome(FileStatus.FAILED, 0, total, message)

    rows = result.rows_written
    await _save(
        runtime,
        tenant_id,
        file_id,
        status=FileStatus.COMPLETED,
        records_imported=rows,
        # every row went in or was set aside: exact now, whatever the estimate was
        total_rows=rows + (rejected or 0),
        records_rejected=rejected,
        reject_reasons=reason_dicts(reasons) if rejected is not None else None,
        completed_at=_now(),
    )
    if on_progress is not None:
        on_progress(rows, rows)
    log.info(
        "files.import.completed",
        tenant=str(tenant_id),
        file_id=str(file_id),
        rows=rows,
        already_applied=result.already_applied,
        snapshot_id=result.snapshot_id,
    )
    observe.import_finished(FileStatus.COMPLETED, time.monotonic() - started, rows, file.file_size)
    return ImportOutcome(FileStatus.COMPLETED, rows, rows + (rejected or 0), records_rejected=rejected)


def _rows_hint(source: SourceFile, file_size: int) -> int | None:
    """Rows for the progress percentage without a pass over the data.

    Exact from metadata (parquet, avro, the dimension an xlsx sheet declares); none for xls; for csv
    and jsonl an estimate from the first MiB's line lengths (replaced by the exact count when the import
    completes); None for a JSON array.
    """
    if source.format in (FileFormat.PARQUET, FileFormat.AVRO):
        return source.count_rows()
    if source.format is FileFormat.XLSX and source.options.sheet is None and not source.options.skip_rows:
        # counting through the reader would parse the whole sheet a second time (0.8 s of a 1.9 s
        # import at 200k rows): the sheet's declared dimension is enough for a percentage
        return xlsx_declared_rows(source.path)
    if source.format in (FileFormat.XLS, FileFormat.XLSX) or source.options.records_path is not None:
        return None
    if is_mail_format(source.format):
        # a zip's directory or a PST's folders say it cheaply; an mbox would need a pass over the file
        return None if source.format is FileFormat.MBOX else source.count_rows()
    if source.format not in (FileFormat.CSV, FileFormat.JSONL):
        return None
    with source.path.open("rb") as f:
        head = f.read(_HINT_BYTES)
    lines = head.count(b"\n")
    if len(head) < _HINT_BYTES:
        return max(0, lines - (1 if source.format is FileFormat.CSV else 0))
    if lines == 0:
        return None
    return max(1, round(file_size / (len(head) / lines)))


async def _save(runtime: Runtime, tenant_id: uuid.UUID, file_id: uuid.UUID, **values: Any) -> None:
    """Update the file while it is IMPORTING (a deleted or reset file is left alone)."""
    async with runtime.session_maker() as session:
        changed = await FileRepository(session, tenant_id).update_if(
            file_id, {FileStatus.IMPORTING}, **values
        )
        status = values.get("status")
        if changed and status in (FileStatus.COMPLETED, FileStatus.FAILED):
            from ingest.webhooks.service import emit, iso

            # in the same transaction as the status (outbox): the event exists iff the status was saved
            await emit(
                session,
                tenant_id,
                "import.completed" if status == FileStatus.COMPLETED else "import.failed",
                {
                    "fileId": str(file_id),
                    "status": status,
                    "recordsImported": values.get("records_imported"),
                    "recordsRejected": values.get("records_rejected"),
                    "completedAt": iso(values.get("completed_at")),
                },
            )
        await session.commit()


async def _record_progress(runtime: Runtime, tenant_id: uuid.UUID, file_id: uuid.UUID, rows: int) -> None:
    try:
        async with runtime.session_maker() as session:
            await FileRepository(session, tenant_id).set_progress(file_id, rows)
            await session.commit()
    except Exception:  # progress is advisory: never fail an import over it
        log.warning("files.import.progress_failed", file_id=str(file_id), exc_info=True)


async def mark_abandoned(runtime: Runtime, tenant_id: uuid.UUID, file_id: uuid.UUID, message: str) -> None:
    """The queue gave up on the job (its worker kept dying): FAILED instead of IMPORTING forever."""
    await _save(
        runtime, tenant_id, file_id, status=FileStatus.FAILED, error_message=message, completed_at=_now()
    )
    log.error("files.import.abandoned", tenant=str(tenant_id), file_id=str(file_id))


async def import_local_file(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    path: Path,
    table: str,
    schema: str | None,
    *,
    on_progress: ProgressCallback | None = None,
    choices: dict[str, Any] | None = None,
) -> tuple[FileImport, ImportOutcome | None]:
    """`ingest import`: the API's pipeline in-process (stored, checked, recorded, imported), no worker.

    `choices`: what `PUT /files/{id}/schema` takes besides the table (column_mappings, column_types,
    mode, on_error, max_error_rows, max_error_ratio, read_options), checked the same way.
    """
    choices = dict(choices or {})

    warehouse: Warehouse = runtime.warehouse
    warehouse.ref(tenant_id, schema, table)  # 400 on invalid names before anything is stored

    async def chunks() -> AsyncIterator[bytes]:
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, 8 * 1024**2):
                yield chunk

    async with runtime.session_maker() as session:
        service = FileService(session, tenant_id, runtime)
        file = await service.upload(path.name, chunks())
        file = await service.update_schema(
            file.id,
            table,
            schema,
            choices.pop("column_mappings", None),
            choices.pop("column_types", None),
            choices.pop("mode", None),
            **choices,
        )
        file.status = FileStatus.IMPORTING
        file.records_imported = 0
        await session.commit()
    outcome = await run_import(runtime, tenant_id, file.id, on_progress=on_progress)
    return file, outcome
