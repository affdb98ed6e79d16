"""File Import API: `/api/v1/files` (upload, preview, schema, import, status) and the formats list."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ingest.auth import requires_manage, requires_read
from ingest.core.errors import InvalidRequestError, PayloadTooLargeError
from ingest.core.schemas import PartitionFieldSchema
from ingest.db.models import FileImport
from ingest.files.plan import OnError, PlanResult, rejects_table_name
from ingest.files.schemas import (
    FileImportJob,
    FilePreviewResponse,
    ImportAccepted,
    ImportPlan,
    ImportStatus,
    PlanColumn,
    PlanConversion,
    PlanRefusal,
    PreviewColumnSchema,
    ReadOptions,
    RejectedValue,
    UpdateSchemaRequest,
)
from ingest.files.service import FileService, formats, percentage
from ingest.formats import DEFAULT_PREVIEW_ROWS, MAX_PREVIEW_ROWS
from ingest.openapi import errors
from ingest.tenancy import tenant_dependencies

FILE_FIELD = "file"
MULTIPART = "multipart/form-data"
MAX_OTHER_FIELD_BYTES = 1024 * 1024  # text fields besides the file (ignored, but read)
ONE_FILE_ONLY = f"The upload must carry exactly one file part (the '{FILE_FIELD}' field)"
_CHUNK_BYTES = 1024**2  # coalesce the network's small chunks before they reach storage


def to_job(file: FileImport) -> FileImportJob:
    return FileImportJob(
        id=str(file.id),
        tenant_id=str(file.tenant_id),
        file_name=file.file_name,
        file_size=file.file_size,
        file_format=file.file_format,
        storage_path=file.storage_path,
        status=file.status,
        created_at=file.created_at,
        updated_at=file.updated_at,
        target_table_name=file.target_table_name,
        target_schema=file.target_schema,
        column_mappings=file.column_mappings,
        column_types=file.column_types,
        mode=file.mode,
        total_rows=file.total_rows,
        records_imported=file.records_imported,
        error_message=file.error_message,
        started_at=file.started_at,
        completed_at=file.completed_at,
        attempts=file.attempts,
        rolled_back_at=file.rolled_back_at,
        partition_spec=[PartitionFieldSchema(**f) for f in file.partition_spec["fields"]]
        if file.partition_spec
        else None,
        evolve_partition_spec=bool(file.partition_spec and file.partition_spec.get("evolve")),
        on_error=file.on_error,
        max_error_rows=file.max_error_rows,
        max_error_ratio=file.max_error_ratio,
        records_rejected=file.records_rejected,
        rejects_table=_rejects_table(file),
        read_options=ReadOptions(**file.read_options) if file.read_options else None,
    )


def _rejects_table(file: FileImport) -> str | None:
    if file.on_error != OnError.SKIP or not file.target_table_name:
        return None
    return f"{file.target_schema}.{rejects_table_name(file.target_table_name)}"


def to_plan(plan: PlanResult) -> ImportPlan:
    file = plan.file
    return ImportPlan(
        file_id=str(file.id),
        target_schema=file.target_schema or "",
        target_table_name=file.target_table_name or "",
        mode=file.mode,
        on_error=file.on_error,
        action=plan.action,
        table_exists=plan.table_exists,
        columns=[PlanColumn(n, t) for n, t in plan.columns],
        new_columns=[PlanColumn(n, t) for n, t in plan.new_columns],
        widened_columns=[PlanConversion(*c) for c in plan.widened],
        converted_columns=[PlanConversion(*c) for c in plan.converted],
        refused_changes=[PlanRefusal(*c) for c in plan.refused],
        replaces_schema=plan.replaces_schema,
        row_count=plan.row_count,
        records_imported=plan.records_imported,
        records_rejected=plan.records_rejected,
        failures=[RejectedValue(r.row, r.column, r.value, r.reason) for r in plan.failures],
        would_succeed=plan.message is None,
        message=plan.message,
        rejects_table=plan.rejects_table,
    )


def options_dict(options: ReadOptions | None) -> dict[str, Any] | None:
    """The wire options as the service takes them (snake_case, only those given)."""
    if options is None:
        return None
    return {k: v for k, v in msgspec.structs.asdict(options).items() if v is not None}


def to_status(file: FileImport) -> ImportStatus:
    return ImportStatus(
        id=str(file.id),
        file_name=file.file_name,
        status=file.status,
        records_imported=file.records_imported,
        total_rows=file.total_rows,
        percentage=percentage(file),
        error_message=file.error_message if file.status == "FAILED" else None,
        started_at=file.started_at,
        completed_at=file.completed_at,
        rolled_back_at=file.rolled_back_at,
        records_rejected=file.records_rejected,
        reject_reasons=[
            RejectedValue(r["row"], r["column"], r.get("value"), r["reason"]) for r in file.reject_reasons
        ]
        if file.reject_reasons is not None
        else None,
        rejects_table=_rejects_table(file),
    )


class MultipartFile:
    """Incremental multipart/form-data parsing over the raw request stream (nothing is buffered whole).

    Litestar 2's own multipart parsing reads the entire body into memory first, which does not work for
    files of gigabytes.
    """

    def __init__(self, stream: AsyncIterator[bytes], content_type: str) -> None:
        ctype, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise InvalidRequestError("The upload must be multipart/form-data with a 'file' field")
        self._stream = stream
        self._events: list[tuple[str, Any]] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._done = False
        self._other_bytes = 0
        self._other_file = False  # the current part is a file under another field name
        self._other_file_seen = False
        callbacks: Any = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": lambda: self._events.append(("end", None)),
            "on_end": lambda: self._events.append(("done", None)),
        }
        self._parser = MultipartParser(boundary, callbacks)

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        self._events.append(("part", self._headers))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(("data", bytes(data[start:end])))

    async def _next(self) -> tuple[str, Any]:
        while not self._events:
            if self._done:
                return ("done", None)
            chunk = await anext(self._stream, None)
            try:
                if chunk is None:
                    self._done = True
                    self._parser.finalize()
                elif chunk:
                    self._parser.write(chunk)
            except MultipartParseError as e:
                raise InvalidRequestError(f"Malformed multipart body: {e}") from None
        return self._events.pop(0)

    async def open(self, field: str = FILE_FIELD) -> str:
        """Advance to the part named `field`; its client-side file name."""
        while True:
            kind, value = await self._next()
            if kind == "done":
                raise InvalidRequestError(f"The multipart body has no '{field}' field")
            if kind == "data":
                self._count_other(value)
            if kind != "part":
                continue
            _, options = parse_options_header(value.get(b"content-disposition", b""))
            file_name = options.get(b"filename")
            self._other_file_seen = self._other_file_seen or self._other_file
            if options.get(b"name", b"").decode("utf-8", "replace") != field:
                self._other_file = file_name is not None  # refused once the 'file' part comes
                continue
            if file_name is None:
                raise InvalidRequestError(f"The '{field}' field must be a file")
            if self._other_file_seen:
                raise InvalidRequestError(ONE_FILE_ONLY)
            name = bytes(file_name).decode("utf-8", "replace")
            if "\x00" in name:
                raise InvalidRequestError("The file name contains a NUL byte")
            return name

    def _count_other(self, data: bytes) -> None:
        self._other_bytes += len(data)
        if self._other_bytes > MAX_OTHER_FIELD_BYTES:
            raise PayloadTooLargeError(
                f"Fields besides the file are limited to {MAX_OTHER_FIELD_BYTES} bytes"
            )

    async def _rest(self) -> None:
        """Read past the file's part to the end: a second file part is refused, other fields are ignored."""
        while True:
            kind, value = await self._next()
            if kind == "done":
                return
            if kind == "data":
                self._count_other(value)
            elif kind == "part":
                _, options = parse_options_header(value.get(b"content-disposition", b""))
                if options.get(b"filename") is not None:
                    raise InvalidRequestError(ONE_FILE_ONLY)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The current part's bytes, in chunks of about 1 MiB."""
        buffer = bytearray()
        while True:
            kind, value = await self._next()
            if kind == "data":
                buffer += value
                if len(buffer) >= _CHUNK_BYTES:
                    yield bytes(buffer)
                    buffer.clear()
                continue
            if kind == "end":
                break
            if kind == "done":  # the stream stopped before the part's closing boundary
                raise InvalidRequestError("The multipart body ended before the file did")
        # before the last bytes reach storage, so a refused body leaves no object behind
        await self._rest()
        if buffer:
            yield bytes(buffer)


@dataclass
class UploadOperation(Operation):
    """The upload handler reads the raw stream, so its multipart body is described here by hand."""

    def __post_init__(self) -> None:
        file_schema = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="The file")
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT, properties={FILE_FIELD: file_schema}, required=[FILE_FIELD]
                    )
                )
            },
        )


class FileFormatController(Controller):
    path = "/api/v1/files/formats"
    tags = ["files"]
    guards = [requires_read]

    @get("/", operation_id="list_file_formats", summary="List supported file formats")
    async def list_file_formats(self) -> list[str]:
        """File formats the import accepts (no X-Tenant-Id needed)."""
        return formats()


class FileController(Controller):
    path = "/api/v1/files"
    tags = ["files"]
    dependencies = tenant_dependencies(FileService)

    @post(
        "/upload",
        operation_id="upload_file",
        summary="Upload a file",
        guards=[requires_manage],
        status_code=HTTP_201_CREATED,
        request_max_body_size=None,  # the service enforces INGEST_MAX_UPLOAD_BYTES while streaming
        operation_class=UploadOperation,
        opt={"body_media_type": MULTIPART},
        responses=errors(
            413,
            415,
            notes={
                413: "The file exceeds INGEST_MAX_UPLOAD_BYTES",
                415: "The body is not multipart/form-data, or the file's format is unknown or does not match "
                "its extension",
            },
        ),
    )
    async def upload_file(self, request: Request[Any, Any, Any], service: FileService) -> FileImportJob:
        """Upload a file (multipart field `file`) into the tenant's storage; its format is checked."""
        limit = service.runtime.settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise PayloadTooLargeError(f"The file exceeds the upload limit of {limit} bytes")
        body = MultipartFile(request.stream(), request.headers.get("content-type", ""))
        file_name = await body.open()
        return to_job(await service.upload(file_name, body.chunks()))

    @get("/", operation_id="list_files", summary="List files", guards=[requires_read])
    async def list_files(self, service: FileService) -> list[FileImportJob]:
        """The tenant's uploaded files, newest first."""
        return [to_job(f) for f in await service.list_all()]

    @get("/{file_id:uuid}", operation_id="get_file", summary="Get a file", guards=[requires_read])
    async def get_file(self, file_id: uuid.UUID, service: FileService) -> FileImportJob:
        """One uploaded file and its import settings."""
        return to_job(await service.get(file_id))

    @delete(
        "/{file_id:uuid}",
        operation_id="delete_file",
        summary="Delete a file",
        guards=[requires_manage],
        responses=errors(409, notes={409: "The file is being imported"}),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_file(self, file_id: uuid.UUID, service: FileService) -> None:
        """Delete an uploaded file (409 while it is being imported); imported table data stays."""
        await service.delete(file_id)

    @get(
        "/{file_id:uuid}/preview",
        operation_id="preview_file",
        summary="Preview a file",
        guards=[requires_read],
        responses=errors(413, notes={413: "A top-level JSON array past INGEST_MAX_JSON_BYTES"}),
    )
    async def preview_file(
        self,
        file_id: uuid.UUID,
        service: FileService,
        rows: Annotated[
            int, QueryParameter(name="rows", ge=1, le=MAX_PREVIEW_ROWS, description="Rows to return (1-1000)")
        ] = DEFAULT_PREVIEW_ROWS,
    ) -> FilePreviewResponse:
        """Inferred columns, sample rows and the exact row count of an uploaded file."""
        file, preview = await service.preview(file_id, rows)
        return FilePreviewResponse(
            file_id=str(file.id),
            file_name=file.file_name,
            columns=[
                PreviewColumnSchema(c.name, c.type.value, c.nullable, c.sample_values, c.precision, c.scale)
                for c in preview.columns
            ],
            preview_rows=preview.rows,
            total_rows=preview.total_rows,
            inferred_types={name: kind.value for name, kind in preview.inferred_types.items()},
            read_options=ReadOptions(**preview.read_options.to_dict()),
            sheets=preview.sheets,
        )

    @put(
        "/{file_id:uuid}/read-options",
        operation_id="update_file_read_options",
        summary="Set how the file is read",
        guards=[requires_manage],
        responses=errors(
            400,
            409,
            notes={
                400: "An option foreign to the file's format, an unknown encoding, a sheet the workbook"
                " does not have, a recordsPath that is not a list of objects, or columns the schema's"
                " mappings no longer match",
                409: "The file is importing or imported",
            },
        ),
        status_code=HTTP_200_OK,
    )
    async def update_file_read_options(
        self, file_id: uuid.UUID, data: ReadOptions, service: FileService
    ) -> FileImportJob:
        """Set how the preview and the import read the file (CSV dialect, sheet, header, records path)."""
        return to_job(await service.set_read_options(file_id, options_dict(data) or {}))

    @put(
        "/{file_id:uuid}/schema",
        operation_id="update_file_schema",
        summary="Set the target table and column mappings",
        guards=[requires_manage],
        responses=errors(
            409,
            notes={
                409: "The file is importing or imported, or the table exists with another partition spec"
                " (evolvePartitionSpec to change it)"
            },
        ),
        status_code=HTTP_200_OK,
    )
    async def update_file_schema(
        self, file_id: uuid.UUID, data: UpdateSchemaRequest, service: FileService
    ) -> FileImportJob:
        """Set the target table (inside the tenant's namespace), column renames and type overrides."""
        file = await service.update_schema(
            file_id,
            data.target_table_name,
            data.target_schema,
            data.column_mappings,
            data.column_types,
            data.mode,
            partition_spec=[{"column": f.column, "transform": f.transform} for f in data.partition_spec]
            if data.partition_spec is not None
            else None,
            evolve_partition_spec=data.evolve_partition_spec,
            on_error=data.on_error,
            max_error_rows=data.max_error_rows,
            max_error_ratio=data.max_error_ratio,
            read_options=options_dict(data.read_options),
        )
        return to_job(file)

    @post(
        "/{file_id:uuid}/import",
        operation_id="import_file",
        summary="Start the import, or plan it (dryRun)",
        guards=[requires_manage],
        responses={
            200: ResponseSpec(
                data_container=ImportPlan,
                description="dryRun=true: what the import would do, read from the file and the table;"
                " nothing is written",
            ),
            202: ResponseSpec(data_container=ImportAccepted, description="The import is queued"),
            **errors(409, notes={409: "No target table yet, or already imported or importing"}),
        },
        status_code=HTTP_202_ACCEPTED,
    )
    async def import_file(
        self,
        file_id: uuid.UUID,
        service: FileService,
        dry_run: Annotated[
            bool,
            QueryParameter(
                name="dryRun",
                description="Answer the plan (200) instead of queueing the import; nothing is written",
            ),
        ] = False,
    ) -> Response[ImportAccepted | ImportPlan]:
        """Queue the import of a configured file (409 when already imported or importing), or plan it."""
        if dry_run:
            return Response(to_plan(await service.plan(file_id)), status_code=HTTP_200_OK)
        file = await service.start_import(file_id)
        return Response(
            ImportAccepted(
                id=str(file.id),
                file_name=file.file_name,
                target_table_name=file.target_table_name,
                target_schema=file.target_schema,
                status=file.status,
                created_at=file.created_at,
            ),
            status_code=HTTP_202_ACCEPTED,
        )

    @get(
        "/{file_id:uuid}/status",
        operation_id="get_import_status",
        summary="Import status",
        guards=[requires_read],
    )
    async def get_import_status(self, file_id: uuid.UUID, service: FileService) -> ImportStatus:
        """Where the import is: rows so far and a percentage while IMPORTING, errorMessage when FAILED."""
        return to_status(await service.get(file_id))


def route_handlers() -> list[Any]:
    return [FileFormatController, FileController]
