"""Settings: every `INGEST_*` environment variable, read once into one object that is passed down.

`Settings.from_env` refuses a value of the wrong kind and `Settings.check` a combination the service
cannot work with, both with a SettingsError whose one-line message names the variable (never its value
when it could hold a password): `ingest serve` and `ingest worker` refuse to start on it.
"""

import json
import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting the service cannot work with; the message names the variable."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_HTTP = ("http", "https")
_DATABASE_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")
# *_URL settings that are not http(s) URLs; every other one must be
_SPECIAL_URLS = frozenset({"database_url", "connector_pip_index_url", "storage_url", "redis_url"})


def env_name(name: str) -> str:
    return f"INGEST_{name.upper()}"


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(
        f"{env_name(name)} must be true or false (also 1/0, yes/no, on/off), not {value[:40]!r}"
    )


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _number(kind: type[int] | type[float], raw: str, name: str, what: str) -> int | float:
    try:
        value = kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{env_name(name)} must be {what}, not {raw[:40]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingsError(f"{env_name(name)} must be a finite number, not {raw[:40]!r}")
    return value


def _at_least(settings: "Settings", minimum: int, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if value < minimum:
            raise SettingsError(f"{env_name(name)} must be at least {minimum}, not {value}")


def _above_zero(settings: "Settings", *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if value <= 0:
            raise SettingsError(f"{env_name(name)} must be more than 0, not {value}")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(f"{env_name(name)} must be one of {', '.join(allowed)}, not {value[:40]!r}")


def _url(name: str, value: str, schemes: tuple[str, ...], *, host: bool = True) -> None:
    """A URL with one of `schemes` (and a host); messages never show the value: it may hold a password."""
    example = f"{schemes[0]}://host/..."
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise SettingsError(f"{env_name(name)} is not a valid URL (expected {example})") from None
    if parts.scheme.lower() not in schemes:
        raise SettingsError(
            f"{env_name(name)} must be a URL with scheme {' or '.join(schemes)} (expected {example})"
        )
    if host and not parts.hostname:
        raise SettingsError(f"{env_name(name)} has no host (expected {example})")
    if any(c.isspace() for c in value.strip()):
        raise SettingsError(f"{env_name(name)} is not a valid URL: it contains white space")


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

    # API keys: the server key of their HMAC (unset: a development key in the data dir)
    api_key_secret: str | None = None

    # rate limits: token buckets per tenant and per API key (rate = tokens a second, burst = bucket size)
    rate_limit_enabled: bool = True
    rate_limit_read_rate: float = 50.0  # GET and HEAD
    rate_limit_read_burst: int = 200
    rate_limit_rate: float = 10.0  # every other change
    rate_limit_burst: int = 50
    rate_limit_heavy_rate: float = 1.0  # uploads, imports and sync triggers
    rate_limit_heavy_burst: int = 10
    rate_limit_key_fraction: float = 0.5  # an API key's own bucket: this share of its tenant's
    redis_url: str | None = None  # the rate-limit buckets in Redis instead of PostgreSQL

    # telemetry
    metrics_auth: str = "open"  # GET /metrics: open, token (Bearer INGEST_METRICS_TOKEN) or off
    metrics_token: str | None = None

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
    # resumable (tus) and presigned multipart uploads
    upload_chunk_bytes: int = 8 * 1024**2  # the largest tus PATCH body: below the gateway's body limit
    upload_expire_hours: float = 24.0  # an unfinished upload (and its bytes) is removed after this
    upload_dir: Path | None = None  # tus uploads' partial bytes (default <data dir>/partial-uploads)

    # iceberg
    catalog_uri: str | None = None
    catalog_type: str = "sql"
    warehouse: str | None = None
    default_namespace_prefix: str = "tenant_"

    # scheduling and lifecycle
    scheduler_enabled: bool = True
    disable_after_failures: int = 30  # consecutive failed syncs that pause a connection (0: never)
    failure_warning_after: int = (
        20  # consecutive failed syncs that send connection.failure_warning (0: never)
    )

    # webhooks
    webhook_allow_private: bool = False  # allow private, loopback and link-local targets (tests, development)
    webhook_allow_http: bool = False  # allow http:// URLs (development); https only otherwise
    webhook_timeout_seconds: float = 10.0  # one delivery attempt, connect to last byte
    webhook_retry_base_seconds: float = 30.0  # first retry wait; doubles per attempt (jitter added)
    webhook_retry_max_wait_seconds: float = 3600.0  # cap on one wait
    webhook_retry_for_seconds: float = 86400.0  # a delivery is retried for about this long, then FAILED
    webhook_disable_after_seconds: float = 3 * 86400.0  # a webhook failing this long is disabled

    # mail sources
    imap_allow_plaintext: bool = False  # accept IMAP sources with tls 'none' (password sent in clear)

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
                values[f.name] = _bool(raw, f.name)
            elif f.type is int or kind == "int":
                values[f.name] = _number(int, raw, f.name, "a whole number")
            elif f.type is float or kind == "float":
                values[f.name] = _number(float, raw, f.name, "a number")
            elif f.type is Path or "Path" in kind:
                values[f.name] = Path(raw)
            elif "list" in kind:
                values[f.name] = _list(raw)
            else:
                values[f.name] = raw
        values.update(overrides)
        settings = cls(**values)
        object.__setattr__(settings, "data_dir", Path(settings.data_dir).resolve())
        if settings.upload_dir is not None:
            object.__setattr__(settings, "upload_dir", Path(settings.upload_dir).resolve())
        if settings.connectors_home is not None:
            object.__setattr__(settings, "connectors_home", Path(settings.connectors_home).resolve())
        return settings

    def check(self) -> None:
        """SettingsError naming the first setting a service could not work with (see the README)."""
        _at_least(self, 1, "port", "worker_concurrency", "job_stall_seconds", "max_upload_bytes")
        _at_least(self, 1, "max_json_bytes", "airbyte_retry_attempts", "upload_chunk_bytes")
        _above_zero(self, "upload_expire_hours")
        _at_least(self, 0, "jwt_jwks_cache_seconds", "airbyte_retry_backoff_seconds")
        _at_least(self, 0, "airbyte_retry_max_backoff_seconds", "connector_kill_grace_seconds")
        _above_zero(self, "connector_timeout_seconds", "connector_read_timeout_seconds")
        _above_zero(self, "airbyte_timeout_seconds", "airbyte_long_timeout_seconds", "airbyte_poll_seconds")
        if self.port > 65535:
            raise SettingsError(f"INGEST_PORT must be between 1 and 65535, not {self.port}")
        if logging.getLevelName(self.log_level.upper()) not in range(0, 60):
            raise SettingsError("INGEST_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        _one_of("log_format", self.log_format, ("json", "console"))
        _one_of("engine", self.engine, ("embedded", "airbyte"))
        _one_of("catalog_type", self.catalog_type, ("sql", "rest"))
        if self.database_url:
            _url("database_url", self.database_url, _DATABASE_SCHEMES, host=False)
        if self.connector_pip_index_url:
            _url("connector_pip_index_url", self.connector_pip_index_url, (*_HTTP, "file"), host=False)
        if self.storage_url and "://" in self.storage_url:
            _url("storage_url", self.storage_url, ("s3", "file"), host=self.storage_url.startswith("s3:"))
        if self.redis_url:
            _url("redis_url", self.redis_url, ("redis", "rediss", "unix"), host=False)
        _one_of("metrics_auth", self.metrics_auth, ("open", "token", "off"))
        if self.metrics_auth == "token" and not self.metrics_token:
            raise SettingsError("INGEST_METRICS_AUTH=token needs INGEST_METRICS_TOKEN")
        _above_zero(self, "rate_limit_read_rate", "rate_limit_rate", "rate_limit_heavy_rate")
        _at_least(self, 1, "rate_limit_read_burst", "rate_limit_burst", "rate_limit_heavy_burst")
        if not 0 < self.rate_limit_key_fraction <= 1:
            raise SettingsError("INGEST_RATE_LIMIT_KEY_FRACTION must be above 0 and at most 1")
        if self.catalog_type == "rest":
            if not self.catalog_uri:
                raise SettingsError("INGEST_CATALOG_URI is required when INGEST_CATALOG_TYPE=rest")
            _url("catalog_uri", self.catalog_uri, _HTTP)
        elif self.catalog_uri:
            _url("catalog_uri", self.catalog_uri, (*_DATABASE_SCHEMES, "postgresql+asyncpg"), host=False)
        for f in fields(self):  # what every setting of a kind must be, new ones included
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise SettingsError(f"{env_name(f.name)} must not be negative, not {value}")
            if f.name.endswith("_url") and f.name not in _SPECIAL_URLS and value:
                _url(f.name, value, _HTTP)
        if {a.strip().lower() for a in self.jwt_algorithms} & {"none", ""}:
            raise SettingsError("INGEST_JWT_ALGORITHMS must not allow 'none'")
        for origin in self.cors_origins:
            if origin != "*":
                _url("cors_origins", origin, _HTTP)
                parts = urlsplit(origin.strip())
                if parts.path not in ("", "/") or parts.query or parts.fragment:
                    raise SettingsError(
                        "INGEST_CORS_ORIGINS entries must be origins like https://admin.example.com (no path)"
                    )
        if self.engine == "airbyte":
            self._check_airbyte()

    def _check_airbyte(self) -> None:
        if not self.airbyte_url:
            raise SettingsError("INGEST_AIRBYTE_URL is required when INGEST_ENGINE=airbyte")
        if bool(self.airbyte_client_id) != bool(self.airbyte_client_secret):
            raise SettingsError(
                "INGEST_AIRBYTE_CLIENT_ID and INGEST_AIRBYTE_CLIENT_SECRET go together: set both or neither"
            )
        if not self.airbyte_destination_config:
            raise SettingsError(
                "INGEST_AIRBYTE_DESTINATION_CONFIG is required when INGEST_ENGINE=airbyte"
                " (the JSON config of each tenant's S3 Data Lake destination)"
            )
        try:
            config = json.loads(self.airbyte_destination_config)
        except ValueError as e:
            raise SettingsError(
                f"INGEST_AIRBYTE_DESTINATION_CONFIG is not valid JSON (line {getattr(e, 'lineno', '?')},"
                f" column {getattr(e, 'colno', '?')})"
            ) from None
        if not isinstance(config, dict) or not config:
            raise SettingsError("INGEST_AIRBYTE_DESTINATION_CONFIG must be a non-empty JSON object")

    @property
    def warehouse_location(self) -> str:
        return self.warehouse or (self.data_dir / "warehouse").as_uri()

    @property
    def partial_uploads_dir(self) -> Path:
        return self.upload_dir or self.data_dir / "partial-uploads"

    @property
    def connectors_dir(self) -> Path:
        return self.connectors_home or self.data_dir / "connectors"
