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
from ingest.iceberg.warehouse import SnapshotInfo, TableColumn, TableColumns, TableInfo, Warehouse
from ingest.iceberg.writer import (
    JOB_ID_PROPERTY,
    DataConversionError,
    Fit,
    SchemaMismatchError,
    WriteMode,
    WriteResult,
    batches_reader,
    convert,
    fit_columns,
    iceberg_dtype,
    iceberg_type_names,
    mismatch_message,
)

__all__ = [
    "DEFAULT_SCHEMA",
    "JOB_ID_PROPERTY",
    "CompactionCheckError",
    "DataConversionError",
    "FileHealth",
    "Fit",
    "MaintenancePolicy",
    "MaintenanceResult",
    "PartitionField",
    "PartitionSpecConflictError",
    "RollbackPlan",
    "SchemaMismatchError",
    "SnapshotEntry",
    "SnapshotInfo",
    "TableColumn",
    "TableColumns",
    "TableInfo",
    "TableRef",
    "Warehouse",
    "WriteMode",
    "WriteResult",
    "batches_reader",
    "convert",
    "fit_columns",
    "iceberg_dtype",
    "iceberg_type_names",
    "load_catalog",
    "mismatch_message",
    "parse_fields",
    "table_ref",
    "tenant_namespace",
    "tenant_of",
]
