"""Big files through a gateway: tus resumable uploads (`/api/v1/files/uploads`) and presigned S3 multipart
uploads (`/api/v1/files/multipart-uploads`). Both end in the file record `POST /files/upload` makes."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, head, patch, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ingest.audit_hook import AUDIT_SCOPE_KEY
from ingest.auth import requires_manage, requires_read
from ingest.core.errors import AppError, GoneError, InvalidRequestError, PayloadTooLargeError
from ingest.core.settings import Settings
from ingest.db.models import Upload
from ingest.files.controller import to_job
from ingest.files.schemas import FileImportJob
from ingest.openapi import errors
from ingest.tenancy import tenant_dependencies
from ingest.uploads.schemas import (
    CompleteMultipartUploadRequest,
    MultipartUpload,
    PresignedPart,
    ResumableUpload,
    StartMultipartUploadRequest,
)
from ingest.uploads.service import (
    CHECKSUM_ALGORITHMS,
    TUS_EXTENSIONS,
    TUS_VERSION,
    ClientDisconnected,
    TusVersionError,
    UploadKind,
    UploadService,
    UploadStatus,
)

OFFSET_STREAM = "application/offset+octet-stream"
FILE_ID_HEADER = "X-File-Id"  # on the PATCH that completes an upload, and on HEAD afterwards
TUS_NOTES = {412: "Tus-Resumable is not 1.0.0 (answered with Tus-Version)"}


def tus_options(settings: Settings) -> dict[str, str]:
    """What `OPTIONS /api/v1/files/uploads` answers (tus discovery), besides `Allow`."""
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(settings.max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        "Upload-Chunk-Max-Size": str(settings.upload_chunk_bytes),  # ours: the largest PATCH body
    }


def _http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC), usegmt=True)


# Set by the version guard: errors from then on carry Tus-Resumable; those before it (401, the permission
# guard's 403, the screening middleware's) are answered as on every other route.
TUS_SCOPE_KEY = "ingest.tus"


async def tus_version(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The guard of the tus routes, after their permission guard: a Tus-Resumable other than 1.0.0 is a 412.

    A missing header passes: the route's required header parameter answers it with a 400.
    """
    connection.scope[TUS_SCOPE_KEY] = True  # type: ignore[literal-required]
    version = connection.headers.get("tus-resumable")
    if version is not None and version != TUS_VERSION:
        raise TusVersionError(f"Tus-Resumable must be {TUS_VERSION}", headers={"Tus-Version": TUS_VERSION})


def tus_error(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    """An AppError on a tus route after its version check: the app's error envelope, with Tus-Resumable."""
    from ingest.app import handle_exception  # the one error envelope (app.py imports controllers lazily)

    if request.scope.get(TUS_SCOPE_KEY):
        exc.headers.setdefault("Tus-Resumable", TUS_VERSION)
    return handle_exception(request, exc)


def _error_answer(request: Request[Any, Any, Any], error: AppError, headers: dict[str, str]) -> Response[Any]:
    """An error answered without raising, so the request's transaction keeps the upload's FAILED state."""
    from ingest.app import error_response  # the one error envelope (app.py imports controllers lazily)

    response = error_response(request, error.status_code, error.message)
    response.headers.update({**error.headers, **headers})
    return response


async def _body(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    """The raw request body; ClientDisconnected when the client goes away before its end."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        body = message.get("body", b"")
        if isinstance(body, bytes) and body:
            yield body
        if not message.get("more_body", False):
            return


def to_resumable(upload: Upload, offset: int) -> ResumableUpload:
    return ResumableUpload(
        id=str(upload.id),
        file_name=upload.file_name,
        upload_length=upload.upload_length,
        upload_offset=offset,
        status=upload.status,
        expires_at=upload.expires_at,
        created_at=upload.created_at,
        file_id=str(upload.file_id) if upload.file_id else None,
        error_message=upload.error_message,
    )


@dataclass
class PatchOperation(Operation):
    """The PATCH handler reads the raw stream: its binary body is described here by hand."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The bytes from Upload-Offset on (at most INGEST_UPLOAD_CHUNK_BYTES)",
            content={
                OFFSET_STREAM: OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                )
            },
        )


# required (a request without it is a 400); a version other than 1.0.0 is tus' 412
TusVersionHeader = Annotated[str, HeaderParameter(name="Tus-Resumable", description="Must be 1.0.0")]


class UploadController(Controller):
    """tus 1.0.0: core, creation, termination, expiration, checksum; a token and X-Tenant-Id as everywhere."""

    path = "/api/v1/files/uploads"
    tags = ["files"]
    dependencies = tenant_dependencies(UploadService)
    exception_handlers = {AppError: tus_error}

    @post(
        "/",
        operation_id="create_upload",
        summary="Start a resumable upload (tus creation)",
        guards=[requires_manage, tus_version],
        status_code=HTTP_201_CREATED,
        opt={"options_headers": tus_options},
        responses=errors(
            412,
            413,
            415,
            notes={
                **TUS_NOTES,
                413: "Upload-Length exceeds INGEST_MAX_UPLOAD_BYTES",
                415: "The file name's extension is not a supported format",
            },
        ),
    )
    async def create_upload(
        self,
        request: Request[Any, Any, Any],
        service: UploadService,
        upload_length: Annotated[
            int, HeaderParameter(name="Upload-Length", ge=0, description="The file's size in bytes")
        ],
        tus_resumable: TusVersionHeader,
        upload_metadata: Annotated[
            str | None,
            HeaderParameter(
                name="Upload-Metadata",
                required=False,
                description="tus metadata: `filename <base64 name>` is required (or `name`)",
            ),
        ] = None,
    ) -> Response[None]:
        """Create a tus upload of Upload-Length bytes; PATCH its Location in chunks, HEAD it to resume."""
        try:
            async for _ in _body(request):  # an empty chunked body (Node's default for POST) is fine
                raise InvalidRequestError("creation-with-upload is not supported: send the bytes with PATCH")
            upload = await service.create(upload_length, upload_metadata)
        except ClientDisconnected:
            raise InvalidRequestError("The client went away before the body ended") from None
        return Response(
            None,
            status_code=HTTP_201_CREATED,
            headers={
                "Location": f"{self.path}/{upload.id}",
                "Tus-Resumable": TUS_VERSION,
                "Upload-Offset": "0",
                "Upload-Expires": _http_date(upload.expires_at),
            },
        )

    @head(
        "/{upload_id:uuid}",
        operation_id="get_upload_offset",
        summary="Resumable upload offset (tus HEAD)",
        guards=[requires_read, tus_version],
        status_code=HTTP_200_OK,
        responses=errors(410, 412, notes=TUS_NOTES),
    )
    async def get_upload_offset(
        self,
        upload_id: uuid.UUID,
        service: UploadService,
        tus_resumable: TusVersionHeader,
    ) -> Response[None]:
        """How many bytes the server holds (Upload-Offset): resume a dropped upload from there."""
        upload = await service.get(upload_id, UploadKind.TUS)
        if upload.status == UploadStatus.FAILED:  # tus: a resource that is gone answers 404 or 410
            raise GoneError(f"Upload {upload_id} failed: {upload.error_message}")
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Offset": str(service.offset(upload)),
            "Upload-Length": str(upload.upload_length),
            "Upload-Expires": _http_date(upload.expires_at),
            "Cache-Control": "no-store",
        }
        if upload.metadata_header:
            headers["Upload-Metadata"] = upload.metadata_header
        if upload.file_id:
            headers[FILE_ID_HEADER] = str(upload.file_id)
        return Response(None, status_code=HTTP_200_OK, headers=headers)

    @get(
        "/{upload_id:uuid}",
        operation_id="get_upload",
        summary="Get a resumable upload",
        guards=[requires_read],
    )
    async def get_upload(self, upload_id: uuid.UUID, service: UploadService) -> ResumableUpload:
        """A resumable upload's progress and, once complete, the id of its file."""
        upload = await service.get(upload_id, UploadKind.TUS)
        return to_resumable(upload, service.offset(upload))

    @patch(
        "/{upload_id:uuid}",
        operation_id="append_upload",
        summary="Send a chunk (tus PATCH)",
        guards=[requires_manage, tus_version],
        status_code=HTTP_204_NO_CONTENT,
        request_max_body_size=None,  # the service enforces INGEST_UPLOAD_CHUNK_BYTES while streaming
        operation_class=PatchOperation,
        opt={"body_media_type": OFFSET_STREAM, "audit": False},  # one audit event per chunk would be noise
        responses=errors(
            409,
            410,
            412,
            413,
            415,
            460,
            notes={
                **TUS_NOTES,
                409: "Upload-Offset is not the upload's offset (HEAD it), or the upload is no longer ACTIVE",
                413: "The body exceeds INGEST_UPLOAD_CHUNK_BYTES or goes past Upload-Length",
                415: "The body is not application/offset+octet-stream, or the completed file's format is "
                "unknown or does not match its extension",
                460: "Checksum Mismatch: the body does not match Upload-Checksum (nothing of it kept)",
            },
        ),
    )
    async def append_upload(
        self,
        request: Request[Any, Any, Any],
        upload_id: uuid.UUID,
        service: UploadService,
        upload_offset: Annotated[
            int, HeaderParameter(name="Upload-Offset", ge=0, description="Where this body starts")
        ],
        tus_resumable: TusVersionHeader,
        upload_checksum: Annotated[
            str | None,
            HeaderParameter(
                name="Upload-Checksum", required=False, description="`sha1|sha256|md5 <base64 digest>`"
            ),
        ] = None,
    ) -> Response[None]:
        """Append a chunk at Upload-Offset; the last one makes the file (its id in X-File-Id)."""
        headers = {"Tus-Resumable": TUS_VERSION}
        limit = service.settings.upload_chunk_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError(
                f"A PATCH body is limited to {limit} bytes (INGEST_UPLOAD_CHUNK_BYTES)"
            )
        upload, file, error = await service.append(upload_id, upload_offset, _body(request), upload_checksum)
        headers["Upload-Offset"] = str(upload.upload_offset)
        headers["Upload-Expires"] = _http_date(upload.expires_at)
        if error is not None:
            return _error_answer(request, error, headers)
        if file is not None:
            headers[FILE_ID_HEADER] = str(file.id)
            request.scope[AUDIT_SCOPE_KEY] = "upload.complete"  # type: ignore[literal-required]
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers=headers)

    @delete(
        "/{upload_id:uuid}",
        operation_id="terminate_upload",
        summary="Cancel a resumable upload (tus termination)",
        guards=[requires_manage, tus_version],
        status_code=HTTP_204_NO_CONTENT,
        responses=errors(412, notes=TUS_NOTES),
    )
    async def terminate_upload(
        self,
        upload_id: uuid.UUID,
        service: UploadService,
        tus_resumable: TusVersionHeader,
    ) -> Response[None]:
        """Delete an upload and its bytes (the file a completed upload made stays)."""
        await service.terminate(upload_id)
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Tus-Resumable": TUS_VERSION})


def to_multipart(service: UploadService, upload: Upload) -> MultipartUpload:
    urls = service.part_urls(upload) if upload.status == UploadStatus.ACTIVE else []
    return MultipartUpload(
        id=str(upload.id),
        file_name=upload.file_name,
        file_size=upload.upload_length,
        part_size=upload.part_size or 0,
        status=upload.status,
        expires_at=upload.expires_at,
        created_at=upload.created_at,
        parts=[PresignedPart(part_number=n, url=url) for n, url in enumerate(urls, start=1)],
    )


class MultipartUploadController(Controller):
    """Presigned S3 multipart uploads: the bytes go straight to the bucket, never through the API."""

    path = "/api/v1/files/multipart-uploads"
    tags = ["files"]
    dependencies = tenant_dependencies(UploadService)

    @post(
        "/",
        operation_id="start_multipart_upload",
        summary="Start a presigned multipart upload (S3 store)",
        guards=[requires_manage],
        status_code=HTTP_201_CREATED,
        opt={"audit": "upload.start_multipart"},  # the `uploads` row it inserts is the audit target
        responses=errors(
            409,
            413,
            415,
            notes={
                409: "The service does not use the S3 store (INGEST_STORAGE_URL=s3://...)",
                413: "fileSize exceeds INGEST_MAX_UPLOAD_BYTES",
                415: "The file name's extension is not a supported format",
            },
        ),
    )
    async def start_multipart_upload(
        self, data: StartMultipartUploadRequest, service: UploadService
    ) -> MultipartUpload:
        """Start an S3 multipart upload: PUT each part to its presigned URL, then complete it."""
        upload, _ = await service.start_multipart(data.file_name, data.file_size)
        return to_multipart(service, upload)

    @get(
        "/{upload_id:uuid}",
        operation_id="get_multipart_upload",
        summary="Get a multipart upload (fresh part URLs)",
        guards=[requires_read],
    )
    async def get_multipart_upload(self, upload_id: uuid.UUID, service: UploadService) -> MultipartUpload:
        """A multipart upload with its part URLs presigned again (to resume after they expired)."""
        return to_multipart(service, await service.get(upload_id, UploadKind.MULTIPART))

    @post(
        "/{upload_id:uuid}/complete",
        operation_id="complete_multipart_upload",
        summary="Complete a multipart upload",
        guards=[requires_manage],
        status_code=HTTP_201_CREATED,
        responses=errors(
            409,
            413,
            415,
            notes={
                409: "The upload is not ACTIVE (completed or failed already)",
                413: "The assembled object exceeds INGEST_MAX_UPLOAD_BYTES (it is deleted)",
                415: "The file's format is unknown or does not match its extension (the object is deleted)",
            },
        ),
    )
    async def complete_multipart_upload(
        self,
        request: Request[Any, Any, Any],
        upload_id: uuid.UUID,
        data: CompleteMultipartUploadRequest,
        service: UploadService,
    ) -> Response[FileImportJob]:
        """Assemble the parts (with their ETags) and check size and format: the uploaded file."""
        _, file, error = await service.complete_multipart(
            upload_id, [(p.part_number, p.etag) for p in data.parts]
        )
        if error is not None:
            return _error_answer(request, error, {})
        assert file is not None
        return Response(to_job(file), status_code=HTTP_201_CREATED)

    @delete(
        "/{upload_id:uuid}",
        operation_id="abort_multipart_upload",
        summary="Abort a multipart upload",
        guards=[requires_manage],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def abort_multipart_upload(self, upload_id: uuid.UUID, service: UploadService) -> None:
        """Abort the S3 multipart upload (its parts are discarded) and forget it."""
        await service.abort_multipart(upload_id)


def route_handlers() -> list[Any]:
    return [UploadController, MultipartUploadController]
