"""Resumable uploads (tus 1.0.0: core, creation, termination, expiration, checksum) and presigned S3
multipart uploads, both ending in the same file record as the one-request upload (`FileService.store`).

A tus upload's bytes are staged in a file of their own under INGEST_UPLOAD_DIR, outside the object store:
nothing of an unfinished upload is ever visible as a file. The row's `upload_offset` is the truth; bytes
past it (a crash between a write and its commit) are cut off by the next PATCH. Each PATCH locks the row,
so two requests never append to one upload at once; one that lost the race gets 409 and asks HEAD again.
"""

import asyncio
import base64
import binascii
import hashlib
import math
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.core.errors import (
    AppError,
    ConflictError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from ingest.core.logging import get_logger
from ingest.core.settings import Settings
from ingest.db.models import FileImport, Upload
from ingest.files.service import FileService, display_name
from ingest.formats import format_from_name
from ingest.jobs.runtime import Runtime
from ingest.storage import Storage, object_key
from ingest.uploads.repository import UploadRepository, expired

log = get_logger("ingest.uploads")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration,checksum"
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
MIN_PART_BYTES = 16 * 1024**2  # S3 needs >= 5 MiB per part (but the last); fewer, larger parts save requests
MAX_PARTS = 10_000  # S3's limit
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days
_WRITE_BYTES = 1024**2  # coalesce the network's small messages before each disk write


class UploadKind(StrEnum):
    TUS = "TUS"
    MULTIPART = "MULTIPART"


class UploadStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class ChecksumMismatchError(AppError):
    """tus checksum extension: the chunk's bytes do not match its Upload-Checksum (nothing kept)."""

    status_code = 460


class TusVersionError(AppError):
    status_code = 412


class ClientDisconnected(Exception):
    """The client went away before the request body ended."""


def _now() -> datetime:
    return datetime.now(UTC)


def parse_metadata(header: str | None) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64value` pairs (the value may be absent)."""
    result: dict[str, str] = {}
    if not header:
        return result
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise InvalidRequestError("Upload-Metadata must be comma-separated 'key base64value' pairs")
        try:
            value = base64.b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequestError(
                f"Upload-Metadata '{parts[0][:40]}' is not base64 of UTF-8 text"
            ) from None
        result[parts[0]] = value
    return result


def parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    """tus Upload-Checksum `<algorithm> <base64 digest>`; 400 for an algorithm this server lacks."""
    if not header:
        return None
    algorithm, _, digest = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidRequestError(
            f"Upload-Checksum algorithm must be one of {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        return algorithm, base64.b64decode(digest.strip(), validate=True)
    except binascii.Error:
        raise InvalidRequestError("Upload-Checksum's digest is not base64") from None


def part_size_for(size: int) -> int:
    """The server's part size: at least MIN_PART_BYTES, whole MiB, and at most MAX_PARTS parts."""
    needed = math.ceil(size / MAX_PARTS)
    return max(MIN_PART_BYTES, math.ceil(needed / 1024**2) * 1024**2)


def staged_path(settings: Settings, tenant_id: uuid.UUID, upload_id: uuid.UUID) -> Path:
    """Where a tus upload's bytes wait for their last chunk (never inside the object store)."""
    return settings.partial_uploads_dir / f"tenant-{tenant_id}" / str(upload_id)


def staged_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class UploadService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.runtime = runtime
        self.settings: Settings = runtime.settings
        self.repository = UploadRepository(session, tenant_id)

    @property
    def storage(self) -> Storage:
        storage: Storage = self.runtime.storage
        return storage

    def _expiry(self) -> datetime:
        return _now() + timedelta(hours=self.settings.upload_expire_hours)

    async def _add(
        self,
        kind: UploadKind,
        name: str,
        length: int,
        *,
        metadata_header: str | None = None,
        file_id: uuid.UUID | None = None,
        s3_upload_id: str | None = None,
        part_size: int | None = None,
    ) -> Upload:
        """A new ACTIVE upload of this tenant at offset 0, added to the session."""
        upload = Upload(
            id=uuid.uuid4(),
            tenant_id=self.tenant_id,
            kind=kind,
            status=UploadStatus.ACTIVE,
            file_name=name,
            upload_length=length,
            upload_offset=0,
            metadata_header=metadata_header,
            file_id=file_id,
            s3_upload_id=s3_upload_id,
            part_size=part_size,
            expires_at=self._expiry(),
        )
        await self.repository.add(upload)
        return upload

    def _staged(self, upload: Upload) -> Path:
        return staged_path(self.settings, self.tenant_id, upload.id)

    async def get(self, upload_id: uuid.UUID, kind: UploadKind, *, for_update: bool = False) -> Upload:
        """The tenant's upload; 404 when missing, another tenant's, or expired."""
        upload = await self.repository.get(upload_id, kind=kind, for_update=for_update)
        if upload is None or upload.expires_at <= _now():
            raise NotFoundError(f"Upload {upload_id} not found (or expired)")
        return upload

    def offset(self, upload: Upload) -> int:
        """The offset a client resumes from: the recorded one, unless fewer bytes survived on disk."""
        if upload.status != UploadStatus.ACTIVE:
            return upload.upload_offset
        return min(upload.upload_offset, staged_size(self._staged(upload)))

    # -- tus ----------------------------------------------------------------------------------------------

    async def create(self, length: int, metadata_header: str | None) -> Upload:
        """A new tus upload of `length` bytes; the name comes from Upload-Metadata (`filename` or `name`)."""
        limit = self.settings.max_upload_bytes
        if length > limit:
            raise PayloadTooLargeError(f"The file exceeds the upload limit of {limit} bytes")
        if length == 0:
            raise InvalidRequestError("The file is empty")
        metadata = parse_metadata(metadata_header)
        name = display_name(metadata.get("filename") or metadata.get("name") or "")
        if not name:
            raise InvalidRequestError("Upload-Metadata must carry the file name ('filename', base64)")
        if len(metadata_header or "") > 4096:
            raise InvalidRequestError("Upload-Metadata is limited to 4096 characters")
        format_from_name(name)  # 415 before any byte is sent
        upload = await self._add(UploadKind.TUS, name, length, metadata_header=metadata_header or None)
        log.info("uploads.tus.created", tenant=str(self.tenant_id), upload_id=str(upload.id), length=length)
        return upload

    async def append(
        self, upload_id: uuid.UUID, offset: int, chunks: AsyncIterator[bytes], checksum: str | None
    ) -> tuple[Upload, FileImport | None, AppError | None]:
        """Write one PATCH body at `offset`; at the last byte, make the file record.

        A client that goes away mid-body keeps what arrived (without a checksum to verify). Returns the
        upload, its file once complete, and the error a failed completion ended it with (the upload is then
        FAILED and its bytes deleted; the caller answers the error and keeps that outcome).
        """
        upload = await self.get(upload_id, UploadKind.TUS, for_update=True)
        if upload.status == UploadStatus.FAILED:  # its bytes are deleted: gone, as tus answers
            raise GoneError(f"Upload {upload_id} failed: {upload.error_message}")
        if upload.status != UploadStatus.ACTIVE:
            raise ConflictError(f"Upload {upload_id} is {upload.status}: nothing more can be appended")
        current = self.offset(upload)
        if offset != current:
            raise ConflictError(f"Upload-Offset {offset} is not the upload's offset {current}: ask HEAD")
        expected = parse_checksum(checksum)
        path = self._staged(upload)
        path.parent.mkdir(parents=True, exist_ok=True)
        received, disconnected = await self._write(upload, path, current, chunks, expected)
        upload.upload_offset = current + received
        upload.expires_at = self._expiry()
        await self.session.flush()
        if disconnected:
            log.info("uploads.tus.interrupted", upload_id=str(upload.id), offset=upload.upload_offset)
            return upload, None, None
        if upload.upload_offset < upload.upload_length:
            return upload, None, None
        file, error = await self._complete(upload, path)
        return upload, file, error

    async def _write(
        self,
        upload: Upload,
        path: Path,
        offset: int,
        chunks: AsyncIterator[bytes],
        expected: tuple[str, bytes] | None,
    ) -> tuple[int, bool]:
        """(bytes kept, whether the client went away); on an error nothing of this body is kept."""
        limit = self.settings.upload_chunk_bytes
        room = upload.upload_length - offset
        hasher = hashlib.new(expected[0]) if expected else None
        received = 0
        disconnected = False
        f: IO[bytes] = await asyncio.to_thread(_open, path)
        try:
            f.truncate(offset)  # bytes an earlier request wrote but never recorded
            f.seek(offset)
            buffer = bytearray()
            try:
                async for chunk in chunks:
                    received += len(chunk)
                    if received > limit:
                        raise PayloadTooLargeError(
                            f"A PATCH body is limited to {limit} bytes (INGEST_UPLOAD_CHUNK_BYTES)"
                        )
                    if received > room:
                        raise PayloadTooLargeError(
                            f"The body goes past the Upload-Length of {upload.upload_length}"
                        )
                    if hasher is not None:
                        hasher.update(chunk)
                    buffer += chunk
                    if len(buffer) >= _WRITE_BYTES:
                        await asyncio.to_thread(f.write, bytes(buffer))
                        buffer.clear()
            except ClientDisconnected:
                disconnected = True
            if buffer:
                await asyncio.to_thread(f.write, bytes(buffer))
            if (
                hasher is not None
                and expected is not None
                and (disconnected or hasher.digest() != expected[1])
            ):
                # an unverifiable (cut) or wrong chunk is dropped whole
                f.truncate(offset)
                if disconnected:
                    return 0, True
                raise ChecksumMismatchError("The chunk does not match its Upload-Checksum; send it again")
            # durable before the offset that claims it is committed
            await asyncio.to_thread(_sync, f)
        except BaseException:
            f.truncate(offset)
            raise
        finally:
            f.close()
        return received, disconnected

    async def _complete(self, upload: Upload, path: Path) -> tuple[FileImport | None, AppError | None]:
        files = FileService(self.session, self.tenant_id, self.runtime)
        limit = self.settings.max_upload_bytes
        try:
            async with self.session.begin_nested():
                file = await files.store(
                    upload.file_name, lambda key: self.storage.put_file(key, path, limit)
                )
        except AppError as e:
            _unlink(path)
            return None, await self._fail(upload, e)
        _unlink(path)  # moved into storage already, unless copied across file systems
        upload.status = UploadStatus.COMPLETED
        upload.file_id = file.id
        await self.session.flush()
        log.info(
            "uploads.tus.completed",
            tenant=str(self.tenant_id),
            upload_id=str(upload.id),
            file_id=str(file.id),
        )
        return file, None

    async def _fail(self, upload: Upload, error: AppError) -> AppError:
        upload.status = UploadStatus.FAILED
        upload.error_message = error.message
        await self.session.flush()
        log.info("uploads.failed", tenant=str(self.tenant_id), upload_id=str(upload.id), error=error.message)
        return error

    async def terminate(self, upload_id: uuid.UUID) -> None:
        """tus termination: the upload and its staged bytes are gone (a finished upload's file stays)."""
        upload = await self.get(upload_id, UploadKind.TUS, for_update=True)
        _unlink(self._staged(upload))
        await self.repository.delete(upload)

    # -- presigned multipart (S3) ------------------------------------------------------------------------

    async def start_multipart(self, file_name: str, file_size: int) -> tuple[Upload, list[str]]:
        """An S3 multipart upload of `file_size` bytes, and a presigned URL for each part (of our size)."""
        if not self.storage.presigned_uploads:
            raise ConflictError(
                "Presigned multipart uploads need the S3 store (INGEST_STORAGE_URL=s3://...): use the"
                " resumable upload (/api/v1/files/uploads) or POST /api/v1/files/upload"
            )
        limit = self.settings.max_upload_bytes
        if file_size > limit:
            raise PayloadTooLargeError(f"The file exceeds the upload limit of {limit} bytes")
        name = display_name(file_name)
        if not name:
            raise InvalidRequestError("fileName is empty")
        format_from_name(name)
        part_size = part_size_for(file_size)
        file_id = uuid.uuid4()
        key = object_key(self.tenant_id, file_id, name)
        s3_upload_id = await self.storage.start_multipart(key)
        upload = await self._add(
            UploadKind.MULTIPART,
            name,
            file_size,
            file_id=file_id,
            s3_upload_id=s3_upload_id,
            part_size=part_size,
        )
        log.info(
            "uploads.multipart.started", tenant=str(self.tenant_id), upload_id=str(upload.id), size=file_size
        )
        return upload, self.part_urls(upload)

    def part_count(self, upload: Upload) -> int:
        assert upload.part_size
        return max(1, math.ceil(upload.upload_length / upload.part_size))

    def part_urls(self, upload: Upload) -> list[str]:
        assert upload.file_id
        assert upload.s3_upload_id
        key = object_key(self.tenant_id, upload.file_id, upload.file_name)
        seconds = max(1, min(MAX_PRESIGN_SECONDS, int((upload.expires_at - _now()).total_seconds())))
        return [
            self.storage.presign_part(key, upload.s3_upload_id, n, seconds)
            for n in range(1, self.part_count(upload) + 1)
        ]

    async def complete_multipart(
        self, upload_id: uuid.UUID, parts: list[tuple[int, str]]
    ) -> tuple[Upload, FileImport | None, AppError | None]:
        """Assemble the parts, check size and format: the file record, or FAILED with the object deleted.

        Parts S3 refuses (a wrong ETag, a missing part) leave the upload ACTIVE to be completed again.
        """
        upload = await self.get(upload_id, UploadKind.MULTIPART, for_update=True)
        if upload.status != UploadStatus.ACTIVE:
            raise ConflictError(f"Upload {upload_id} is {upload.status}")
        count = self.part_count(upload)
        if sorted(n for n, _ in parts) != list(range(1, count + 1)):
            raise InvalidRequestError(f"parts must list each part 1..{count} once, with the ETag S3 answered")
        assert upload.s3_upload_id
        assert upload.file_id
        s3_upload_id = upload.s3_upload_id
        assembled = False

        async def write(key: str) -> int:
            nonlocal assembled
            size = await self.storage.complete_multipart(key, s3_upload_id, sorted(parts))
            assembled = True
            if size > self.settings.max_upload_bytes:
                raise PayloadTooLargeError(
                    f"The file exceeds the upload limit of {self.settings.max_upload_bytes} bytes"
                )
            if size != upload.upload_length:
                raise InvalidRequestError(
                    f"The parts hold {size} bytes, not the fileSize {upload.upload_length}"
                )
            return size

        files = FileService(self.session, self.tenant_id, self.runtime)
        try:
            async with self.session.begin_nested():
                file = await files.store(upload.file_name, write, file_id=upload.file_id)
        except AppError as e:
            if not assembled:
                raise
            return upload, None, await self._fail(upload, e)
        upload.status = UploadStatus.COMPLETED
        upload.upload_offset = upload.upload_length
        await self.session.flush()
        log.info(
            "uploads.multipart.completed",
            tenant=str(self.tenant_id),
            upload_id=str(upload.id),
            file_id=str(file.id),
        )
        return upload, file, None

    async def abort_multipart(self, upload_id: uuid.UUID) -> None:
        upload = await self.get(upload_id, UploadKind.MULTIPART, for_update=True)
        if upload.status == UploadStatus.ACTIVE and upload.s3_upload_id and upload.file_id:
            key = object_key(self.tenant_id, upload.file_id, upload.file_name)
            await self.storage.abort_multipart(key, upload.s3_upload_id)
        await self.repository.delete(upload)


def _open(path: Path) -> IO[bytes]:
    return path.open("r+b" if path.exists() else "w+b")


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _sync(f: IO[bytes]) -> None:
    f.flush()
    os.fsync(f.fileno())


async def sweep_expired(runtime: Runtime, now: datetime | None = None) -> int:
    """Remove expired uploads: staged bytes deleted, unfinished S3 multipart uploads aborted, rows gone."""
    now = now or _now()
    async with runtime.session_maker() as session:
        due = await expired(session, now)
    removed = 0
    for tenant_id, upload_id in due:
        try:
            async with runtime.session_maker() as session, session.begin():
                # skip_locked: an upload a PATCH is writing right now is left to the next sweep
                upload = await UploadRepository(session, tenant_id).get(
                    upload_id, for_update=True, skip_locked=True
                )
                if upload is None or upload.expires_at >= now:
                    continue
                if upload.kind == UploadKind.TUS:
                    _unlink(staged_path(runtime.settings, tenant_id, upload.id))
                elif upload.status == UploadStatus.ACTIVE and upload.s3_upload_id and upload.file_id:
                    storage: Storage = runtime.storage
                    key = object_key(tenant_id, upload.file_id, upload.file_name)
                    await storage.abort_multipart(key, upload.s3_upload_id)
                await session.delete(upload)
            removed += 1
        except Exception:  # one bad upload must not stop the sweep; the next run tries it again
            log.warning("uploads.sweep.failed", upload_id=str(upload_id), exc_info=True)
    if removed:
        log.info("uploads.expired.removed", uploads=removed)
    return removed
