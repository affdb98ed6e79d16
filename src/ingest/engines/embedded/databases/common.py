"""What the database readers share: config options, column mapping, cursor state.

A database read runs its blocking driver in one worker thread (`ingest.engines.embedded.bridge`). No
per-row Python: the driver builds Arrow, and type fixes are Arrow compute casts per batch.
"""

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.core.errors import InvalidRequestError
from ingest.engines.base import (
    ColumnType,
    DiscoveredColumn,
    DiscoveredStream,
    ReadRequest,
    StateCheckpoint,
    StreamBatch,
    SyncMode,
)
from ingest.engines.embedded.bridge import ThreadRead as DatabaseRead

BATCH_ROWS = 65_536
CONNECT_TIMEOUT_SECONDS = 10


def load_spec(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((Path(__file__).parent / f"{kind}.spec.json").read_text())
    return spec


def ssl_mode(config: Mapping[str, Any], default: str) -> str:
    raw = config.get("ssl_mode")
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping) and isinstance(raw.get("mode"), str):
        return str(raw["mode"])
    return default


def unsupported_options(config: Mapping[str, Any]) -> list[str]:
    """Options of Airbyte's database configs the embedded engine cannot honour (each named)."""
    found: list[str] = []
    tunnel = config.get("tunnel_method")
    if isinstance(tunnel, Mapping) and tunnel.get("tunnel_method") not in (None, "NO_TUNNEL"):
        found.append(f"tunnel_method {tunnel.get('tunnel_method')} (SSH tunnel)")
    replication = config.get("replication_method")
    method = replication.get("method") if isinstance(replication, Mapping) else replication
    if isinstance(method, str) and method.upper() not in ("STANDARD",):
        found.append(f"replication_method {method} (change data capture)")
    return found


def url_params(config: Mapping[str, Any]) -> dict[str, str]:
    """`jdbc_url_params` (`k=v&k2=v2`) as a dict; a malformed pair is a 400 naming it."""
    raw = config.get("jdbc_url_params")
    params: dict[str, str] = {}
    if not raw:
        return params
    for pair in str(raw).split("&"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidRequestError(
                "connectionConfig.jdbc_url_params must be key=value pairs joined by '&'"
            )
        params[key.strip()] = value
    return params


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- columns -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One table column as the reader sees it: how to select it and the exact Arrow type it lands as."""

    name: str
    db_type: str  # the database's own spelling, e.g. numeric(12,2), timestamp with time zone
    nullable: bool
    api_type: ColumnType
    arrow: pa.DataType
    select_as_text: bool = False  # selected as text (cast in SQL): numerics, json, unknown types
    precision: int | None = None
    scale: int | None = None
    cursor_candidate: bool = False
    facts: dict[str, Any] = field(default_factory=dict)  # the catalog facts it was decided from


def discovered_column(column: Column) -> DiscoveredColumn:
    # the catalog facts are kept with the stored catalog, so a read decides the same exact type again
    return DiscoveredColumn(
        name=column.name,
        type=column.api_type,
        nullable=column.nullable,
        json_schema={"db_type": column.db_type, "arrow_type": str(column.arrow), "facts": column.facts},
        precision=column.precision,
        scale=column.scale,
    )


def stream_for(schema: str, table: str, columns: list[Column], primary_key: list[str]) -> DiscoveredStream:
    cursors = [c.name for c in columns if c.cursor_candidate]
    return DiscoveredStream(
        name=f"{schema}.{table}",
        namespace=schema,
        columns=[discovered_column(c) for c in columns],
        supported_sync_modes=[SyncMode.FULL_REFRESH, SyncMode.INCREMENTAL],
        json_schema={"x-database": {"schema": schema, "table": table}, "x-cursor-candidates": cursors},
        primary_key=[[k] for k in primary_key],
        cursor_field=[],
        source_defined_cursor=False,
    )


def table_of(stream: DiscoveredStream) -> tuple[str, str]:
    location = stream.json_schema.get("x-database") or {}
    if "schema" in location and "table" in location:
        return str(location["schema"]), str(location["table"])
    schema, _, table = stream.name.partition(".")
    return schema, table


def cast_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with every column cast to the stream's exact type (text -> decimal, extension -> storage)."""
    arrays: list[pa.Array] = []
    for index, target in enumerate(schema):
        array = batch.column(index)
        if isinstance(array.type, pa.ExtensionType):
            array = array.storage
        if array.type != target.type:
            if pa.types.is_decimal(target.type) and pa.types.is_string(array.type):
                # a bare text -> decimal cast keeps values exact; it fails loudly on a value that does not fit
                array = pc.cast(array, target.type)
            else:
                array = array.cast(target.type)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# -- per-stream choices and cursor state -------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPlan:
    stream: DiscoveredStream
    schema: str
    table: str
    arrow_schema: pa.Schema
    incremental: bool
    cursor: str | None
    since: str | None  # the saved cursor value (text), or None for a first incremental read
    columns: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, db_type, select_as_text)


def plans(request: ReadRequest, rebuild: Callable[[DiscoveredColumn], Column]) -> list[StreamPlan]:
    """One plan per selected stream: exact Arrow schema, mode, cursor and the saved cursor value."""
    saved = cursor_state(request.state)
    result: list[StreamPlan] = []
    for stream in request.streams:
        choice = request.choices.get(stream.name)
        mode = choice.sync_mode if choice is not None else None
        incremental = (mode is SyncMode.INCREMENTAL) if mode is not None else request.incremental
        cursor = choice.cursor_field if choice is not None else None
        if not cursor and stream.cursor_field:
            cursor = stream.cursor_field[0]
        if incremental and not cursor:
            raise InvalidRequestError(f"Stream '{stream.name}' is INCREMENTAL but has no cursorField")
        typed = [rebuild(c) for c in stream.columns]
        schema, table = table_of(stream)
        previous = saved.get(stream.name) or {}
        since = previous.get("cursor") if incremental and previous.get("cursor_field") == cursor else None
        result.append(
            StreamPlan(
                stream=stream,
                schema=schema,
                table=table,
                arrow_schema=pa.schema([pa.field(c.name, c.arrow, nullable=True) for c in typed]),
                incremental=incremental,
                cursor=cursor if incremental else None,
                since=since,
                columns=[(c.name, c.db_type, c.select_as_text) for c in typed],
            )
        )
    return result


def cursor_state(state: Any) -> dict[str, dict[str, Any]]:
    """`{"streams": {name: {"cursor_field", "cursor"}}}` (what database reads save) as a dict by stream."""
    if isinstance(state, Mapping) and isinstance(state.get("streams"), Mapping):
        return {str(k): dict(v) for k, v in state["streams"].items() if isinstance(v, Mapping)}
    return {}


def cursor_text(value: Any) -> str | None:
    """A cursor maximum as text the database casts back to the column's type."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | Decimal | int | float):
        return str(value)
    return str(value)


def max_cursor(batch: pa.RecordBatch, cursor: str) -> Any:
    column = batch.column(batch.schema.get_field_index(cursor))
    if len(column) == column.null_count:
        return None
    return pc.max(column).as_py()


class CursorTracker:
    """The largest cursor value seen per stream (compared as Python values of one type)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def see(self, plan: StreamPlan, batch: pa.RecordBatch) -> None:
        if plan.cursor is None or batch.num_rows == 0:
            return
        value = max_cursor(batch, plan.cursor)
        if value is None:
            return
        current = self.values.get(plan.stream.name)
        if current is None or value > current:
            self.values[plan.stream.name] = value

    def state(self, previous: Any, plans: list[StreamPlan]) -> dict[str, Any]:
        streams = cursor_state(previous)
        for plan in plans:
            if plan.cursor is None:
                continue
            value = self.values.get(plan.stream.name)
            text = cursor_text(value) if value is not None else plan.since
            streams[plan.stream.name] = {"cursor_field": plan.cursor, "cursor": text}
        return {"streams": streams}


def chunks(reader: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Re-slice driver batches to at most `rows` rows (drivers pick their own sizes)."""
    for batch in reader:
        if batch.num_rows <= rows:
            yield batch
            continue
        for offset in range(0, batch.num_rows, rows):
            yield batch.slice(offset, rows)


def event_batch(plan: StreamPlan, batch: pa.RecordBatch) -> StreamBatch:
    return StreamBatch(plan.stream.name, cast_batch(batch, plan.arrow_schema), 0)


def empty_batch(plan: StreamPlan) -> StreamBatch:
    """A 0-row batch: an empty table still lands with its exact schema."""
    return StreamBatch(plan.stream.name, pa.RecordBatch.from_pylist([], schema=plan.arrow_schema), 0)


def checkpoint(
    tracker: CursorTracker, previous: Any, stream_plans: list[StreamPlan]
) -> StateCheckpoint | None:
    if not any(p.incremental for p in stream_plans):
        return None
    return StateCheckpoint(tracker.state(previous, stream_plans))


__all__ = ["DatabaseRead"]  # the bridge, under the name the database readers use
