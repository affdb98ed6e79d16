import pyarrow as pa
import pytest

from ingest.engines.base import ColumnType, DiscoveredStream, SyncMode
from ingest.engines.secrets import MASK, Scrubber, mask_config, merge_masked, secret_paths, secret_values
from ingest.engines.types import arrow_schema, column_type, columns_from_schema


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ({"type": "integer"}, (ColumnType.INTEGER, False)),
        ({"type": ["null", "integer"]}, (ColumnType.INTEGER, True)),
        ({"type": "number", "airbyte_type": "integer"}, (ColumnType.INTEGER, False)),
        ({"type": "string", "airbyte_type": "big_integer"}, (ColumnType.INTEGER, False)),
        ({"type": "number"}, (ColumnType.DECIMAL, False)),
        ({"type": "string"}, (ColumnType.STRING, False)),
        ({"type": "boolean"}, (ColumnType.BOOLEAN, False)),
        ({"type": ["null", "string"], "format": "date"}, (ColumnType.DATE, True)),
        ({"type": "string", "format": "date-time"}, (ColumnType.TIMESTAMP, False)),
        ({"type": "string", "airbyte_type": "timestamp_without_timezone"}, (ColumnType.TIMESTAMP, False)),
        ({"type": "object", "properties": {}}, (ColumnType.JSON, False)),
        ({"type": ["null", "array"]}, (ColumnType.JSON, True)),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, (ColumnType.JSON, True)),
        ({"type": ["string", "integer"]}, (ColumnType.JSON, False)),
        ({}, (ColumnType.JSON, True)),
    ],
)
def test_column_type(prop: dict, expected: tuple[ColumnType, bool]) -> None:
    assert column_type(prop) == expected


def test_arrow_schema() -> None:
    json_schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "price": {"type": "number"},
            "day": {"type": "string", "format": "date"},
            "at": {"type": "string", "format": "date-time"},
            "ok": {"type": "boolean"},
            "address": {"type": "object"},
        },
    }
    stream = DiscoveredStream(
        "s", None, columns_from_schema(json_schema), [SyncMode.FULL_REFRESH], json_schema
    )
    schema = arrow_schema(stream)
    assert schema.names == ["id", "price", "day", "at", "ok", "address"]
    assert schema.types == [
        pa.int64(),
        pa.float64(),
        pa.date32(),
        pa.timestamp("us", tz="UTC"),
        pa.bool_(),
        pa.string(),
    ]


SPEC = {
    "type": "object",
    "properties": {
        "host": {"type": "string"},
        "password": {"type": "string", "airbyte_secret": True},
        "credentials": {
            "type": "object",
            "oneOf": [
                {
                    "properties": {
                        "method": {"const": "oauth"},
                        "client_secret": {"type": "string", "airbyte_secret": True},
                    }
                },
                {
                    "properties": {
                        "method": {"const": "key"},
                        "api_key": {"type": "string", "airbyte_secret": True},
                    }
                },
            ],
        },
        "tunnels": {
            "type": "array",
            "items": {"type": "object", "properties": {"key": {"airbyte_secret": True}}},
        },
    },
}


def test_secret_paths_walk_nested_objects_and_one_of() -> None:
    assert secret_paths(SPEC) == [
        ("password",),
        ("credentials", "client_secret"),
        ("credentials", "api_key"),
        ("tunnels", "*", "key"),
    ]


def test_mask_and_merge() -> None:
    stored = {
        "host": "db.example.com",
        "password": "hunter2-secret",
        "credentials": {"method": "oauth", "client_secret": "cs-123456"},
        "tunnels": [{"key": "tk-1"}],
    }
    masked = mask_config(stored, SPEC)
    assert masked == {
        "host": "db.example.com",
        "password": MASK,
        "credentials": {"method": "oauth", "client_secret": MASK},
        "tunnels": [{"key": MASK}],
    }
    assert stored["password"] == "hunter2-secret"  # the input is not modified
    assert set(secret_values(stored, SPEC)) == {"hunter2-secret", "cs-123456", "tk-1"}

    update = {**masked, "host": "db2.example.com", "password": "new-password"}
    merged = merge_masked(update, stored, SPEC)
    assert merged["host"] == "db2.example.com"
    assert merged["password"] == "new-password"
    assert merged["credentials"] == {"method": "oauth", "client_secret": "cs-123456"}
    assert merged["tunnels"] == [{}]  # array items cannot be matched: the mask never reaches a connector

    # switching oneOf variant with a masked secret that was never stored drops the key
    switched = merge_masked({"credentials": {"method": "key", "api_key": MASK}}, stored, SPEC)
    assert switched == {"credentials": {"method": "key"}}


def test_scrubber() -> None:
    scrub = Scrubber.for_config({"password": 'p@ss"word', "host": "h"}, SPEC)
    text = 'login with p@ss"word failed; json: {"password": "p@ss\\"word"}'
    assert scrub(text) == f'login with {MASK} failed; json: {{"password": "{MASK}"}}'
    assert Scrubber([])("nothing to hide") == "nothing to hide"
