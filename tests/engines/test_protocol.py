import json
from datetime import UTC, date, datetime

import pyarrow as pa

from ingest.engines.base import DiscoveredStream, ReadRequest, SyncMode
from ingest.engines.embedded.protocol import (
    RecordBatcher,
    configured_catalog,
    parse_catalog,
    state_file_payload,
)
from ingest.engines.registry import get_connector

CATALOG = {
    "streams": [
        {
            "name": "orders",
            "json_schema": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "total": {"type": ["null", "number"]},
                    "day": {"type": "string", "format": "date"},
                    "at": {"type": "string", "format": "date-time"},
                    "tags": {"type": "array"},
                    "meta": {"type": ["null", "object"]},
                },
            },
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": ["at"],
            "source_defined_primary_key": [["id"]],
        },
        {
            "name": "notes",
            "json_schema": {"properties": {"text": {"type": "string"}}},
            "supported_sync_modes": ["full_refresh"],
        },
    ]
}


def record(stream: str, data: dict) -> bytes:
    return json.dumps(
        {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": 1}}
    ).encode()


def state(stream: str, cursor: int) -> bytes:
    message = {
        "type": "STREAM",
        "stream": {"stream_descriptor": {"name": stream}, "stream_state": {"c": cursor}},
    }
    return json.dumps({"type": "STATE", "state": message}).encode()


def streams() -> list[DiscoveredStream]:
    return parse_catalog(CATALOG)


def test_parse_catalog_and_configured_catalog() -> None:
    orders, notes = streams()
    assert orders.supported_sync_modes == [SyncMode.FULL_REFRESH, SyncMode.INCREMENTAL]
    assert orders.primary_key == [["id"]]
    assert orders.cursor_field == ["at"]
    faker = get_connector("faker")
    assert faker is not None
    request = ReadRequest(faker, {}, [orders, notes], incremental=True, state=None)
    configured = configured_catalog(request)["streams"]
    assert configured[0]["sync_mode"] == "incremental"
    assert configured[0]["destination_sync_mode"] == "append_dedup"
    assert configured[0]["cursor_field"] == ["at"]
    assert configured[0]["stream"]["supported_sync_modes"] == ["full_refresh", "incremental"]
    assert configured[1]["sync_mode"] == "full_refresh"
    assert configured[1]["destination_sync_mode"] == "overwrite"
    assert state_file_payload(None) == []
    assert state_file_payload({"cursor": 1}) == [{"type": "LEGACY", "data": {"cursor": 1}}]


def test_batches_types_json_columns_and_extra_fields() -> None:
    batcher = RecordBatcher(streams(), batch_records=2)
    first = record(
        "orders",
        {
            "id": 1,
            "total": 2.5,
            "day": "2024-01-31",
            "at": "2024-01-31T10:00:00+02:00",
            "tags": ["a"],
            "meta": {"k": 1},
            "extra": 9,
        },
    )
    assert batcher.feed(first) == ()
    (out,) = batcher.feed(record("orders", {"id": 2, "total": None, "meta": None}))
    assert out.stream == "orders"
    assert out.batch.schema.names == ["id", "total", "day", "at", "tags", "meta"]
    assert out.batch.schema.field("day").type == pa.date32()
    rows = out.batch.to_pylist()
    assert json.loads(rows[0].pop("meta")) == {"k": 1}  # JSON columns keep the connector's own JSON text
    assert rows[0] == {
        "id": 1,
        "total": 2.5,
        "day": date(2024, 1, 31),
        "at": datetime(2024, 1, 31, 8, 0, tzinfo=UTC),
        "tags": '["a"]',
    }
    assert rows[1] == {"id": 2, "total": None, "day": None, "at": None, "tags": None, "meta": None}
    assert batcher.records == {"orders": 2}
    assert batcher.bytes["orders"] > 0


def test_wrong_types_fall_back_row_by_row() -> None:
    batcher = RecordBatcher(streams())
    batcher.feed(
        record("orders", {"id": "7", "total": "1.5", "day": "not a date", "at": "2024-01-01T00:00:00Z"})
    )
    batcher.feed(record("orders", {"id": 1.0, "total": 3, "tags": "x"}))
    (out,) = batcher.flush()
    rows = out.batch.to_pylist()
    assert [r["id"] for r in rows] == [7, 1]
    assert [r["total"] for r in rows] == [1.5, 3.0]
    assert rows[0]["day"] is None
    assert rows[0]["at"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert rows[1]["tags"] == '"x"'
    assert batcher.invalid_values == {"orders": 1}


def test_state_is_committable_only_after_preceding_records_are_batched() -> None:
    batcher = RecordBatcher(streams(), batch_records=10)
    batcher.feed(state("orders", 0))  # nothing before it: committable at once
    batcher.feed(record("orders", {"id": 1}))
    batcher.feed(record("notes", {"text": "hi", "unknown": 1}))
    batcher.feed(state("orders", 1))
    batcher.feed(record("unknown_stream", {"x": 1}))
    batcher.feed(b"not json at all")
    ready = batcher.drain_states()
    assert [(s.position, s.stream) for s in ready] == [(0, "orders")]
    assert batcher.pending_states == 1
    assert batcher.committed_state()[0]["stream"]["stream_state"] == {"c": 0}
    batches = batcher.flush()
    assert sorted(b.stream for b in batches) == ["notes", "orders"]
    ready = batcher.drain_states()
    assert [(s.position, s.kind) for s in ready] == [(2, "STREAM")]
    assert batcher.committed_state() == [json.loads(state("orders", 1))["state"]]
    assert batcher.skipped_records == 1
    assert batcher.non_protocol_lines == 1
    assert batcher.total_records == 2


def test_trace_error_and_control_messages() -> None:
    batcher = RecordBatcher(streams(), scrub=lambda text: text.replace("s3cret", "********"))
    trace = {
        "type": "TRACE",
        "trace": {"type": "ERROR", "emitted_at": 1, "error": {"message": "bad key s3cret"}},
    }
    batcher.feed(json.dumps(trace).encode())
    control = {
        "type": "CONTROL",
        "control": {
            "type": "CONNECTOR_CONFIG",
            "emitted_at": 1,
            "connectorConfig": {"config": {"token": "new"}},
        },
    }
    batcher.feed(json.dumps(control).encode())
    global_state = {
        "type": "STATE",
        "state": {"type": "GLOBAL", "global": {"shared_state": {"lsn": 5}, "stream_states": []}},
    }
    batcher.feed(json.dumps(global_state).encode())
    assert batcher.last_error == "bad key ********"
    assert batcher.control_config == {"token": "new"}
    assert batcher.committed_state() == [global_state["state"]]
