"""Settings: every `INGEST_*` environment variable, read once into one object that is passed down."""

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class Settings:
    """Service configuration; see the README's settings table for each variable."""

    host: str = "0.0.0.0"
    port: int = 8113
    data_dir: Path = Path(".ingest")
    database_url: str | None = None
    log_level: str = "INFO"
    log_format: str = "json"

    # auth
    jwt_secret: str | None = None
    jwt_jwks_url: str | None = None
    jwt_algorithms: list[str] = field(default_factory=list)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_tenants_claim: str = "tenants"
    jwt_permissions_claim: str = "permissions"
    jwt_jwks_cache_seconds: int = 300

    # secrets at rest: comma-separated `kid:base64key` pairs, the first one encrypts
    secret_key: str | None = None

    # jobs
    worker_concurrency: int = 2
    run_worker: bool = True
    job_stall_seconds: int = 60

    # engines
    engine: str = "embedded"
    connectors_home: Path | None = None  # where connector virtualenvs live (default <data dir>/connectors)
    connector_timeout_seconds: float = 300.0
    connector_read_timeout_seconds: float = 6 * 3600.0
    connector_kill_grace_seconds: float = 10.0  # SIGTERM -> SIGKILL grace for a stopped connector
    connector_pip_index_url: str | None = None
    airbyte_url: str | None = None
    airbyte_client_id: str | None = None
    airbyte_client_secret: str | None = None
    airbyte_timeout_seconds: float = 30.0
    airbyte_poll_seconds: float = 5.0
    airbyte_destination_config: str | None = None
    airbyte_long_timeout_seconds: float = 600.0  # check/discover/connection create block on a connector run
    airbyte_retry_attempts: int = 5
    airbyte_retry_backoff_seconds: float = 0.5  # first retry wait; doubles per attempt, with jitter
    airbyte_retry_max_backoff_seconds: float = 30.0  # cap on one wait, Retry-After included

    # files and storage
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    max_upload_bytes: int = 5 * 1024**3
    max_json_bytes: int = 512 * 1024**2

    # iceberg
    catalog_uri: str | None = None
    catalog_type: str = "sql"
    warehouse: str | None = None
    default_namespace_prefix: str = "tenant_"

    # scheduling
    scheduler_enabled: bool = True

    # table maintenance (expire snapshots, remove unreferenced files, compact small files)
    maintenance_enabled: bool = True
    maintenance_interval_hours: float = 24.0  # a table is maintained when its last run is older than this
    maintenance_snapshot_retention_hours: float = 168.0  # 7 days
    maintenance_keep_snapshots: int = 10  # the newest N snapshots are kept whatever their age
    maintenance_orphan_min_age_hours: float = 24.0  # unreferenced files younger than this are kept
    maintenance_target_file_bytes: int = 128 * 1024**2
    maintenance_lock_wait_seconds: float = 600.0  # how long a run waits for a load on the table to end

    # console and browsers
    console_dir: Path | None = None  # the built console (default: console/dist of this checkout)
    cors_origins: list[str] = field(default_factory=list)  # origins of an SPA hosted elsewhere

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read `INGEST_<FIELD>` for every field; unset variables keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"INGEST_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = str(f.type)
            if f.type is bool or kind == "bool":
                values[f.name] = _bool(raw)
            elif f.type is int or kind == "int":
                values[f.name] = int(raw)
            elif f.type is float or kind == "float":
                values[f.name] = float(raw)
            elif f.type is Path or "Path" in kind:
                values[f.name] = Path(raw)
            elif "list" in kind:
                values[f.name] = _list(raw)
            else:
                values[f.name] = raw
        values.update(overrides)
        settings = cls(**values)
        object.__setattr__(settings, "data_dir", Path(settings.data_dir).resolve())
        if settings.connectors_home is not None:
            object.__setattr__(settings, "connectors_home", Path(settings.connectors_home).resolve())
        return settings

    @property
    def warehouse_location(self) -> str:
        return self.warehouse or (self.data_dir / "warehouse").as_uri()

    @property
    def connectors_dir(self) -> Path:
        return self.connectors_home or self.data_dir / "connectors"
