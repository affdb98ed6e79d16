"""The connector definitions the fake Airbyte knows: specs and discovered catalogs (config-API camelCase)."""

import uuid
from typing import Any

from ingest.engines.registry import all_connectors, docker_repository

FAKER_ID = "dfd88b22-b603-4c3d-aad7-3701784586b1"
POSTGRES_ID = "decd338e-5647-4c0b-adf4-da0e75f5a750"
FILE_ID = "778daa7c-feaf-4db6-96f3-70fd645acc77"
S3_DATA_LAKE_ID = "716ca874-520b-4902-9f80-9fad66754b89"

_TS = {"type": ["null", "string"], "format": "date-time", "airbyte_type": "timestamp_with_timezone"}


def _stream(
    name: str,
    properties: dict[str, Any],
    *,
    namespace: str | None = None,
    primary_key: list[list[str]] | None = None,
    cursor: list[str] | None = None,
    source_defined_cursor: bool = False,
) -> dict[str, Any]:
    modes = ["full_refresh", "incremental"] if cursor else ["full_refresh"]
    return {
        "name": name,
        "namespace": namespace,
        "jsonSchema": {"type": "object", "properties": properties},
        "supportedSyncModes": modes,
        "sourceDefinedCursor": source_defined_cursor,
        "defaultCursorField": cursor or [],
        "sourceDefinedPrimaryKey": primary_key or [],
        "isResumable": True,
        "isFileBased": False,
    }


FAKER_SPEC: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Faker Source Spec",
    "type": "object",
    "required": ["count"],
    "properties": {
        "count": {"type": "integer", "minimum": 1, "default": 1000},
        "seed": {"type": "integer", "default": -1},
        "records_per_slice": {"type": "integer", "minimum": 1, "default": 1000},
        "always_updated": {"type": "boolean", "default": True},
        "parallelism": {"type": "integer", "minimum": 1, "default": 4},
    },
}

POSTGRES_SPEC: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Postgres Source Spec",
    "type": "object",
    "required": ["host", "port", "database", "username"],
    "properties": {
        "host": {"type": "string"},
        "port": {"type": "integer", "minimum": 0, "maximum": 65536},
        "database": {"type": "string"},
        "schemas": {"type": "array", "items": {"type": "string"}},
        "username": {"type": "string"},
        "password": {"type": "string", "airbyte_secret": True},
        "ssl_mode": {
            "type": "object",
            "oneOf": [
                {"properties": {"mode": {"const": "disable"}}},
                {
                    "properties": {
                        "mode": {"const": "verify-full"},
                        "client_key_password": {"type": "string", "airbyte_secret": True},
                    }
                },
            ],
        },
    },
}

FILE_SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["dataset_name", "format", "url", "provider"],
    "properties": {
        "dataset_name": {"type": "string"},
        "format": {"type": "string"},
        "url": {"type": "string"},
        "provider": {"type": "object"},
    },
}

S3_DATA_LAKE_SPEC: dict[str, Any] = {
    "type": "object",
    "required": [
        "s3_bucket_name",
        "s3_bucket_region",
        "warehouse_location",
        "main_branch_name",
        "catalog_type",
    ],
    "properties": {
        "access_key_id": {"type": "string", "airbyte_secret": True},
        "secret_access_key": {"type": "string", "airbyte_secret": True},
        "s3_bucket_name": {"type": "string"},
        "s3_bucket_region": {"type": "string"},
        "s3_endpoint": {"type": "string"},
        "warehouse_location": {"type": "string"},
        "main_branch_name": {"type": "string"},
        "catalog_type": {"type": "object", "required": ["catalog_type"]},
    },
}

FAKER_CATALOG = [
    _stream(
        "users",
        {
            "id": {"type": ["null", "integer"]},
            "name": {"type": ["null", "string"]},
            "email": {"type": ["null", "string"]},
            "age": {"type": ["null", "integer"]},
            "height": {"type": ["null", "number"]},
            "address": {"type": ["null", "object"], "properties": {"city": {"type": ["null", "string"]}}},
            "created_at": _TS,
            "updated_at": _TS,
        },
        primary_key=[["id"]],
        cursor=["updated_at"],
        source_defined_cursor=True,
    ),
    _stream(
        "products",
        {
            "id": {"type": ["null", "integer"]},
            "make": {"type": ["null", "string"]},
            "price": {"type": ["null", "number"]},
            "in_stock": {"type": ["null", "boolean"]},
            "updated_at": _TS,
        },
        primary_key=[["id"]],
        cursor=["updated_at"],
        source_defined_cursor=True,
    ),
    _stream(
        "purchases",
        {
            "id": {"type": ["null", "integer"]},
            "user_id": {"type": ["null", "integer"]},
            "purchased_at": _TS,
            "updated_at": _TS,
        },
        primary_key=[["id"]],
        cursor=["updated_at"],
        source_defined_cursor=True,
    ),
]

POSTGRES_CATALOG = [
    _stream(
        "accounts",
        {
            "id": {"type": "number", "airbyte_type": "integer"},
            "name": {"type": ["null", "string"]},
            "opened_on": {"type": ["null", "string"], "format": "date"},
            "updated_at": {
                "type": ["null", "string"],
                "format": "date-time",
                "airbyte_type": "timestamp_without_timezone",
            },
        },
        namespace="public",
        primary_key=[["id"]],
        cursor=["updated_at"],
    ),
    _stream(
        "events",  # no primary key: incremental becomes append, never dedup
        {"payload": {"type": ["null", "string"]}, "seen_at": _TS},
        namespace="public",
        cursor=["seen_at"],
    ),
]

FILE_CATALOG = [_stream("data", {"value": {"type": ["null", "string"]}})]


GENERIC_CATALOG = [
    _stream(
        "records",
        {"id": {"type": ["null", "integer"]}, "value": {"type": ["null", "string"]}, "updated_at": _TS},
        primary_key=[["id"]],
        cursor=["updated_at"],
    )
]


def _generic_definitions(known: set[str]) -> list[dict[str, Any]]:
    """Every other connector of our registry, with a permissive spec and a one-stream catalog."""
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, docker_repository(c))),
            "name": c.airbyte_definition_name,
            "dockerRepository": docker_repository(c),
            "dockerImageTag": c.version or "1.0.0",
            "spec": {
                "type": "object",
                "properties": {"password": {"type": "string", "airbyte_secret": True}},
            },
            "catalog": GENERIC_CATALOG,
        }
        for c in all_connectors()
        if docker_repository(c) not in known and "airbyte" in c.engines
    ]


def source_definitions() -> list[dict[str, Any]]:
    """Name, Docker repository, spec and catalog of each source definition."""
    definitions = _specific_definitions()
    return definitions + _generic_definitions({d["dockerRepository"] for d in definitions})


def _specific_definitions() -> list[dict[str, Any]]:
    return [
        {
            "id": FAKER_ID,
            "name": "Sample Data",
            "dockerRepository": "airbyte/source-faker",
            "dockerImageTag": "7.2.1",
            "spec": FAKER_SPEC,
            "catalog": FAKER_CATALOG,
        },
        {
            "id": POSTGRES_ID,
            "name": "Postgres",
            "dockerRepository": "airbyte/source-postgres",
            "dockerImageTag": "3.7.0",
            "spec": POSTGRES_SPEC,
            "catalog": POSTGRES_CATALOG,
        },
        {
            "id": FILE_ID,
            "name": "File (CSV, JSON, Excel, Feather, Parquet)",
            "dockerRepository": "airbyte/source-file",
            "dockerImageTag": "0.6.0",
            "spec": FILE_SPEC,
            "catalog": FILE_CATALOG,
        },
    ]


def destination_definitions() -> list[dict[str, Any]]:
    return [
        {
            "id": S3_DATA_LAKE_ID,
            "name": "S3 Data Lake",
            "dockerRepository": "airbyte/destination-s3-data-lake",
            "dockerImageTag": "0.3.30",
            "spec": S3_DATA_LAKE_SPEC,
            "catalog": [],
        }
    ]
