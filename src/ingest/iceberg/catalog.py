"""The Iceberg catalog and the one place table names are built from a tenant id."""

import re
from dataclasses import dataclass
from uuid import UUID

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.catalog.sql import SqlCatalog

from ingest.core.errors import InvalidRequestError
from ingest.core.settings import Settings

DEFAULT_SCHEMA = "default"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SEPARATOR = "__"


def load_catalog(settings: Settings, database_url: str | None = None) -> Catalog:
    """The configured catalog: by default pyiceberg's SQL catalog in the service's own PostgreSQL.

    `database_url` is the resolved metadata database (the embedded server when settings name none).
    """
    properties: dict[str, str] = {"warehouse": settings.warehouse_location}
    if settings.s3_endpoint_url:
        properties["s3.endpoint"] = settings.s3_endpoint_url
    if settings.catalog_type == "rest":
        if not settings.catalog_uri:
            raise ValueError("INGEST_CATALOG_URI is required for the REST catalog")
        if not settings.warehouse:
            properties.pop("warehouse")
        return RestCatalog("ingest", uri=settings.catalog_uri, **properties)
    if settings.catalog_type != "sql":
        raise ValueError(f"unknown INGEST_CATALOG_TYPE {settings.catalog_type!r}: use sql or rest")
    uri = settings.catalog_uri or database_url or settings.database_url
    if not uri:
        raise ValueError("the SQL catalog needs INGEST_CATALOG_URI or INGEST_DATABASE_URL")
    return SqlCatalog("ingest", uri=sqlalchemy_url(uri), init_catalog_tables="true", **properties)


def sqlalchemy_url(url: str) -> str:
    """pyiceberg's SQL catalog is synchronous: force psycopg 3 (also for an asyncpg URL)."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class TableRef:
    """A tenant's table: `schema` and `name` as the API shows them, `identifier` as the catalog knows it."""

    tenant_id: UUID
    schema: str
    name: str
    identifier: tuple[str, str]


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise InvalidRequestError(
            f"Invalid {what} '{value[:140]}': use letters, digits and underscores (not starting with a digit)"
        )
    return value


def tenant_namespace(tenant_id: UUID, schema: str | None = None, prefix: str = "tenant_") -> tuple[str]:
    """The single-level namespace `<prefix><tenant hex>__<schema>` holding a tenant's tables of one schema.

    The tenant is part of every namespace name, so no identifier built here reaches another tenant's tables.
    """
    name = check_name(DEFAULT_SCHEMA if schema is None else schema, "schema name")
    return (f"{prefix}{tenant_id.hex}{_SEPARATOR}{name}",)


def tenant_of(namespace: tuple[str, ...] | str, prefix: str = "tenant_") -> tuple[UUID, str] | None:
    """(tenant id, schema) of a namespace built by `tenant_namespace`; None for any other namespace."""
    name = namespace if isinstance(namespace, str) else ".".join(namespace)
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    tenant_hex, sep, schema = rest[:32], rest[32:34], rest[34:]
    if sep != _SEPARATOR or not schema:
        return None
    try:
        return UUID(hex=tenant_hex), schema
    except ValueError:
        return None


def table_ref(tenant_id: UUID, schema: str | None, table: str, prefix: str = "tenant_") -> TableRef:
    namespace = tenant_namespace(tenant_id, schema, prefix)
    name = check_name(table, "table name")
    schema_name = DEFAULT_SCHEMA if schema is None else schema
    return TableRef(tenant_id, schema_name, name, (namespace[0], name))
