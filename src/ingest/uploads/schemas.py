"""Wire structs of the resumable and multipart uploads (names match openapi.yaml components)."""

from datetime import datetime
from typing import Annotated

import msgspec

from ingest.core.schemas import CamelStruct


class ResumableUpload(CamelStruct):
    """A tus upload: how far it got; `fileId` names the file once the last byte is in."""

    id: str
    file_name: str
    upload_length: int
    upload_offset: int
    status: str  # ACTIVE | COMPLETED | FAILED
    expires_at: datetime
    created_at: datetime
    file_id: str | None = None
    error_message: str | None = None


class StartMultipartUploadRequest(CamelStruct, forbid_unknown_fields=True):
    file_name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    file_size: Annotated[int, msgspec.Meta(ge=1, le=5 * 1024**4)]  # S3's largest object: 5 TiB


class PresignedPart(CamelStruct):
    part_number: int
    url: str  # PUT the part's bytes here; S3 answers its ETag header


class MultipartUpload(CamelStruct):
    """A presigned S3 multipart upload: PUT each part to its URL, then complete it with the ETags."""

    id: str
    file_name: str
    file_size: int
    part_size: int  # every part but the last is exactly this size
    status: str
    expires_at: datetime
    created_at: datetime
    parts: list[PresignedPart]


class CompletedPart(CamelStruct, forbid_unknown_fields=True):
    part_number: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    etag: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class CompleteMultipartUploadRequest(CamelStruct, forbid_unknown_fields=True):
    parts: Annotated[list[CompletedPart], msgspec.Meta(min_length=1, max_length=10_000)]
