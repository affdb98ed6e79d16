"""Object storage for uploads: a local directory by default, S3 (boto3) when INGEST_STORAGE_URL is s3://."""

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse
from uuid import UUID

import boto3

from ingest.core.errors import ConflictError, InvalidRequestError, NotFoundError, PayloadTooLargeError
from ingest.core.settings import Settings

_PART_BYTES = 8 * 1024**2  # S3 parts must be at least 5 MiB (except the last)
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_MAX_NAME = 128


def safe_file_name(name: str) -> str:
    """A safe basename for a client-given file name: no directories, `..`, control or odd characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("_", base).strip(" .")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = stem.strip(" .")[: _MAX_NAME - len(ext) - 1] or "file"
    return f"{stem}.{ext[:16]}" if ext else stem


def object_key(tenant_id: UUID, file_id: UUID, file_name: str) -> str:
    """`tenant-<id>/uploads/<fileId>/<safe name>`: the one place upload keys are built."""
    return f"tenant-{tenant_id}/uploads/{file_id}/{safe_file_name(file_name)}"


def attachment_key(tenant_id: UUID, sha256: str) -> str:
    """`tenant-<id>/attachments/<sha256>`: content-addressed, so a blob stored twice is one object."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidRequestError("Invalid attachment hash")
    return f"tenant-{tenant_id}/attachments/{sha256}"


def storage_path(key: str) -> str:
    """The key as the API shows it (`storagePath`)."""
    return "/" + key


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidRequestError("Invalid storage key")
    return key


class Storage:
    """Streaming writes with a size limit, deletes, and a local path for readers."""

    # S3 only: clients PUT the parts of a multipart upload straight to the bucket (presigned URLs)
    presigned_uploads = False

    async def write(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        """Store the stream under `key`; PayloadTooLargeError (nothing kept) past `max_bytes`."""
        raise NotImplementedError

    async def put_file(self, key: str, path: Path, max_bytes: int) -> int:
        """Move a finished local file (a completed resumable upload) under `key`; 413 past `max_bytes`."""
        raise NotImplementedError

    async def start_multipart(self, key: str) -> str:
        """A multipart upload for clients to PUT parts to; its upload id."""
        raise _no_presigned()

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_seconds: int) -> str:
        raise _no_presigned()

    async def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> int:
        """Assemble the parts (number, ETag); the object's size. 400 for missing or wrong parts."""
        raise _no_presigned()

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        raise _no_presigned()

    async def delete(self, key: str) -> None:
        raise NotImplementedError

    async def exists(self, key: str) -> bool:
        raise NotImplementedError

    def local_copy(self, key: str) -> contextlib.AbstractAsyncContextManager[Path]:
        """A local file with the object's bytes, for as long as the context lasts."""
        raise NotImplementedError

    @staticmethod
    def from_settings(settings: Settings) -> "Storage":
        url = settings.storage_url
        if url and url.startswith("s3://"):
            parsed = urlparse(url)
            return S3Storage(parsed.netloc, parsed.path.strip("/"), endpoint_url=settings.s3_endpoint_url)
        root = Path(url.removeprefix("file://")) if url else settings.data_dir / "objects"
        return LocalStorage(root)


def _no_presigned() -> ConflictError:
    return ConflictError("Presigned multipart uploads need the S3 store (INGEST_STORAGE_URL=s3://...)")


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"The file exceeds the upload limit of {max_bytes} bytes")


class LocalStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    async def write(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        size = 0
        try:
            with partial.open("wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(max_bytes)
                    await asyncio.to_thread(f.write, chunk)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size

    async def put_file(self, key: str, path: Path, max_bytes: int) -> int:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise _too_large(max_bytes)
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)  # same file system: a rename, no copy
        except OSError:
            partial = target.with_name(target.name + ".part")
            try:
                await asyncio.to_thread(shutil.copyfile, path, partial)
                os.replace(partial, target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            os.unlink(path)
        return size

    async def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()

    async def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        # Readers use the stored file in place.
        path = self.path(key)
        if not path.is_file():
            raise NotFoundError("Stored file not found")
        yield path


class S3Storage(Storage):
    presigned_uploads = True

    def __init__(
        self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client: Any = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def write(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        s3_key = self._key(key)
        upload = await asyncio.to_thread(self.client.create_multipart_upload, Bucket=self.bucket, Key=s3_key)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        buffer = bytearray()
        size = 0

        async def flush() -> None:
            number = len(parts) + 1
            response = await asyncio.to_thread(
                self.client.upload_part,
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(buffer),
            )
            parts.append({"PartNumber": number, "ETag": response["ETag"]})
            buffer.clear()

        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                buffer.extend(chunk)
                if len(buffer) >= _PART_BYTES:
                    await flush()
            if buffer or not parts:
                await flush()
            await asyncio.to_thread(
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            await asyncio.to_thread(
                self.client.abort_multipart_upload, Bucket=self.bucket, Key=s3_key, UploadId=upload_id
            )
            raise
        return size

    async def put_file(self, key: str, path: Path, max_bytes: int) -> int:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise _too_large(max_bytes)
        # boto3's managed transfer: a multipart upload of several parts at once, aborted on failure
        await asyncio.to_thread(self.client.upload_file, str(path), self.bucket, self._key(key))
        os.unlink(path)
        return size

    async def start_multipart(self, key: str) -> str:
        upload = await asyncio.to_thread(
            self.client.create_multipart_upload, Bucket=self.bucket, Key=self._key(key)
        )
        return str(upload["UploadId"])

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "UploadId": upload_id,
                "PartNumber": part_number,
            },
            ExpiresIn=expires_seconds,
        )
        return url

    async def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> int:
        s3_key = self._key(key)
        try:
            await asyncio.to_thread(
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
            )
        except self.client.exceptions.ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload", "MalformedXML"):
                raise InvalidRequestError(f"S3 refused to complete the multipart upload ({code})") from None
            raise
        head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=s3_key)
        return int(head["ContentLength"])

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            await asyncio.to_thread(
                self.client.abort_multipart_upload, Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
            )
        except self.client.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") != "NoSuchUpload":  # completed or aborted before
                raise

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    async def exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        # The readers need a seekable local file (Parquet footers, xlsx ZIP directories, polars' mmap'd CSV
        # scan), so the object is streamed to a temporary file first and removed afterwards.
        if not await self.exists(key):
            raise NotFoundError("Stored file not found")
        tmp = Path(tempfile.mkdtemp(prefix="ingest-object-"))
        path = tmp / safe_file_name(PurePosixPath(key).name)
        try:
            await asyncio.to_thread(self.client.download_file, self.bucket, self._key(key), str(path))
            yield path
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
