"""The only package that imports pyiceberg: the catalog, tenant-scoped table names, and the writers."""

from ingest.iceberg.care import FileHealth, RollbackPlan, SnapshotEntry
from ingest.iceberg.catalog import (
    DEFAULT_SCHEMA,
    TableRef,
    load_catalog,
    table_ref,
    tenant_namespace,
    tenant_of,
)
from ingest.iceberg.maintenance import CompactionCheckError, MaintenancePolicy, MaintenanceResult
from ingest.iceberg.partitioning import PartitionField, PartitionSpecConflictError, parse_fields
from ingest.iceberg.warehouse import SnapshotInfo, TableColumn, TableInfo, Warehouse
from ingest.iceberg.writer import (
    JOB_ID_PROPERTY,
    DataConversionError,
    SchemaMismatchError,
    WriteMode,
    WriteResult,
    batches_reader,
)

__all__ = [
    "DEFAULT_SCHEMA",
    "JOB_ID_PROPERTY",
    "CompactionCheckError",
    "DataConversionError",
    "FileHealth",
    "MaintenancePolicy",
    "MaintenanceResult",
    "PartitionField",
    "PartitionSpecConflictError",
    "RollbackPlan",
    "SchemaMismatchError",
    "SnapshotEntry",
    "SnapshotInfo",
    "TableColumn",
    "TableInfo",
    "TableRef",
    "Warehouse",
    "WriteMode",
    "WriteResult",
    "batches_reader",
    "load_catalog",
    "parse_fields",
    "table_ref",
    "tenant_namespace",
    "tenant_of",
]
