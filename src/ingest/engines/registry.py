"""The connector registry: one table of every connector type the service offers."""

from typing import Any

from ingest.engines.base import ConnectorType

_BOTH = frozenset({"embedded", "airbyte"})
_AIRBYTE_ONLY = frozenset({"airbyte"})
_EMBEDDED_ONLY = frozenset({"embedded"})


def _python(
    id: str, title: str, package: str, version: str, definition: str, endpoint: tuple[str, ...]
) -> ConnectorType:
    return ConnectorType(id, title, package, version, definition, _BOTH, endpoint)


def _database(id: str, title: str, definition: str, endpoint: tuple[str, ...]) -> ConnectorType:
    # Airbyte ships these only as Docker images; the embedded engine reads them natively into Arrow
    # (engines/embedded/databases/), with the same configuration keys.
    return ConnectorType(id, title, None, None, definition, _BOTH, endpoint)


def _java(id: str, title: str, definition: str, endpoint: tuple[str, ...]) -> ConnectorType:
    # Java/Kotlin connectors ship only as Docker images: no PyPI package, Airbyte engine only.
    return ConnectorType(id, title, None, None, definition, _AIRBYTE_ONLY, endpoint)


# Versions are the latest on PyPI that install when pinned (2026-11/12); many API sources have since
# moved to manifest-only connectors, so their PyPI builds no longer update. Several file connectors'
# newer releases pin `smart-open[...]==<their own version>`, a smart-open release that does not exist:
# they cannot install, so the newest release without that mistake is pinned (tests/engines/test_pins.py
# resolves every pin).
_CONNECTORS: tuple[ConnectorType, ...] = (
    _database("postgres", "PostgreSQL", "Postgres", ("host", "port", "database")),
    _database("mysql", "MySQL", "MySQL", ("host", "port", "database")),
    _java(
        "mongodb",
        "MongoDB",
        "MongoDb",
        ("database_config.connection_string", "database_config.database"),
    ),
    _java("mssql", "Microsoft SQL Server", "Microsoft SQL Server (MSSQL)", ("host", "port", "database")),
    _java(
        "oracle",
        "Oracle",
        "Oracle DB",
        ("host", "port", "connection_data.service_name", "connection_data.sid"),
    ),
    _python(
        "salesforce",
        "Salesforce",
        "airbyte-source-salesforce",
        "2.10.3",
        "Salesforce",
        ("is_sandbox", "start_date"),
    ),
    _python("hubspot", "HubSpot", "airbyte-source-hubspot", "5.7.0", "HubSpot", ("start_date",)),
    _python("stripe", "Stripe", "airbyte-source-stripe", "5.14.1", "Stripe", ("account_id", "start_date")),
    _python(
        "s3",
        "Amazon S3",
        "airbyte-source-s3",
        "4.14.2",  # 4.14.3 to 4.16.1 (the newest) pin smart-open[s3]==<own version>: uninstallable
        "S3",
        ("bucket", "endpoint", "region_name"),
    ),
    _python("gcs", "Google Cloud Storage", "airbyte-source-gcs", "0.10.39", "GCS", ("bucket",)),
    _python(
        "azure-blob-storage",
        "Azure Blob Storage",
        "airbyte-source-azure-blob-storage",
        "0.6.12",  # 0.6.13 to 0.8.40 (the newest) pin smart-open[azure]==<own version>: uninstallable
        "Azure Blob Storage",
        (
            "azure_blob_storage_account_name",
            "azure_blob_storage_container_name",
            "azure_blob_storage_endpoint",
        ),
    ),
    _python(
        "sftp-bulk",
        "SFTP Bulk",
        "airbyte-source-sftp-bulk",
        "1.9.3",
        "SFTP Bulk",
        ("host", "port", "folder_path"),
    ),
    _python(
        "github",
        "GitHub",
        "airbyte-source-github",
        "2.7.1",
        "GitHub",
        ("api_url", "repositories", "start_date"),
    ),
    _python("jira", "Jira", "airbyte-source-jira", "4.0.0", "Jira", ("domain", "projects", "start_date")),
    _python(
        "zendesk",
        "Zendesk Support",
        "airbyte-source-zendesk-support",
        "4.9.1",
        "Zendesk Support",
        ("subdomain", "start_date"),
    ),
    # Read natively by the embedded engine (engines/embedded/mail/); Airbyte has no IMAP source.
    ConnectorType(
        "imap", "IMAP mailbox", None, None, "IMAP", _EMBEDDED_ONLY, ("host", "port", "tls", "username")
    ),
    _python("faker", "Sample Data (Faker)", "airbyte-source-faker", "7.2.1", "Sample Data", ()),
    _python(
        "file",
        "File (CSV, JSON, Excel, Feather, Parquet)",
        "airbyte-source-file",
        "0.5.39",  # 0.6.0 pins smart-open[all]==0.6.0, which does not exist: uninstallable
        "File (CSV, JSON, Excel, Feather, Parquet)",
        ("url", "provider.storage", "provider.host", "provider.storage_account"),
    ),
)

_BY_ID: dict[str, ConnectorType] = {c.id: c for c in _CONNECTORS}

# Airbyte's definitions list is matched on the Docker repository (the display names drift).
_DOCKER_REPOSITORY_OVERRIDES = {
    "mongodb": "airbyte/source-mongodb-v2",
    "zendesk": "airbyte/source-zendesk-support",
}


# Shorthands accepted in any engine's config: the contract's own example sends `"ssl_mode": "require"`.
_SHORTHANDS = {"ssl_mode": "mode", "replication_method": "method", "tunnel_method": "tunnel_method"}


def normalize_config(connector: ConnectorType, config: dict[str, Any]) -> dict[str, Any]:
    """Database configs: a plain string `ssl_mode` / `replication_method` / `tunnel_method` is read as the
    object Airbyte's spec expects (`"require"` -> `{"mode": "require"}`)."""
    if connector.id not in ("postgres", "mysql"):
        return config
    normalized = dict(config)
    for key, inner in _SHORTHANDS.items():
        if isinstance(normalized.get(key), str):
            normalized[key] = {inner: normalized[key]}
    return normalized


def get_connector(connector_id: str) -> ConnectorType | None:
    """The registry entry for an API connector id, or None."""
    return _BY_ID.get(connector_id)


def all_connectors() -> list[ConnectorType]:
    """Every connector type, in registry order."""
    return list(_CONNECTORS)


def runnable_by(engine_name: str) -> list[ConnectorType]:
    """The connector types an engine (`embedded`, `airbyte`) can run."""
    return [c for c in _CONNECTORS if engine_name in c.engines]


def docker_repository(connector: ConnectorType) -> str:
    """The connector's Docker repository in Airbyte's catalogue, e.g. `airbyte/source-faker`."""
    return _DOCKER_REPOSITORY_OVERRIDES.get(connector.id, f"airbyte/source-{connector.id}")


def console_script(connector: ConnectorType) -> str:
    """The console script a PyPI connector package installs (`airbyte-source-x` -> `source-x`)."""
    if connector.package is None:
        return f"source-{connector.id}"
    return connector.package.removeprefix("airbyte-")
