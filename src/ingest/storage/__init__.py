"""The only package that touches the object store (a local directory or S3 through boto3)."""

from ingest.storage.store import (
    LocalStorage,
    S3Storage,
    Storage,
    attachment_key,
    object_key,
    safe_file_name,
    storage_path,
)

__all__ = [
    "LocalStorage",
    "S3Storage",
    "Storage",
    "attachment_key",
    "object_key",
    "safe_file_name",
    "storage_path",
]
