"""All ORM models. Tables are created only by the Alembic migrations in `migrations/`."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ingest.db.base import Base, TenantOwned, utcnow


class Tenant(Base):
    """Per-tenant bookkeeping that outside systems need (the Airbyte workspace, for one)."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    airbyte_workspace_id: Mapped[str | None] = mapped_column(String(64))
    airbyte_destination_id: Mapped[str | None] = mapped_column(String(64))


class Source(TenantOwned, Base):
    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_sources_tenant_name"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    connector_type: Mapped[str] = mapped_column(String(64), nullable=False)
    connector_version: Mapped[str | None] = mapped_column(String(32))
    # non-secret config values in clear; secret values replaced by an encrypted envelope
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="INACTIVE")
    status_message: Mapped[str | None] = mapped_column(Text)
    last_tested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    catalog: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    discovered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    external_id: Mapped[str | None] = mapped_column(String(64))


class Connection(TenantOwned, Base):
    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_connections_tenant_name"),)

    source_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sources.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    destination_type: Mapped[str] = mapped_column(String(32), nullable=False, default="iceberg")
    sync_schedule: Mapped[str | None] = mapped_column(String(120))
    namespace: Mapped[str | None] = mapped_column(String(120))  # the tenant's Iceberg schema; None = default
    selected_streams: Mapped[list[str] | None] = mapped_column(JSONB)
    # per-stream choices [{"name", "syncMode", "cursorField", "primaryKey"}]; None: the connection's mode
    streams: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    sync_mode: Mapped[str] = mapped_column(String(16), nullable=False, default="FULL_REFRESH")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="PENDING")
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # connector STATE, saved only after the data it covers is committed to Iceberg
    state: Mapped[Any | None] = mapped_column(JSONB)
    external_id: Mapped[str | None] = mapped_column(String(64))
    # stream name -> partition fields ([{column, transform}]) its table is created with
    partition_specs: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # why it is PAUSED (by a user, or auto-disabled after repeated failures); None otherwise
    status_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Sync(TenantOwned, Base):
    __tablename__ = "syncs"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="PENDING")
    trigger: Mapped[str] = mapped_column(String(16), nullable=False, default="MANUAL")
    records_synced: Mapped[int | None] = mapped_column(BigInteger)
    bytes_synced: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    error_message: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(default=False, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    external_job_id: Mapped[str | None] = mapped_column(String(64))
    # the connector state this run ended with (incremental): what a rollback rewinds the connection to
    state_after: Mapped[Any | None] = mapped_column(JSONB)
    rolled_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FileImport(TenantOwned, Base):
    __tablename__ = "files"

    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    file_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    file_format: Mapped[str] = mapped_column(String(16), nullable=False)
    storage_path: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="UPLOADED")
    target_table_name: Mapped[str | None] = mapped_column(String(255))
    target_schema: Mapped[str | None] = mapped_column(String(255))
    column_mappings: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    column_types: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    mode: Mapped[str] = mapped_column(String(16), nullable=False, default="append")
    total_rows: Mapped[int | None] = mapped_column(BigInteger)
    records_imported: Mapped[int | None] = mapped_column(BigInteger)
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rolled_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # {"fields": [{column, transform}], "evolve": bool}: the spec the import creates its table with
    partition_spec: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # abort: the first bad value fails the import; skip: bad rows go to `<table>__rejects` within budget
    on_error: Mapped[str] = mapped_column(String(8), nullable=False, default="abort", server_default="abort")
    max_error_rows: Mapped[int | None] = mapped_column(BigInteger)
    max_error_ratio: Mapped[float | None] = mapped_column(Float)
    records_rejected: Mapped[int | None] = mapped_column(BigInteger)
    # the first rejected rows: [{row, column, value, reason}]
    reject_reasons: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # how the file is read (formats.ReadOptions.to_dict): only the chosen options, the rest is detected
    read_options: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class TableOperation(TenantOwned, Base):
    """A rollback or a maintenance run on one Iceberg table, with what it did (`details`)."""

    __tablename__ = "table_operations"

    namespace: Mapped[str] = mapped_column(String(128), nullable=False)
    table_name: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # ROLLBACK | MAINTENANCE
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)  # MANUAL | SCHEDULED
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # SUCCEEDED | SKIPPED | FAILED
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    message: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    """Who changed what, in which tenant, under which request; never a config or secret value."""

    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    actor: Mapped[str] = mapped_column(String(255), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Webhook(TenantOwned, Base):
    __tablename__ = "webhooks"

    url: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    secret: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False)  # encrypted envelope
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(TenantOwned, Base):
    """One event for one webhook: delivered at least once (the same `message_id` on every attempt)."""

    __tablename__ = "webhook_deliveries"

    webhook_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    message_id: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class ApiKey(TenantOwned, Base):
    """A machine credential bound to one tenant; only a keyed hash of the secret is stored."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # the public part of the key, unique: how a presented key finds its row
    prefix: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(String(128), nullable=False)  # HMAC-SHA256, hex
    permissions: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Upload(TenantOwned, Base):
    """An upload in progress: resumable (tus, bytes staged on disk) or presigned multipart (S3 direct).

    It becomes a `files` row only when its last byte is in and the checks pass (`file_id` then names it);
    until then nothing of it is visible as a file.
    """

    __tablename__ = "uploads"

    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # TUS | MULTIPART
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="ACTIVE")
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    upload_length: Mapped[int] = mapped_column(BigInteger, nullable=False)
    upload_offset: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    metadata_header: Mapped[str | None] = mapped_column(Text)  # tus Upload-Metadata, echoed by HEAD
    # MULTIPART: the file id (its object key) chosen at the start; TUS: the file made at completion
    file_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    s3_upload_id: Mapped[str | None] = mapped_column(Text)
    part_size: Mapped[int | None] = mapped_column(BigInteger)
    error_message: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
